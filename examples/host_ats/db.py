"""The host's own database: one engine, a session factory, and a per-request session."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from examples.host_ats.models import Base


@dataclass
class HostDatabase:
    """Everything the host needs to talk to its database."""

    engine: Engine
    #: Opens a fresh, independent session (used by the adapter and the CLI).
    sessions: sessionmaker[Session]
    #: The session of the current request, removed on app-context teardown.
    session: scoped_session[Session]

    @classmethod
    def connect(cls, url: str) -> HostDatabase:
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_foreign_keys)
        sessions = sessionmaker(engine, expire_on_commit=False)
        return cls(engine=engine, sessions=sessions, session=scoped_session(sessions))

    def create_all(self) -> None:
        Base.metadata.create_all(self.engine)
        _add_team_columns(self.engine)

    def init_app(self, app: Flask) -> None:
        app.extensions["host_ats.db"] = self
        app.teardown_appcontext(lambda _exc: self.session.remove())


def _add_team_columns(engine: Engine) -> None:
    # A demo database made before teams existed gets the two nullable columns.
    found = inspect(engine)
    with engine.begin() as conn:
        for table in ("users", "candidates"):
            if "team" not in {c["name"] for c in found.get_columns(table)}:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN team VARCHAR(40)"))


def _sqlite_foreign_keys(dbapi_connection, _record) -> None:
    # SQLite ignores foreign keys unless asked, per connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def host_db() -> HostDatabase:
    """The database of the running host app."""
    return current_app.extensions["host_ats.db"]


def db() -> Session:
    """The session of the current request."""
    return host_db().session()
