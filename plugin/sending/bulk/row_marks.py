"""The per-recipient commits of a running bulk job, made cheap: a commit a message
is the runner's price of never sending a copy twice, so it is paid in as few round
trips as the database allows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.sql import Executable

from plugin.models.outbound import OutboundMessage
from plugin.sending.lease import now, write_lock

_OUT = OutboundMessage.__table__

#: a statement compiled once: (SQL text, fixed bind values, bind processors, positional order)
Prepared = tuple[str, dict[str, Any], dict[str, Any], tuple[str, ...] | None]


class RowMarks:
    """The per-recipient state changes of a running job, as Core statements compiled
    once and executed on the job's own DBAPI connection (no ORM, no per-call
    compiling). Bind values go through the columns' own bind processors, so
    ``UTCDateTime`` is stored exactly as through SQLAlchemy (naive UTC text on SQLite,
    aware on PostgreSQL).

    ``sent_and_claim`` is the folded commit: recipient i becomes ``sent`` and
    recipient i+1 ``sending`` in one transaction, so at most one row is ever in
    ``sending`` and a crash between two messages costs one commit less per message.
    """

    def __init__(self, conn: Connection, owner: str) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.sqlite = self.dialect.name == "sqlite"
        self.owner = owner
        self._claim = self._compile(update(_OUT).where(
            _OUT.c.id == bindparam("row_id"), _OUT.c.state == "queued").values(
            state="sending", date=bindparam("stamp"), attempts=_OUT.c.attempts + 1,
            lease_owner=bindparam("owner")))
        self._sent = self._compile(update(_OUT).where(_OUT.c.id == bindparam("row_id")).values(
            state="sent", sent_at=bindparam("stamp"), lease_owner=None,
            error_kind=bindparam("kind")))

    def _compile(self, stmt: Executable) -> Prepared:
        compiled = stmt.compile(dialect=self.dialect)
        fixed = compiled.construct_params(
            {name: None for name in ("row_id", "stamp", "owner", "kind")
             if name in compiled.binds}, _check=False)
        procs = {}
        for name, bind in compiled.binds.items():
            proc = bind.type._cached_bind_processor(self.dialect)
            if proc is not None:
                procs[name] = proc
        fixed = {k: (procs[k](v) if k in procs and v is not None else v)
                 for k, v in fixed.items()}
        order = tuple(compiled.positiontup) if compiled.positional else None
        return compiled.string, fixed, procs, order

    def _params(self, prepared: Prepared, values: dict) -> tuple | dict:
        _sql, fixed, procs, order = prepared
        params = dict(fixed)
        for k, v in values.items():
            proc = procs.get(k)
            params[k] = proc(v) if proc is not None and v is not None else v
        return tuple(params[k] for k in order) if order is not None else params

    def _run(self, steps: Sequence[tuple[Prepared, dict]]) -> list[int]:
        """Execute ``steps`` ((prepared, values), ...) in one write transaction."""
        raw = self.conn.connection.dbapi_connection
        if not self.sqlite and hasattr(raw, "pipeline"):
            return self._run_pipelined(raw, steps)
        with write_lock:
            cur = raw.cursor()
            try:
                if self.sqlite:
                    cur.execute("BEGIN IMMEDIATE")
                counts = []
                for prepared, values in steps:
                    cur.execute(prepared[0], self._params(prepared, values))
                    counts.append(cur.rowcount)
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                cur.close()
        return counts

    def _run_pipelined(self, raw: Any, steps: Sequence[tuple[Prepared, dict]]) -> list[int]:
        """PostgreSQL (psycopg 3): BEGIN, the statements and COMMIT in one round trip
        (pipeline mode) instead of one each; a commit a message, so it counts."""
        cursors = []
        with write_lock:
            try:
                with raw.pipeline():
                    for prepared, values in steps:
                        cur = raw.cursor()
                        cursors.append(cur)
                        cur.execute(prepared[0], self._params(prepared, values))
                    raw.commit()
                return [cur.rowcount for cur in cursors]
            except BaseException:
                raw.rollback()
                raise
            finally:
                for cur in cursors:
                    cur.close()

    def claim(self, row_id: int, stamp: datetime) -> bool:
        """``queued -> sending`` for this runner, committed; False if the row was not queued."""
        (n,) = self._run([(self._claim, {"row_id": row_id, "stamp": stamp,
                                         "owner": self.owner})])
        return n == 1

    def sent(self, row_id: int, refused: bool) -> None:
        """The row is ``sent`` (``refused``: the server refused one of its recipients)."""
        self._run([(self._sent, {"row_id": row_id, "stamp": now(),
                                 "kind": "recipient_refused" if refused else None})])

    def sent_and_claim(self, row_id: int, refused: bool, next_id: int,
                       stamp: datetime) -> bool:
        """One commit: ``row_id`` ``sent`` and ``next_id`` claimed; False if not claimed."""
        _n, claimed = self._run([
            (self._sent, {"row_id": row_id, "stamp": stamp,
                          "kind": "recipient_refused" if refused else None}),
            (self._claim, {"row_id": next_id, "stamp": stamp, "owner": self.owner})])
        return claimed == 1
