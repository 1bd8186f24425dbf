"""The one sentence that tells a user their mailbox stopped working, and what fixes it.

Shown once per page wherever the owner works: a banner on the add-on's pages and a
small partial the host places in its header (``IntegratedEmail.header_alert``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from plugin.models import Mailbox
from plugin.setup.mailbox import active_mailbox
from plugin.words import N_, said

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
        return MailboxAlert(mb.id, N_(
            "Your mailbox '%(name)s' has stopped fetching and sending: your sign-in with your "
            "email provider has expired or was withdrawn.", name=name), N_("Sign in again"))
    if mb.needs_password:
        return MailboxAlert(mb.id, N_(
            "Your mailbox '%(name)s' has stopped fetching mail: the mail server rejected its "
            "password.", name=name), N_("Update your password"))
    # The stored error is a whole sentence (an English msgid, translated where shown), so
    # it follows the mailbox's name as a sentence of its own.
    if mb.paused:
        reason = (mb.last_error or "").strip() or N_(
            "Fetching was stopped after repeated errors.")
        return MailboxAlert(mb.id, N_("Your mailbox '%(name)s' is paused. %(reason)s",
                                      name=name, reason=said(reason)),
                            N_("Check the mailbox settings"))
    if mb.last_error and (mb.failure_count or 0) >= FAILING_AFTER:
        return MailboxAlert(mb.id, N_("Your mailbox '%(name)s' cannot fetch mail. %(reason)s",
                                      name=name, reason=said(mb.last_error.strip())),
                            N_("Check the mailbox settings"))
    return None
