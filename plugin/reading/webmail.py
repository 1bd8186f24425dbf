"""Webmail use cases: folders, pages of messages, search, reading, flags, delete, links.

Who sees what is decided in ONE place, ``plugin.sharing.rule.visible``: every
query of others' mail here ANDs it in (``visible_messages_filter``).  Changing a
message (read flags, delete, record links) stays with its owner (``own_mail``).

Server side effects (\\Seen, delete) are applied to our rows at once and carried to the
IMAP server by one background worker per process, in the order they were asked for
(read then unread stays unread).  A push that fails is logged; the next sync's
``refresh_recent_flags`` brings the server's truth back.  POP3 mailboxes change
locally only (POP3 has no flags, and deleting is the delete policy's job).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from plugin.blobs import blob_store
from plugin.host import HostRecord, HostUser, RecordRef
from plugin.mail.parse import find_part
from plugin.models import (Attachment, FetchCursor, GlobalSettings, Mailbox, Message,
                           MessageLocation, RecordLink)
from plugin.reading import search as search_service
from plugin.sharing import rule as sharing
from plugin.setup.credentials import incoming_settings

log = logging.getLogger("plugin.integrated_email.webmail")

PAGE_SIZE = 50
#: inline images up to this total are embedded as data: URIs in the message frame
MAX_INLINE_BYTES = 5 * 1024 * 1024
INLINE_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
FOLDER_LABELS = {"inbox": "Inbox", "sent": "Sent", "drafts": "Drafts", "archive": "Archive",
                 "junk": "Junk", "trash": "Trash"}


# ------------------------------------------------------------------ visibility


def own_mail(user: HostUser) -> ColumnElement[bool]:
    """Messages of mailboxes ``user`` owns."""
    return Message.mailbox_id.in_(select(Mailbox.id).where(Mailbox.user_id == str(user.id)))


def visible_messages_filter(session: Session, user: HostUser,
                            ats_refs: Iterable[RecordRef] = ()) -> ColumnElement[bool]:
    """THE rule of which messages ``user`` may see (see plugin.sharing.rule)."""
    return sharing.visible(user, session.get(GlobalSettings, 1), ats_refs)


def _ats_refs_for(session: Session, user: HostUser, where: list) -> set[RecordRef]:
    """Records of other users' ATS-sent mail among ``where`` that the host lets
    ``user`` view; asked once per record, bounded, before the real query."""
    from plugin.current import get_addon

    rows = session.execute(
        select(RecordLink.record_kind, RecordLink.record_id).join(
            Message, Message.id == RecordLink.message_id).where(
            *where, Message.origin == "ats", ~own_mail(user)).distinct().limit(500)).all()
    return sharing.viewable_refs(get_addon().host, user, {RecordRef(k, r) for k, r in rows})


def _message_refs(session: Session, user: HostUser, message_ids: list[int]) -> set[RecordRef]:
    from plugin.current import get_addon

    return sharing.viewable_refs(get_addon().host, user,
                                 sharing.refs_linked_to(session, message_ids))


SHARED = "shared"


def webmail_enabled(session: Session) -> bool:
    """False in the admin's outbound-only mode: the webmail does not exist then."""
    gs = session.get(GlobalSettings, 1)
    return not (gs is not None and gs.outbound_only)


# -------------------------------------------------------------------- mailboxes


def user_mailboxes(session: Session, user: HostUser) -> list[Mailbox]:
    """The user's mailboxes that receive mail, active first."""
    return list(session.scalars(select(Mailbox).where(
        Mailbox.user_id == str(user.id), Mailbox.protocol.is_not(None)).order_by(
        Mailbox.is_active.desc(), Mailbox.id)))


def pick_mailbox(session: Session, user: HostUser, mailbox_id: int | None) -> Mailbox | None:
    boxes = user_mailboxes(session, user)
    if mailbox_id is not None:
        return next((m for m in boxes if m.id == mailbox_id), None)
    return boxes[0] if boxes else None


@dataclass(frozen=True)
class Folder:
    role: str
    label: str
    unread: int


def folders(session: Session, user: HostUser, mailbox: Mailbox) -> list[Folder]:
    """Inbox, Sent and every other synced folder, with unread counts (index-only)."""
    roles = ["inbox", "sent"]
    for role in session.scalars(select(FetchCursor.role).where(
            FetchCursor.mailbox_id == mailbox.id, FetchCursor.role.is_not(None))):
        if role not in roles:
            roles.append(role)
    unread = dict(session.execute(
        select(Message.folder_role, func.count()).where(
            Message.mailbox_id == mailbox.id, Message.deleted.is_(False),
            Message.seen.is_(False), own_mail(user)).group_by(
            Message.folder_role)).all())
    for role in unread:
        if role not in roles:
            roles.append(role)
    out = [Folder(r, FOLDER_LABELS.get(r, r.title()), int(unread.get(r, 0))) for r in roles]
    return out + [Folder(SHARED, "Shared with me", 0)]


# ------------------------------------------------------------------------ pages


@dataclass
class Page:
    messages: list[Message]
    #: opaque keyset cursor of the next page; None on the last one
    next_cursor: str | None


def encode_cursor(msg: Message) -> str:
    d = msg.date if msg.date.tzinfo else msg.date.replace(tzinfo=timezone.utc)
    return "%d.%d" % (int(d.timestamp() * 1_000_000), msg.id)


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    try:
        micros, mid = cursor.split(".", 1)
        return (datetime.fromtimestamp(int(micros) / 1_000_000, tz=timezone.utc), int(mid))
    except (ValueError, OverflowError, OSError):
        return None


def _page(session: Session, where: list, cursor: str | None, limit: int) -> Page:
    after = decode_cursor(cursor)
    if after is not None:
        d, mid = after
        where = where + [or_(Message.date < d, and_(Message.date == d, Message.id < mid))]
    rows = list(session.scalars(select(Message).where(*where).order_by(
        Message.date.desc(), Message.id.desc()).limit(limit + 1)))
    nxt = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return Page(rows[:limit], nxt)


def list_page(session: Session, user: HostUser, mailbox_id: int, role: str,
              cursor: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """One page of a folder, newest first (keyset on ix_ie_message_keyset).

    The virtual folder "shared" lists other users' mail that sharing lets ``user`` see.
    """
    if role == SHARED:
        where = [Message.deleted.is_(False), ~own_mail(user)]
        refs = _ats_refs_for(session, user, where)
        return _page(session, where + [visible_messages_filter(session, user, refs)],
                     cursor, limit)
    return _page(session, [Message.mailbox_id == mailbox_id, Message.folder_role == role,
                           Message.deleted.is_(False), own_mail(user)],
                 cursor, limit)


def search_page(session: Session, user: HostUser, mailbox_id: int, query: str,
                cursor: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """Messages matching ``query`` in sender, recipients, subject or text: the
    mailbox's own, and other users' mail that sharing lets ``user`` see."""
    clause = search_service.matches(session, query)
    if clause is None:
        return Page([], None)
    where = [Message.deleted.is_(False), clause]
    refs = _ats_refs_for(session, user, where)
    scope = or_(Message.mailbox_id == mailbox_id,
                and_(~own_mail(user), visible_messages_filter(session, user, refs)))
    return _page(session, where + [scope], cursor, limit)


def get_message(session: Session, user: HostUser, message_id: int,
                owner_only: bool = False) -> Message | None:
    """A message ``user`` may see (None: answer 404).  ``owner_only`` for changes."""
    if owner_only:
        rule = own_mail(user)
    else:
        rule = visible_messages_filter(session, user, _message_refs(session, user, [message_id]))
    return session.scalars(select(Message).where(
        Message.id == message_id, Message.deleted.is_(False), rule)).first()


def get_attachment(session: Session, user: HostUser, attachment_id: int) -> Attachment | None:
    message_id = session.scalar(select(Attachment.message_id).where(
        Attachment.id == attachment_id))
    if message_id is None:
        return None
    refs = _message_refs(session, user, [message_id])
    return session.scalars(select(Attachment).join(Message).where(
        Attachment.id == attachment_id, Message.deleted.is_(False),
        visible_messages_filter(session, user, refs))).first()


def addresses(value: str | None) -> list[tuple[str, str]]:
    try:
        return [(str(n), str(a)) for n, a in json.loads(value or "[]")]
    except (ValueError, TypeError):
        return []


# ------------------------------------------------------------------- raw parts


def attachment_bytes(config, att: Attachment) -> bytes | None:
    """The decoded bytes of a stored attachment, found again by its part index."""
    try:
        raw = blob_store(config).get(att.message.blob_sha256)
    except (OSError, ValueError):
        return None
    found = find_part(raw, att.part_index)
    return found[2] if found else None


def cid_images(config, msg: Message) -> dict[str, str]:
    """Content-ID -> data: URI of the message's inline images (raster types only)."""
    wanted = [a for a in msg.attachments
              if a.content_id and a.content_type.lower() in INLINE_IMAGE_TYPES]
    if not wanted or sum(a.size for a in wanted) > MAX_INLINE_BYTES:
        return {}
    try:
        raw = blob_store(config).get(msg.blob_sha256)
    except (OSError, ValueError):
        return {}
    out = {}
    for a in wanted:
        found = find_part(raw, a.part_index)
        if found and found[2]:
            out[a.content_id.strip("<>").lower()] = "data:%s;base64,%s" % (
                a.content_type.lower(), base64.b64encode(found[2]).decode("ascii"))
    return out


# ---------------------------------------------------------------- records


def badges(session: Session, host, message_ids: Iterable[int]) -> dict[int, list[tuple[RecordLink, HostRecord]]]:  # noqa: E501
    """Linked candidates/contacts per message id, in one query and one host call."""
    ids = list(message_ids)
    if not ids:
        return {}
    links = list(session.scalars(select(RecordLink).where(RecordLink.message_id.in_(ids))
                                 .order_by(RecordLink.id)))
    if not links:
        return {}
    refs = {RecordRef(link.record_kind, link.record_id) for link in links}  # type: ignore[arg-type]
    records = host.get_records(refs)
    out: dict[int, list] = {}
    for link in links:
        rec = records.get(RecordRef(link.record_kind, link.record_id))  # type: ignore[arg-type]
        if rec is not None:
            out.setdefault(link.message_id, []).append((link, rec))
    return out


def find_records(host, user: HostUser, query: str, limit: int = 10) -> list[HostRecord]:
    """Candidates and contacts matching ``query`` that ``user`` may view."""
    query = (query or "").strip()
    if len(query) < 2:
        return []
    hits = host.search_records(query, limit * 3)
    return [r for r in hits if host.may_view_record(user, r.ref)][:limit]


def add_link(session: Session, host, user: HostUser, msg: Message, ref: RecordRef) -> bool:
    """Link ``msg`` to a record by hand; False when the user may not see the record."""
    if not host.may_view_record(user, ref) or not host.get_records([ref]):
        return False
    exists = session.scalars(select(RecordLink).where(
        RecordLink.message_id == msg.id, RecordLink.record_kind == ref.kind,
        RecordLink.record_id == ref.id)).first()
    if exists is None:
        session.add(RecordLink(message_id=msg.id, record_kind=ref.kind, record_id=ref.id,
                               how="manual", linked_by=str(user.id)))
    return True


def remove_link(session: Session, msg: Message, link_id: int) -> bool:
    link = session.get(RecordLink, link_id)
    if link is None or link.message_id != msg.id:
        return False
    session.delete(link)
    return True


# ------------------------------------------------------- flags and delete


def set_seen(addon, msg: Message, seen: bool) -> None:
    """Mark read/unread here (caller commits) and on the IMAP server (in the background)."""
    if msg.seen == seen:
        return
    msg.seen = seen
    locations = _server_locations(msg)
    if locations:
        _enqueue(addon, msg.mailbox_id, _push_seen, locations, seen)


def delete_message(addon, msg: Message) -> None:
    """Delete from webmail (rows stay for linked records) and from an IMAP server."""
    msg.deleted = True
    locations = _server_locations(msg)
    if locations:
        _enqueue(addon, msg.mailbox_id, _push_delete, locations, None)


def _server_locations(msg: Message) -> list[tuple[int, str, int | None, int]]:
    """(location id, folder, uidvalidity, uid) on an IMAP server; [] for POP3."""
    return [(loc.id, loc.folder, loc.uidvalidity, loc.uid) for loc in msg.locations
            if loc.uid is not None and not loc.removed_from_server]


_executors: dict[int, ThreadPoolExecutor] = {}
_pending: dict[int, list[Future]] = {}
_lock = threading.Lock()


def _executor(addon) -> ThreadPoolExecutor:
    with _lock:
        ex = _executors.get(id(addon))
        if ex is None:
            ex = _executors[id(addon)] = ThreadPoolExecutor(1, thread_name_prefix="ie-webmail")
        return ex


def _enqueue(addon, mailbox_id: int, work, locations, arg) -> None:
    """Run after the request's commit (the session's after_commit) in the serial worker."""
    from plugin.setup.policy import connection_policy
    s = addon.session()
    mb = s.get(Mailbox, mailbox_id)
    if mb is None or mb.protocol != "imap" or not mb.in_host:
        return
    settings = incoming_settings(mb, addon.secrets)
    policy = connection_policy(addon, s)
    job = (work, settings, policy, locations, arg)
    jobs = s.info.setdefault("ie_server_jobs", [])
    jobs.append(job)
    if len(jobs) == 1:
        from sqlalchemy import event

        def after_commit(session) -> None:
            for w, st, po, locs, a in session.info.pop("ie_server_jobs", []):
                fut = _executor(addon).submit(_run, addon, w, st, po, locs, a)
                with _lock:
                    _pending.setdefault(id(addon), []).append(fut)

        def after_rollback(session) -> None:
            session.info.pop("ie_server_jobs", None)

        event.listen(s, "after_commit", after_commit, once=True)
        event.listen(s, "after_soft_rollback", after_rollback, once=True)


def _run(addon, work, settings, policy, locations, arg) -> None:
    from plugin.mail.imap import ImapSession
    try:
        with ImapSession(settings, policy) as imap:
            work(addon, imap, locations, arg)
    except Exception as exc:  # the next sync re-reads the flags
        log.warning("webmail change not carried to the server (%s)", type(exc).__name__)


def wait_for_server_updates(addon, timeout: float = 30) -> None:
    """Block until every queued server change has run (tests, shutdown)."""
    with _lock:
        futures = _pending.pop(id(addon), [])
    for fut in futures:
        fut.result(timeout)


def _by_folder(locations) -> dict[str, list[tuple[int, int | None, int]]]:
    out: dict[str, list] = {}
    for loc_id, folder, validity, uid in locations:
        out.setdefault(folder, []).append((loc_id, validity, uid))
    return out


def _push_seen(addon, imap, locations, seen: bool) -> None:
    for folder, items in _by_folder(locations).items():
        sel = imap.select(folder, readonly=False)
        uids = [uid for _l, v, uid in items if v is None or v == sel.uidvalidity]
        if seen:
            imap.store_flags(uids, add=["\\Seen"])
        else:
            imap.store_flags(uids, remove=["\\Seen"])


def _push_delete(addon, imap, locations, _arg) -> None:
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


# ------------------------------------------------------------ sync hook


def refresh_recent_flags(addon, mailbox_id: int, session_imap, folder: str,
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


__all__ = ["own_mail", "visible_messages_filter", "webmail_enabled", "user_mailboxes",
           "pick_mailbox", "folders", "list_page", "search_page", "get_message",
           "get_attachment", "attachment_bytes", "cid_images", "badges", "find_records",
           "add_link", "remove_link", "set_seen", "delete_message", "refresh_recent_flags",
           "wait_for_server_updates", "Page", "Folder"]
