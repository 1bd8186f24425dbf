"""Send later: a date and time typed in the sender's time zone, read into UTC, and
the scheduled message cancelled until it starts.

A scheduled single message is a ``queued`` outbox row whose first attempt waits
(``next_attempt_at``); a scheduled bulk job is a ``queued`` job held until its time
(its lease, like a job waiting for its provider's next day). The send job starts both
when their time comes; nothing else is needed."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from plugin.mail import build as compose
from plugin.models.outbound import OutboundMessage
from plugin.sending.lease import now

_OUT = OutboundMessage.__table__
#: how scheduled times are typed (the browser's datetime-local value, or with a space)
FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S")
#: how far ahead mail may be scheduled
MAX_DAYS = 366


@dataclass
class SendAt:
    """The scheduled moment (UTC, None: now), or why the typed one cannot be used."""

    when: datetime | None = None
    error: str | None = None


def zone_names() -> list[str]:
    """Every IANA time zone name, sorted (for the form's suggestions)."""
    return sorted(zoneinfo.available_timezones())


def read(date_text: str, zone_text: str) -> SendAt:
    """``date_text`` (local time in ``zone_text``) as UTC; empty: send now."""
    date_text, zone_text = (date_text or "").strip(), (zone_text or "UTC").strip() or "UTC"
    if not date_text:
        return SendAt()
    try:
        zone = zoneinfo.ZoneInfo(zone_text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return SendAt(error=f"'{zone_text[:60]}' is not a time zone. Choose one such as "
                            "Europe/Berlin or America/New_York.")
    local = None
    for fmt in FORMATS:
        try:
            local = datetime.strptime(date_text, fmt)
            break
        except ValueError:
            continue
    if local is None:
        return SendAt(error="Enter the date and time like 2026-12-24 09:30.")
    when = local.replace(tzinfo=zone).astimezone(zoneinfo.ZoneInfo("UTC"))
    stamp = now()
    if when <= stamp:
        return SendAt(error="That time has passed. Choose a later one, or leave it empty "
                            "to send now.")
    if (when - stamp).days > MAX_DAYS:
        return SendAt(error="Schedule at most a year ahead.")
    return SendAt(when)


def schedule_row(session: Session, row: OutboundMessage, when: datetime) -> None:
    """Hold a freshly queued single message until ``when`` (committed)."""
    session.execute(update(_OUT).where(_OUT.c.id == row.id, _OUT.c.state == "queued")
                    .values(next_attempt_at=when))
    session.commit()
    session.refresh(row)


def is_scheduled(row: OutboundMessage) -> bool:
    """A single message waiting for its scheduled time (never attempted yet)."""
    return row.state == "queued" and row.bulk_job_id is None and not row.attempts and \
        row.next_attempt_at is not None


def cancel_row(session: Session, row: OutboundMessage) -> bool:
    """Cancel a scheduled single message that has not started; False if it has."""
    result = session.execute(update(_OUT).where(
        _OUT.c.id == row.id, _OUT.c.state == "queued", _OUT.c.attempts == 0,
        _OUT.c.bulk_job_id.is_(None)).values(
        state="cancelled", error="Not sent: you cancelled it before its time."))
    session.commit()
    return result.rowcount == 1


def compose_values(row: OutboundMessage) -> dict:
    """The composer's values for a scheduled message taken back to be edited (its time
    shown in UTC; the records it was to be noted on kept)."""
    def text(col: str | None) -> str:
        return ", ".join(f'"{n}" <{a}>' if n and '"' not in n else a
                         for n, a in compose.addresses_from_json(col))

    when = row.next_attempt_at
    return {"to": text(row.to_addrs), "cc": text(row.cc_addrs), "bcc": text(row.bcc_addrs),
            "subject": row.subject, "body": row.body_text,
            "formatted": row.body_html is not None, "source": "", "mode": "",
            "records": [r for r in (row.record_refs or "").split() if r],
            "send_at": when.strftime("%Y-%m-%dT%H:%M") if when else "", "time_zone": "UTC"}
