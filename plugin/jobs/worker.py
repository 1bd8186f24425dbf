"""``flask integrated-email worker``: APScheduler in a process of its own."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from plugin.context import AddonContext
from plugin.fetching import sync
from plugin.jobs import build_scheduler
from plugin.jobs.dispatcher import dispatcher_for

log = logging.getLogger("plugin.integrated_email.jobs")


def warm_up(addon: AddonContext, threads: int) -> None:
    """Do once, before the first tick, what the first syncs would otherwise all do at
    the same moment: load the TLS trust store, open the pool's database connections
    (the sync path is imported with this module). Without it the first round after a
    start is seconds slower."""
    sync.warm_up(addon)
    pool = addon.engine.pool
    conns = [addon.engine.connect() for _ in range(min(threads, pool.size()))] \
        if hasattr(pool, "size") else []
    for conn in conns:
        conn.close()


def run_worker(addon: AddonContext, threads: int | None = None) -> None:
    """Run the scheduler in this process until SIGTERM or SIGINT."""
    if threads:
        addon.app.config["IE_WORKER_THREADS"] = threads
    dispatcher = dispatcher_for(addon)
    warm_up(addon, dispatcher.threads)
    sched = build_scheduler(addon, BlockingScheduler, first_tick_in=0)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("worker %s stopping on signal %s", dispatcher.name, signum)
        sched.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker %s started with %d threads", dispatcher.name, dispatcher.threads)
    try:
        sched.start()
    finally:
        dispatcher.shutdown(wait=True)
