"""The host contract: everything Integrated Email needs from the ATS it runs in.

The add-on never touches host tables.  A host hands ``init_app`` an object that
satisfies :class:`HostAdapter`; the reference host in ``examples/host_ats`` is
one, and the tests carry two more, different ones to prove this is the only
coupling.  Ids cross the boundary as strings (up to 255 characters) so hosts may
use ints, UUIDs or anything else.

Contract 2.0 (``host_api = "2.0"`` on the adapter) adds, all optional with a
default the add-on supplies (see :mod:`plugin.hosting` and docs/HOSTING.md):

* ``record_kinds``: the kinds of record mail links to, with their texts;
* records with several addresses (``HostRecord.emails``) and a display name whose
  parts (``first_name``/``last_name``) are optional;
* ``may_view_records(user, refs)``: batched; ``search_records(..., viewer=)``;
* ``HostUser.sees_admin_mail`` apart from ``is_admin`` (manages the add-on);
* ``HostRecord.url`` may be left empty when the kind names an endpoint: the add-on
  builds it, with or without a request (:func:`plugin.hostkit.url_for_anywhere`).

A 1.0 adapter keeps working; the add-on warns once (DeprecationWarning) and says
what to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

#: The version of this contract.  ``manifest.json`` names it as ``host_api``.
HOST_API_VERSION = "2.0"
#: Versions an adapter may declare; 1.0 is deprecated and removed in 3.0.
SUPPORTED_HOST_APIS = ("1.0", "2.0")

#: A kind name: short, lower-case, safe in URLs and in ``kind:id`` references.
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")
#: Longest id (user or record) the add-on stores, on every database.
MAX_ID_LENGTH = 255


@dataclass(frozen=True)
class HostUser:
    """An ATS user as the add-on sees one."""

    id: str
    name: str
    email: str
    #: manages the add-on: global settings, mailbox health, every mailbox's status
    is_admin: bool = False
    #: sees mail shared "Admin" (None: the same answer as ``is_admin``, contract 1.0)
    sees_admin_mail: bool | None = None

    def __post_init__(self) -> None:
        if self.sees_admin_mail is None:
            object.__setattr__(self, "sees_admin_mail", bool(self.is_admin))

    @property
    def manages_addon(self) -> bool:
        """Whether this user manages the add-on (the 2.0 name of ``is_admin``)."""
        return bool(self.is_admin)


@dataclass(frozen=True)
class RecordKind:
    """A kind of host record mail can be linked to, with the words shown for it."""

    #: the name in references (``candidate`` in ``candidate:42``)
    name: str
    #: one record, as shown in sentences ("Email this candidate")
    label: str = ""
    #: several ("3 candidates")
    plural: str = ""
    #: the host's endpoint of a record's page; the add-on builds ``HostRecord.url`` with it
    endpoint: str | None = None
    #: the endpoint's argument that takes the record id
    id_arg: str = "id"
    #: records of this kind can receive bulk email
    bulk: bool = True

    def __post_init__(self) -> None:
        if not KIND_PATTERN.match(self.name):
            raise ValueError(f"record kind {self.name!r}: use 1-40 of a-z, 0-9, _")
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " "))
        if not self.plural:
            object.__setattr__(self, "plural", self.label + "s")


#: The kinds a 1.0 host has.
DEFAULT_KINDS = (RecordKind("candidate"), RecordKind("contact", "contact"))


@dataclass(frozen=True)
class RecordRef:
    """Points at a record (candidate, contact, or a kind the host declares)."""

    kind: str
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, text: str, kinds: Iterable[str] | None = None) -> RecordRef:
        """The reference written as ``kind:id`` (ValueError when it is not one).

        ``kinds``: the kind names allowed (default: candidate and contact, the
        kinds of contract 1.0; the add-on passes the host's declared kinds).
        """
        kind, _, rid = (text or "").partition(":")
        allowed = {k.name for k in DEFAULT_KINDS} if kinds is None else set(kinds)
        if kind not in allowed or not rid or len(rid) > MAX_ID_LENGTH \
                or any(c in rid for c in "\r\n\x00"):
            raise ValueError("not a record reference")
        return cls(kind, rid)

    @classmethod
    def parse_any(cls, text: str) -> RecordRef:
        """A stored ``kind:id`` of any well-formed kind (the add-on wrote it after checking
        the kind; the host's ``get_records`` drops kinds it no longer declares)."""
        kind = (text or "").partition(":")[0]
        if not KIND_PATTERN.match(kind):
            raise ValueError("not a record reference")
        return cls.parse(text, [kind])


@dataclass(frozen=True)
class HostRecord:
    """A record with what the add-on shows and merges.

    ``name`` is the display name; ``first_name``/``last_name`` are optional parts
    (merge fields fall back to splitting ``name``).  ``emails`` holds every address
    of the record, the primary first; ``email`` is the primary (a 1.0 host sets
    ``email`` only).  ``url`` may be empty when the kind declares an endpoint.
    """

    ref: RecordRef
    name: str
    email: str = ""
    url: str = ""
    first_name: str = ""
    last_name: str = ""
    emails: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        emails = tuple(e for e in (self.emails or ()) if e)
        if self.email and self.email not in emails:
            emails = (self.email, *emails)
        object.__setattr__(self, "emails", emails)
        if not self.email and emails:
            object.__setattr__(self, "email", emails[0])


@runtime_checkable
class HostAdapter(Protocol):
    """What a host ATS must provide.  Every method is called inside an app context,
    not always inside a request (background jobs call ``get_records`` and
    ``add_note``).

    Methods that take a user take a :class:`HostUser`; methods that look up many
    things at once exist so the add-on never issues one host query per address.
    Optional methods (2.0) are listed in :class:`HostAdapterV2`.
    """

    #: Template the add-on's pages extend.  It must define the blocks
    #: ``title`` and ``content``, and may define ``head`` (for scripts/styles).
    base_template: str

    def get_user(self, user_id: str) -> HostUser | None:
        """One user by id, or None."""

    def list_users(self) -> list[HostUser]:
        """All active users (admin pages: mailbox health, sharing exclusions)."""

    def records_by_email(self, emails: Iterable[str]) -> dict[str, list[HostRecord]]:
        """Records per address (lower-cased keys), in one query; a record with several
        addresses appears under each of them that was asked for."""

    def get_records(self, refs: Iterable[RecordRef]) -> dict[RecordRef, HostRecord]:
        """Records by reference; unknown ones are left out."""

    def search_records(self, query: str, limit: int = 20) -> list[HostRecord]:
        """Records whose name or address matches ``query`` (2.0: also ``viewer=``, the
        user searching, so the host can leave out what they may not see)."""

    def add_note(self, ref: RecordRef, author_id: str | None, text: str, key: str) -> None:
        """Write a note on a record.  ``key`` is unique per note: a host must
        ignore a second call with the same key (the add-on may retry).  Every
        viewer of the record reads the note, so the add-on writes in it only what
        the mail's sharing shows all of them (see the README's Privacy section)."""


class HostAdapterV2(HostAdapter, Protocol):
    """The optional parts of contract 2.0; the add-on's default for each is in
    :class:`plugin.hosting.Host`."""

    #: "2.0"
    host_api: str
    #: the kinds of record (default: candidate and contact)
    record_kinds: tuple[RecordKind, ...]

    def current_user(self) -> HostUser | None:
        """The signed-in user (default: flask-login's ``current_user.get_id()`` through
        ``get_user``)."""

    def users_by_email(self, emails: Iterable[str]) -> dict[str, HostUser]:
        """Users whose address is among ``emails`` (default: from ``list_users``)."""

    def may_view_records(self, user: HostUser, refs: Iterable[RecordRef]) -> set[RecordRef]:
        """The records among ``refs`` that ``user`` may open (one query)."""

    def may_view_record(self, user: HostUser, ref: RecordRef) -> bool:
        """Whether ``user`` may open ``ref`` (1.0; default: from ``may_view_records``)."""

    def delete_note(self, ref: RecordRef, key: str) -> None:
        """Remove the note written on ``ref`` with ``key`` (nothing when there is none);
        afterwards ``add_note`` with that key writes a new note.  Optional: without it
        the add-on cannot make earlier notes brief nor remove a mailbox's notes."""
