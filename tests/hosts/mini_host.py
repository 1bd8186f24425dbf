"""A second, deliberately different host: UUID user ids, integer record ids kept
as ints, users in a dict, no database of its own.  If the add-on works inside
this and inside examples/host_ats, the HostAdapter is the only coupling."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from collections.abc import Iterable

from flask import Flask, render_template_string
from flask_login import LoginManager, UserMixin, current_user, login_user

from plugin.host import HostRecord, HostUser, RecordRef


@dataclass
class Person(UserMixin):
    name: str
    email: str
    admin: bool = False
    uid: uuid.UUID = field(default_factory=uuid.uuid4)
    team: str | None = None

    def get_id(self) -> str:
        return str(self.uid)


@dataclass
class Rec:
    kind: str
    num: int
    first: str
    last: str
    email: str | None
    viewers: set[str] | None = None  # None: everyone
    team: str | None = None  # set: only that team's members (and admins) open it


class MiniHost:
    base_template = "mini_base.html"

    def __init__(self) -> None:
        self.people: dict[str, Person] = {}
        self.records: dict[tuple[str, int], Rec] = {}
        self.notes: dict[str, tuple[RecordRef, str | None, str]] = {}

    # -- test helpers
    def add_person(self, name: str, email: str, admin: bool = False,
                   team: str | None = None) -> Person:
        p = Person(name, email, admin, team=team)
        self.people[p.get_id()] = p
        return p

    def add_record(self, kind: str, first: str, last: str, email: str | None) -> Rec:
        num = len(self.records) + 1
        rec = Rec(kind, num, first, last, email)
        self.records[(kind, num)] = rec
        return rec

    def notes_on(self, ref: RecordRef) -> list[str]:
        return [text for r, _a, text in self.notes.values() if r == ref]

    # -- HostAdapter
    @staticmethod
    def _user(p: Person) -> HostUser:
        return HostUser(p.get_id(), p.name, p.email, p.admin)

    def _record(self, rec: Rec) -> HostRecord:
        ref = RecordRef(rec.kind, str(rec.num))  # type: ignore[arg-type]
        return HostRecord(ref, f"{rec.first} {rec.last}", rec.email or "",
                          f"/{rec.kind}/{rec.num}", rec.first, rec.last)

    def current_user(self) -> HostUser | None:
        if not current_user or not current_user.is_authenticated:
            return None
        return self._user(current_user)

    def get_user(self, user_id: str) -> HostUser | None:
        p = self.people.get(str(user_id))
        return self._user(p) if p else None

    def list_users(self) -> list[HostUser]:
        return [self._user(p) for p in self.people.values()]

    def users_by_email(self, emails: Iterable[str]) -> dict[str, HostUser]:
        want = {e.lower() for e in emails}
        return {p.email.lower(): self._user(p) for p in self.people.values()
                if p.email.lower() in want}

    def records_by_email(self, emails: Iterable[str]) -> dict[str, list[HostRecord]]:
        want = {e.lower() for e in emails}
        out: dict[str, list[HostRecord]] = {}
        for rec in self.records.values():
            if rec.email and rec.email.lower() in want:
                out.setdefault(rec.email.lower(), []).append(self._record(rec))
        return out

    def get_records(self, refs: Iterable[RecordRef]) -> dict[RecordRef, HostRecord]:
        out = {}
        for ref in refs:
            try:
                rec = self.records.get((ref.kind, int(ref.id)))
            except ValueError:
                rec = None
            if rec:
                out[ref] = self._record(rec)
        return out

    def search_records(self, query: str, limit: int = 20) -> list[HostRecord]:
        q = query.lower()
        hits = [r for r in self.records.values()
                if q in f"{r.first} {r.last} {r.email or ''}".lower()]
        return [self._record(r) for r in hits[:limit]]

    def add_note(self, ref: RecordRef, author_id: str | None, text: str, key: str) -> None:
        self.notes.setdefault(key, (ref, author_id, text))

    def delete_note(self, ref: RecordRef, key: str) -> None:
        if key in self.notes and self.notes[key][0] == ref:
            del self.notes[key]

    def may_view_record(self, user: HostUser, ref: RecordRef) -> bool:
        try:
            rec = self.records.get((ref.kind, int(ref.id)))
        except ValueError:
            return False
        if rec is None or user.is_admin:
            return rec is not None
        person = self.people.get(str(user.id))
        if rec.team is not None and (person is None or person.team != rec.team):
            return False  # the per-team ACL: another team's record answers 404
        return rec.viewers is None or user.id in rec.viewers


BASE = """<!doctype html><html><head><title>{% block title %}{% endblock %}</title>
{% block head %}{% endblock %}</head><body>{% block content %}{% endblock %}</body></html>"""


def create_mini_app(config: dict) -> tuple[Flask, MiniHost]:
    from jinja2 import DictLoader, ChoiceLoader

    app = Flask("mini_host", instance_path=config.pop("INSTANCE_PATH"))
    app.config.update(SECRET_KEY="mini-secret", TESTING=True, **config)
    app.jinja_loader = ChoiceLoader([DictLoader({"mini_base.html": BASE}), app.jinja_loader])
    host = MiniHost()
    lm = LoginManager(app)
    lm.user_loader(lambda uid: host.people.get(uid))

    @app.post("/_login/<uid>")
    def _login(uid: str):
        login_user(host.people[uid])
        return "ok"

    @app.get("/_menu")
    def _menu():
        return render_template_string(
            "{% for e in integrated_email.menu_entries() %}{{ e.label }}|{{ e.url }}{% endfor %}")

    return app, host
