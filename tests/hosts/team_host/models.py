"""The team host's tables (Flask-SQLAlchemy): roles instead of an admin flag, users with
string ids in teams, three kinds of record with different id types, every address in
one table, notes, and the per-team access rule its own pages use."""

from __future__ import annotations

import uuid

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, String, Uuid, or_, select

db = SQLAlchemy()

member = db.Table("team_member", db.Column("user_id", ForeignKey("team_user.id")),
                  db.Column("team_id", ForeignKey("team_team.id")))


class Role(db.Model):
    __tablename__ = "team_role"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(String(40), unique=True)
    runs_addons = db.Column(db.Boolean, default=False)  # manages plugins and their settings
    reads_admin_mail = db.Column(db.Boolean, default=False)
    sees_all_teams = db.Column(db.Boolean, default=False)


class Team(db.Model):
    __tablename__ = "team_team"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(String(80))


class User(UserMixin, db.Model):
    __tablename__ = "team_user"
    id = db.Column(String(200), primary_key=True)  # "usr_" + a long random string
    name = db.Column(String(120))
    email = db.Column(String(320))
    password = db.Column(String(120))
    active = db.Column(db.Boolean, default=True)
    role_id = db.Column(ForeignKey("team_role.id"))
    role = db.relationship(Role, lazy="joined")
    teams = db.relationship(Team, secondary=member, lazy="selectin")


class Applicant(db.Model):
    """UUID ids; a display name, its parts optional; several addresses."""
    __tablename__ = "team_applicant"
    id = db.Column(Uuid, primary_key=True, default=uuid.uuid4)
    display_name = db.Column(String(200))
    given_name = db.Column(String(100), default="")
    team_id = db.Column(ForeignKey("team_team.id"))


class Contact(db.Model):
    __tablename__ = "team_contact"
    id = db.Column(db.Integer, primary_key=True)
    display_name = db.Column(String(200))
    given_name = db.Column(String(100), default="")
    team_id = db.Column(ForeignKey("team_team.id"), nullable=True)


class Agency(db.Model):
    """The host's own kind: staffing agencies, by slug."""
    __tablename__ = "team_agency"
    id = db.Column(String(80), primary_key=True)
    display_name = db.Column(String(200))
    given_name = db.Column(String(100), default="")
    team_id = db.Column(ForeignKey("team_team.id"), nullable=True)


class Address(db.Model):
    """Every address of every record (position 0 is the primary)."""
    __tablename__ = "team_address"
    id = db.Column(db.Integer, primary_key=True)
    kind = db.Column(String(20), index=True)
    record_id = db.Column(String(80), index=True)
    email = db.Column(String(320), index=True)
    position = db.Column(db.Integer, default=0)


class Note(db.Model):
    __tablename__ = "team_note"
    id = db.Column(db.Integer, primary_key=True)
    kind = db.Column(String(20))
    record_id = db.Column(String(80))
    author_id = db.Column(String(200), nullable=True)
    body = db.Column(db.Text)
    key = db.Column(String(200), unique=True)


MODELS = {"applicant": Applicant, "contact": Contact, "agency": Agency}


def record_key(kind: str, text: str):
    """A record's primary key from its id as text (None when it cannot be one)."""
    try:
        return {"applicant": uuid.UUID, "contact": int}.get(kind, str)(text)
    except ValueError:
        return None


def visible(model, user: User | None):
    """The per-team rule, as a WHERE clause: records of no team, or of the user's teams."""
    if user is not None and user.role.sees_all_teams:
        return db.true()
    teams = [t.id for t in user.teams] if user is not None else []
    return or_(model.team_id.is_(None), model.team_id.in_(teams))


def addresses(kind: str, ids: list[str]) -> dict[str, list[str]]:
    """Addresses per record id, the primary first."""
    rows = db.session.execute(select(Address.record_id, Address.email).where(
        Address.kind == kind, Address.record_id.in_(ids)).order_by(Address.position))
    out: dict[str, list[str]] = {}
    for rid, email in rows:
        out.setdefault(rid, []).append(email)
    return out


def like_pattern(query: str) -> str:
    """``query`` as a LIKE pattern matching it anywhere (escape character: backslash)."""
    return "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
