"""The add-on's PostgreSQL pool: a connection the server closed is never handed out
(checked without a round trip: see plugin.db._check_alive)."""

from __future__ import annotations

import psycopg
from sqlalchemy import text

from plugin.db import make_engine


def test_a_connection_the_server_closed_is_replaced_at_checkout(pg_url):
    from tests.lab.pgschema import fresh_schema_url

    with fresh_schema_url(pg_url) as url:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            # The pooled connection's backend dies (a restart, an idle timeout, an admin).
            admin_url = url.replace("postgresql+psycopg://", "postgresql://").split("?")[0]
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                admin.execute("SELECT pg_sleep(0.2)")
            with engine.connect() as conn:  # not an error: the pool drops it and reconnects
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
        finally:
            engine.dispose()
