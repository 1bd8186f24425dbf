"""What a sync outcome does to a mailbox's status: success, back-off, pause.

The status panel of the Setup issue reads these fields; the dispatcher (next issue)
reads ``next_fetch_at`` and ``paused``. Each mailbox's row is its own: one
mailbox's failures never touch another's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from plugin.mail.errors import (
    AUTH_FAILED,
    OAUTH_REJECTED,
    OAUTH_SCOPE,
    OAUTH_SIGN_IN_AGAIN,
    SENTENCES,
)
from plugin.models import Mailbox
from plugin.words import N_, said

#: consecutive rejected logins before fetching pauses (providers lock accounts that
#: keep trying a wrong password)
AUTH_PAUSE_AFTER = 3
#: the pause of a mailbox whose Google or Microsoft sign-in must be renewed
OAUTH_PAUSE = "oauth"
AUTH_PAUSED_SENTENCE = N_("The mail server rejected your password. "
                          "Update your password to resume fetching.")
UIDVALIDITY_PAUSED_SENTENCE = N_(
    "The mail server keeps renumbering your folders, so fetching was paused to avoid "
    "importing the same mail again and again. Ask your mail provider or administrator, "
    "then save your mailbox settings to resume.")
INTERNAL_SENTENCE = N_("Fetching stopped on an unexpected error. It will be retried; "
                       "tell your administrator if this keeps happening.")
#: back-off after a failure: 1 min, 2, 4, ... at most 2 hours
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=2)


def backoff(failures: int) -> timedelta:
    """How long to wait after ``failures`` failed syncs in a row."""
    if failures <= 0:
        return timedelta(0)
    return min(BACKOFF_BASE * (2 ** min(failures - 1, 20)), BACKOFF_MAX)


def record_success(mb: Mailbox, now: datetime, interval_minutes: int) -> None:
    """A sync went well: clear the errors, next fetch after the interval."""
    mb.last_success_at = now
    mb.last_error = None
    mb.last_error_kind = None
    mb.failure_count = 0
    mb.auth_failures = 0
    mb.next_fetch_at = now + timedelta(minutes=interval_minutes)


def record_failure(mb: Mailbox, now: datetime, kind: str, sentence: str) -> None:
    """A failed sync: back off, and pause after repeated wrong passwords."""
    mb.failure_count = (mb.failure_count or 0) + 1
    mb.last_error_kind = kind
    mb.last_error = sentence
    if kind == OAUTH_SIGN_IN_AGAIN:
        pause(mb, OAUTH_PAUSE, sentence)
        return
    if kind in (OAUTH_REJECTED, OAUTH_SCOPE):
        # refused although just refreshed: only a new sign-in (new consent) can help
        mb.auth_failures = (mb.auth_failures or 0) + 1
        if mb.auth_failures >= AUTH_PAUSE_AFTER:
            pause(mb, OAUTH_PAUSE, SENTENCES[OAUTH_SIGN_IN_AGAIN])
            return
    elif kind == AUTH_FAILED:
        mb.auth_failures = (mb.auth_failures or 0) + 1
        if mb.auth_failures >= AUTH_PAUSE_AFTER:
            pause(mb, "auth", AUTH_PAUSED_SENTENCE)
            return
    else:
        mb.auth_failures = 0
    mb.next_fetch_at = now + backoff(mb.failure_count)


def password_changed(mb: Mailbox) -> None:
    """The owner gave a new password or server: resume fetching at once."""
    mb.paused = False
    mb.pause_reason = None
    mb.auth_failures = 0
    mb.failure_count = 0
    mb.last_error = None
    mb.last_error_kind = None
    mb.next_fetch_at = None


def pause(mb: Mailbox, reason: str, sentence: str) -> None:
    """Stop fetching until the owner acts; ``sentence`` tells them what to do."""
    mb.paused = True
    mb.pause_reason = reason
    mb.last_error = sentence
    mb.next_fetch_at = None


def request_fetch(engine: Engine, mailbox_id: int) -> None:
    """Fetch now: make the mailbox due at once, its progress count starting from zero."""
    with engine.begin() as conn:
        conn.execute(update(Mailbox).where(Mailbox.id == mailbox_id)
                     .values(fetch_requested=True, progress_count=0))


#: server actions besides fetching, in the words of the status panel
ACTION_WORDS = {
    "sent_copy": N_("Saving sent mail in your Sent folder"),
    "consolidate": N_("Filing client mail into your chosen folder"),
    "flags": N_("Carrying a webmail change (read or deleted) to the mail server"),
}
UNEXPECTED_SENTENCE = N_("an unexpected error. It will be tried again.")
#: how a stored action error reads: ACTION_WORDS, then the failure's sentence
ACTION_FAILED = N_("%(action)s failed: %(reason)s")


def record_action(engine: Engine, mailbox_id: int, action: str,
                  sentence: str | None) -> None:
    """How a server action went (``sentence`` None: it worked). A failure shows on the
    mailbox's status panel until the same action next succeeds."""
    table = Mailbox.__table__
    with engine.begin() as conn:
        if sentence is None:
            conn.execute(update(table).where(
                table.c.id == mailbox_id, table.c.action_error_kind == action).values(
                action_error=None, action_error_kind=None, action_error_at=None))
        else:
            conn.execute(update(table).where(table.c.id == mailbox_id).values(
                action_error=ACTION_FAILED % {"action": ACTION_WORDS[action],
                                              "reason": sentence},
                action_error_kind=action, action_error_at=datetime.now(UTC)))


def action_error_sentence(kind: str | None, stored: str | None) -> str:
    """A stored action error as a sentence the viewer's language can be put into (the
    action's words and the failure's sentence are msgids of their own)."""
    stored = stored or ""
    words = ACTION_WORDS.get(kind or "")
    head = ACTION_FAILED % {"action": words, "reason": ""} if words else None
    if head is None or not stored.startswith(head):
        return stored
    return N_(ACTION_FAILED, action=said(words), reason=said(stored[len(head):]))
