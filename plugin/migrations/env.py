"""Alembic environment: the engine comes from the add-on, not from a URL in a file."""

from alembic import context

from plugin.migrations import VERSION_TABLE
from plugin.models import Base
from plugin.models.search import include_in_autogenerate

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=engine.dialect.name == "sqlite",  # SQLite needs batch ALTERs
        compare_type=True,
        include_name=include_in_autogenerate,  # hand-written search objects (0002)
    )
    context.run_migrations()
