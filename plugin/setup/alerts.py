"""The one sentence that tells a user their mailbox stopped working, and what fixes it.

Shown once per page wherever the owner works: a banner on the add-on's pages and a
small partial the host places in its header (``IntegratedEmail.header_alert``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from plugin.models import Mailbox
from plugin.setup.mailbox import active_mailbox

#: failed fetches in a row before a mailbox that is not paused counts as failing
FAILING_AFTER = 3


@dataclass(frozen=True)
class MailboxAlert:
    """A stopped or failing mailbox: what happened, in plain words, and the fix."""

    mailbox_id: int
    sentence: str
    action: str


def owner_alert(session: Session, user_id: str) -> MailboxAlert | None:
    """The alert for the user's active mailbox, or None while it works."""
    mb = active_mailbox(session, user_id)
    return alert_for(mb) if mb is not None else None


def alert_for(mb: Mailbox) -> MailboxAlert | None:
    """What to tell the owner of ``mb``; None while it works."""
    name = mb.account_name
    if mb.needs_sign_in:
        return MailboxAlert(mb.id, f"Your mailbox '{name}' has stopped fetching and sending: "
                            "your sign-in with your email provider has expired or was "
                            "withdrawn.", "Sign in again")
    if mb.needs_password:
        return MailboxAlert(mb.id, f"Your mailbox '{name}' has stopped fetching mail: "
                            "the mail server rejected its password.", "Update your password")
    if mb.paused:
        reason = _sentence(mb.last_error) or "fetching was stopped after repeated errors."
        return MailboxAlert(mb.id, f"Your mailbox '{name}' is paused: {reason}",
                            "Check the mailbox settings")
    if mb.last_error and (mb.failure_count or 0) >= FAILING_AFTER:
        return MailboxAlert(mb.id, f"Your mailbox '{name}' cannot fetch mail: "
                            f"{_sentence(mb.last_error)}", "Check the mailbox settings")
    return None


def _sentence(text: str | None) -> str:
    """A stored error sentence, lower-cased at the start to follow a colon."""
    text = (text or "").strip()
    return text[:1].lower() + text[1:] if text[:1].isupper() and text[1:2].islower() else text
