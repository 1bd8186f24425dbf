"""Bulk email: pick recipients, render merge fields, and run the job exactly once each.

A job is made in one transaction (:mod:`.jobs`): a ``BulkJob`` and one
``queued`` outbox row per recipient (:mod:`.recipients` picks them and applies the
administrator's limits), each with its own Message-ID and its rendered subject and
body. The runner (:mod:`.runner`: the send job, or a thread started right away)
sends the rows one at a time, each claimed before its DATA and marked ``sent``
after (:mod:`.row_marks`, the cheap commits), and hands the bytes to the filer
(:mod:`.filer`), which records them and saves them in Sent.

Callers use ``from plugin.sending import bulk`` and ``bulk.<name>``: the names
below are the package's public API.
"""

from __future__ import annotations

from plugin.sending.bulk.filer import Filer
from plugin.sending.bulk.jobs import (
    PAUSED,
    Preview,
    Progress,
    check_templates,
    claim_job,
    create_job,
    preview,
    progress,
    request_cancel,
    resumable_jobs,
)
from plugin.sending.bulk.recipients import (
    Selection,
    limit_problem,
    queued_elsewhere,
    select_records,
    select_recipients,
    sent_today,
)
from plugin.sending.bulk.runner import (
    CHECK_SECONDS,
    CHUNK,
    PER_MESSAGE_KINDS,
    JobRun,
    run_job,
    start_in_thread,
)

__all__ = [
    "CHECK_SECONDS", "CHUNK", "PAUSED", "PER_MESSAGE_KINDS", "Filer", "JobRun",
    "Preview", "Progress", "Selection", "check_templates", "claim_job", "create_job",
    "limit_problem", "preview", "progress", "queued_elsewhere", "request_cancel",
    "resumable_jobs", "run_job", "select_records", "select_recipients", "sent_today",
    "start_in_thread",
]
