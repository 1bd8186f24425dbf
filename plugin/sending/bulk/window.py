"""A bulk job's send window (e.g. weekdays 08:00-18:00 in Europe/Berlin): the runner
sends only inside it and, outside, waits for the next opening like for a full day."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from plugin.words import N_

#: English msgids, translated where the form shows them
DAY_NAMES = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


@dataclass(frozen=True)
class SendWindow:
    """Weekdays (0 = Monday) and local hours in which a job may send."""

    days: frozenset[int]
    start: time
    end: time
    zone: zoneinfo.ZoneInfo

    def describe(self) -> str:
        """"Mon, Tue, Wed, Thu, Fri 08:00-18:00 (Europe/Berlin)"."""
        days = ", ".join(DAY_NAMES[d] for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}–{self.end:%H:%M} ({self.zone.key})"


def next_opening(window: SendWindow, stamp: datetime) -> datetime | None:
    """None when ``stamp`` is inside the window; else when it opens next (UTC)."""
    local = stamp.astimezone(window.zone)
    for ahead in range(8):
        day = local.date() + timedelta(days=ahead)
        if day.weekday() not in window.days:
            continue
        opens = datetime.combine(day, window.start, window.zone)
        closes = datetime.combine(day, window.end, window.zone)
        if ahead == 0 and opens <= local < closes:
            return None
        if opens > local:
            return opens.astimezone(UTC)
    return None  # no day chosen: never reached (the form requires one)


def of_job(job: object) -> SendWindow | None:
    """The window stored on a job row (None: any time)."""
    days = getattr(job, "window_days", None)
    if not days:
        return None
    return SendWindow(frozenset(int(d) for d in days), time.fromisoformat(job.window_start),
                      time.fromisoformat(job.window_end), zoneinfo.ZoneInfo(job.window_zone))


def read(enabled: bool, days: list[str], start: str, end: str,
         zone: str) -> tuple[dict | None, str | None]:
    """The job's window columns from the form, or the sentence saying what is wrong."""
    if not enabled:
        return None, None
    chosen = sorted({int(d) for d in days if d in {"0", "1", "2", "3", "4", "5", "6"}})
    try:
        opens, closes = time.fromisoformat(start or ""), time.fromisoformat(end or "")
        tz = zoneinfo.ZoneInfo((zone or "UTC").strip() or "UTC")
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return None, "Give the send window's hours like 08:00 and 18:00, and a time zone."
    if not chosen:
        return None, "Tick at least one day for the send window."
    if closes <= opens:
        return None, "The send window must end after it starts on the same day."
    return {"window_days": "".join(str(d) for d in chosen),
            "window_start": opens.strftime("%H:%M"), "window_end": closes.strftime("%H:%M"),
            "window_zone": tz.key}, None
