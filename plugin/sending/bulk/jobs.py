"""A bulk job's life apart from sending: made (its queued rows, rendered), watched
(progress), cancelled, claimed by one runner, found again after a crash, and closed
with the outcome its runner reached."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, literal, select, update
from sqlalchemy.orm import Session

from plugin.context import AddonContext
from plugin.fetching.store import begin_write
from plugin.host import HostRecord, HostUser
from plugin.mail import build as compose
from plugin.models import Mailbox
from plugin.models._types import UTCDateTime
from plugin.models.outbound import BulkJob, OutboundMessage
from plugin.sending import merge, unsubscribe
from plugin.sending.bulk.recipients import Selection
from plugin.sending.delivery import backoff
from plugin.sending.lease import aware, lease_length, now, owner_gone, worker_id
from plugin.setup import settings as settings_service
from plugin.words import N_

_OUT = OutboundMessage.__table__
_JOB = BulkJob.__table__
#: lease owner of a job waiting for its server to come back
PAUSED = "paused"


# ------------------------------------------------------------------ making the job


@dataclass
class Preview:
    """The message as one recipient gets it, or the problems that stop it."""

    subject: str
    body: str
    problems: list[merge.MergeProblem]


def check_templates(subject: str, body: str) -> list[merge.MergeProblem]:
    """What is wrong with the subject and body templates (empty when they may be sent)."""
    problems = merge.check_template(subject, "subject") + merge.check_template(body, "body")
    if not subject.strip():
        problems.append(merge.MergeProblem("subject", N_("Write a subject.")))
    try:
        compose.check_body(body)
    except compose.HeaderError as exc:
        problems.append(merge.MergeProblem("body", exc.sentence))
    return problems


def preview(subject: str, body: str, record: HostRecord, sender_user: HostUser,
            signature: str) -> Preview:
    """The templates rendered for ``record``, or why they cannot be."""
    problems = check_templates(subject, body)
    if problems:
        return Preview("", "", problems)
    values = merge.values_for(record, sender_user.name, signature)
    try:
        rendered_subject = merge.render(subject, values)
        rendered_body = merge.render(body, values)
        compose.check_header(rendered_subject, "subject")
    except merge.MergeError:
        return Preview("", "", [merge.MergeProblem("body", N_("A merge field could not be "
                                                      "filled in safely."))])
    except compose.HeaderError as exc:
        return Preview("", "", [merge.MergeProblem("subject", exc.sentence)])
    return Preview(rendered_subject, rendered_body, [])


def create_job(addon: AddonContext, session: Session, user: HostUser, mb: Mailbox,
               subject: str, body: str, selection: Selection, signature: str = "",
               formatted: bool = False, unsubscribe_base: str | None = None,
               send_at: datetime | None = None, window: dict | None = None) -> BulkJob:
    """The job and its queued rows, committed together (nothing is sent here).

    ``unsubscribe_base`` (``https://.../unsubscribe/``): each row gets its signed
    one-click link, in its List-Unsubscribe header and under its text, unless the
    administrator turned unsubscribe links off. ``send_at``: the job is held (queued)
    until then, and the send job starts it. ``window``: the send-window columns
    (:func:`plugin.sending.bulk.window.read`)."""
    gs = settings_service.load(session)
    if gs.bulk_unsubscribe is False:
        unsubscribe_base = None
    job = BulkJob(user_id=user.id, mailbox_id=mb.id, subject_template=subject,
                  body_template=body, state="queued",
                  spacing_seconds=int(gs.bulk_spacing_seconds or 0),
                  lease_owner=PAUSED if send_at else None, lease_until=send_at,
                  **(window or {}))
    session.add(job)
    session.flush()
    skipped = list(selection.skipped)
    subject_tpl = merge.compile_template(subject)
    body_tpl = merge.compile_template(body)
    rows = []
    for rec in selection.records:
        values = merge.values_for(rec, user.name, signature)
        try:
            rendered_subject = compose.check_header(merge.render(subject_tpl, values), "subject")
            rendered_body = compose.check_body(merge.render(body_tpl, values))
            to = [(compose.check_header(rec.name, "recipient name"), rec.email)]
            message_id = compose.new_message_id(mb.email)
            link = None
            if unsubscribe_base:
                link = unsubscribe.link_for(unsubscribe_base, addon.secrets, message_id,
                                            rec.email)
                rendered_body += unsubscribe.FOOTER.format(url=link)
        except (merge.MergeError, compose.HeaderError) as exc:
            reason = exc.sentence if isinstance(exc, compose.HeaderError) else \
                "A merge field could not be filled in safely."
            skipped.append({"name": rec.name, "ref": str(rec.ref), "reason": reason})
            continue
        rows.append({
            "user_id": user.id, "mailbox_id": mb.id, "bulk_job_id": job.id,
            "message_id_header": message_id, "state": "queued", "unsubscribe_url": link,
            "from_addr": mb.email, "from_name": user.name,
            "to_addrs": compose.addresses_json(to), "cc_addrs": "[]", "bcc_addrs": "[]",
            "subject": rendered_subject, "body_text": rendered_body,
            "body_html": compose.formatted_html(rendered_body) if formatted else None,
            "attachments": "[]", "record_refs": str(rec.ref), "attempts": 0,
            "in_sent_folder": False, "created_at": now()})
    if rows:
        session.execute(_OUT.insert(), rows)
    job.total = len(rows)
    job.skipped = json.dumps(skipped, ensure_ascii=False)
    if not rows:
        job.state, job.finished_at = "done", now()
    session.commit()
    return job


# ------------------------------------------------------------------ progress


@dataclass
class Progress:
    """How far a job got, counted from its rows."""

    total: int
    sent: int
    failed: int
    unknown: int
    cancelled: int
    remaining: int

    @property
    def done(self) -> int:
        """Rows settled one way or another."""
        return self.total - self.remaining

    @property
    def percent(self) -> int:
        """Settled rows as a whole percentage (100 for an empty job)."""
        return 100 if self.total == 0 else int(100 * self.done / self.total)


def progress(session: Session, job_id: int) -> Progress:
    """The job's rows counted by state."""
    counts = dict(session.execute(select(_OUT.c.state, func.count()).where(
        _OUT.c.bulk_job_id == job_id).group_by(_OUT.c.state)).all())
    total = sum(counts.values())
    return Progress(total=total, sent=counts.get("sent", 0) + counts.get("filed", 0),
                    failed=counts.get("failed", 0), unknown=counts.get("unknown", 0),
                    cancelled=counts.get("cancelled", 0),
                    remaining=counts.get("queued", 0) + counts.get("sending", 0))


# ------------------------------------------------------------------ cancel, claim, resume


def request_cancel(session: Session, job: BulkJob) -> None:
    """Cancel: a running job stops before its next message; a waiting one at once."""
    session.execute(update(_JOB).where(_JOB.c.id == job.id).values(cancel_requested=True))
    session.commit()
    session.refresh(job)
    if job.state == "queued" or (job.state == "running" and (
            job.lease_owner is None or owner_gone(job.lease_owner))):
        finish_cancelled(session.connection(), job.id)
        session.commit()
        session.refresh(job)


def finish_cancelled(conn: Connection, job_id: int) -> None:
    """Mark the job cancelled and its queued rows not sent (the caller commits)."""
    conn.execute(update(_OUT).where(_OUT.c.bulk_job_id == job_id, _OUT.c.state == "queued")
                 .values(state="cancelled", error="Not sent: the bulk email was cancelled."))
    conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(
        state="cancelled", finished_at=now(), lease_owner=None, lease_until=None))


def claim_job(addon: AddonContext, job_id: int) -> bool:
    """Take the job's lease when it is free, expired, or held by a dead process."""
    owner = worker_id()
    stamp = now()
    with addon.engine.connect() as conn:
        job = conn.execute(select(_JOB).where(_JOB.c.id == job_id)).first()
        if job is None or job.state not in ("queued", "running"):
            return False
        held = job.lease_owner is not None and job.lease_owner != owner
        if held and job.lease_until is not None and aware(job.lease_until) > stamp \
                and not owner_gone(job.lease_owner):
            return False
        begin_write(conn)
        where = [_JOB.c.id == job_id, _JOB.c.state.in_(("queued", "running"))]
        where.append(_JOB.c.lease_owner == job.lease_owner if job.lease_owner is not None
                     else _JOB.c.lease_owner.is_(None))
        result = conn.execute(update(_JOB).where(*where).values(
            state="running", lease_owner=owner,
            lease_until=stamp + lease_length(addon.app.config),
            started_at=func.coalesce(_JOB.c.started_at, literal(stamp, UTCDateTime()))))
        conn.commit()
        return result.rowcount == 1


def resumable_jobs(addon: AddonContext) -> list[int]:
    """Jobs waiting to run, or whose runner is gone."""
    stamp = now()
    with addon.engine.connect() as conn:
        rows = conn.execute(select(_JOB.c.id, _JOB.c.state, _JOB.c.lease_owner,
                                   _JOB.c.lease_until).where(
            _JOB.c.state.in_(("queued", "running")))).all()
    out = []
    for r in rows:
        if r.lease_owner is None or r.lease_until is None or \
                aware(r.lease_until) < stamp or owner_gone(r.lease_owner):
            out.append(r.id)
    return out


def close_run(engine: Engine, job_id: int, outcome: str, notice: str | None,
              resume_at: datetime | None = None) -> None:
    """Write the outcome a runner reached: done, cancelled, stopped, paused, or waiting
    (the provider's daily limit is reached: the send job resumes it at ``resume_at``)."""
    with engine.connect() as conn:
        begin_write(conn)
        if outcome == "cancelled":
            finish_cancelled(conn, job_id)
        elif outcome == "stopped":
            conn.execute(update(_OUT).where(_OUT.c.bulk_job_id == job_id,
                                            _OUT.c.state == "queued").values(
                state="cancelled", error="Not sent: " + (notice or "the job stopped.")))
            conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(
                state="stopped", notice=notice, finished_at=now(),
                lease_owner=None, lease_until=None))
        elif outcome == "waiting":
            conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(
                notice=notice, lease_owner=PAUSED, lease_until=resume_at or now()))
        elif outcome == "paused":
            # The server is unreachable for now: the send job resumes after a pause.
            conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(
                notice=notice + " Sending resumes by itself in a minute.",
                lease_owner=PAUSED, lease_until=now() + backoff(1)))
        else:
            conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(
                state="done", finished_at=now(), lease_owner=None, lease_until=None,
                notice=None))
        conn.commit()
