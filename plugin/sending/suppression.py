"""The company's suppression list: addresses bulk email never goes to again, because
they unsubscribed or hard-bounced. Single messages a person writes are never blocked."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.models.deliverability import Suppression

REASONS = {"unsubscribed": "Does not want bulk email (unsubscribed {when}).",
           "bounced": "Bounced: {detail} ({when}); bulk email skips this address."}


def suppress(session: Session, address: str, reason: str, detail: str = "",
             outbound_id: int | None = None) -> bool:
    """Add the address (committed); False when it was on the list already."""
    key = address.strip().lower()
    if session.scalar(select(Suppression.id).where(Suppression.address == key)) is not None:
        return False
    session.add(Suppression(address=key, reason=reason, detail=detail[:200],
                            outbound_id=outbound_id))
    try:
        session.commit()
    except IntegrityError:  # another request added it at the same moment
        session.rollback()
        return False
    return True


def suppressed(session: Session, addresses: list[str]) -> dict[str, Suppression]:
    """The suppression entries of those addresses, by lower-cased address."""
    keys = sorted({a.strip().lower() for a in addresses if a})
    out: dict[str, Suppression] = {}
    for i in range(0, len(keys), 500):
        for row in session.scalars(select(Suppression).where(
                Suppression.address.in_(keys[i:i + 500]))):
            out[row.address] = row
    return out


def sentence(entry: Suppression) -> str:
    """Why bulk email leaves the address out, in plain words."""
    when = entry.created_at.strftime("%d %b %Y") if entry.created_at else ""
    return REASONS.get(entry.reason, "{detail}").format(when=when, detail=entry.detail)


def add_pending(session: Session, address: str, reason: str, detail: str = "",
                outbound_id: int | None = None) -> None:
    """:func:`suppress` inside the caller's transaction (the caller commits)."""
    key = address.strip().lower()
    if session.scalar(select(Suppression.id).where(Suppression.address == key)) is None and \
            not any(isinstance(o, Suppression) and o.address == key for o in session.new):
        session.add(Suppression(address=key, reason=reason, detail=detail[:200],
                                outbound_id=outbound_id))
