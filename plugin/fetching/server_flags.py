"""Read and delete flags between our rows and the IMAP server, both ways.

Out: a change made here (\\Seen, delete) is carried to the server by one background
worker per process, after the request's commit and in the order asked (read then
unread stays unread). A push that fails is logged; the next sync's
``refresh_recent_flags`` brings the server's truth back. POP3 mailboxes change
locally only (POP3 has no flags, and deleting is the delete policy's job).

In: ``refresh_recent_flags`` takes \\Seen and removals made in another client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from plugin.blobs import blob_store
from plugin.blobs.durable import durable_before_server_change
from plugin.context import AddonContext
from plugin.mail.account import ServerSettings
from plugin.fetching.status import UNEXPECTED_SENTENCE, record_action
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import MailError
from plugin.mail.imap import ImapSession
from plugin.models import Mailbox, Message, MessageLocation
from plugin.setup.credentials import incoming_for
from plugin.setup.policy import connection_policy

log = logging.getLogger("plugin.integrated_email.webmail")

#: (location id, folder, uidvalidity, uid) of a message's copy on an IMAP server
Location = tuple[int, str, int | None, int]
#: what a queued change does over an open IMAP session
Push = Callable[[AddonContext, ImapSession, list[Location], Any], None]


def push_seen(addon: AddonContext, msg: Message, seen: bool) -> None:
    """Carry a read/unread change of ``msg`` to its IMAP server after the commit."""
    locations = _server_locations(msg)
    if locations:
        _enqueue(addon, msg.mailbox_id, _push_seen, locations, seen)


def push_delete(addon: AddonContext, msg: Message) -> None:
    """Move ``msg`` to the server's Trash (or delete it there) after the commit."""
    locations = _server_locations(msg)
    if locations:
        _enqueue(addon, msg.mailbox_id, _push_delete, locations, [msg.blob_sha256])


def _server_locations(msg: Message) -> list[Location]:
    """(location id, folder, uidvalidity, uid) on an IMAP server; [] for POP3."""
    return [(loc.id, loc.folder, loc.uidvalidity, loc.uid) for loc in msg.locations
            if loc.uid is not None and not loc.removed_from_server]


_executors: dict[int, ThreadPoolExecutor] = {}
_pending: dict[int, list[Future]] = {}
_lock = threading.Lock()


def _executor(addon: AddonContext) -> ThreadPoolExecutor:
    with _lock:
        ex = _executors.get(id(addon))
        if ex is None:
            ex = _executors[id(addon)] = ThreadPoolExecutor(1, thread_name_prefix="ie-webmail")
        return ex


def _enqueue(addon: AddonContext, mailbox_id: int, work: Push, locations: list[Location],
             arg: object) -> None:
    """Run after the request's commit (the session's after_commit) in the serial worker."""
    s = addon.session()
    mb = s.get(Mailbox, mailbox_id)
    if mb is None or mb.protocol != "imap" or not mb.in_host:
        return
    try:
        settings = incoming_for(addon, mb)
    except MailError as exc:  # e.g. the owner must sign in again: the change stays ours
        log.info("server flags of mailbox %s not pushed: %s", mailbox_id, exc.kind)
        return
    policy = connection_policy(addon, s)
    job = (work, settings, policy, locations, arg, mailbox_id)
    jobs = s.info.setdefault("ie_server_jobs", [])
    jobs.append(job)
    if len(jobs) == 1:
        def after_commit(session: Session) -> None:
            for w, st, po, locs, a, mid in session.info.pop("ie_server_jobs", []):
                fut = _executor(addon).submit(_run, addon, w, st, po, locs, a, mid)
                with _lock:
                    _pending.setdefault(id(addon), []).append(fut)

        def after_rollback(session: Session) -> None:
            session.info.pop("ie_server_jobs", None)

        event.listen(s, "after_commit", after_commit, once=True)
        event.listen(s, "after_soft_rollback", after_rollback, once=True)


def _run(addon: AddonContext, work: Push, settings: ServerSettings, policy: ConnectionPolicy,
         locations: list[Location], arg: object, mailbox_id: int) -> None:
    try:
        with ImapSession(settings, policy) as imap:
            work(addon, imap, locations, arg)
        record_action(addon.engine, mailbox_id, "flags", None)
    except Exception as exc:  # the next sync re-reads the flags
        log.warning("webmail change not carried to the server (%s)", type(exc).__name__)
        sentence = exc.sentence if isinstance(exc, MailError) else UNEXPECTED_SENTENCE
        try:  # the status panel says so (the database may be what failed)
            record_action(addon.engine, mailbox_id, "flags", sentence)
        except Exception:
            log.exception("could not note the failed webmail change")


def wait_for_server_updates(addon: AddonContext, timeout: float = 30) -> None:
    """Block until every queued server change has run (tests, shutdown)."""
    with _lock:
        futures = _pending.pop(id(addon), [])
    for fut in futures:
        fut.result(timeout)


def _by_folder(locations: list[Location]) -> dict[str, list[tuple[int, int | None, int]]]:
    out: dict[str, list] = {}
    for loc_id, folder, validity, uid in locations:
        out.setdefault(folder, []).append((loc_id, validity, uid))
    return out


def _push_seen(addon: AddonContext, imap: ImapSession, locations: list[Location],
               seen: bool) -> None:
    for folder, items in _by_folder(locations).items():
        sel = imap.select(folder, readonly=False)
        uids = [uid for _l, v, uid in items if v is None or v == sel.uidvalidity]
        if seen:
            imap.store_flags(uids, add=["\\Seen"])
        else:
            imap.store_flags(uids, remove=["\\Seen"])


def _push_delete(addon: AddonContext, imap: ImapSession, locations: list[Location],
                 blob_names: list[str | None]) -> None:
    # a move to Trash or an expunge: the bytes and rows here are durable first
    durable_before_server_change(addon.engine, blob_store(addon.app.config), blob_names)
    trash = imap.find_folders().get("trash")
    done: list[int] = []
    for folder, items in _by_folder(locations).items():
        sel = imap.select(folder, readonly=False)
        mine = [(loc_id, uid) for loc_id, v, uid in items if v is None or v == sel.uidvalidity]
        imap.delete([uid for _l, uid in mine], trash_folder=trash)
        done.extend(loc_id for loc_id, _u in mine)
    if done:
        with Session(addon.engine) as s:
            s.execute(update(MessageLocation).where(MessageLocation.id.in_(done)).values(
                removed_from_server=True))
            s.commit()


# ------------------------------------------------------------ from the server


def refresh_recent_flags(addon: AddonContext, mailbox_id: int, session_imap: ImapSession,
                         folder: str,
                         uids: list[int] | None = None, recent: int = 500) -> int:
    """Take \\Seen of recent messages (and removals) from the server: call it from the
    sync with ``folder`` selected.  ``uids`` None means our newest ``recent`` UIDs of the
    folder.  Returns how many messages changed here."""
    sel = session_imap.selected
    if sel is None or sel.name != folder:
        sel = session_imap.select(folder, readonly=True)
    with Session(addon.engine) as s:
        # Our own \\Seen beside each location, so that only real differences are written
        # (usually none: then this costs one read and no write at all).
        q = select(MessageLocation.uid, MessageLocation.message_id, MessageLocation.id,
                   Message.seen).join(Message, Message.id == MessageLocation.message_id).where(
            MessageLocation.mailbox_id == mailbox_id, MessageLocation.folder == folder,
            MessageLocation.uidvalidity == sel.uidvalidity,
            MessageLocation.removed_from_server.is_(False), MessageLocation.uid.is_not(None))
        if uids is not None:
            q = q.where(MessageLocation.uid.in_(list(uids)))
        else:
            q = q.order_by(MessageLocation.uid.desc()).limit(recent)
        rows = s.execute(q).all()
        if not rows:
            return 0
        flags = session_imap.fetch_flags([r[0] for r in rows])
        changed = 0
        seen_there: dict[int, bool] = {}  # read where any of its copies here is read
        for uid, mid, _l, _seen in rows:
            if uid in flags:
                read = "\\SEEN" in {f.upper() for f in flags[uid]}
                seen_there[mid] = seen_there.get(mid, False) or read
        ours = {mid: seen for _u, mid, _l, seen in rows}
        seen_ids = [mid for mid, read in seen_there.items() if read and not ours[mid]]
        unseen_ids = [mid for mid, read in seen_there.items() if not read and ours[mid]]
        gone = [(mid, loc) for uid, mid, loc, _seen in rows if uid not in flags]
        if seen_ids:
            changed += s.execute(update(Message).where(
                Message.id.in_(seen_ids), Message.seen.is_(False)).values(seen=True)).rowcount
        if unseen_ids:
            changed += s.execute(update(Message).where(
                Message.id.in_(unseen_ids), Message.seen.is_(True)).values(seen=False)).rowcount
        if gone:
            s.execute(update(MessageLocation).where(
                MessageLocation.id.in_([loc for _m, loc in gone])).values(
                removed_from_server=True))
            still_there = set(s.scalars(select(MessageLocation.message_id).where(
                MessageLocation.message_id.in_([m for m, _l in gone]),
                MessageLocation.removed_from_server.is_(False))))
            vanished = [m for m, _l in gone if m not in still_there]
            if vanished:
                changed += s.execute(update(Message).where(
                    Message.id.in_(vanished), Message.deleted.is_(False)).values(
                    deleted=True)).rowcount
        s.commit()
        return changed
