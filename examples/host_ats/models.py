"""The host's tables: users, candidates, client contacts, notes and a few settings."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, MetaData, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

ROLES = ("admin", "recruiter")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Sign-in name and the address the add-on pre-fills; stored lower-case.
    email: Mapped[str] = mapped_column(String(255), unique=True)
    #: Display name.
    name: Mapped[str] = mapped_column(String(120))
    #: "admin" or "recruiter".
    role: Mapped[str] = mapped_column(String(20), default="recruiter")
    #: werkzeug password hash.
    password_hash: Mapped[str] = mapped_column(String(255))
    #: Inactive users cannot sign in and are not listed to the add-on.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: The recruiting team; a candidate given a team is for its members (and admins).
    team: Mapped[str | None] = mapped_column(String(40))

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_active(self) -> bool:  # flask-login
        return self.active

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class Candidate(Base):
    __tablename__ = "candidates"
    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    #: Not every candidate has given an address.
    email: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(40))
    #: The role they hold or seek, e.g. "Backend Engineer".
    title: Mapped[str] = mapped_column(String(120), default="")
    #: The recruiter responsible for this candidate.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: Confidential candidates are visible to their owner and administrators only.
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Set: only that team's members (and administrators) may open the candidate.
    team: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    owner: Mapped[User | None] = relationship()

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Contact(Base):
    """A person at a client company."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(40))
    #: The client company they work for.
    company: Mapped[str] = mapped_column(String(120), default="")
    #: Their job at the client, e.g. "Head of Talent".
    position: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


# Addresses are matched case-insensitively (records_by_email), so index lower(email).
Index("ix_candidates_email_lower", func.lower(Candidate.email))
Index("ix_contacts_email_lower", func.lower(Contact.email))


class Note(Base):
    """A line in a record's history, written by a user or by an add-on."""

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_record", "record_kind", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "candidate" or "contact".
    record_kind: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int] = mapped_column()
    #: None when an add-on wrote the note on nobody's behalf.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Caller-chosen idempotency key; a second note with the same key is ignored.
    key: Mapped[str | None] = mapped_column(String(255), unique=True)

    author: Mapped[User | None] = relationship()


class HostSetting(Base):
    """A host-wide setting edited on the host's own Settings page."""

    __tablename__ = "host_settings"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
