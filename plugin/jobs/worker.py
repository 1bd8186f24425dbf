"""``flask integrated-email worker``: APScheduler in a process of its own."""

from __future__ import annotations

import logging
import signal

from apscheduler.schedulers.blocking import BlockingScheduler

log = logging.getLogger("plugin.integrated_email.jobs")


def run_worker(addon, threads: int | None = None) -> None:  # noqa: ANN001
    from plugin.jobs import build_scheduler
    from plugin.jobs.fetch import dispatcher_for

    if threads:
        addon.app.config["IE_WORKER_THREADS"] = threads
    dispatcher = dispatcher_for(addon)
    sched = build_scheduler(addon, BlockingScheduler)

    def stop(signum, _frame) -> None:  # noqa: ANN001
        log.info("worker %s stopping on signal %s", dispatcher.name, signum)
        sched.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker %s started with %d threads", dispatcher.name, dispatcher.threads)
    try:
        sched.start()
    finally:
        dispatcher.shutdown(wait=True)
