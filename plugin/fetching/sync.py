"""Mail sync: a mailbox's new mail from IMAP or POP3 into the store, exactly once.

Order of effects per batch: fetch -> parse -> store (blobs, rows) -> commit -> only
then anything on the server (POP3 DELE; IMAP is never changed by a sync). The folder
cursor advances in the same transaction as the rows it covers, so a crash at any
point loses nothing and a restart duplicates nothing (the unique keys absorb any
re-fetch). ``crashpoint`` marks each step for the fault tests.

IMAP: per folder (INBOX, and Sent found by SPECIAL-USE) a cursor keeps UIDVALIDITY,
the highest UID and UIDNEXT. An unchanged folder costs one STATUS. The first sync of
a folder takes the admin's window (newest N messages of the last D days, newest
first) and then moves the cursor past everything older. A UIDVALIDITY change
re-syncs the folder the same way (the Message-ID key keeps it free of duplicates);
three changes within a day pause the mailbox.

POP3: by UIDL; repeated UIDLs get the size and an occurrence number appended so no
mail is lost. The delete policy applies only to messages already committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.blobs import blob_store
from plugin.crypto import SecretKeyError
from plugin.mail.account import ServerSettings
from plugin.mail.errors import FOLDER_MISSING, MailError, classify
from plugin.mail.imap import ImapSession
from plugin.mail.pop3 import Pop3Session
from plugin.models import FetchCursor, Mailbox, Message, MessageLocation
from plugin.fetching import status as fetch_status
from plugin.setup.credentials import incoming_settings
from plugin.testing.faults import crashpoint
from plugin.fetching.status import password_changed
from plugin.fetching.store import BatchResult, FetchedItem, MessageStore, begin_write

log = logging.getLogger("plugin.integrated_email.sync")

IMAP_BATCH = 500
POP3_BATCH = 200
#: UIDVALIDITY changes within this window that pause the mailbox
UIDVALIDITY_PAUSE_AFTER = 3
UIDVALIDITY_WINDOW = timedelta(days=1)

_LOC = MessageLocation.__table__
_CUR = FetchCursor.__table__
_MSG = Message.__table__

#: ``on_batch(addon, mailbox_id, new_message_ids)``: what runs after each committed
#: batch that created messages (the dispatcher passes automatic linking)
BatchHook = Callable[[Any, int, list[int]], None]


@dataclass
class SyncResult:
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    #: MailError kind (or "internal") when the sync failed; None on success
    error_kind: str | None = None
    #: why nothing was attempted: "missing", "inactive", "paused", "no_incoming"
    skipped: str | None = None
    #: stored messages may still wait for automatic linking (left by an earlier
    #: sync that crashed, or by a batch whose hook failed): sweep them up
    unlinked: bool = False
    #: the final write ran: committed, or withheld because ``on_finish`` found that the
    #: mailbox had changed hands meanwhile
    settled: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ entry point


def sync_mailbox(addon, mailbox_id: int, *,
                 on_batch: BatchHook | None = None,
                 on_finish: Callable[[Mailbox], bool] | None = None,
                 sweep: Callable[[], None] | None = None) -> SyncResult:
    """Fetch a mailbox's new mail and update its status. Never raises for mail or
    message trouble: the outcome is in the result and on the mailbox row.

    ``on_batch(addon, mailbox_id, new_ids)`` runs after each committed batch that
    created messages; if it raises, those messages wait for ``sweep``.

    ``on_finish(mailbox)`` runs in the transaction that records the outcome, with the
    row locked: the dispatcher gives its lease back there, in the same write, and
    returns False when the lease has passed to another worker (then nothing of this
    run's status or folder cursors is written: the new holder's are newer).
    ``sweep()`` runs before that write when stored mail may still wait for automatic
    linking (an earlier run crashed, or a batch hook failed): still under the lease."""
    from plugin.setup.policy import connection_policy
    from plugin.setup.settings import fetch_interval_for, load

    result = SyncResult()
    now = _now()
    # One transaction reads all a sync needs (mailbox, settings, folder cursors,
    # whether mail waits for linking). It writes only to restart the progress count:
    # a poll of an unchanged mailbox makes one write in all, the status at the end.
    with Session(addon.engine, expire_on_commit=False) as s:
        mb = s.get(Mailbox, mailbox_id)
        result.skipped = _skip_reason(mb)
        if result.skipped:
            if mb is not None and on_finish is not None:
                begin_write(s.connection())
                s.refresh(mb, with_for_update=True)
                if on_finish(mb) is False:
                    s.rollback()
                else:
                    s.commit()
            result.settled = True
            return result
        gs = load(s)
        window = (gs.initial_sync_days, gs.initial_sync_messages)
        interval = fetch_interval_for(gs, mb.in_host)
        policy = connection_policy(addon, s)
        cursors = [dict(r._mapping) for r in s.execute(
            select(_CUR).where(_CUR.c.mailbox_id == mailbox_id).order_by(_CUR.c.id))
        ] if mb.protocol == "imap" else []
        result.unlinked = s.execute(select(_MSG.c.id).where(
            _MSG.c.mailbox_id == mailbox_id, _MSG.c.import_checked.is_(False)).limit(1)
        ).first() is not None
        if mb.progress_count:
            mb.progress_count = 0  # Fetch now shows this run's messages "so far"
        s.commit()
        snapshot = _MailboxView(mb.id, mb.email, mb.protocol, mb.delete_policy,
                                mb.delete_after_days)

    syncer = None
    try:
        settings = incoming_settings(mb, addon.secrets)  # mb stays loaded after commit
        store = MessageStore(addon.engine, blob_store(addon.app.config), snapshot.id,
                             snapshot.email)
        cls = ImapSync if snapshot.protocol == "imap" else Pop3Sync
        syncer = cls(addon, snapshot, settings, policy, store, window, cursors, on_batch)
        syncer.run()
    except MailError as exc:
        kind, sentence = exc.kind, exc.sentence
        result.error_kind = kind
        change = lambda m: fetch_status.record_failure(m, _now(), kind, sentence)  # noqa: E731
        log.info("sync of mailbox %s failed: %s", mailbox_id, kind)
    except SecretKeyError as exc:  # the admin's keys, not the owner's password
        sentence = str(exc)
        result.error_kind = "secret_key"
        change = lambda m: fetch_status.record_failure(  # noqa: E731
            m, _now(), "secret_key", sentence)
    except Exception:  # one mailbox must never stop the others
        log.exception("sync of mailbox %s failed unexpectedly", mailbox_id)
        result.error_kind = "internal"
        change = lambda m: fetch_status.record_failure(  # noqa: E731
            m, _now(), "internal", fetch_status.INTERNAL_SENTENCE)
    else:
        pause_sentence = syncer.pause_sentence

        def change(m: Mailbox) -> None:
            fetch_status.record_success(m, _now(), interval)
            if pause_sentence:
                fetch_status.pause(m, "uidvalidity", pause_sentence)
    if syncer is not None:
        result.stored = syncer.totals.stored
        result.duplicates = syncer.totals.duplicates
        result.quarantined = syncer.totals.quarantined
        result.unlinked = result.unlinked or syncer.hook_failed
    if result.unlinked and sweep is not None:
        try:
            sweep()
        except Exception:  # the status must still be written
            log.exception("sweeping up unlinked mail of mailbox %s failed", mailbox_id)
    cursor_updates = syncer.cursor_updates if syncer is not None else {}
    result.settled = _finish(addon, mailbox_id, now, change, cursor_updates, on_finish)
    return result


def _skip_reason(mb: Mailbox | None) -> str | None:
    if mb is None:
        return "missing"
    if not mb.is_active:
        return "inactive"
    if mb.paused:
        return "paused"
    if mb.protocol not in ("imap", "pop3") or not mb.in_host:
        return "no_incoming"
    return None


def _finish(addon, mailbox_id: int, attempted: datetime, change: Callable[[Mailbox], None],
            cursor_updates: dict[int, dict], on_finish: Callable[[Mailbox], bool] | None
            ) -> bool:
    """Record the outcome: the mailbox's status, the folder cursors that no stored
    row carried, and the caller's ``on_finish``, in one write. True once committed,
    or withheld because ``on_finish`` said the mailbox changed hands."""
    try:
        with Session(addon.engine, expire_on_commit=False) as s:
            begin_write(s.connection())
            mb = s.get(Mailbox, mailbox_id, with_for_update=True)
            if mb is not None:
                mb.last_attempt_at = attempted
                change(mb)
                if on_finish is not None and on_finish(mb) is False:
                    s.rollback()
                    log.info("mailbox %s changed hands during its sync; the new holder "
                             "records its status", mailbox_id)
                    return True
                for cursor_id, values in cursor_updates.items():
                    s.execute(update(_CUR).where(_CUR.c.id == cursor_id).values(**values))
                s.commit()
                return True
    except Exception:
        log.exception("could not record the sync status of mailbox %s", mailbox_id)
    return False


@dataclass(frozen=True)
class _MailboxView:
    id: int
    email: str
    protocol: str
    delete_policy: str
    delete_after_days: int | None


class _Sync:
    def __init__(self, addon, mailbox: _MailboxView, settings: ServerSettings,
                 policy, store: MessageStore, window: tuple[int, int],
                 cursors: list[dict] | None = None,
                 on_batch: BatchHook | None = None) -> None:
        self.addon = addon
        self.on_batch = on_batch
        self.mailbox = mailbox
        self.settings = settings
        self.policy = policy
        self.store = store
        self.engine = addon.engine
        self.window_days, self.window_messages = window
        self.totals = BatchResult()
        #: set when the mailbox must pause after this run (looping UIDVALIDITY)
        self.pause_sentence: str | None = None
        #: the folder cursors read with the mailbox (IMAP)
        self.cursors = cursors or []
        #: cursor changes no stored row depends on (an empty folder's first look,
        #: UIDNEXT after a batch): written with the mailbox status at the end. Lost
        #: in a crash they only make the next sync look again.
        self.cursor_updates: dict[int, dict] = {}
        #: a batch hook (automatic linking) failed: its messages wait for the sweep
        self.hook_failed = False

    def _defer_cursor(self, cursor_id: int, **values) -> None:
        self.cursor_updates.setdefault(cursor_id, {}).update(values)

    def _stored(self, batch: BatchResult) -> None:
        crashpoint("after_commit")
        self.totals.add(batch)
        if batch.new_message_ids and self.on_batch is not None:
            try:
                self.on_batch(self.addon, self.mailbox.id, list(batch.new_message_ids))
            except Exception:
                self.hook_failed = True
                log.exception("batch hook %r failed", self.on_batch)


def _chunks(seq: list, size: int) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


# --------------------------------------------------------------------------- IMAP


def _search_since(imap: ImapSession, day: datetime) -> list[int]:
    return imap.search_uids_since_date(day.date() if isinstance(day, datetime) else day)


class ImapSync(_Sync):
    def run(self) -> None:
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

    def _cursors(self, imap: ImapSession) -> list[dict]:
        if self.cursors:
            return self.cursors
        # First sync: find the folders once (LIST), then a poll is STATUS only.
        roles = imap.find_folders()
        wanted = [("inbox", roles.get("inbox", "INBOX"))]
        if roles.get("sent"):
            wanted.append(("sent", roles["sent"]))
        from plugin.fetching.store import _insert
        with self.engine.connect() as conn:
            begin_write(conn)
            made = conn.execute(_insert(conn, _CUR).returning(*_CUR.c), [
                {"mailbox_id": self.mailbox.id, "folder": f, "role": r, "last_uid": 0,
                 "uidvalidity_changes": 0} for r, f in wanted]).all()
            if len(made) < len(wanted):  # a concurrent first sync made some of them
                made = conn.execute(select(_CUR).where(
                    _CUR.c.mailbox_id == self.mailbox.id)).all()
            conn.commit()
        # Nothing can be stored under a cursor made just now: no re-fetch check.
        return [dict(r._mapping, fresh=len(made) == len(wanted))
                for r in sorted(made, key=lambda r: r.id)]

    def _update_cursor(self, conn, cursor_id: int, **values) -> None:
        conn.execute(update(_CUR).where(_CUR.c.id == cursor_id).values(**values))

    def _sync_folder(self, imap: ImapSession, cursor: dict) -> None:
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
        for batch_uids in _chunks(uids, IMAP_BATCH):
            items = self._fetch(imap, folder, cursor["role"], validity, batch_uids)
            top = max(batch_uids)
            batch = self.store.store_batch(items, lambda conn, top=top: self._update_cursor(
                conn, cursor["id"], last_uid=top))
            self._stored(batch)
        # last_uid moved with each batch's rows; UIDNEXT alone can wait for the status.
        self._defer_cursor(cursor["id"], uidnext=st.uidnext)
        if st.highestmodseq is not None and st.highestmodseq != cursor.get("highestmodseq"):
            # New mail raises HIGHESTMODSEQ too, but one command can also have changed
            # older messages (a COPY, then "mark all read"): so look at their flags.
            self._refresh_flags(imap, cursor, st)

    def _refresh_flags(self, imap: ImapSession, cursor: dict, st) -> None:
        """\\Seen and removals of recent messages, from another client, into our rows."""
        from plugin.reading.webmail import refresh_recent_flags

        refresh_recent_flags(self.addon, self.mailbox.id, imap, cursor["folder"])
        self._defer_cursor(cursor["id"], highestmodseq=st.highestmodseq)

    def _fetch(self, imap: ImapSession, folder: str, role: str, validity: int,
               uids: list[int]) -> list[FetchedItem]:
        items = [FetchedItem(raw=m.raw, folder=folder, role=role or "inbox",
                             uidvalidity=validity, uid=m.uid, internaldate=m.internaldate)
                 for m in imap.fetch(uids, batch=len(uids))]
        crashpoint("after_fetch")
        return items

    def _uidvalidity_changed(self, cursor: dict, new_validity: int) -> bool:
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

    def _initial(self, imap: ImapSession, cursor: dict, st) -> None:
        """The admin's window, newest first; then the cursor moves past older mail."""
        folder = cursor["folder"]
        selected = imap.select(folder, readonly=True)
        validity = selected.uidvalidity
        if self.window_days and self.window_days > 0:
            day = _now() - timedelta(days=self.window_days)
            uids = sorted(_search_since(imap, day))
        else:
            uids = imap.uid_list()
        if self.window_messages and self.window_messages > 0:
            uids = uids[-self.window_messages:]
        have: set[int] = set()
        if uids and not cursor.get("fresh"):  # a restart after a crash skips what it has
            with self.engine.connect() as conn:
                have = {r[0] for r in conn.execute(select(_LOC.c.uid).where(
                    _LOC.c.mailbox_id == self.mailbox.id, _LOC.c.folder == folder,
                    _LOC.c.uidvalidity == validity))}
        todo = [u for u in reversed(uids) if u not in have]
        for batch_uids in _chunks(todo, IMAP_BATCH):
            items = self._fetch(imap, folder, cursor["role"], validity, batch_uids)
            self._stored(self.store.store_batch(items))
        top = max([st.uidnext - 1] + uids) if st.uidvalidity == validity else max(uids or [0])
        uidnext = st.uidnext if st.uidvalidity == validity else selected.uidnext
        # Every message of the window is committed: the cursor may move past them.
        self._defer_cursor(cursor["id"], uidvalidity=validity, last_uid=top,
                           uidnext=uidnext, highestmodseq=st.highestmodseq)


# --------------------------------------------------------------------------- POP3


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


class Pop3Sync(_Sync):
    def run(self) -> None:
        deleted: list[str] = []
        with Pop3Session(self.settings, self.policy) as pop:
            listing = unique_uidls(pop.uidl(), pop.sizes)
            with self.engine.connect() as conn:
                have = {r[0] for r in conn.execute(select(_LOC.c.uidl).where(
                    _LOC.c.mailbox_id == self.mailbox.id, _LOC.c.uidl.is_not(None)))}
            todo = [(n, key) for n, key in listing if key not in have]
            for batch in _chunks(todo, POP3_BATCH):
                items = [FetchedItem(raw=pop.retr(n), folder="INBOX", role="inbox", uidl=key)
                         for n, key in batch]
                crashpoint("after_fetch")
                self._stored(self.store.store_batch(items))
            deleted = self._apply_delete_policy(pop, listing)
        # QUIT succeeded: the server has really removed them
        if deleted:
            with self.engine.connect() as conn:
                begin_write(conn)
                for chunk in _chunks(deleted, 500):
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
            stored = {r[0]: r[1] for r in conn.execute(select(_LOC.c.uidl, _LOC.c.stored_at).where(
                _LOC.c.mailbox_id == self.mailbox.id, _LOC.c.uidl.is_not(None)))}
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
        crashpoint("before_delete")
        for n, _key in victims:
            pop.dele(n)
        log.info("deleting %d messages of mailbox %s from the server (%s)", len(victims),
                 self.mailbox.id, policy)
        return [key for _n, key in victims]


__all__ = [
    "BatchHook",
    "SyncResult",
    "classify",
    "password_changed",
    "sync_mailbox",
    "unique_uidls",
]
