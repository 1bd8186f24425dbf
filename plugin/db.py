"""The add-on's own engine and session, apart from the host's.

The add-on owns tables prefixed ``ie_`` and never touches host tables, so it
keeps its own engine even when it shares the host's database.
"""

from __future__ import annotations

import os
import select
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Select, create_engine, event, exc, make_url
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, scoped_session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _host_url(app: Any) -> str | None:
    """The host's database URL exactly as Flask-SQLAlchemy uses it (its engine when the
    extension is registered; else SQLALCHEMY_DATABASE_URI with a relative SQLite path
    under the instance folder, as Flask-SQLAlchemy 3 resolves it)."""
    fsa = app.extensions.get("sqlalchemy")
    if fsa is not None:
        try:
            with app.app_context():
                return fsa.engine.url.render_as_string(hide_password=False)
        except Exception:  # not configured yet: fall back to the setting
            pass
    raw = app.config.get("SQLALCHEMY_DATABASE_URI")
    if not raw:
        return None
    url = make_url(raw)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not url.database.startswith("file:") and not os.path.isabs(url.database):
        os.makedirs(app.instance_path, exist_ok=True)
        url = url.set(database=os.path.join(app.instance_path, url.database))
    return url.render_as_string(hide_password=False)


def resolve_url(app: Any, instance_path: str) -> tuple[str, bool]:
    """(URL, shared with the host?): IE_DATABASE_URL as given (SQLAlchemy's rules: a
    relative SQLite path is relative to the working directory), else the host's URL,
    else a SQLite file in the instance folder."""
    config = app.config
    host = _host_url(app)
    own = config.get("IE_DATABASE_URL")
    if own:
        return own, host is not None and make_url(own) == make_url(host)
    if host:
        return host, True
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return "sqlite:///" + os.path.join(instance_path, "integrated_email.sqlite"), False


def engine_options(app: Any, shared: bool) -> dict[str, Any]:
    """create_engine options: the host's SQLALCHEMY_ENGINE_OPTIONS when the database is
    the host's, then IE_ENGINE_OPTIONS over them."""
    options: dict[str, Any] = {}
    if shared:
        options.update(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options.update(app.config.get("IE_ENGINE_OPTIONS") or {})
    return options


def make_engine(url: str, options: dict[str, Any] | None = None, wal: bool = True) -> Engine:
    """The add-on's engine for url: SQLite pragmas (WAL only when ``wal``), or a
    PostgreSQL pool; ``options`` (the host's) win over the defaults."""
    options = dict(options or {})
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, "timeout": 30,
                        **options.pop("connect_args", {})}
        engine = create_engine(url, connect_args=connect_args, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
            cur = dbapi_conn.cursor()
            if wal:  # WAL lets the web process read while a fetch job writes; it is
                # persistent, so never switched on a host's file without IE_SQLITE_WAL.
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if "poolclass" not in options:
        options.setdefault("pool_size", 10)
        options.setdefault("max_overflow", 20)
    engine = create_engine(url, **options)
    event.listen(engine, "checkout", _check_alive)
    if engine.dialect.driver == "psycopg":
        _end_reads_with_commit(engine)
    return engine


def _end_reads_with_commit(engine: Engine) -> None:
    """End a transaction that only read with COMMIT instead of ROLLBACK.

    Why: psycopg forgets every prepared statement, and its counts towards preparing
    one, at each ROLLBACK (a rolled-back DDL could have changed what they refer to),
    and SQLAlchemy rolls back every connection that read and did not commit when it
    goes back to the pool. A sync reads in such blocks between its writes, so none of
    its statements was ever prepared and PostgreSQL parsed and planned all ~23 of a
    poll every time.

    "Only read" is decided from what SQLAlchemy compiled, never from SQL text (a
    string starting with SELECT may hold a second statement, ``SELECT ... INTO`` or a
    function that writes): a transaction counts as read-only while every statement in
    it was a compiled ``select()`` without FOR UPDATE. Text, DDL, writes, locking reads,
    savepoints, a transaction in error: all end with the real ROLLBACK, as before. The
    mark is cleared only once a COMMIT has succeeded."""
    wrote: weakref.WeakSet = weakref.WeakSet()

    def raw(conn: Any) -> Any:
        return getattr(conn, "dbapi_connection", conn)  # a pool proxy or the connection

    @event.listens_for(engine, "before_cursor_execute")
    def _note_write(conn: Connection, _cursor: object, _statement: str, _params: object,
                    context: Any, _many: bool) -> None:
        if not _plain_select(context):
            wrote.add(raw(conn.connection))

    commit, rollback = engine.dialect.do_commit, engine.dialect.do_rollback

    def do_commit(dbapi_conn: Any) -> None:
        commit(dbapi_conn)
        wrote.discard(raw(dbapi_conn))  # after it succeeded: a failed COMMIT stays marked

    def do_rollback(dbapi_conn: Any) -> None:
        target = raw(dbapi_conn)
        if target not in wrote and _idle_in_transaction(target):
            target.commit()
            return
        rollback(dbapi_conn)
        wrote.discard(target)

    engine.dialect.do_commit = do_commit  # type: ignore[method-assign]
    engine.dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def _plain_select(context: Any) -> bool:
    """Whether a statement about to run is a compiled ``select()`` that locks nothing."""
    compiled = getattr(context, "compiled", None)
    statement = getattr(compiled, "statement", None)
    return isinstance(statement, Select) and statement._for_update_arg is None


def _idle_in_transaction(dbapi_conn: Any) -> bool:
    """Whether a psycopg connection is inside a transaction that has not failed."""
    from psycopg.pq import TransactionStatus
    try:
        return dbapi_conn.info.transaction_status == TransactionStatus.INTRANS
    except Exception:  # closed or broken: let the real rollback deal with it
        return False


def _check_alive(dbapi_conn: Any, _record: object, _proxy: object) -> None:
    """Pessimistic disconnect handling without a round trip per checkout.

    SQLAlchemy's ``pool_pre_ping`` sends a query each time a connection leaves the
    pool: a network round trip, several per fetch. A pooled connection sits idle, so
    its socket has nothing to read unless the server closed it (a restart, an idle
    timeout, pg_terminate_backend); then the pool drops it and checks out another.
    (A link that died silently is found at first use instead, and the pool is reset.)
    """
    if getattr(dbapi_conn, "closed", False) or getattr(dbapi_conn, "broken", False):
        raise exc.DisconnectionError("connection closed")
    fileno = getattr(dbapi_conn, "fileno", None)
    if fileno is None:  # a driver without a socket to look at: a classic ping
        try:
            cur = dbapi_conn.cursor()
            cur.execute("SELECT 1")
            cur.close()
        except Exception as e:  # any failure means: not usable
            raise exc.DisconnectionError(str(e)) from e
        return
    try:
        poller = select.poll()  # not select.select: it refuses descriptors past 1023
        poller.register(fileno(), select.POLLIN)
        ready = poller.poll(0)
    except (OSError, ValueError) as e:
        raise exc.DisconnectionError(str(e)) from e
    if ready:  # readable (EOF or an error message) or hung up: the server closed it
        raise exc.DisconnectionError("the server closed the connection")


@contextmanager
def autocommit(engine: Engine) -> Iterator[Connection]:
    """A connection whose every statement commits on its own: one round trip for a
    single-statement write or read, where a transaction would add BEGIN and COMMIT."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


def make_session_factory(engine: Engine) -> scoped_session:
    """A thread-scoped session factory on engine (removed at app teardown)."""
    return scoped_session(sessionmaker(bind=engine, expire_on_commit=False))



def durable_commit(conn: Connection) -> None:
    """Commit conn's transaction so that it survives a power cut (before anything
    destructive on a mail server). SQLite runs WAL with synchronous=NORMAL, whose last
    commits may roll back on power loss, and refuses to change that inside a
    transaction: so the commit is followed by a FULL checkpoint, which fsyncs the WAL
    and the database file and must complete. PostgreSQL: synchronous commit for this
    transaction even where the server turned it off."""
    if conn.dialect.name == "postgresql" and conn.in_transaction():
        conn.exec_driver_sql("SET LOCAL synchronous_commit = on")
    conn.commit()
    if conn.dialect.name == "sqlite":
        _checkpoint(conn)


def _checkpoint(conn: Connection) -> None:
    busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(FULL)").one()
    conn.commit()
    if busy:  # a reader kept it from finishing: not durable, so nothing destructive
        raise exc.OperationalError("PRAGMA wal_checkpoint(FULL)", None,
                                   RuntimeError("readers kept the checkpoint from completing"))


def make_durable(engine: Engine) -> None:
    """Make every commit so far durable (the rows a POP3 DELE depends on were committed
    batch by batch): a FULL checkpoint on SQLite; PostgreSQL's commits are durable."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        _checkpoint(conn)
