"""The host contract: everything Integrated Email needs from the ATS it runs in.

The add-on never touches host tables.  A host hands ``init_app`` an object that
satisfies :class:`HostAdapter`; the reference host in ``examples/host_ats`` is
one, and the tests carry a second, different one to prove this is the only
coupling.  Ids cross the boundary as strings so hosts may use ints, UUIDs or
anything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

#: The version of this contract.  ``manifest.json`` names it as ``host_api``.
HOST_API_VERSION = "1.0"

RecordKind = Literal["candidate", "contact"]


@dataclass(frozen=True)
class HostUser:
    """An ATS user as the add-on sees one."""

    id: str
    name: str
    email: str
    is_admin: bool = False


@dataclass(frozen=True)
class RecordRef:
    """Points at a candidate or client contact in the host."""

    kind: RecordKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> RecordRef:
        """The reference written as ``kind:id`` (ValueError when it is not one)."""
        kind, _, rid = text.partition(":")
        if kind not in ("candidate", "contact") or not rid:
            raise ValueError("not a record reference")
        return cls(kind, rid)  # type: ignore[arg-type]


@dataclass(frozen=True)
class HostRecord:
    """A candidate or contact with what the add-on shows and merges."""

    ref: RecordRef
    name: str
    email: str
    url: str
    first_name: str = ""
    last_name: str = ""


@runtime_checkable
class HostAdapter(Protocol):
    """What a host ATS provides.  Every method is called inside an app context.

    Methods that take a user take a :class:`HostUser`; methods that look up many
    things at once exist so the add-on never issues one host query per address.
    """

    #: Template the add-on's pages extend.  It must define the blocks
    #: ``title`` and ``content``, and may define ``head`` (for scripts/styles).
    base_template: str

    def current_user(self) -> HostUser | None:
        """The signed-in user (through flask-login), or None when anonymous."""

    def get_user(self, user_id: str) -> HostUser | None:
        """One user by id, or None."""

    def list_users(self) -> list[HostUser]:
        """All active users (admin pages: mailbox health, sharing exclusions)."""

    def users_by_email(self, emails: Iterable[str]) -> dict[str, HostUser]:
        """Users whose address is among ``emails`` (lower-cased keys)."""

    def records_by_email(self, emails: Iterable[str]) -> dict[str, list[HostRecord]]:
        """Candidates and contacts per address (lower-cased keys), in one query."""

    def get_records(self, refs: Iterable[RecordRef]) -> dict[RecordRef, HostRecord]:
        """Records by reference; unknown ones are left out."""

    def search_records(self, query: str, limit: int = 20) -> list[HostRecord]:
        """Candidates and contacts whose name or address matches ``query``."""

    def add_note(self, ref: RecordRef, author_id: str | None, text: str, key: str) -> None:
        """Write a note on a record.  ``key`` is unique per note: a host must
        ignore a second call with the same key (the add-on may retry)."""

    def may_view_record(self, user: HostUser, ref: RecordRef) -> bool:
        """Whether ``user`` may see ``ref`` (governs mail the ATS itself sent)."""
