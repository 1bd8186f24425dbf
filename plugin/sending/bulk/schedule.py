"""When a bulk job will have finished, at its provider's pace (shown with its progress)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from plugin.models import Mailbox
from plugin.models.outbound import BulkJob
from plugin.sending import limits
from plugin.sending.lease import aware, now


def expected_finish(session: Session, config: Mapping[str, Any], job: BulkJob,
                    remaining: int) -> datetime | None:
    """About when the job's last message goes out (None: no limit makes it predictable)."""
    mb = session.get(Mailbox, job.mailbox_id)
    if mb is None or job.finished:
        return None
    limit = limits.limit_for(session, mb, config)
    stamp = now()
    if job.lease_until is not None and job.lease_owner == "paused":
        stamp = max(stamp, aware(job.lease_until))
    per_minute = limits.paced_per_minute(session, mb.id, limit, stamp)
    if job.spacing_seconds:
        per_minute = min(per_minute or 60, max(1, 60 // job.spacing_seconds))
    day_left, reopens = remaining, stamp
    if limit.per_day:
        day_left = limit.per_day - limits.sent_since(session, mb.id, stamp - limits.DAY)
        reopens = limits.day_reopens_at(session, mb.id, limit.per_day, stamp)
    return limits.expected_finish(remaining, per_minute, limit.per_day, day_left, reopens,
                                  stamp)
