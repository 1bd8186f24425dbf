"""A host that runs Flask-Migrate (Alembic autogenerate) on the database that also holds
the add-on's tables: with plugin.hostkit's filters its revision holds only the host's
own change; without them it would drop every ie_* table."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from plugin import hostkit
from tests.hosts.team_host import create_team_app
from tests.hosts.team_host.models import db
from tests.hosts.team_host.testing import team_config


@pytest.fixture(autouse=True)
def logging_as_it_was():
    """Flask-Migrate's generated env.py calls logging.config.fileConfig, which disables
    every logger that exists (the add-on's, urllib3's...) and replaces the root's
    handlers: later tests asserting on captured logs would see nothing."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    loggers = {name: (lg.disabled, lg.level) for name, lg in
               logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, lg in logging.root.manager.loggerDict.items():
        if isinstance(lg, logging.Logger):
            lg.disabled, lg.level = loggers.get(name, (False, logging.NOTSET))


def _autogenerate(app, directory: Path, **options) -> str:
    """``flask db init`` + ``flask db migrate``; the new revision's text."""
    from flask_migrate import Migrate, init, migrate

    Migrate(app, db, directory=str(directory), **options)
    with app.app_context():
        init(str(directory))
        migrate(str(directory), message="host change")
    (revision,) = (directory / "versions").glob("*.py")
    return revision.read_text(encoding="utf-8")


def test_flask_migrate_autogenerate_proposes_no_change_to_addon_tables(db_url, tmp_path,
                                                                        dovecot):
    app = create_team_app(team_config(db_url, tmp_path, dovecot.ca_file))
    addon = app.extensions["integrated_email"]
    addon.migrate()
    with app.app_context():
        names = set(inspect(db.engine).get_table_names())
        assert {"ie_message", "ie_mailbox", "ie_alembic_version"} <= names
        # the host's one pending change: its models have a table its database lacks
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE team_note"))

    filtered = _autogenerate(app, tmp_path / "host_migrations", **hostkit.alembic_options())
    assert "op.create_table('team_note'" in filtered
    assert "ie_" not in filtered  # no table, index, column or version table of the add-on

    bare = _autogenerate(app, tmp_path / "bare_migrations")
    assert "op.drop_table('ie_message')" in bare and "op.drop_table('ie_mailbox')" in bare
    with app.app_context():  # nothing was applied: the add-on's tables are all there
        assert {"ie_message", "ie_mailbox"} <= set(inspect(db.engine).get_table_names())
        db.engine.dispose()
    addon.engine.dispose()
