"""The team host's side of host contract 2.0 (a test keeps it at 60 lines or fewer)."""
from __future__ import annotations

from sqlalchemy import func, or_, select

from plugin.host import HostRecord, HostUser, RecordKind, RecordRef
from tests.hosts.team_host.models import (MODELS, Address, Note, User, addresses, db,
                                          like_pattern, record_key, visible)


class TeamAdapter:
    host_api = "2.0"
    base_template = "team/layout.html"
    record_kinds = (RecordKind("applicant", "applicant", "applicants", "team.applicant", "rid"),
                    RecordKind("contact", "client contact", "client contacts", "team.contact",
                               "rid", bulk=False),
                    RecordKind("agency", "agency", "agencies", "team.agency", "rid"))

    def get_user(self, user_id: str) -> HostUser | None:
        u = db.session.get(User, user_id)
        return _user(u) if u is not None and u.active else None

    def list_users(self) -> list[HostUser]:
        return [_user(u) for u in db.session.scalars(select(User).where(User.active))]

    def _find(self, refs=(), viewer=None, like=None, limit=None) -> list[HostRecord]:
        refs, out = list(refs), []
        for kind, model in MODELS.items():
            if like is None:
                keys = [record_key(kind, r.id) for r in refs if r.kind == kind]
                q = select(model).where(model.id.in_([k for k in keys if k is not None]))
            else:
                ids = db.session.scalars(select(Address.record_id).where(
                    Address.kind == kind, Address.email.ilike(like, escape="\\")))
                q = select(model).where(or_(model.display_name.ilike(like, escape="\\"),
                                            model.id.in_([record_key(kind, i) for i in ids])))
            if viewer is not None:
                q = q.where(visible(model, db.session.get(User, viewer.id)))
            rows = db.session.scalars(q.limit(limit)).all()
            mails = addresses(kind, [str(r.id) for r in rows])
            out += [HostRecord(RecordRef(kind, str(r.id)), r.display_name, first_name=r.given_name,
                               emails=tuple(mails.get(str(r.id), ()))) for r in rows]
        return out

    def get_records(self, refs):
        return {r.ref: r for r in self._find(refs)}

    def may_view_records(self, user, refs):
        return {r.ref for r in self._find(refs, viewer=user)}

    def search_records(self, query, limit=20, viewer=None):
        return self._find(viewer=viewer, like=like_pattern(query), limit=limit)[:limit]

    def records_by_email(self, emails):
        rows = db.session.execute(select(Address.kind, Address.record_id, func.lower(
            Address.email)).where(func.lower(Address.email).in_(list(emails)))).all()
        found, out = self.get_records(RecordRef(k, r) for k, r, _e in rows), {}
        for kind, rid, email in rows:
            if RecordRef(kind, rid) in found:
                out.setdefault(email, []).append(found[RecordRef(kind, rid)])
        return out

    def add_note(self, ref, author_id, text, key):
        if db.session.scalar(select(Note.id).where(Note.key == key)) is None:
            db.session.add(Note(kind=ref.kind, record_id=ref.id, author_id=author_id, body=text,
                                key=key))
            db.session.commit()  # a racing duplicate key fails here; the add-on retries


def _user(u: User) -> HostUser:
    return HostUser(u.id, u.name, u.email, u.role.runs_addons, u.role.reads_admin_mail)
