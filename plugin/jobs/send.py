"""The send job: retries due single messages, settles crashed ones, runs bulk jobs."""

from __future__ import annotations

import logging

from apscheduler.schedulers.base import BaseScheduler

from plugin.context import AddonContext
from plugin.sending import bulk, outbox

log = logging.getLogger("plugin.integrated_email.jobs")


def run(addon: AddonContext) -> int:
    """One tick; returns how many single messages and bulk jobs were worked on.

    Does nothing while the add-on is inactive."""
    if not addon.is_active():
        return 0
    worked = outbox.run_due(addon)
    for job_id in bulk.resumable_jobs(addon):
        if bulk.run_job(addon, job_id) is not None:
            worked += 1
    return worked


def register(sched: BaseScheduler, addon: AddonContext) -> None:
    """Add the send job to a scheduler (called by plugin.jobs.build_scheduler)."""
    app = addon.app

    def tick() -> None:
        with app.app_context():
            try:
                run(addon)
            except Exception:
                log.exception("send job tick failed")

    sched.add_job(tick, "interval", seconds=int(app.config["IE_SEND_SECONDS"]),
                  id="integrated_email.send_outbox", name="Send queued and bulk email")
