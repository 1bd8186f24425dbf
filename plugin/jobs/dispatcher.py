"""The fetch dispatcher: one short interval job, not one job per mailbox.

Each tick it (1) renews the leases of syncs still running in this process,
(2) claims as many due mailboxes as it has free threads, and (3) hands them to
a bounded thread pool.  Mail fetching is I/O-bound, so threads give the
throughput; more worker processes (``flask integrated-email worker``) add more.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from plugin.context import AddonContext
from plugin.db import autocommit
from plugin.fetching.sync import SyncResult, sync_mailbox
from plugin.jobs import leases
from plugin.linking.importer import link_pending
from plugin.linking.notes import enforce_after_sync
from plugin.models import Mailbox

log = logging.getLogger("plugin.integrated_email.jobs")

#: up to this share of the interval is added to each next fetch, so mailboxes
#: set up together do not all poll in the same second forever
JITTER = 0.1


class Dispatcher:
    """Per-process dispatcher state: the pool and the mailboxes it is syncing."""

    def __init__(self, addon: AddonContext, threads: int, name: str | None = None):
        self.addon = addon
        self.threads = max(1, threads)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="ie-fetch")
        self.running: set[int] = set()
        self.lock = threading.Lock()
        #: set by :meth:`shutdown`: claim nothing more, give back what is not synced
        self.stopping = threading.Event()
        #: claimed mailboxes whose sync has not started yet
        self._not_started: set[int] = set()
        #: whether this process ever claimed a mailbox (else there is nothing to give back)
        self._claimed_any = False
        #: how long a claim lasts without renewal (a dead worker's mailboxes wait this long)
        self.lease = timedelta(seconds=int(addon.app.config["IE_LEASE_SECONDS"]))

    def _may_fetch(self) -> bool:
        """Active, set up, and not in outbound-only mode."""
        with autocommit(self.addon.engine) as conn:
            return bool(conn.execute(select(leases.fetching_on())).scalar())

    def tick(self, wait: bool = False) -> int:
        """One dispatcher round; returns how many mailboxes it started syncing.

        Each pool thread keeps claiming due mailboxes until none is left, so a
        round's throughput is not bounded by the tick interval.
        """
        if self.stopping.is_set() or not self._may_fetch():
            return 0  # stopping, inactive, not set up yet, or outbound-only
        now = datetime.now(timezone.utc)
        with self.lock:
            leases.renew(self.addon.engine, self.name, sorted(self.running), now + self.lease)
            free = self.threads - len(self.running)
        ids = leases.claim_due(self.addon.engine, self.name, free, now, self.lease)
        with self.lock:
            self.running.update(ids)
            self._claimed_any = self._claimed_any or bool(ids)
        futures = []
        for mailbox_id in ids:
            with self.lock:
                self._not_started.add(mailbox_id)
            try:
                futures.append(self.pool.submit(self._work, mailbox_id))
            except RuntimeError:
                # The pool was shut down between the claim and now (SIGTERM during a
                # tick): give the claim back at once rather than let it wait out the lease.
                self._give_back_unsynced(mailbox_id)
        if wait:
            for f in futures:
                f.result()
        return len(futures)

    def _give_back_unsynced(self, mailbox_id: int) -> None:
        leases.release(self.addon.engine, self.name, mailbox_id)
        with self.lock:
            self.running.discard(mailbox_id)
            self._not_started.discard(mailbox_id)

    def _work(self, mailbox_id: int) -> None:
        """Sync a claimed mailbox, then claim and sync more while any is due (the
        claim itself finds nothing once fetching is switched off)."""
        with self.lock:
            if mailbox_id not in self._not_started:
                return  # given back by shutdown() before this thread took it
            self._not_started.discard(mailbox_id)
        while mailbox_id is not None:
            self._sync_one(mailbox_id)
            if self.stopping.is_set():
                return
            now = datetime.now(timezone.utc)
            more = leases.claim_due(self.addon.engine, self.name, 1, now, self.lease)
            mailbox_id = more[0] if more else None
            if mailbox_id is not None:
                with self.lock:
                    self.running.add(mailbox_id)
                if self.stopping.is_set():  # claimed as shutdown() began
                    self._give_back_unsynced(mailbox_id)
                    return

    def _sync_one(self, mailbox_id: int) -> None:
        def give_back(mb: Mailbox) -> bool:
            # In the sync's own status write: one transaction ends the sync and the lease.
            return leases.give_back(mb, self.name, JITTER)

        released = False
        try:
            with self.addon.app.app_context():
                result = fetch_and_link(self.addon, mailbox_id, on_finish=give_back)
                released = result.settled
                log.info("worker %s synced mailbox %s: %d new, %s", self.name, mailbox_id,
                         result.stored, result.error_kind or result.skipped or "ok")
        except Exception:  # the pool thread must survive any mailbox
            log.exception("sync of mailbox %s crashed", mailbox_id)
        finally:
            if not released:
                leases.release(self.addon.engine, self.name, mailbox_id)
            with self.lock:
                self.running.discard(mailbox_id)

    def shutdown(self, wait: bool = True) -> None:
        """Stop claiming, cancel syncs not yet started and give back every lease this
        process holds that no running sync still needs (with ``wait``, all of them)."""
        self.stopping.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            unsynced, self._not_started = sorted(self._not_started), set()
        for mailbox_id in unsynced:
            self._give_back_unsynced(mailbox_id)
        if wait:
            self.pool.shutdown(wait=True)
            if self._claimed_any:
                # Every sync has ended: anything still leased to this name is left over.
                leases.release_all(self.addon.engine, self.name)


_create_lock = threading.Lock()


def dispatcher_for(addon: AddonContext) -> Dispatcher:
    """The process's dispatcher for this add-on (one pool, one set of leases)."""
    with _create_lock:
        d = getattr(addon, "_dispatcher", None)
        if d is None:
            d = Dispatcher(addon, int(addon.app.config["IE_WORKER_THREADS"]))
            addon._dispatcher = d
        return d


def dispatch(addon: AddonContext, wait: bool = False) -> int:
    """One dispatcher tick for this process; nothing at all while inactive."""
    if not addon.is_active():
        return 0
    return dispatcher_for(addon).tick(wait=wait)


def wake(addon: AddonContext) -> None:
    """Run this process's next dispatcher tick now (after Fetch now)."""
    sched = getattr(addon, "scheduler", None)
    if sched is not None and sched.running:
        job = sched.get_job("integrated_email.dispatch_fetch")
        if job is not None:
            job.modify(next_run_time=datetime.now(timezone.utc))


def fetch_and_link(addon: AddonContext, mailbox_id: int, **kwargs: object) -> SyncResult:
    """A mailbox's sync with automatic linking after each batch and the sweep of any
    stored mail a crash left unlinked, then its host notes brought in line with its
    sharing (``kwargs`` go on to ``sync_mailbox``)."""
    result = sync_mailbox(addon, mailbox_id, on_batch=link_pending,
                          sweep=lambda: link_pending(addon, mailbox_id), **kwargs)
    try:
        enforce_after_sync(addon.engine, addon.host, mailbox_id)
    except Exception:  # a host that fails now is asked again after the next sync
        log.exception("bringing the host notes of mailbox %s in line failed", mailbox_id)
    return result
