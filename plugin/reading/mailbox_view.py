"""The webmail's lists: the user's mailboxes, their folders with unread counts, and
pages of messages (a folder, the virtual "Shared with me" folder, search results),
newest first by keyset. Others' mail enters only through the sharing rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from plugin.host import HostAdapter, HostUser
from plugin.models import FetchCursor, GlobalSettings, Mailbox, Message
from plugin.reading import search as search_service
from plugin.sharing.visibility import access_for, own_mail, visible_messages_filter
from plugin.words import N_

PAGE_SIZE = 50
#: English msgids, translated where shown
FOLDER_LABELS = {"inbox": N_("Inbox"), "sent": N_("Sent"), "drafts": N_("Drafts"),
                 "archive": N_("Archive"), "junk": N_("Junk"), "trash": N_("Trash")}

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
    """The user's mailbox ``mailbox_id`` (None if not theirs), or their first one."""
    boxes = user_mailboxes(session, user)
    if mailbox_id is not None:
        return next((m for m in boxes if m.id == mailbox_id), None)
    return boxes[0] if boxes else None


@dataclass(frozen=True)
class Folder:
    """A folder in the sidebar, with its unread count."""

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
    return out + [Folder(SHARED, N_("Shared with me"), 0)]


# ------------------------------------------------------------------------ pages


@dataclass
class Page:
    """One page of a message list."""

    messages: list[Message]
    #: opaque keyset cursor of the next page; None on the last one
    next_cursor: str | None


def encode_cursor(msg: Message) -> str:
    """The keyset cursor that continues after ``msg``."""
    d = msg.date if msg.date.tzinfo else msg.date.replace(tzinfo=timezone.utc)
    return "%d.%d" % (int(d.timestamp() * 1_000_000), msg.id)


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """(date, id) of a cursor; None when absent or malformed."""
    if not cursor:
        return None
    try:
        micros, mid = cursor.split(".", 1)
        return (datetime.fromtimestamp(int(micros) / 1_000_000, tz=timezone.utc), int(mid))
    except (ValueError, OverflowError, OSError):
        return None


def _page(session: Session, where: list[ColumnElement[bool]], cursor: str | None,
          limit: int) -> Page:
    after = decode_cursor(cursor)
    if after is not None:
        d, mid = after
        where = where + [or_(Message.date < d, and_(Message.date == d, Message.id < mid))]
    rows = list(session.scalars(select(Message).where(*where).order_by(
        Message.date.desc(), Message.id.desc()).limit(limit + 1)))
    nxt = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return Page(rows[:limit], nxt)


def list_page(session: Session, host: HostAdapter, user: HostUser, mailbox_id: int,
              role: str,
              cursor: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """One page of a folder, newest first (keyset on ix_ie_message_keyset).

    The virtual folder "shared" lists other users' mail that sharing lets ``user`` see.
    """
    if role == SHARED:
        where = [Message.deleted.is_(False), ~own_mail(user)]
        access = access_for(session, host, user, where)
        return _page(session, where + [visible_messages_filter(session, user, access)],
                     cursor, limit)
    return _page(session, [Message.mailbox_id == mailbox_id, Message.folder_role == role,
                           Message.deleted.is_(False), own_mail(user)],
                 cursor, limit)


def search_page(session: Session, host: HostAdapter, user: HostUser, mailbox_id: int,
                query: str,
                cursor: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """Messages matching ``query`` in sender, recipients, subject or text: the
    mailbox's own, and other users' mail that sharing lets ``user`` see."""
    clause = search_service.matches(session, query)
    if clause is None:
        return Page([], None)
    where = [Message.deleted.is_(False), clause]
    access = access_for(session, host, user, where)
    scope = or_(Message.mailbox_id == mailbox_id,
                and_(~own_mail(user), visible_messages_filter(session, user, access)))
    return _page(session, where + [scope], cursor, limit)
