"""The reference host's side of the add-on contract (:class:`plugin.host.HostAdapter`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from flask import current_app, has_request_context, url_for
from flask_login import current_user
from sqlalchemy import Select, delete, func, literal, or_, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from examples.host_ats.access import may_view_candidate, visible_candidates
from examples.host_ats.models import Candidate, Contact, Note, User
from plugin.host import HostRecord, HostUser, RecordKind, RecordRef

#: Addresses per IN (...) list; keeps every database's parameter limit far away.
_CHUNK = 500

_MODELS: dict[str, type[Candidate | Contact]] = {"candidate": Candidate, "contact": Contact}
_ENDPOINTS = {"candidate": "host.candidate_detail", "contact": "host.contact_detail"}
_PATHS = {"candidate": "/candidates/{}", "contact": "/contacts/{}"}


class ReferenceHostAdapter:
    """Answers the add-on's questions from the host's own tables.

    ``session_factory`` opens a new, independent :class:`~sqlalchemy.orm.Session`
    each time it is called (a ``sessionmaker``).  Every method opens and closes its
    own session, so the add-on's calls never share a transaction with the view
    that is running, and work the same in background jobs.
    """

    base_template = "host/layout.html"
    #: host contract 2.0: the kinds mail links to, with the host's words for them
    host_api = "2.0"
    record_kinds = (
        RecordKind("candidate", "candidate", "candidates", "host.candidate_detail",
                   "candidate_id"),
        RecordKind("contact", "client contact", "client contacts", "host.contact_detail",
                   "contact_id", bulk=False),
    )

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._sessions = session_factory

    # -- users ---------------------------------------------------------------

    def current_user(self) -> HostUser | None:
        if not has_request_context() or not current_user.is_authenticated:
            return None
        return _host_user(current_user)

    def get_user(self, user_id: str) -> HostUser | None:
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        with self._sessions() as session:
            user = session.get(User, pk)
            return _host_user(user) if user is not None and user.active else None

    def list_users(self) -> list[HostUser]:
        with self._sessions() as session:
            users = session.scalars(select(User).where(User.active.is_(True)).order_by(User.name))
            return [_host_user(u) for u in users]

    def users_by_email(self, emails: Iterable[str]) -> dict[str, HostUser]:
        found: dict[str, HostUser] = {}
        with self._sessions() as session:
            for chunk in _chunks(_normalised(emails)):
                query = select(User).where(User.active.is_(True), func.lower(User.email).in_(chunk))
                for user in session.scalars(query):
                    found[user.email.lower()] = _host_user(user)
        return found

    # -- records -------------------------------------------------------------

    def records_by_email(self, emails: Iterable[str]) -> dict[str, list[HostRecord]]:
        found: dict[str, list[HostRecord]] = defaultdict(list)
        with self._sessions() as session:
            for chunk in _chunks(_normalised(emails)):
                # Candidates and contacts in one round trip.
                query = union_all(
                    _record_rows("candidate").where(func.lower(Candidate.email).in_(chunk)),
                    _record_rows("contact").where(func.lower(Contact.email).in_(chunk)),
                )
                for row in session.execute(query):
                    found[row.email.lower()].append(_host_record(row))
        return dict(found)

    def get_records(self, refs: Iterable[RecordRef]) -> dict[RecordRef, HostRecord]:
        ids: dict[str, set[int]] = defaultdict(set)
        for ref in refs:
            if ref.kind in _MODELS and ref.id.isdigit():
                ids[ref.kind].add(int(ref.id))
        selects = [
            _record_rows(kind).where(_MODELS[kind].id.in_(chunk))
            for kind, wanted in ids.items()
            for chunk in _chunks(sorted(wanted))
        ]
        if not selects:
            return {}
        with self._sessions() as session:
            rows = session.execute(union_all(*selects) if len(selects) > 1 else selects[0])
            records = [_host_record(row) for row in rows]
        return {record.ref: record for record in records}

    def search_records(self, query: str, limit: int = 20) -> list[HostRecord]:
        words = query.strip().split()
        if not words or limit <= 0:
            return []
        selects = []
        for kind, model in _MODELS.items():
            full_name = model.first_name + " " + model.last_name
            conditions = [
                or_(
                    *(
                        column.ilike(f"%{_escape_like(w)}%", escape="\\")
                        for column in (full_name, model.email)
                    )
                )
                for w in words
            ]
            selects.append(_record_rows(kind).where(*conditions))
        statement = union_all(*selects).order_by("last_name", "first_name", "kind", "id")
        with self._sessions() as session:
            rows = session.execute(statement.limit(limit))
            return [_host_record(row) for row in rows]

    def add_note(self, ref: RecordRef, author_id: str | None, text: str, key: str) -> None:
        with self._sessions() as session:
            if session.scalar(select(Note.id).where(Note.key == key)) is not None:
                return
            session.add(
                Note(
                    record_kind=ref.kind,
                    record_id=int(ref.id),
                    author_id=int(author_id) if author_id else None,
                    text=text,
                    key=key,
                )
            )
            try:
                session.commit()
            except IntegrityError:
                # Another worker wrote the same key between our check and insert.
                session.rollback()

    def delete_note(self, ref: RecordRef, key: str) -> None:
        with self._sessions() as session:
            session.execute(delete(Note).where(Note.key == key, Note.record_kind == ref.kind))
            session.commit()

    def may_view_records(self, user: HostUser, refs: Iterable[RecordRef]) -> set[RecordRef]:
        """The records among ``refs`` the user may open, in one query per kind."""
        wanted = [r for r in refs if r.kind in _MODELS and r.id.isdigit()]
        ids = {kind: sorted({int(r.id) for r in wanted if r.kind == kind}) for kind in _MODELS}
        allowed: set[RecordRef] = set()
        with self._sessions() as session:
            for chunk in _chunks(ids["candidate"]):
                query = select(Candidate.id).where(
                    Candidate.id.in_(chunk), visible_candidates(int(user.id), user.is_admin))
                allowed |= {RecordRef("candidate", str(i)) for i in session.scalars(query)}
            for chunk in _chunks(ids["contact"]):
                query = select(Contact.id).where(Contact.id.in_(chunk))
                allowed |= {RecordRef("contact", str(i)) for i in session.scalars(query)}
        return allowed

    def may_view_record(self, user: HostUser, ref: RecordRef) -> bool:
        if ref.kind not in _MODELS or not ref.id.isdigit():
            return False
        with self._sessions() as session:
            record = session.get(_MODELS[ref.kind], int(ref.id))
            if record is None:
                return False
            if isinstance(record, Candidate):
                return may_view_candidate(record, int(user.id), user.is_admin)
            return True


def _host_user(user: User) -> HostUser:
    return HostUser(id=str(user.id), name=user.name, email=user.email, is_admin=user.is_admin)


def _record_rows(kind: str) -> Select:
    model = _MODELS[kind]
    return select(
        literal(kind).label("kind"),
        model.id.label("id"),
        model.first_name.label("first_name"),
        model.last_name.label("last_name"),
        model.email.label("email"),
    )


def _host_record(row) -> HostRecord:
    ref = RecordRef(row.kind, str(row.id))
    return HostRecord(
        ref=ref,
        name=f"{row.first_name} {row.last_name}".strip(),
        email=row.email or "",
        url=record_url(ref),
        first_name=row.first_name,
        last_name=row.last_name,
    )


def record_url(ref: RecordRef) -> str:
    """The record's page; a plain path when there is no request (background jobs)."""
    if has_request_context():
        return url_for(_ENDPOINTS[ref.kind], **{f"{ref.kind}_id": int(ref.id)})
    root = (current_app.config.get("APPLICATION_ROOT") or "/").rstrip("/")
    return root + _PATHS[ref.kind].format(ref.id)


def _normalised(emails: Iterable[str]) -> list[str]:
    return sorted({e.strip().lower() for e in emails if e and e.strip()})


def _chunks(items: list, size: int = _CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
