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
