"""``flask integrated-email worker``: APScheduler in a process of its own."""

from __future__ import annotations

import logging
import signal

from apscheduler.schedulers.blocking import BlockingScheduler

log = logging.getLogger("plugin.integrated_email.jobs")


def warm_up(addon, threads: int) -> None:
    """Do once, before the first tick, what the first syncs would otherwise all do at
    the same moment: import the sync path, load the TLS trust store, open the pool's
    database connections. Without it the first round after a start is seconds slower."""
    from plugin.mail.connect import ssl_context
    from plugin.linking import importer  # noqa: F401 - imported for the first sync
    from plugin.fetching import sync  # noqa: F401 - imported for the first sync
    from plugin.setup.policy import connection_policy

    with addon.app.app_context(), addon.session() as session:
        ssl_context(connection_policy(addon, session))
    addon.session.remove()
    pool = addon.engine.pool
    conns = [addon.engine.connect() for _ in range(min(threads, pool.size()))] \
        if hasattr(pool, "size") else []
    for conn in conns:
        conn.close()


def run_worker(addon, threads: int | None = None) -> None:
    from plugin.jobs import build_scheduler
    from plugin.jobs.dispatcher import dispatcher_for

    if threads:
        addon.app.config["IE_WORKER_THREADS"] = threads
    dispatcher = dispatcher_for(addon)
    warm_up(addon, dispatcher.threads)
    sched = build_scheduler(addon, BlockingScheduler, first_tick_in=0)

    def stop(signum, _frame) -> None:
        log.info("worker %s stopping on signal %s", dispatcher.name, signum)
        sched.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker %s started with %d threads", dispatcher.name, dispatcher.threads)
    try:
        sched.start()
    finally:
        dispatcher.shutdown(wait=True)
