"""The one sharing rule (``plugin.sharing.rule``) applied to queries of stored mail:
every query of others' mail ANDs ``visible_messages_filter`` in; changing a message
(read flags, delete, record links) stays with its owner (``own_mail``)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from plugin.host import HostAdapter, HostUser, RecordRef
from plugin.models import GlobalSettings, Mailbox, Message, RecordLink
from plugin.sharing import rule


def own_mail(user: HostUser) -> ColumnElement[bool]:
    """Messages of mailboxes ``user`` owns."""
    return Message.mailbox_id.in_(select(Mailbox.id).where(Mailbox.user_id == str(user.id)))


def visible_messages_filter(session: Session, user: HostUser,
                            ats_refs: Iterable[RecordRef] = ()) -> ColumnElement[bool]:
    """THE rule of which messages ``user`` may see (see plugin.sharing.rule)."""
    return rule.visible(user, session.get(GlobalSettings, 1), ats_refs)


def ats_refs_for(session: Session, host: HostAdapter, user: HostUser,
                 where: list[ColumnElement[bool]]) -> set[RecordRef]:
    """Records of other users' ATS-sent mail among ``where`` that the host lets
    ``user`` view; asked once per record, bounded, before the real query."""
    rows = session.execute(
        select(RecordLink.record_kind, RecordLink.record_id).join(
            Message, Message.id == RecordLink.message_id).where(
            *where, Message.origin == "ats", ~own_mail(user)).distinct().limit(500)).all()
    return rule.viewable_refs(host, user, {RecordRef(k, r) for k, r in rows})


def message_refs(session: Session, host: HostAdapter, user: HostUser,
                 message_ids: list[int]) -> set[RecordRef]:
    """Records linked to the messages that the host lets ``user`` view."""
    return rule.viewable_refs(host, user, rule.refs_linked_to(session, message_ids))
