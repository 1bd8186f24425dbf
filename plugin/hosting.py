"""The host as the add-on uses it: contract 2.0 over any 1.0 or 2.0 adapter.

:class:`Host` wraps the adapter a host hands to ``init_app``.  Every 2.0 method
exists on it, answered by the adapter when it has the method and by a default
here when it does not; attributes it does not know are the adapter's own, so
``addon.host.<anything>`` still reaches the host's object.  A 1.0 adapter gets one
DeprecationWarning naming what to add.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Iterable
from typing import Any

from flask import has_request_context

from plugin.host import (
    DEFAULT_KINDS,
    MAX_ID_LENGTH,
    SUPPORTED_HOST_APIS,
    HostAdapter,
    HostRecord,
    HostUser,
    RecordKind,
    RecordRef,
)

log = logging.getLogger("plugin.integrated_email.host")

#: 2.0 names a 1.0 adapter lacks, and what the warning tells the host to do.
_UPGRADE = {
    "host_api": 'set host_api = "2.0"',
    "record_kinds": "declare record_kinds (plugin.host.RecordKind, with their texts)",
    "may_view_records": "answer may_view_records(user, refs) in one query",
}


class Host:
    """A host adapter with every contract-2.0 method (defaults where it has none)."""

    def __init__(self, adapter: Any):
        if isinstance(adapter, Host):
            adapter = adapter.adapter
        if not isinstance(adapter, HostAdapter):
            raise TypeError("host does not implement plugin.host.HostAdapter (it needs "
                            "base_template, get_user, list_users, records_by_email, "
                            "get_records, search_records and add_note)")
        if not (callable(getattr(adapter, "may_view_records", None))
                or callable(getattr(adapter, "may_view_record", None))):
            raise TypeError("host does not implement plugin.host.HostAdapter: it must answer "
                            "may_view_records(user, refs) (or 1.0's may_view_record)")
        self.adapter = adapter
        self.api_version = str(getattr(adapter, "host_api", "1.0"))
        if self.api_version not in SUPPORTED_HOST_APIS:
            raise TypeError(f"host_api {self.api_version!r} is not one of "
                            f"{', '.join(SUPPORTED_HOST_APIS)}")
        kinds = tuple(getattr(adapter, "record_kinds", None) or DEFAULT_KINDS)
        if not all(isinstance(k, RecordKind) for k in kinds):
            raise TypeError("record_kinds must be plugin.host.RecordKind objects")
        self.kinds: dict[str, RecordKind] = {k.name: k for k in kinds}
        self._search_takes_viewer = _takes(adapter.search_records, "viewer")
        self.deprecations = [why for name, why in _UPGRADE.items()
                             if not hasattr(adapter, name)]
        if self.deprecations:
            warnings.warn(
                "%s implements host contract 1.0, deprecated (removed in 3.0): %s. "
                "See docs/HOSTING.md." % (type(adapter).__name__, "; ".join(self.deprecations)),
                DeprecationWarning, stacklevel=3)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names Host does not define: the host's own attributes.
        return getattr(self.adapter, name)

    # ---------------------------------------------------------------- kinds
    @property
    def base_template(self) -> str:
        """The host layout the add-on's pages extend."""
        return self.adapter.base_template

    def kind(self, name: str) -> RecordKind:
        """The declared kind ``name`` (an undeclared one: the word "record")."""
        return self.kinds.get(name) or RecordKind("record")

    def kinds_phrase(self, plural: bool = False, joiner: str = "or") -> str:
        """The declared kinds in the host's words: "candidate or client contact"."""
        words = [k.plural if plural else k.label for k in self.kinds.values()]
        if len(words) <= 1:
            return "".join(words) or ("records" if plural else "record")
        return f"{', '.join(words[:-1])} {joiner} {words[-1]}"

    def bulk_kinds(self) -> list[RecordKind]:
        """The declared kinds whose records may receive bulk email."""
        return [k for k in self.kinds.values() if k.bulk]

    def parse_ref(self, text: str) -> RecordRef:
        """``kind:id`` of a declared kind (ValueError otherwise)."""
        return RecordRef.parse(text, self.kinds)

    def _known(self, refs: Iterable[RecordRef]) -> list[RecordRef]:
        return [r for r in dict.fromkeys(refs)
                if r.kind in self.kinds and 0 < len(str(r.id)) <= MAX_ID_LENGTH]

    # ---------------------------------------------------------------- users
    def current_user(self) -> HostUser | None:
        """The signed-in user: the adapter's answer, or flask-login's through get_user."""
        own = getattr(self.adapter, "current_user", None)
        if callable(own):
            return own()
        if not has_request_context():
            return None
        from flask_login import current_user
        if not current_user or not current_user.is_authenticated:
            return None
        return self.adapter.get_user(str(current_user.get_id()))

    def get_user(self, user_id: str) -> HostUser | None:
        """One user by id, or None."""
        if user_id is None or len(str(user_id)) > MAX_ID_LENGTH:
            return None
        return self.adapter.get_user(str(user_id))

    def list_users(self) -> list[HostUser]:
        """All active users."""
        return list(self.adapter.list_users())

    def users_by_email(self, emails: Iterable[str]) -> dict[str, HostUser]:
        """Users per lower-cased address (default: filtered from list_users)."""
        want = {e.strip().lower() for e in emails if e and e.strip()}
        if not want:
            return {}
        own = getattr(self.adapter, "users_by_email", None)
        if callable(own):
            return {k.lower(): u for k, u in own(sorted(want)).items()}
        return {u.email.lower(): u for u in self.adapter.list_users()
                if u.email and u.email.lower() in want}

    # -------------------------------------------------------------- records
    def _complete(self, record: HostRecord) -> HostRecord:
        """The record with its URL built from its kind's endpoint when it has none."""
        if record.url:
            return record
        kind = self.kinds.get(record.ref.kind)
        if kind is None or not kind.endpoint:
            return record
        from plugin.hostkit import url_for_anywhere
        url = url_for_anywhere(kind.endpoint, **{kind.id_arg: record.ref.id})
        return HostRecord(record.ref, record.name, record.email, url, record.first_name,
                          record.last_name, record.emails)

    def records_by_email(self, emails: Iterable[str]) -> dict[str, list[HostRecord]]:
        """Records of declared kinds per lower-cased address."""
        want = sorted({e.strip().lower() for e in emails if e and e.strip()})
        if not want:
            return {}
        out: dict[str, list[HostRecord]] = {}
        for address, records in self.adapter.records_by_email(want).items():
            kept = [self._complete(r) for r in records if r.ref.kind in self.kinds]
            if kept:
                out.setdefault(address.lower(), []).extend(kept)
        return out

    def get_records(self, refs: Iterable[RecordRef]) -> dict[RecordRef, HostRecord]:
        """Records by reference (undeclared kinds and unknown records left out)."""
        known = self._known(refs)
        if not known:
            return {}
        found = self.adapter.get_records(known)
        return {ref: self._complete(rec) for ref, rec in found.items() if ref in set(known)}

    def search_records(self, query: str, limit: int = 20,
                       viewer: HostUser | None = None) -> list[HostRecord]:
        """Records matching ``query`` that ``viewer`` (when given) may open."""
        if not (query or "").strip() or limit <= 0:
            return []
        if self._search_takes_viewer:
            hits = self.adapter.search_records(query, limit, viewer=viewer)
        else:
            hits = self.adapter.search_records(query, limit * 3 if viewer else limit)
        hits = [r for r in hits if r.ref.kind in self.kinds]
        if viewer is not None:  # the host's filter, checked once more in one batch
            allowed = self.may_view_records(viewer, [r.ref for r in hits])
            hits = [r for r in hits if r.ref in allowed]
        return [self._complete(r) for r in hits[:limit]]

    def add_note(self, ref: RecordRef, author_id: str | None, text: str, key: str) -> None:
        """Write a note on a record (idempotent per ``key``)."""
        self.adapter.add_note(ref, author_id, text, key)

    @property
    def can_delete_notes(self) -> bool:
        """Whether the host offers ``delete_note`` (optional, in any contract version)."""
        return callable(getattr(self.adapter, "delete_note", None))

    def delete_note(self, ref: RecordRef, key: str) -> bool:
        """Remove the note with ``key``; False when the host cannot delete notes."""
        if not self.can_delete_notes:
            return False
        self.adapter.delete_note(ref, key)
        return True

    # ----------------------------------------------------------- permission
    def may_view_records(self, user: HostUser, refs: Iterable[RecordRef]) -> set[RecordRef]:
        """The records among ``refs`` the host lets ``user`` open: one host call."""
        known = self._known(refs)
        if not known or user is None:
            return set()
        batched = getattr(self.adapter, "may_view_records", None)
        if callable(batched):
            return set(batched(user, known)) & set(known)
        return {ref for ref in known if self.adapter.may_view_record(user, ref)}

    def may_view_record(self, user: HostUser, ref: RecordRef) -> bool:
        """Whether ``user`` may open ``ref``."""
        return ref in self.may_view_records(user, [ref])


def _takes(func: Any, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
