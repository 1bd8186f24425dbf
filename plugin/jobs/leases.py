"""Fetch leases on mailbox rows: how many workers share the mailboxes safely.

A worker claims a due mailbox by writing its name and an expiry into the row.
PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` so concurrent workers never wait
on each other's candidates.  SQLite (one machine): an ``UPDATE`` guarded by the
same conditions, whose row count says whether the claim won.  A lease whose
worker died simply expires and the next worker's claim takes it over.

The claim itself checks that fetching is on (add-on active, global settings saved,
not outbound-only), so deactivating stops every worker at its next claim without a
separate query per claim.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.engine import Engine

from plugin.db import autocommit
from plugin.models import AddonState, GlobalSettings, Mailbox

M = Mailbox.__table__
_STATE = AddonState.__table__
_SETTINGS = GlobalSettings.__table__


def fetching_on() -> ColumnElement[bool]:
    """The add-on is active, the admin saved the settings, and incoming mail is on."""
    return and_(
        exists().where(_STATE.c.id == 1, _STATE.c.active.is_(True)),
        exists().where(_SETTINGS.c.id == 1, _SETTINGS.c.saved_at.is_not(None),
                       _SETTINGS.c.outbound_only.is_(False)))


def _due(now: datetime) -> ColumnElement[bool]:
    """Active, set up for incoming mail, not paused, due, and not leased by anyone."""
    return and_(
        fetching_on(),
        M.c.is_active.is_(True),
        M.c.paused.is_(False),
        M.c.protocol.is_not(None),
        or_(M.c.next_fetch_at.is_(None), M.c.next_fetch_at <= now,
            M.c.fetch_requested.is_(True)),
        or_(M.c.lease_until.is_(None), M.c.lease_until < now),
    )


def claim_due(engine: Engine, worker: str, limit: int, now: datetime,
              lease: timedelta) -> list[int]:
    """Lease up to ``limit`` due mailboxes to ``worker``; returns their ids."""
    if limit <= 0:
        return []
    order = (M.c.fetch_requested.desc(), M.c.next_fetch_at.asc().nulls_first(), M.c.id)
    if engine.dialect.name == "postgresql":
        # One statement, in autocommit: a single round trip per claim. The candidates
        # are a MATERIALIZED CTE: as a plain IN (subquery) the planner may run the
        # LIMIT ... SKIP LOCKED select more than once and lease more than ``limit``.
        due = (select(M.c.id).where(_due(now)).order_by(*order).limit(limit)
               .with_for_update(skip_locked=True, of=M).cte("due")
               .prefix_with("MATERIALIZED"))
        with autocommit(engine) as conn:
            return sorted(conn.execute(
                update(M).where(M.c.id.in_(select(due.c.id)))
                .values(lease_owner=worker, lease_until=now + lease)
                .returning(M.c.id)).scalars())
    # SQLite: read the candidates, then claim each with its own guarded UPDATE, which
    # is atomic under SQLite's single writer and re-checks the conditions as it writes.
    with engine.connect() as conn:
        ids = list(conn.execute(select(M.c.id).where(_due(now)).order_by(*order)
                                .limit(limit)).scalars())
    won = []
    for mailbox_id in ids:
        with engine.begin() as conn:
            res = conn.execute(update(M).where(M.c.id == mailbox_id, _due(now))
                               .values(lease_owner=worker, lease_until=now + lease))
        if res.rowcount == 1:
            won.append(mailbox_id)
    return won


def renew(engine: Engine, worker: str, ids: list[int], until: datetime) -> None:
    """Keep the leases of syncs still running (a long first sync outlives one lease)."""
    if ids:
        with autocommit(engine) as conn:
            conn.execute(update(M).where(M.c.id.in_(ids), M.c.lease_owner == worker)
                         .values(lease_until=until))


def give_back(mb: Mailbox, worker: str, jitter: float) -> bool:
    """Release ``worker``'s lease on a mailbox row loaded (and locked) for its status
    write, spreading the next fetch by up to ``jitter`` of the interval it was given.
    False when the lease expired and another worker holds the mailbox now."""
    if mb.lease_owner != worker:
        return False
    if mb.next_fetch_at is not None and mb.last_attempt_at is not None:
        span = max((mb.next_fetch_at - mb.last_attempt_at).total_seconds(), 0)
        mb.next_fetch_at = mb.next_fetch_at + timedelta(seconds=random.uniform(0, span * jitter))
    mb.lease_owner = None
    mb.lease_until = None
    mb.fetch_requested = False
    return True


def release(engine: Engine, worker: str, mailbox_id: int) -> None:
    """Give the mailbox back when its sync could not (see :func:`give_back`)."""
    with autocommit(engine) as conn:
        conn.execute(update(M).where(M.c.id == mailbox_id, M.c.lease_owner == worker)
                     .values(lease_owner=None, lease_until=None, fetch_requested=False))


def release_all(engine: Engine, worker: str) -> int:
    """Give back every lease ``worker`` holds (a stopping worker whose syncs ended)."""
    with autocommit(engine) as conn:
        return conn.execute(update(M).where(M.c.lease_owner == worker)
                            .values(lease_owner=None, lease_until=None)).rowcount
