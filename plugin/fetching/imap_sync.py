"""IMAP sync: per folder (INBOX, and Sent found by SPECIAL-USE) a cursor keeps
UIDVALIDITY, the highest UID and UIDNEXT. An unchanged folder costs one STATUS. The
first sync of a folder takes the admin's window (the N newest messages by date among
those received in the last D days, newest first) and then moves the cursor past
everything older. A UIDVALIDITY change re-syncs the folder the same way (the
Message-ID key keeps it free of duplicates); three changes within a day pause the
mailbox. IMAP is never changed by a sync.
"""

from __future__ import annotations

import logging
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from plugin.fetching import status as fetch_status
from plugin.fetching.pop3_window import POP3_FOLDER
from plugin.fetching.server_flags import refresh_recent_flags
from plugin.fetching.store import FetchedItem, _insert, begin_write
from plugin.fetching.sync_run import SyncRun, chunks
from plugin.fetching.sync_run import now as _now
from plugin.mail.errors import FOLDER_MISSING, MailError
from plugin.mail.imap import FolderStatus, ImapSession
from plugin.models import FetchCursor, MessageLocation
from plugin.testing.faults import crashpoint

log = logging.getLogger("plugin.integrated_email.sync")

IMAP_BATCH = 500
#: UIDVALIDITY changes within this window that pause the mailbox
UIDVALIDITY_PAUSE_AFTER = 3
UIDVALIDITY_WINDOW = timedelta(days=1)

_LOC = MessageLocation.__table__
_CUR = FetchCursor.__table__


class ImapSync(SyncRun):
    """A sync run over IMAP: each folder from its cursor."""

    def run(self) -> None:
        """Sync INBOX and Sent (a missing Sent folder is skipped)."""
        with ImapSession(self.settings, self.policy) as imap:
            cursors = self._cursors(imap)
            for cursor in cursors:
                try:
                    self._sync_folder(imap, cursor)
                except MailError as exc:
                    if exc.kind == FOLDER_MISSING and cursor["role"] != "inbox":
                        log.info("folder %s of mailbox %s is gone; skipped",
                                 cursor["role"], self.mailbox.id)
                        continue
                    raise
                if self.pause_sentence:
                    break
            crashpoint("before_delete")  # IMAP sync never changes the server

    def _cursors(self, imap: ImapSession) -> list[dict[str, Any]]:
        # A POP3 window's row (the mailbox was POP3 once) is no folder of this server.
        cursors = [c for c in self.cursors if c["folder"] != POP3_FOLDER]
        if cursors:
            return cursors
        # First sync: find the folders once (LIST), then a poll is STATUS only.
        roles = imap.find_folders()
        wanted = [("inbox", roles.get("inbox", "INBOX"))]
        if roles.get("sent"):
            wanted.append(("sent", roles["sent"]))
        with self.engine.connect() as conn:
            begin_write(conn)
            made = conn.execute(_insert(conn, _CUR).returning(*_CUR.c), [
                {"mailbox_id": self.mailbox.id, "folder": f, "role": r, "last_uid": 0,
                 "uidvalidity_changes": 0} for r, f in wanted]).all()
            if len(made) < len(wanted):  # a concurrent first sync made some of them
                made = conn.execute(select(_CUR).where(
                    _CUR.c.mailbox_id == self.mailbox.id, _CUR.c.folder != POP3_FOLDER)).all()
            conn.commit()
        # Nothing can be stored under a cursor made just now: no re-fetch check.
        return [dict(r._mapping, fresh=len(made) == len(wanted))
                for r in sorted(made, key=lambda r: r.id)]

    def _update_cursor(self, conn: Connection, cursor_id: int, **values: object) -> None:
        conn.execute(update(_CUR).where(_CUR.c.id == cursor_id).values(**values))

    def _sync_folder(self, imap: ImapSession, cursor: dict[str, Any]) -> None:
        folder = cursor["folder"]
        st = imap.status(folder)
        if cursor["uidvalidity"] is not None and cursor["uidvalidity"] != st.uidvalidity:
            if self._uidvalidity_changed(cursor, st.uidvalidity):
                return
            cursor["uidvalidity"] = None
        if cursor["uidvalidity"] is None:
            self._initial(imap, cursor, st)
            return
        if cursor["uidnext"] == st.uidnext:
            if st.highestmodseq is None or st.highestmodseq == cursor.get("highestmodseq"):
                return  # unchanged: one STATUS was all it cost
            # Only flags changed (read or deleted in another client): take them over.
            imap.select(folder, readonly=True)
            self._refresh_flags(imap, cursor, st)
            return
        imap.select(folder, readonly=True)
        uids = imap.search_uids_since(cursor["last_uid"] or 0)
        validity = cursor["uidvalidity"]
        with self._batch_writer() as writer:  # fetch while storing
            for batch_uids in chunks(uids, IMAP_BATCH):
                items = self._fetch(imap, folder, cursor["role"], validity, batch_uids)
                top = max(batch_uids)
                writer.submit(items, lambda conn, top=top: self._update_cursor(
                    conn, cursor["id"], last_uid=top))
        # last_uid moved with each batch's rows; UIDNEXT alone can wait for the status.
        self._defer_cursor(cursor["id"], uidnext=st.uidnext)
        if st.highestmodseq is not None and st.highestmodseq != cursor.get("highestmodseq"):
            # New mail raises HIGHESTMODSEQ too, but one command can also have changed
            # older messages (a COPY, then "mark all read"): so look at their flags.
            self._refresh_flags(imap, cursor, st)

    def _refresh_flags(self, imap: ImapSession, cursor: dict[str, Any],
                       st: FolderStatus) -> None:
        """\\Seen and removals of recent messages, from another client, into our rows."""
        refresh_recent_flags(self.addon, self.mailbox.id, imap, cursor["folder"])
        self._defer_cursor(cursor["id"], highestmodseq=st.highestmodseq)

    def _fetch(self, imap: ImapSession, folder: str, role: str, validity: int,
               uids: list[int]) -> list[FetchedItem]:
        items = [FetchedItem(raw=m.raw, folder=folder, role=role or "inbox",
                             uidvalidity=validity, uid=m.uid, internaldate=m.internaldate)
                 for m in imap.fetch(uids, batch=len(uids))]
        crashpoint("after_fetch")
        return items

    def _uidvalidity_changed(self, cursor: dict[str, Any], new_validity: int) -> bool:
        """Count a change; True when the mailbox is paused instead of re-synced."""
        now = _now()
        since = cursor.get("uidvalidity_changed_at")
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        if since is None or now - since > UIDVALIDITY_WINDOW:
            count, since = 1, now
        else:
            count = (cursor.get("uidvalidity_changes") or 0) + 1
        log.warning("UIDVALIDITY of %s changed for mailbox %s (%d in a day)",
                    cursor["role"], self.mailbox.id, count)
        paused = count >= UIDVALIDITY_PAUSE_AFTER
        with self.engine.connect() as conn:
            begin_write(conn)
            values = {"uidvalidity_changes": count, "uidvalidity_changed_at": since}
            if not paused:  # start over: the re-sync is an initial sync of the folder
                values.update(uidvalidity=None, last_uid=0, uidnext=None)
            self._update_cursor(conn, cursor["id"], **values)
            conn.commit()
        if paused:
            self.pause_sentence = fetch_status.UIDVALIDITY_PAUSED_SENTENCE
        return paused

    def _initial(self, imap: ImapSession, cursor: dict[str, Any], st: FolderStatus) -> None:
        """The admin's window, newest first; then the cursor moves past older mail."""
        folder = cursor["folder"]
        selected = imap.select(folder, readonly=True)
        validity = selected.uidvalidity
        day = (_now() - timedelta(days=self.window_days)).date() \
            if self.window_days and self.window_days > 0 else None
        limit = self.window_messages if self.window_messages and self.window_messages > 0 \
            else None
        # The newest by date, not the last delivered (newest first).
        uids = imap.newest_uids(day, limit)
        have: set[int] = set()
        if uids and not cursor.get("fresh"):  # a restart after a crash skips what it has
            with self.engine.connect() as conn:
                have = {r[0] for r in conn.execute(select(_LOC.c.uid).where(
                    _LOC.c.mailbox_id == self.mailbox.id, _LOC.c.folder == folder,
                    _LOC.c.uidvalidity == validity))}
        todo = [u for u in uids if u not in have]
        with self._batch_writer() as writer:  # fetch while storing
            for batch_uids in chunks(todo, IMAP_BATCH):
                writer.submit(self._fetch(imap, folder, cursor["role"], validity, batch_uids))
        top = max([st.uidnext - 1] + uids) if st.uidvalidity == validity else max(uids or [0])
        uidnext = st.uidnext if st.uidvalidity == validity else selected.uidnext
        # Every message of the window is committed: the cursor may move past them.
        self._defer_cursor(cursor["id"], uidvalidity=validity, last_uid=top,
                           uidnext=uidnext, highestmodseq=st.highestmodseq)
