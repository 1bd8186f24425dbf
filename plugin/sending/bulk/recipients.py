"""Who a bulk email goes to, and the administrator's limits on how many."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from plugin.context import AddonContext
from plugin.host import HostRecord, HostUser, RecordRef
from plugin.mail.addresses import normalize_address
from plugin.models import GlobalSettings
from plugin.models._types import UTCDateTime
from plugin.models.outbound import OutboundMessage
from plugin.sending import suppression
from plugin.sending.lease import now

_OUT = OutboundMessage.__table__


@dataclass
class Selection:
    """The records picked in the host's list, split into sendable and left out."""

    records: list[HostRecord]
    #: {"name": ..., "reason": ...} for everyone left out before sending
    skipped: list[dict]


def select_recipients(addon: AddonContext, user: HostUser, ids: list[str],
                      kind: str = "candidate") -> Selection:
    """The records ``kind:id`` of ``ids`` the user may see (see :func:`select_records`)."""
    refs = [RecordRef(kind, str(i).strip()) for i in ids if str(i).strip()]
    return select_records(addon, user, refs)


def select_records(addon: AddonContext, user: HostUser, refs: list[RecordRef]) -> Selection:
    """The records the user may see, each with its first valid address not yet chosen
    (a record may have several), in the order picked; the rest with the reason."""
    refs = list(dict.fromkeys(refs))
    found = addon.host.get_records(refs)
    allowed = addon.host.may_view_records(user, list(found))
    records: list[HostRecord] = []
    skipped: list[dict] = []
    seen_addresses: set[str] = set()
    for ref in refs:
        rec = found.get(ref)
        if rec is None or ref not in allowed:
            label = addon.host.kind(ref.kind).label if hasattr(addon.host, "kind") else ref.kind
            skipped.append({"name": f"{label[:1].upper()}{label[1:]} {ref.id}", "ref": str(ref),
                            "reason": "Not found, or not shared with you."})
            continue
        addresses = [e.strip() for e in (rec.emails or (rec.email,)) if (e or "").strip()]
        if not addresses:
            skipped.append({"name": rec.name, "ref": str(ref), "reason": "No email address."})
            continue
        valid = [(a, n) for a in addresses
                 if (n := normalize_address(a)) is not None and not any(c in a for c in "\r\n")]
        if not valid:
            skipped.append({"name": rec.name, "ref": str(ref),
                            "reason": f"'{addresses[0][:80]}' is not a valid email address."})
            continue
        fresh = [n for _a, n in valid if n.lower() not in seen_addresses]
        if not fresh:
            skipped.append({"name": rec.name, "ref": str(ref),
                            "reason": f"{valid[0][1]} is already a recipient (one copy only)."})
            continue
        seen_addresses.add(fresh[0].lower())
        records.append(HostRecord(rec.ref, rec.name, fresh[0], rec.url, rec.first_name,
                                  rec.last_name))
    return _without_suppressed(addon, Selection(records, skipped))


def _without_suppressed(addon: AddonContext, selection: Selection) -> Selection:
    """Leave out addresses on the suppression list (unsubscribed, hard-bounced), with why."""
    with Session(addon.engine) as session:
        found = suppression.suppressed(session, [r.email for r in selection.records])
        if not found:
            return selection
        kept = []
        for rec in selection.records:
            entry = found.get(rec.email.lower())
            if entry is None:
                kept.append(rec)
            else:
                selection.skipped.append({"name": rec.name, "ref": str(rec.ref),
                                          "reason": suppression.sentence(entry)})
    return Selection(kept, selection.skipped)


def sent_today(session: Session, user_id: str) -> int:
    """Bulk messages the user sent (or may have sent) in the last 24 hours."""
    since = now() - timedelta(days=1)
    return session.scalar(select(func.count()).select_from(_OUT).where(
        _OUT.c.user_id == user_id, _OUT.c.bulk_job_id.is_not(None),
        _OUT.c.state.in_(("sending", "sent", "filed", "unknown")),
        _OUT.c.date >= literal(since, UTCDateTime()))) or 0


def queued_elsewhere(session: Session, user_id: str) -> int:
    """Bulk messages of the user's other jobs still waiting to be sent."""
    return session.scalar(select(func.count()).select_from(_OUT).where(
        _OUT.c.user_id == user_id, _OUT.c.bulk_job_id.is_not(None),
        _OUT.c.state == "queued")) or 0


def limit_problem(session: Session, gs: GlobalSettings, user_id: str,
                  count: int) -> str | None:
    """The plain sentence when sending to ``count`` recipients breaks an admin limit."""
    if count > gs.bulk_per_send:
        return (f"You selected {count} recipients; your administrator allows at most "
                f"{gs.bulk_per_send} in one bulk email. Select fewer and send the rest "
                "in another one.")
    left = gs.bulk_per_day - sent_today(session, user_id) - queued_elsewhere(session, user_id)
    if count > left:
        left = max(left, 0)
        return (f"Your administrator allows {gs.bulk_per_day} bulk messages a day and you "
                f"can send {left} more today. Select at most {left} recipients, or send "
                "tomorrow.")
    return None
