"""Reading one message: find it by the sharing rule, its attachments' bytes, and the
owner's changes (read flags, delete), which the server takes over in the background
(``plugin.fetching.server_flags``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.blobs import blob_store
from plugin.context import AddonContext
from plugin.fetching import server_flags
from plugin.host import HostAdapter, HostUser
from plugin.mail.parse import decode_slice, find_part
from plugin.models import Attachment, Message
from plugin.sharing.visibility import message_access, own_mail, visible_messages_filter


def get_message(session: Session, host: HostAdapter, user: HostUser, message_id: int,
                owner_only: bool = False) -> Message | None:
    """A message ``user`` may see (None: answer 404).  ``owner_only`` for changes."""
    if owner_only:
        rule = own_mail(user)
    else:
        rule = visible_messages_filter(session, user,
                                       message_access(session, host, user, [message_id]))
    return session.scalars(select(Message).where(
        Message.id == message_id, Message.deleted.is_(False), rule)).first()


def get_attachment(session: Session, host: HostAdapter, user: HostUser,
                   attachment_id: int) -> Attachment | None:
    """An attachment of a message ``user`` may see (None: answer 404)."""
    message_id = session.scalar(select(Attachment.message_id).where(
        Attachment.id == attachment_id))
    if message_id is None:
        return None
    access = message_access(session, host, user, [message_id])
    return session.scalars(select(Attachment).join(Message).where(
        Attachment.id == attachment_id, Message.deleted.is_(False),
        visible_messages_filter(session, user, access))).first()


def addresses(value: str | None) -> list[tuple[str, str]]:
    """A stored JSON address list as (name, address) pairs; [] when unreadable."""
    try:
        return [(str(n), str(a)) for n, a in json.loads(value or "[]")]
    except (ValueError, TypeError):
        return []


def attachment_bytes(config: Mapping[str, Any], att: Attachment) -> bytes | None:
    """The decoded bytes of a stored attachment: its slice of the raw message when
    the import noted where it is (the cost is the attachment's, not the message's),
    else found again by its part index (rows from before 0008)."""
    store = blob_store(config)
    try:
        if att.body_offset is not None and att.body_length is not None:
            return decode_slice(store.get_range(att.message.blob_sha256, att.body_offset,
                                                att.body_length), att.transfer_encoding)
        raw = store.get(att.message.blob_sha256)
    except (OSError, ValueError):
        return None
    found = find_part(raw, att.part_index)
    return found[2] if found else None


def set_seen(addon: AddonContext, msg: Message, seen: bool) -> None:
    """Mark read/unread here (caller commits) and on the IMAP server (in the background)."""
    if msg.seen == seen:
        return
    msg.seen = seen
    server_flags.push_seen(addon, msg, seen)


def delete_message(addon: AddonContext, msg: Message) -> None:
    """Delete from webmail (rows stay for linked records) and from an IMAP server."""
    msg.deleted = True
    server_flags.push_delete(addon, msg)
