"""APScheduler wiring: one scheduler per process, running the short dispatcher job.

Embedded (the default, the demo): a background scheduler inside the web process.
Production: ``IE_SCHEDULER=off`` in web processes and ``flask integrated-email
worker`` in one or more worker processes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from plugin.context import AddonContext
from plugin.jobs import send
from plugin.jobs.dispatcher import dispatch

log = logging.getLogger("plugin.integrated_email.jobs")
_lock = threading.Lock()


def _is_reloader_parent(app: Flask) -> bool:
    # Under `flask run --reload` the parent only watches files; the child (which
    # has WERKZEUG_RUN_MAIN set) serves requests and should own the scheduler.
    return bool(app.debug) and os.environ.get("WERKZEUG_RUN_MAIN") != "true" \
        and os.environ.get("FLASK_RUN_FROM_CLI") == "true"


def build_scheduler(addon: AddonContext, scheduler_cls: type[BaseScheduler] = BackgroundScheduler,
                    first_tick_in: float = 2.0) -> BaseScheduler:
    """A scheduler with the add-on's jobs (listed in manifest.json) added; the first
    dispatcher tick comes ``first_tick_in`` seconds after the start (a web process
    lets the app finish starting; a worker process has nothing else to do)."""
    app = addon.app
    sched = scheduler_cls(job_defaults={"coalesce": True, "max_instances": 1,
                                        "misfire_grace_time": 30})

    def run_dispatch() -> None:
        with app.app_context():
            dispatch(addon)

    sched.add_job(run_dispatch, "interval", seconds=int(app.config["IE_DISPATCH_SECONDS"]),
                  id="integrated_email.dispatch_fetch", name="Fetch due mailboxes",
                  next_run_time=_soon(first_tick_in))
    send.register(sched, addon)
    return sched


def _soon(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def start_scheduler_if_embedded(addon: AddonContext, force: bool = False) -> BaseScheduler | None:
    """Start the in-process scheduler once, unless IE_SCHEDULER is 'off' (``force``:
    start it anyway, the host asked with ``addon.start_scheduler()``)."""
    app = addon.app
    if not force and str(app.config.get("IE_SCHEDULER", "embedded")).lower() != "embedded":
        return None
    if _is_reloader_parent(app):
        return None
    with _lock:
        if getattr(addon, "scheduler", None) is not None:
            return addon.scheduler
        sched = build_scheduler(addon)
        sched.start()
        addon.scheduler = sched
        atexit.register(lambda: sched.shutdown(wait=False) if sched.running else None)
        log.info("embedded scheduler started")
        return sched


def stop_scheduler(addon: AddonContext, wait: bool = True) -> None:
    """Shut the add-on's in-process scheduler down, if one runs."""
    with _lock:
        sched = getattr(addon, "scheduler", None)
        addon.scheduler = None
    if sched is not None and sched.running:
        sched.shutdown(wait=wait)
        log.info("embedded scheduler stopped")
