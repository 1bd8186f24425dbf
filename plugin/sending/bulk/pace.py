"""The provider's pace of one bulk run: messages a minute, planned on a fixed grid, and
never more than that many starts in any 60 seconds of the sending clock."""

from __future__ import annotations

from collections import deque

from plugin.testing import clock

#: real seconds added to the per-minute window, so the server's clock (which stamps a
#: message a little after we start it, by a varying delay) never counts one too many
WINDOW_MARGIN = 0.25


class Pace:
    """When the next message of a run may start.

    ``interval`` is the larger of the admin's spacing and 60 / messages a minute; each
    start is planned one interval after the previous plan (not after the previous
    start), so time spent sending does not add up into drift; and the last minute's
    starts are kept, so a late message never lets the next ones crowd one minute."""

    def __init__(self, spacing: int, per_minute: int) -> None:
        self.spacing = spacing
        self.per_minute = 0
        self.interval = 0.0
        self._starts: deque[float] = deque()
        self._next_at = clock.monotonic()
        self.set(per_minute)

    def set(self, per_minute: int) -> None:
        """Messages a minute from now on (0: as fast as the server takes them)."""
        self.per_minute = per_minute
        self.interval = max(float(self.spacing), 60.0 / per_minute if per_minute else 0.0)
        self._starts = deque(self._starts, maxlen=per_minute or 1)

    @property
    def paced(self) -> bool:
        """Whether messages wait for their turn at all."""
        return bool(self.interval)

    def wait_seconds(self) -> float:
        """Clock seconds until the next message may start (0 or less: now)."""
        if not self.interval:
            return 0.0
        due = self._next_at
        if self.per_minute and len(self._starts) >= self.per_minute:
            due = max(due, self._starts[0] + 60.0 + clock.scaled(WINDOW_MARGIN))
        return due - clock.monotonic()

    def started(self) -> None:
        """A message starts now: count it, and plan the next one."""
        if not self.interval:
            return
        start = clock.monotonic()
        self._starts.append(start)
        self._next_at = max(self._next_at + self.interval, start - self.interval)

    def restart(self) -> None:
        """Plan from now (after a pause)."""
        self._next_at = clock.monotonic()
