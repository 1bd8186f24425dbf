"""How much a mailbox may send: its provider's limits, what it already sent, and
how much slower it must go after its server said "too fast".

The budget is counted from the outbox (every row that went, or may have gone, out:
single messages, replies and bulk alike), over rolling windows of one minute and 24
hours, as the providers count. Bulk paces itself from it; a single message a person
wrote is never held back by it, but it uses the budget up like any other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, literal, select
from sqlalchemy.orm import Session

from plugin.fetching.store import begin_write
from plugin.mail.presets import preset_for
from plugin.models import Mailbox
from plugin.models._types import UTCDateTime
from plugin.models.deliverability import SendLimit, SendPace
from plugin.models.outbound import OutboundMessage
from plugin.sending.lease import aware, now

_OUT = OutboundMessage.__table__
_PACE = SendPace.__table__
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
#: rows that used the budget: they went out, or may have
COUNTED_STATES = ("sending", "sent", "filed", "unknown")
#: how long a mailbox stays slowed down after its server's last throttling answer
SLOW_FOR = timedelta(hours=1)


@dataclass(frozen=True)
class ProviderLimit:
    """What one provider lets one mailbox send (0: no limit)."""

    key: str
    label: str
    per_minute: int
    per_day: int


# Sources (checked 2026-12; providers change them, which is why admins can edit them):
# - Microsoft 365 / Exchange Online: 30 messages a minute, 10,000 recipients a day per
#   mailbox. learn.microsoft.com/office365/servicedescriptions/exchange-online-service-
#   description/exchange-online-limits ("Sending limits").
# - Outlook.com (consumer): 300 recipients a day for accounts in good standing; Microsoft
#   publishes no per-minute figure, so the Exchange Online one is used.
#   support.microsoft.com "Sending limits in Outlook.com".
# - Gmail (consumer): 500 recipients a day; support.google.com/mail/answer/22839. Google
#   publishes no per-minute figure for SMTP; 20 a minute keeps 500 from going out in a burst.
# - Google Workspace: 2,000 messages a day per user (500 in a trial);
#   support.google.com/a/answer/166852.
# - Yahoo Mail: no published figure; about 500 a day is what Yahoo's help answers give.
# - Zoho Mail: depends on the plan, the lowest paid plan allows 500 a day;
#   zoho.com/mail/help/adminconsole/email-sending-limit.html.
# - iCloud Mail: 1,000 messages a day; support.apple.com/102198 ("iCloud Mail limits").
# - Fastmail: per-plan limits, the lowest 2,000 recipients a day;
#   fastmail.help "Sending limits".
# Everything else: IE_SEND_PER_MINUTE_DEFAULT and IE_SEND_PER_DAY_DEFAULT (key "other").
PROVIDER_LIMITS: tuple[ProviderLimit, ...] = (
    ProviderLimit("microsoft_365", "Microsoft 365 (Exchange Online)", 30, 10_000),
    ProviderLimit("outlook_com", "Outlook.com", 30, 300),
    ProviderLimit("gmail", "Gmail", 20, 500),
    ProviderLimit("google_workspace", "Google Workspace", 20, 2_000),
    ProviderLimit("yahoo", "Yahoo Mail", 20, 500),
    ProviderLimit("zoho", "Zoho Mail", 20, 500),
    ProviderLimit("icloud", "iCloud Mail", 20, 1_000),
    ProviderLimit("fastmail", "Fastmail", 30, 2_000),
)
OTHER = "other"
_BY_KEY = {p.key: p for p in PROVIDER_LIMITS}
#: SMTP hosts of the presets -> provider key (custom domains on the big providers)
_BY_HOST = {"smtp.office365.com": "microsoft_365", "smtp-mail.outlook.com": "outlook_com",
            "smtp.gmail.com": "google_workspace", "smtp.mail.yahoo.com": "yahoo",
            "smtp.zoho.com": "zoho", "smtp.zoho.eu": "zoho", "smtp.mail.me.com": "icloud",
            "smtp.fastmail.com": "fastmail"}
#: preset names whose own domains are the consumer service
_CONSUMER = {"Gmail": "gmail", "Microsoft 365 / Outlook.com": "outlook_com",
             "Yahoo Mail": "yahoo", "Zoho Mail": "zoho", "iCloud Mail": "icloud",
             "Fastmail": "fastmail"}


def provider_key(email: str, out_host: str) -> str:
    """The provider a mailbox sends through (its address first, then its SMTP host)."""
    preset = preset_for(email)
    if preset is not None and preset.name in _CONSUMER:
        return _CONSUMER[preset.name]
    return _BY_HOST.get((out_host or "").strip().lower().rstrip("."), OTHER)


def default_limit(key: str, config: Mapping[str, Any]) -> ProviderLimit:
    """The built-in limit of a provider key (the config's defaults for "other")."""
    if key in _BY_KEY:
        return _BY_KEY[key]
    return ProviderLimit(OTHER, "Other mail servers",
                         int(config.get("IE_SEND_PER_MINUTE_DEFAULT", 30) or 0),
                         int(config.get("IE_SEND_PER_DAY_DEFAULT", 2000) or 0))


def all_limits(session: Session, config: Mapping[str, Any]) -> list[ProviderLimit]:
    """Every provider's limit as it applies now (the admin's own where they set one)."""
    own = {r.provider: r for r in session.scalars(select(SendLimit))}
    out = []
    for key in [*(p.key for p in PROVIDER_LIMITS), OTHER]:
        base = default_limit(key, config)
        row = own.get(key)
        out.append(ProviderLimit(key, base.label, row.per_minute, row.per_day) if row
                   else base)
    return out


def save_limit(session: Session, key: str, per_minute: int, per_day: int) -> None:
    """The admin's own limit for a provider (the caller commits)."""
    row = session.scalar(select(SendLimit).where(SendLimit.provider == key))
    if row is None:
        row = SendLimit(provider=key)
        session.add(row)
    row.per_minute, row.per_day, row.updated_at = per_minute, per_day, now()


def limit_for(session: Session, mb: Mailbox, config: Mapping[str, Any]) -> ProviderLimit:
    """The limit that applies to the mailbox."""
    key = provider_key(mb.email, mb.out_host)
    return next(p for p in all_limits(session, config) if p.key == key)


# ------------------------------------------------------------------ what was sent


def sent_since(conn: Connection | Session, mailbox_id: int, since: datetime) -> int:
    """Messages of the mailbox that went (or may have gone) out since ``since``."""
    return conn.execute(select(func.count()).select_from(_OUT).where(
        _OUT.c.mailbox_id == mailbox_id, _OUT.c.state.in_(COUNTED_STATES),
        _OUT.c.date >= literal(since, UTCDateTime()))).scalar() or 0


def day_reopens_at(conn: Connection | Session, mailbox_id: int, per_day: int,
                   stamp: datetime) -> datetime:
    """When the 24-hour window has room for one more message again."""
    dates = conn.execute(select(_OUT.c.date).where(
        _OUT.c.mailbox_id == mailbox_id, _OUT.c.state.in_(COUNTED_STATES),
        _OUT.c.date >= literal(stamp - DAY, UTCDateTime()))
        .order_by(_OUT.c.date.desc()).limit(per_day)).scalars().all()
    if len(dates) < per_day:
        return stamp
    return aware(dates[-1]) + DAY


# ------------------------------------------------------------------ throttling


def paced_per_minute(conn: Connection | Session, mailbox_id: int, limit: ProviderLimit,
                     stamp: datetime) -> int:
    """The rate in force: the provider's, or the slower one after throttling."""
    row = conn.execute(select(_PACE.c.per_minute, _PACE.c.slowed_until).where(
        _PACE.c.mailbox_id == mailbox_id)).first()
    if row is None or row.slowed_until is None or aware(row.slowed_until) <= stamp:
        return limit.per_minute
    return row.per_minute if not limit.per_minute else min(row.per_minute, limit.per_minute)


def record_throttle(conn: Connection, mailbox_id: int, current_per_minute: int) -> int:
    """The server said "too fast": halve the mailbox's rate for a while; the new rate.

    ``current_per_minute`` 0 (no limit) starts the slow-down at 60 a minute."""
    stamp = now()
    slower = max(1, (current_per_minute or 120) // 2)
    begin_write(conn)
    found = conn.execute(select(_PACE.c.id).where(_PACE.c.mailbox_id == mailbox_id)).first()
    if found is None:
        conn.execute(_PACE.insert().values(mailbox_id=mailbox_id, per_minute=slower,
                                           slowed_until=stamp + SLOW_FOR, throttles=1))
    else:
        conn.execute(_PACE.update().where(_PACE.c.id == found.id).values(
            per_minute=slower, slowed_until=stamp + SLOW_FOR,
            throttles=_PACE.c.throttles + 1))
    conn.commit()
    return slower


# ------------------------------------------------------------------ when it will finish


def expected_finish(remaining: int, per_minute: int, per_day: int, day_left: int,
                    reopens_at: datetime, stamp: datetime) -> datetime | None:
    """When ``remaining`` messages will have gone out at this pace (None: no limits)."""
    if remaining <= 0:
        return stamp
    if not per_minute and not per_day:
        return None
    gap = timedelta(seconds=60 / per_minute) if per_minute else timedelta(0)
    if not per_day or remaining <= day_left:
        return stamp + gap * remaining
    rest = remaining - max(day_left, 0)
    start = max(reopens_at, stamp)
    days = math.ceil(rest / per_day) - 1
    last = rest - days * per_day
    return start + DAY * days + gap * last
