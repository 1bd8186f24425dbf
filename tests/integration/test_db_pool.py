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


def test_reads_keep_prepared_statements_and_uncommitted_writes_still_roll_back(pg_url):
    """psycopg forgets its prepared statements at every ROLLBACK, and SQLAlchemy rolls
    back each connection that only read: so a read-only transaction ends with COMMIT
    (plugin.db._end_reads_with_commit). A write nobody committed is rolled back, in
    error or not, with or without a read after it, and so is anything run as text,
    even when it starts with SELECT."""
    from sqlalchemy import Column, Integer, MetaData, Table, select

    from tests.lab.pgschema import fresh_schema_url

    t = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("v", Integer))
    v_of_1 = select(t.c.v).where(t.c.id == 1)

    with fresh_schema_url(pg_url) as url:
        engine = make_engine(url, {"pool_size": 1, "max_overflow": 0})
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (id int PRIMARY KEY, v int)"))
                conn.execute(text("INSERT INTO t VALUES (1, 0)"))
            for _ in range(8):  # psycopg prepares a statement at its 5th run
                with engine.connect() as conn:  # read, no commit: SQLAlchemy rolls back
                    assert conn.execute(v_of_1).scalar() == 0
            with engine.connect() as conn:
                prepared = conn.execute(text(
                    "SELECT count(*) FROM pg_prepared_statements "
                    "WHERE statement LIKE 'SELECT t.v %'")).scalar()
            assert prepared == 1

            with engine.connect() as conn:  # written, then read, never committed
                conn.execute(text("UPDATE t SET v = 1 WHERE id = 1"))
                conn.execute(v_of_1)
            with engine.connect() as conn:  # text that starts with SELECT and writes
                conn.exec_driver_sql("SELECT 1; INSERT INTO t VALUES (2, 0)")
            with engine.connect() as conn:
                conn.execute(text("UPDATE t SET v = 2 WHERE id = 1"))
                try:
                    conn.execute(text("SELECT 1/0"))
                except Exception:  # the transaction is in error now
                    pass
            with engine.connect() as conn:
                assert conn.execute(text("SELECT v FROM t WHERE id = 1")).scalar() == 0
                assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
            with engine.connect() as conn:  # committed writes stay, and a read after them
                conn.execute(text("UPDATE t SET v = 3 WHERE id = 1"))
                conn.commit()
                conn.execute(text("UPDATE t SET v = 4 WHERE id = 1"))  # this one is not
            with engine.connect() as conn:
                assert conn.execute(text("SELECT v FROM t WHERE id = 1")).scalar() == 3
        finally:
            engine.dispose()
