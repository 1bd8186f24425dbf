"""When a bulk run must stop for now and wait: outside its send window, or when its
provider's 24 hours are full (every send path of the mailbox counts)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from plugin.sending import limits
from plugin.sending.bulk import window as send_window
from plugin.sending.lease import now


class Wait(NamedTuple):
    """Until when the run waits, and the sentence the job shows meanwhile."""

    until: datetime
    notice: str


class Hold:
    """The send window and the daily budget of one run, asked before each message."""

    def __init__(self, conn: Connection, mailbox_id: int, limit: limits.ProviderLimit,
                 window: send_window.SendWindow | None) -> None:
        self.conn, self.mailbox_id = conn, mailbox_id
        self.limit, self.window = limit, window
        #: messages the provider's 24 hours still have room for
        self.day_left = 0
        self._refresh()

    def _refresh(self) -> None:
        if self.limit.per_day:
            used = limits.sent_since(self.conn, self.mailbox_id, now() - limits.DAY)
            self.conn.rollback()
            self.day_left = self.limit.per_day - used

    def sent_one(self) -> None:
        """A message of the run went out."""
        self.day_left -= 1

    def wait(self) -> Wait | None:
        """None: the next message may go; else until when the run waits, and why."""
        if self.window is not None:
            opens = send_window.next_opening(self.window, now())
            if opens is not None:
                return Wait(opens, f"Sends only {self.window.describe()}; it goes on by "
                                   f"itself at {opens:%d %b %Y %H:%M} UTC.")
        if not self.limit.per_day or self.day_left > 0:
            return None
        self._refresh()  # single messages count too; old ones leave the window
        if self.day_left > 0:
            return None
        until = limits.day_reopens_at(self.conn, self.mailbox_id, self.limit.per_day, now())
        self.conn.rollback()
        return Wait(until, f"{self.limit.label} allows {self.limit.per_day:,} messages in "
                           "24 hours from one mailbox and that many went out. The rest go "
                           f"out by themselves from {until:%d %b %Y %H:%M} UTC.")
