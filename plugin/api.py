"""The public read API a host calls from its own code (reports, tests, exports).

It answers with plain, frozen values (never the add-on's ORM rows, which a host must
not import) and applies the same sharing rule as the pages: a host cannot use it to
show a viewer more than the record's email panel would.  Call it inside an app
context; ``addon`` defaults to the app's add-on (``app.extensions["integrated_email"]``)::

    from plugin import api
    for m in api.messages_for_record(ref, viewer):
        print(m.date, m.subject, m.url)
    api.link_message(message_id, ref, user)   # no note is written on the record
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from plugin.host import HostUser, RecordRef
from plugin.hostkit import url_for_anywhere
from plugin.models import Message, RecordLink
from plugin.sharing import rule as sharing
from plugin.sharing import timeline

if TYPE_CHECKING:
    from plugin.addon import IntegratedEmail


@dataclass(frozen=True)
class LinkedMessage:
    """A message linked to a record, as a viewer may see it on the record's panel."""

    id: int
    subject: str
    from_name: str
    from_addr: str
    date: datetime
    #: "in" (received) or "out" (sent)
    direction: str
    #: "synced" (fetched from a mailbox) or "ats" (sent from the ATS)
    origin: str
    snippet: str
    #: the mailbox's name and its owner's name
    mailbox_name: str
    owner_name: str
    #: how it got linked: "auto", "manual", "sent", ...
    how: str
    #: the message in the add-on's read-only viewer, under the record
    url: str


def _addon(addon: IntegratedEmail | None) -> IntegratedEmail:
    if addon is not None:
        return addon
    from flask import current_app
    return current_app.extensions["integrated_email"]


def messages_for_record(ref: RecordRef, viewer: HostUser, limit: int = 50,
                        before: datetime | None = None,
                        addon: IntegratedEmail | None = None) -> list[LinkedMessage]:
    """The messages linked to ``ref`` that ``viewer`` may see, newest first (``before``
    pages back); none at all when the host does not let ``viewer`` open the record."""
    ie = _addon(addon)
    if viewer is None or not ie.host.may_view_record(viewer, ref):
        return []
    with ie.session() as s:
        found = timeline.entries(s, ie.host, viewer, ref, before=before, limit=max(0, limit))
        return [LinkedMessage(
            e.message.id, e.message.subject or "", e.message.from_name or "",
            e.message.from_addr or "", e.message.date, e.message.direction,
            e.message.origin, e.message.snippet or "", e.mailbox_name, e.owner_name, e.how,
            url_for_anywhere("integrated_email.record_message", kind=ref.kind,
                             record_id=ref.id, message_id=e.message.id))
            for e in found]


def link_message(message_id: int, ref: RecordRef, user: HostUser,
                 addon: IntegratedEmail | None = None) -> bool:
    """Link a message ``user`` may see to a record ``user`` may open, writing no note on
    the record (a second call changes nothing). False when either is not allowed."""
    ie = _addon(addon)
    if user is None or not (ref.kind in ie.host.kinds and ie.host.get_records([ref])
                            and ie.host.may_view_record(user, ref)):
        return False
    with ie.session() as s:
        msg = s.get(Message, int(message_id))
        if msg is None or msg.deleted or not sharing.may_see_message(s, ie.host, user, msg.id):
            return False
        linked = s.scalar(select(RecordLink.id).where(
            RecordLink.message_id == msg.id, RecordLink.record_kind == ref.kind,
            RecordLink.record_id == str(ref.id)))
        if linked is None:
            s.add(RecordLink(message_id=msg.id, record_kind=ref.kind, record_id=str(ref.id),
                             how="manual", linked_by=str(user.id)))
            s.commit()
    return True
