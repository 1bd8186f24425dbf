"""The add-on's Alembic chain runs up and down on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from plugin.migrations import VERSION_TABLE, current, downgrade, upgrade
from plugin.models import Base


def test_migrations_up_down_up(db_url):
    engine = create_engine(db_url)
    try:
        upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        assert VERSION_TABLE in tables
        assert "alembic_version" not in tables  # never the host's own version table
        assert current(engine) is not None

        downgrade(engine, "base")
        left = {t for t in inspect(engine).get_table_names() if t.startswith("ie_")}
        assert left <= {VERSION_TABLE}
        assert current(engine) is None

        upgrade(engine)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_and_migrations_agree(db_url):
    """Autogenerate finds nothing to add: the chain builds exactly the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            from plugin.models.search import include_in_autogenerate
            ctx = MigrationContext.configure(conn, opts={
                "version_table": VERSION_TABLE, "include_name": include_in_autogenerate})
            diff = [d for d in compare_metadata(ctx, Base.metadata)
                    if not (isinstance(d, tuple) and d[0] == "remove_table"
                            and d[1].name == VERSION_TABLE)]
        assert diff == []
    finally:
        engine.dispose()


def test_cli_migrate(tmp_path):
    from flask import Flask

    from plugin import IntegratedEmail
    from tests.conftest import TEST_KEY
    from tests.hosts.mini_host import MiniHost

    app = Flask("t", instance_path=str(tmp_path))
    app.config.update(IE_DATABASE_URL=f"sqlite:///{tmp_path}/cli.sqlite",
                      IE_SECRET_KEYS=TEST_KEY, IE_SCHEDULER="off")
    IntegratedEmail(app, host=MiniHost())
    result = app.test_cli_runner().invoke(args=["integrated-email", "migrate"])
    assert result.exit_code == 0, result.output
    assert "ie_mailbox" in inspect(create_engine(f"sqlite:///{tmp_path}/cli.sqlite")).get_table_names()


def test_sqlite_upgrade_of_a_database_with_mail_keeps_every_row(tmp_path):
    """0008 rebuilds ie_mailbox (a CHECK constraint needs a batch copy on SQLite). With
    foreign keys on, dropping the old table would cascade into the mail that points at
    it, or fail with "database table is locked": the upgrade of a used database must
    keep every message, link and location."""
    import sqlite3

    from plugin.db import make_engine
    from plugin.migrations import current, upgrade

    path = tmp_path / "old.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine, "0005")
    with engine.begin() as conn:
        def insert(table: str, **values) -> None:
            # every NOT NULL column of this revision gets a plain value of its type
            for _cid, name, typ, notnull, default, pk in conn.exec_driver_sql(
                    f"PRAGMA table_info({table})").fetchall():
                if notnull and not pk and default is None and name not in values:
                    t = typ.upper()
                    values[name] = (0 if any(k in t for k in ("INT", "BOOL")) else
                                    "2026-01-01 00:00:00" if "DATE" in t else "x")
            cols = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            conn.exec_driver_sql(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                                 tuple(values.values()))
        insert("ie_mailbox", id=1, user_id="u", account_name="W", email="w@x.test",
               protocol="imap", in_host="imap.x.test", out_host="smtp.x.test",
               out_port=465, out_security="ssl")
        for i in range(3):
            insert("ie_message", id=i + 1, mailbox_id=1, message_key=f"k{i}")
            insert("ie_record_link", message_id=i + 1, record_kind="candidate",
                   record_id=str(i))
    upgrade(engine)
    assert current(engine) is not None
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM ie_mailbox").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM ie_message").fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM ie_record_link").fetchone()[0] == 3
    with engine.connect() as conn:  # foreign keys are on again for the add-on
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
