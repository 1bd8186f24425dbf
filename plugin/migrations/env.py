"""Alembic environment: the engine comes from the add-on, not from a URL in a file."""

from alembic import context

from plugin.migrations import VERSION_TABLE
from plugin.models import Base
from plugin.models.search import include_in_autogenerate

config = context.config
engine = config.attributes["engine"]
sqlite = engine.dialect.name == "sqlite"

with engine.connect() as connection:
    if sqlite:
        # A batch ALTER on SQLite copies a table and drops the old one. With foreign keys
        # on, dropping ie_mailbox would cascade into every row that points at it (or, with
        # rows there, fail with "database table is locked"): the SQLite docs' procedure
        # for changing a table turns them off around it. Only possible outside a
        # transaction; turned back on below and checked before the commit.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                version_table=VERSION_TABLE,
                render_as_batch=sqlite,  # SQLite needs batch ALTERs
                compare_type=True,
                include_name=include_in_autogenerate,  # hand-written search objects (0002)
            )
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left {len(broken)} rows pointing nowhere")
    finally:
        if sqlite:
            connection.rollback()  # nothing is left open: the migrations committed above
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
