"""The outbox of single messages: queue (committed before SMTP), deliver, retry, recover.

A row is claimed by moving it ``queued -> sending`` in one UPDATE that only matches
a queued row, so two workers never send the same row. A ``sending`` row whose
worker died (its process is gone, or its lease ran out) is never re-sent blindly:
it becomes ``sent`` when the Sent folder holds its Message-ID, else ``unknown``.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy import Row, func, literal, or_, select, update
from sqlalchemy.orm import Session

from plugin.blobs import blob_store
from plugin.context import AddonContext
from plugin.host import HostUser, RecordRef
from plugin.mail import build as compose
from plugin.mail.errors import THROTTLED, MailError
from plugin.models import Mailbox
from plugin.models._types import UTCDateTime
from plugin.models.outbound import BulkJob, OutboundMessage
from plugin.sending import limits
from plugin.sending.delivery import (
    UNKNOWN_SENTENCE,
    backoff,
    envelope_recipients,
    judge,
    smtp_session,
)
from plugin.sending.lease import aware, lease_length, now, owner_gone, worker_id
from plugin.sending.messages import message_for
from plugin.sending.sent_folder import file_rows, prove_sent
from plugin.setup.policy import connection_policy
from plugin.testing.faults import crashpoint

log = logging.getLogger("plugin.integrated_email.send")
_OUT = OutboundMessage.__table__


def queue(addon: AddonContext, session: Session, user: HostUser, mb: Mailbox,
          draft: compose.Draft, records: list[RecordRef]) -> OutboundMessage:
    """Write the outbox row (Message-ID made here) and commit it; nothing is sent yet."""
    compose.check_body(draft.body_text)
    blobs = blob_store(addon.app.config)
    stored = [{"name": a.name, "type": a.content_type, "sha256": blobs.put(a.data),
               "size": len(a.data)} for a in draft.attachments]
    row = OutboundMessage(
        user_id=user.id, mailbox_id=mb.id, state="queued",
        message_id_header=compose.new_message_id(mb.email), from_addr=mb.email,
        from_name=draft.from_name or user.name, to_addrs=compose.addresses_json(draft.to),
        cc_addrs=compose.addresses_json(draft.cc), bcc_addrs=compose.addresses_json(draft.bcc),
        subject=draft.subject, body_text=draft.body_text,
        body_html=compose.formatted_html(draft.body_text) if draft.formatted else None,
        in_reply_to=draft.in_reply_to, references=draft.references,
        attachments=json.dumps(stored), record_refs=" ".join(str(r) for r in records))
    # Fails here, before the commit, on anything EmailMessage would refuse.
    compose.build_message(from_name=row.from_name, from_addr=row.from_addr, to=draft.to,
                          cc=draft.cc, subject=row.subject, body_text=row.body_text,
                          body_html=row.body_html, message_id=row.message_id_header,
                          date=now(), in_reply_to=row.in_reply_to,
                          references=row.references, attachments=draft.attachments)
    session.add(row)
    session.commit()
    return row


def _claim(addon: AddonContext, session: Session, row_id: int) -> bool:
    stamp = now()
    result = session.execute(
        update(_OUT).where(_OUT.c.id == row_id, _OUT.c.state == "queued").values(
            state="sending", attempts=_OUT.c.attempts + 1, lease_owner=worker_id(),
            lease_until=stamp + lease_length(addon.app.config), next_attempt_at=None,
            date=func.coalesce(_OUT.c.date, literal(stamp, UTCDateTime()))))
    session.commit()
    return result.rowcount == 1


def deliver(addon: AddonContext, row_id: int) -> OutboundMessage | None:
    """Send one queued row now (if it is still queued); returns the row as it ends."""
    with Session(addon.engine, expire_on_commit=False) as session:
        row = session.get(OutboundMessage, row_id)
        if row is None or row.state != "queued":
            return row
        mb = session.get(Mailbox, row.mailbox_id)
        policy = connection_policy(addon, session)
        # The Date header is the first attempt's (coalesce): a retry sends the same bytes.
        if not _claim(addon, session, row_id):
            return session.get(OutboundMessage, row_id)
        session.refresh(row)
        try:
            message = message_for(addon.app.config, row)
            with smtp_session(addon, mb, policy) as smtp:
                crashpoint("single_before_smtp")
                refused = smtp.send(row.from_addr, envelope_recipients(row), message)
            crashpoint("single_after_smtp")
        except MailError as exc:
            _failed(session, row, exc)
            if exc.kind == THROTTLED:
                _slow_down(addon, session, mb)
            return row
        stamp = now()
        note = None
        if refused:
            note = (f"The server refused {', '.join(sorted(refused))}; everyone else got it.")
        session.execute(update(_OUT).where(_OUT.c.id == row_id).values(
            state="sent", sent_at=stamp, lease_owner=None, lease_until=None,
            error_kind="recipient_refused" if refused else None, error=note))
        session.commit()
        session.refresh(row)
        log.info("outbound %s sent", row_id)
        file_rows(addon, session, mb, [row], policy,
                         raws={row.id: compose.flatten(message)})
        session.refresh(row)
        return row


def _failed(session: Session, row: OutboundMessage, exc: MailError) -> None:
    verdict = judge(exc, row.attempts)
    values = {"lease_owner": None, "lease_until": None, "error_kind": verdict.kind,
              "error": verdict.sentence}
    if verdict.retry:
        values.update(state="queued",
                      next_attempt_at=now() + backoff(row.attempts))
    else:
        values.update(state="failed")
    session.execute(update(_OUT).where(_OUT.c.id == row.id).values(**values))
    session.commit()
    session.refresh(row)
    log.info("outbound %s %s (%s)", row.id, row.state, verdict.kind)


def _slow_down(addon: AddonContext, session: Session, mb: Mailbox) -> None:
    """The server throttled a single message: the mailbox's bulk mail goes slower too."""
    pace = limits.paced_per_minute(session, mb.id, limits.limit_for(
        session, mb, addon.app.config), now())
    session.rollback()
    with addon.engine.connect() as conn:
        limits.record_throttle(conn, mb.id, pace)


def resend(session: Session, row: OutboundMessage) -> bool:
    """The user decided: send a failed or unknown row again (same Message-ID)."""
    result = session.execute(update(_OUT).where(
        _OUT.c.id == row.id, _OUT.c.state.in_(("failed", "unknown"))).values(
        state="queued", attempts=0, next_attempt_at=None, error=None, error_kind=None))
    session.commit()
    return result.rowcount == 1


def stale_sending(session: Session, job_id: int | None = None) -> list[Row]:
    """``sending`` rows whose worker is gone (process dead or lease over)."""
    stamp = now()
    query = select(_OUT.c.id, _OUT.c.lease_owner, _OUT.c.lease_until, _OUT.c.mailbox_id,
                   _OUT.c.message_id_header).where(_OUT.c.state == "sending")
    query = query.where(_OUT.c.bulk_job_id == job_id) if job_id is not None else \
        query.where(_OUT.c.bulk_job_id.is_(None))
    out = []
    for r in session.execute(query):
        expired = r.lease_until is None or aware(r.lease_until) < stamp
        if job_id is not None or expired or owner_gone(r.lease_owner):
            out.append(r)
    return out


def recover(addon: AddonContext, session: Session, job_id: int | None = None) -> tuple[int, int]:
    """Settle stale ``sending`` rows: proven by Sent -> sent, else unknown.

    Returns (proven sent, unknown)."""
    rows = stale_sending(session, job_id)
    if not rows:
        return 0, 0
    policy = connection_policy(addon, session)
    by_mailbox: dict[int, list] = {}
    for r in rows:
        by_mailbox.setdefault(r.mailbox_id, []).append(r)
    proven_total = unknown_total = 0
    for mailbox_id, items in by_mailbox.items():
        mb = session.get(Mailbox, mailbox_id)
        proven = prove_sent(addon, mb, policy, [r.message_id_header for r in items])
        for r in items:
            if r.message_id_header in proven:
                values = {"state": "sent", "sent_at": now()}
                proven_total += 1
            else:
                values = {"state": "unknown", "error_kind": "crash",
                          "error": UNKNOWN_SENTENCE}
                unknown_total += 1
            session.execute(update(_OUT).where(_OUT.c.id == r.id, _OUT.c.state == "sending")
                            .values(lease_owner=None, lease_until=None, **values))
        session.commit()
    log.warning("recovered %d sending rows: %d proven sent, %d unknown", len(rows),
                proven_total, unknown_total)
    return proven_total, unknown_total


def run_due(addon: AddonContext, limit: int = 100) -> int:
    """One send-job tick for single messages: recover, retry due rows, file sent ones."""
    done = 0
    with Session(addon.engine, expire_on_commit=False) as session:
        recover(addon, session)
        stamp = now()
        due = session.scalars(select(_OUT.c.id).where(
            _OUT.c.state == "queued", _OUT.c.bulk_job_id.is_(None),
            or_(_OUT.c.next_attempt_at.is_(None), _OUT.c.next_attempt_at <= stamp))
            .order_by(_OUT.c.id).limit(limit)).all()
    for row_id in due:
        deliver(addon, row_id)
        done += 1
    file_pending(addon)
    return done


def file_pending(addon: AddonContext, limit: int = 500) -> int:
    """Rows delivered but not yet in Sent (IMAP was down): try again."""
    with Session(addon.engine, expire_on_commit=False) as session:
        running = select(BulkJob.id).where(BulkJob.state == "running")
        rows = session.scalars(select(OutboundMessage).where(
            OutboundMessage.state == "sent",
            or_(OutboundMessage.bulk_job_id.is_(None),
                OutboundMessage.bulk_job_id.not_in(running)))
            .order_by(OutboundMessage.id).limit(limit)).all()
        if not rows:
            return 0
        policy = connection_policy(addon, session)
        by_mailbox: dict[int, list] = {}
        for r in rows:
            by_mailbox.setdefault(r.mailbox_id, []).append(r)
        for mailbox_id, items in by_mailbox.items():
            mb = session.get(Mailbox, mailbox_id)
            file_rows(addon, session, mb, items, policy)
        return len(rows)
