"""POP3 sync: by UIDL; repeated UIDLs get the size and an occurrence number appended
so no mail is lost. The delete policy applies only to messages already committed, and
the rows say "removed from server" only once QUIT succeeded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from plugin.blobs.durable import durable_before_server_change
from plugin.fetching.pop3_window import Pop3Window
from plugin.fetching.store import FetchedItem, begin_write
from plugin.fetching.sync_run import SyncRun, chunks
from plugin.fetching.sync_run import now as _now
from plugin.mail.pop3 import Pop3Session
from plugin.models import Message, MessageLocation
from plugin.testing.faults import crashpoint

log = logging.getLogger("plugin.integrated_email.sync")

POP3_BATCH = 200

_LOC = MessageLocation.__table__
_MSG = Message.__table__


def unique_uidls(listing: list[tuple[int, str]],
                 sizes: Callable[[], dict[int, int]] | None = None) -> list[tuple[int, str]]:
    """Make every UIDL key unique without losing mail.

    Some servers repeat UIDLs. A repeated one gets its message size appended (a
    different message under the same UIDL almost always differs in size), and what
    still repeats gets ``#2``, ``#3``... by occurrence.
    """
    counts: dict[str, int] = {}
    for _n, uidl in listing:
        counts[uidl] = counts.get(uidl, 0) + 1
    if all(c == 1 for c in counts.values()):
        return list(listing)
    size_of = sizes() if sizes else {}
    keyed: list[tuple[int, str]] = []
    for n, uidl in listing:
        keyed.append((n, uidl if counts[uidl] == 1 else "{}#{}".format(uidl, size_of.get(n, "?"))))
    again: dict[str, int] = {}
    for _n, key in keyed:
        again[key] = again.get(key, 0) + 1
    seen: dict[str, int] = {}
    out: list[tuple[int, str]] = []
    for n, key in keyed:
        if again[key] > 1:
            seen[key] = seen.get(key, 0) + 1
            key = f"{key}#{seen[key]}"
        out.append((n, key[:255]))
    return out


class Pop3Sync(SyncRun):
    """A sync run over POP3: new UIDLs, then the delete policy."""

    def run(self) -> None:
        """Fetch what is new by UIDL; delete what the policy says, once committed."""
        deleted: list[str] = []
        with Pop3Session(self.settings, self.policy) as pop:
            listing = unique_uidls(pop.uidl(), pop.sizes)
            with self.engine.connect() as conn:
                have = {r[0] for r in conn.execute(select(_LOC.c.uidl).where(
                    _LOC.c.mailbox_id == self.mailbox.id, _LOC.c.uidl.is_not(None)))}
            # The first sync takes the initial window (newest by Date); later ones
            # what was delivered after it.
            window = Pop3Window(self.engine, self.mailbox.id, self.window_days,
                                self.window_messages)
            todo = window.select(pop, listing, have)
            with self._batch_writer() as writer:  # RETR while storing
                for batch in chunks(todo, POP3_BATCH):
                    items = window.keep([FetchedItem(raw=pop.retr(n), folder="INBOX",
                                                     role="inbox", uidl=key)
                                         for n, key in batch])
                    crashpoint("after_fetch")
                    writer.submit(items)
            window.finish()
            deleted = self._apply_delete_policy(pop, listing)
        # QUIT succeeded: the server has really removed them
        if deleted:
            with self.engine.connect() as conn:
                begin_write(conn)
                for chunk in chunks(deleted, 500):
                    conn.execute(update(_LOC).where(
                        _LOC.c.mailbox_id == self.mailbox.id, _LOC.c.uidl.in_(chunk)).values(
                        removed_from_server=True))
                conn.commit()

    def _apply_delete_policy(self, pop: Pop3Session, listing: list[tuple[int, str]]) -> list[str]:
        policy = self.mailbox.delete_policy or "leave"
        if policy == "leave":
            return []
        # Only what is committed: read it back from the database, not from memory.
        with self.engine.connect() as conn:
            rows = conn.execute(select(_LOC.c.uidl, _LOC.c.stored_at, _MSG.c.blob_sha256)
                                .join(_MSG, _MSG.c.id == _LOC.c.message_id).where(
                _LOC.c.mailbox_id == self.mailbox.id, _LOC.c.uidl.is_not(None))).all()
        stored = {uidl: at for uidl, at, _sha in rows}
        blob_of = {uidl: sha for uidl, _at, sha in rows}
        if policy == "after_days":
            days = self.mailbox.delete_after_days
            if days is None or days < 0:
                return []
            cutoff = _now() - timedelta(days=days)

            def due(at: datetime) -> bool:
                at = at if at.tzinfo else at.replace(tzinfo=UTC)
                return at <= cutoff
        elif policy == "after_retrieval":
            def due(at: datetime) -> bool:
                return True
        else:
            return []
        victims = [(n, key) for n, key in listing if key in stored and due(stored[key])]
        if not victims:
            return []
        # committed is not enough: durable (bytes, directories, database) before any DELE
        durable_before_server_change(self.engine, self.store.blobs,
                                     (blob_of[key] for _n, key in victims))
        crashpoint("before_delete")
        for n, _key in victims:
            pop.dele(n)
        log.info("deleting %d messages of mailbox %s from the server (%s)", len(victims),
                 self.mailbox.id, policy)
        return [key for _n, key in victims]
