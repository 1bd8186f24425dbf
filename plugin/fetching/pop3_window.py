"""POP3's initial-sync window: the newest messages by date, and what tells later syncs
an old message left behind from a new one.

A POP3 maildrop is a list in delivery order with a UIDL per message: no dates, no
search. So the first sync reads Date headers (``TOP n 0``) from the last delivered
backwards, a bounded number of them, and takes the N newest by date within the last
D days: a two-day-old newsletter delivered last does not push out today's mail.

What the window leaves behind is remembered by position, because new mail is
delivered at the end of the list: every unknown message up to the last one skipped
is old. That message's UIDL (and those of the two skipped before it, in case another
client deletes one) is kept, hashed, in the mailbox's POP3 cursor row; each later
sync fetches only the unknown messages after it. If another client deleted all
three, the window is applied again over what is unknown, so nothing new is lost.

The cursor row reuses the IMAP cursor's columns (no table of its own): folder
``POP3_FOLDER``; ``uidvalidity`` NULL while the window is under way, 1 once it is
done; ``last_uid``, ``uidnext``, ``highestmodseq`` the markers (0/NULL: none).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, select, update

from plugin.fetching.store import FetchedItem, _insert, begin_write
from plugin.fetching.sync_run import now as _now
from plugin.mail.imap_responses import sent_date
from plugin.models import FetchCursor

log = logging.getLogger("plugin.integrated_email.sync")

_CUR = FetchCursor.__table__
#: the folder name of a POP3 mailbox's cursor row (never an IMAP cursor's: see imap_sync)
POP3_FOLDER = "(pop3 window)"
#: Date headers read beyond the window's size, at most: the cost stays bounded
LOOKBACK = 200
#: stop reading earlier deliveries after this many in a row that could not enter
OLD_RUN = 50
#: a Date further ahead than this is not believed (forged, or a broken clock)
FUTURE_SLACK = timedelta(days=1)
#: the columns that hold the markers, newest first
_MARKER_COLUMNS = ("last_uid", "uidnext", "highestmodseq")

Listing = Sequence[tuple[int, str]]


class HeaderSource(Protocol):
    """What the window needs of a POP3 session: a message's header block."""

    def top(self, number: int, lines: int = 0) -> bytes | None:
        """The headers of message ``number``; None when the server will not say."""


def marker(key: str) -> int:
    """A UIDL key as a positive 63-bit number (fits a signed BIGINT), never 0."""
    return (int.from_bytes(hashlib.sha256(key.encode("utf-8", "replace")).digest()[:8],
                           "big") >> 1) or 1


class Pop3Window:
    """Which messages of a listing a POP3 sync fetches, and the cursor that remembers."""

    def __init__(self, engine: Engine, mailbox_id: int, days: int | None,
                 limit: int | None) -> None:
        self.engine = engine
        self.mailbox_id = mailbox_id
        self.days = days if days and days > 0 else None
        self.limit = limit if limit and limit > 0 else None
        #: the cursor values to write once every selected message is committed
        self._finish: dict[str, Any] | None = None
        #: of a window taken in this run: the listing, what was stored, what it took
        self._listing: Listing | None = None
        self._have: set[str] = set()
        self._picked: set[str] = set()
        #: the window's first day, when dates are read after RETR instead of by TOP
        self._start_date: datetime | None = None

    def _cursor(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_CUR).where(_CUR.c.mailbox_id == self.mailbox_id,
                                                  _CUR.c.folder == POP3_FOLDER)).first()
        return dict(row._mapping) if row is not None else None

    def select(self, pop: HeaderSource, listing: Listing, have: set[str]) -> list[tuple[int, str]]:
        """The (number, key) pairs to fetch, in the order to fetch them."""
        cursor = self._cursor()
        unknown = [(n, key) for n, key in listing if key not in have]
        if cursor is None and have:
            # Synced before windows were remembered: it took everything, none is old.
            self._finish = {"uidvalidity": 1, **dict.fromkeys(_MARKER_COLUMNS, 0)}
            return unknown
        if cursor is None or cursor["uidvalidity"] is None:
            if cursor is None:
                self._start()
            return self._window(pop, listing, have)
        markers = {cursor[c] for c in _MARKER_COLUMNS if cursor[c]}
        if not markers:
            return unknown
        for pos in range(len(listing) - 1, -1, -1):
            if marker(listing[pos][1]) in markers:
                return [(n, key) for n, key in listing[pos + 1:] if key not in have]
        log.warning("the old mail marker of POP3 mailbox %s is gone from the server; "
                    "taking the initial window again", self.mailbox_id)
        return self._window(pop, listing, have)

    def finish(self) -> None:
        """Record the window as done: call once every selected message is committed."""
        values, self._finish = self._finish, None
        if values is None:
            return
        if self._listing is not None:
            values.update(self._markers())
        with self.engine.connect() as conn:
            begin_write(conn)
            if conn.execute(update(_CUR).where(_CUR.c.mailbox_id == self.mailbox_id,
                                               _CUR.c.folder == POP3_FOLDER).values(
                    **values)).rowcount == 0:
                conn.execute(_insert(conn, _CUR), [self._row(**values)])
            conn.commit()

    def _row(self, **values: Any) -> dict[str, Any]:
        return {"mailbox_id": self.mailbox_id, "folder": POP3_FOLDER, "role": "inbox",
                "uidvalidity": None, "last_uid": 0, "uidnext": None, "highestmodseq": None,
                "uidvalidity_changes": 0, **values}

    def _start(self) -> None:
        """Say the window is under way: a restart after a crash takes it again."""
        with self.engine.connect() as conn:
            begin_write(conn)
            conn.execute(_insert(conn, _CUR), [self._row()])
            conn.commit()

    def _window(self, pop: HeaderSource, listing: Listing,
                have: set[str]) -> list[tuple[int, str]]:
        """The newest by date over the whole listing (so a restart picks the same),
        minus what is stored; what it leaves out becomes the markers at ``finish``."""
        chosen = self._newest(pop, listing)
        self._listing, self._have = listing, have
        self._picked = {key for _n, key in chosen}
        self._finish = {"uidvalidity": 1}
        log.info("POP3 mailbox %s: initial window of %d of %d messages", self.mailbox_id,
                 len(chosen), len(listing))
        return [(n, key) for n, key in chosen if key not in have]

    def keep(self, items: list[FetchedItem]) -> list[FetchedItem]:
        """``items`` without those dated before the window (when the whole listing fit
        the window, its dates were not read before RETR: they are read here)."""
        if self._start_date is None:
            return items
        kept = []
        for item in items:
            head = item.raw.split(b"\r\n\r\n", 1)[0]
            when = sent_date(head)
            if when is not None and when < self._start_date:
                self._picked.discard(item.uidl)
            else:
                kept.append(item)
        return kept

    def _markers(self) -> dict[str, int]:
        """The last three messages the window left out, hashed, newest first."""
        skipped = [key for _n, key in self._listing
                   if key not in self._picked and key not in self._have]
        marks = [marker(k) for k in reversed(skipped[-len(_MARKER_COLUMNS):])]
        marks += [0] * (len(_MARKER_COLUMNS) - len(marks))
        return dict(zip(_MARKER_COLUMNS, marks, strict=True))

    def _newest(self, pop: HeaderSource, listing: Listing) -> list[tuple[int, str]]:
        """Up to ``limit`` messages, newest Date first, from the last deliveries back."""
        if self.limit is None and self.days is None:
            return list(reversed(listing))
        now = _now()
        start = now - timedelta(days=self.days) if self.days else None
        if self.limit is not None and len(listing) <= self.limit:
            # Room for every message: no ranking needed, and the day limit is checked
            # on the bytes RETR brings anyway (``keep``) rather than by a TOP each.
            self._start_date = start
            return list(reversed(listing))
        budget = len(listing) if self.limit is None else self.limit + LOOKBACK
        dated: list[tuple[datetime, int, int, str]] = []
        newest: list[datetime] = []  # a min-heap of the ``limit`` newest dates so far
        later = now  # the date of the message delivered after the one being read
        misses = 0
        for pos in range(len(listing) - 1, max(-1, len(listing) - 1 - budget), -1):
            n, key = listing[pos]
            head = pop.top(n, 0)
            if head is None and pos == len(listing) - 1:
                # No TOP on this server: delivery order is all there is.
                return self._by_delivery(listing)
            when = sent_date(head)
            if when is None or when > now + FUTURE_SLACK:
                when = later  # undated (or not believable): as old as its neighbour
            later = min(later, when)
            full = self.limit is not None and len(newest) >= self.limit
            if (start is not None and when < start) or (full and when <= newest[0]):
                misses += 1
                if misses >= OLD_RUN:
                    break  # earlier deliveries are older still
                continue
            misses = 0
            dated.append((when, pos, n, key))
            if full:
                heapq.heapreplace(newest, when)
            else:
                heapq.heappush(newest, when)
        dated.sort(reverse=True)
        return [(n, key) for _when, _pos, n, key in dated[:self.limit]]

    def _by_delivery(self, listing: Listing) -> list[tuple[int, str]]:
        newest = list(reversed(listing))
        return newest[:self.limit] if self.limit is not None else newest
