"""Shared fixtures: the real-server lab (tests/lab/fixtures.py), databases, and apps.

Every database-touching test that asks for ``db_url`` runs twice: on SQLite
and on the PostgreSQL database the lab creates for the run.
"""

from __future__ import annotations

import shutil

import pytest
from cryptography.fernet import Fernet

pytest_plugins = ["tests.lab.fixtures"]

TEST_KEY = Fernet.generate_key().decode()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/ie.sqlite"
        return
    base = request.getfixturevalue("pg_url")
    from tests.lab.pgschema import fresh_schema_url
    with fresh_schema_url(base) as url:
        yield url


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory):
    """A SQLite file already migrated to head, copied for each test that wants a migrated
    database: running the whole chain per test costs ~1 s on SQLite (0006 rebuilds ten
    tables to widen columns), which hundreds of tests would pay again and again."""
    from plugin.db import make_engine
    from plugin.migrations import upgrade

    path = tmp_path_factory.mktemp("ie-template") / "ie.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def make_config(db_url: str, tmp_path, **extra) -> dict:
    cfg = {
        "IE_DATABASE_URL": db_url,
        "IE_SECRET_KEYS": TEST_KEY,
        "IE_SCHEDULER": "off",
        "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535,localhost:1024-65535",
        "IE_BLOB_DIR": str(tmp_path / "blobs"),
        "IE_MAIL_TIMEOUT": 3.0,
        # No provider pacing for the lab's servers unless a test sets a limit.
        "IE_SEND_PER_MINUTE_DEFAULT": 0,
        "IE_SEND_PER_DAY_DEFAULT": 0,
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }
    cfg.update(extra)
    return cfg


@pytest.fixture
def mini(db_url, tmp_path, dovecot, migrated_sqlite_template):
    """The add-on inside the minimal test host, migrated and active.

    Yields (app, host, addon).  The lab CA is trusted for mail servers.
    """
    from plugin import IntegratedEmail
    from tests.hosts.mini_host import create_mini_app

    if db_url.startswith("sqlite:///"):
        shutil.copyfile(migrated_sqlite_template, db_url.removeprefix("sqlite:///"))
    app, host = create_mini_app(make_config(db_url, tmp_path, IE_CA_FILE=dovecot.ca_file))
    addon = IntegratedEmail(app, host=host)
    addon.migrate()  # at head already on SQLite: a version check
    addon.set_active(True)
    yield app, host, addon
    addon.session.remove()
    addon.engine.dispose()
