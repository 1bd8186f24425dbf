"""A mailbox's fetch state: success, failure with back-off, pause, and resume."""

from __future__ import annotations

from plugin.models import Mailbox


def password_changed(mb: Mailbox) -> None:
    """The owner gave a new password or server: resume fetching at once."""
    mb.paused = False
    mb.pause_reason = None
    mb.auth_failures = 0
    mb.failure_count = 0
    mb.last_error = None
    mb.last_error_kind = None
    mb.next_fetch_at = None
