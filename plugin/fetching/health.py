"""The admin's overview of mailbox health: state, last fetch, errors, daily imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.context import AddonContext

from plugin.models import Mailbox, Message
from plugin.words import N_

DAYS = 14


@dataclass
class MailboxHealth:
    """One row of the overview."""

    mailbox: Mailbox
    owner_name: str
    state: str  # "active", "paused", "never", "inactive", "outgoing"
    per_day: list[int] = field(default_factory=list)

    @property
    def state_text(self) -> str:
        """The state as the admin reads it."""
        mb = self.mailbox
        if self.state == "paused":
            if mb.needs_sign_in:
                return N_("Paused: needs to sign in again")
            return N_("Paused: needs a new password") if mb.needs_password else N_("Paused")
        return {"active": N_("Fetching"), "never": N_("Never fetched"),
                "inactive": N_("Not the active mailbox"), "outgoing": N_("Outgoing only"),
                "failing": N_("Failing")}[self.state]

    @property
    def peak(self) -> int:
        """The highest daily count (at least 1: the chart's scale)."""
        return max(self.per_day or [0]) or 1


def _state(mb: Mailbox) -> str:
    if not mb.protocol:
        return "outgoing"
    if mb.paused:
        return "paused"
    if not mb.is_active:
        return "inactive"
    if mb.last_success_at is None:
        return "never" if not mb.last_error else "failing"
    return "failing" if mb.last_error else "active"


def overview(addon: AddonContext, session: Session) -> list[MailboxHealth]:
    """Every mailbox with its state and daily imports, those needing attention first."""
    today = datetime.now(timezone.utc).date()
    start = today - timedelta(days=DAYS - 1)
    since = datetime.combine(start, datetime.min.time(), tzinfo=timezone.utc)
    boxes = list(session.scalars(select(Mailbox).order_by(Mailbox.user_id, Mailbox.id)))
    day = func.date(Message.created_at)
    counts: dict[tuple[int, date], int] = {}
    for mailbox_id, d, n in session.execute(
            select(Message.mailbox_id, day, func.count()).where(Message.created_at >= since,
                                                                Message.origin == "synced")
            .group_by(Message.mailbox_id, day)):
        key_day = d if isinstance(d, date) else date.fromisoformat(str(d)[:10])
        counts[(mailbox_id, key_day)] = n
    names = {u.id: u.name for u in addon.host.list_users()}
    rows = []
    for mb in boxes:
        per_day = [counts.get((mb.id, start + timedelta(days=i)), 0) for i in range(DAYS)]
        rows.append(MailboxHealth(mb, names.get(mb.user_id, f"User {mb.user_id}"), _state(mb),
                                  per_day))
    # Those needing attention first.
    order = {"paused": 0, "failing": 1, "never": 2, "active": 3, "inactive": 4, "outgoing": 5}
    rows.sort(key=lambda r: (order[r.state], r.owner_name.lower()))
    return rows
