"""The email timeline of a record: linked mail the viewer may see, by the one rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from plugin.host import HostAdapter, HostUser, RecordRef
from plugin.models import GlobalSettings, Mailbox, Message, RecordLink
from plugin.sharing import rule as sharing
from plugin.sharing.rule import RecordAccess

PAGE = 50


@dataclass
class TimelineEntry:
    """A message on a record's timeline, with whose mailbox it came from."""

    message: Message
    mailbox_name: str
    owner_name: str
    how: str


def record_access(host: HostAdapter, viewer: HostUser, ref: RecordRef) -> RecordAccess | None:
    """The host's answer for this timeline: the record itself (None when the host does
    not let ``viewer`` open it).

    A record's timeline shows others' mail *through this record*: Public, Admin and
    ATS mail linked to it, Custom mail when its owner ticked this record.  Mail shared
    through another record it is also linked to is found there and in the webmail;
    asking about those records too would cost a query over all the record's links.
    """
    return RecordAccess.of([ref]) if host.may_view_record(viewer, ref) else None


def record_query(viewer: HostUser, gs: GlobalSettings | None, ref: RecordRef,
                 access: RecordAccess | None, filtered: bool = True) -> Select:
    """The timeline's SQL (the benchmark runs it with and without the filter)."""
    q = (select(Message, Mailbox.account_name, Mailbox.user_id, RecordLink.how)
         .join(RecordLink, RecordLink.message_id == Message.id)
         .join(Mailbox, Mailbox.id == Message.mailbox_id)
         .where(RecordLink.record_kind == ref.kind, RecordLink.record_id == str(ref.id),
                Message.deleted.is_(False)))
    if filtered:
        if access is None:
            raise ValueError("the filtered timeline needs the host's record access")
        q = q.where(sharing.visible(viewer, gs, access, joined_link_to=ref))
    return q.order_by(Message.date.desc(), Message.id.desc())


def entries(session: Session, host: HostAdapter, viewer: HostUser, ref: RecordRef,
            before: datetime | None = None, limit: int = PAGE) -> list[TimelineEntry]:
    """Newest first; ``before`` pages back in time.  Empty when the host does not
    let ``viewer`` open ``ref``."""
    gs = session.get(GlobalSettings, 1)
    access = record_access(host, viewer, ref)
    if access is None:
        return []
    q = record_query(viewer, gs, ref, access)
    if before is not None:
        q = q.where(Message.date < before)
    rows = session.execute(q.limit(limit)).all()
    names = {}
    out = []
    for message, account, owner_id, how in rows:
        if owner_id not in names:
            user = host.get_user(owner_id)
            names[owner_id] = user.name if user else "another user"
        out.append(TimelineEntry(message, account, names[owner_id], how))
    return out
