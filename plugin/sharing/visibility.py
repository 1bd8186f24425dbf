"""The one sharing rule (``plugin.sharing.rule``) applied to queries of stored mail:
every query of others' mail ANDs ``visible_messages_filter`` in, with the host's
record access for that query's scope; changing a message (read flags, delete,
record links) stays with its owner (``own_mail``)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from plugin.host import HostAdapter, HostUser
from plugin.models import GlobalSettings, Mailbox, Message
from plugin.sharing import rule
from plugin.sharing.rule import RecordAccess


def own_mail(user: HostUser) -> ColumnElement[bool]:
    """Messages of mailboxes ``user`` owns."""
    return Message.mailbox_id.in_(select(Mailbox.id).where(Mailbox.user_id == str(user.id)))


def visible_messages_filter(session: Session, user: HostUser,
                            access: RecordAccess) -> ColumnElement[bool]:
    """THE rule of which messages ``user`` may see (see plugin.sharing.rule)."""
    return rule.visible(user, session.get(GlobalSettings, 1), access)


def access_for(session: Session, host: HostAdapter, user: HostUser,
               where: Iterable[ColumnElement[bool]]) -> RecordAccess:
    """The host's answer about every record linked to others' mail among ``where``
    (one batched question, before the real query)."""
    return rule.record_access(session, host, user, list(where))


def message_access(session: Session, host: HostAdapter, user: HostUser,
                   message_ids: list[int]) -> RecordAccess:
    """The host's answer about the records linked to these messages."""
    return rule.record_access(session, host, user, [Message.id.in_(message_ids)])
