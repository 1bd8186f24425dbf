"""The bytes of an outbox row: the same row always gives the same bytes, so a retry,
the copy in Sent and the stored copy are all the message that went out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from email.message import EmailMessage
from types import SimpleNamespace
from typing import Any

from plugin.blobs import blob_store
from plugin.mail import build as compose
from plugin.models.outbound import OutboundMessage
from plugin.sending.lease import now

#: an outbox row: the ORM object, or a namespace of its columns (the bulk runner's)
OutboundRow = OutboundMessage | SimpleNamespace

_prepared: dict[tuple[str, str], compose.PreparedMessage] = {}


def attachments_of(config: Mapping[str, Any], row: OutboundRow) -> list[compose.Attachment]:
    """The row's attachments, read back from the blob store."""
    items = json.loads(row.attachments or "[]")
    if not items:
        return []
    blobs = blob_store(config)
    return [compose.Attachment(a["name"], a["type"], blobs.get(a["sha256"])) for a in items]


def message_for(config: Mapping[str, Any], row: OutboundRow) -> EmailMessage:
    """The EmailMessage of a row; the same row always gives the same bytes."""
    return compose.build_message(
        from_name=row.from_name, from_addr=row.from_addr,
        to=compose.addresses_from_json(row.to_addrs),
        cc=compose.addresses_from_json(row.cc_addrs), subject=row.subject,
        body_text=row.body_text, body_html=row.body_html, message_id=row.message_id_header,
        date=row.date or now(), in_reply_to=row.in_reply_to, references=row.references,
        attachments=attachments_of(config, row),
        list_unsubscribe=getattr(row, "unsubscribe_url", None))


def bulk_template(row: OutboundRow) -> compose.PreparedMessage | None:
    """The prepared builder for a bulk row of the common shape (text and optional
    HTML, one recipient, ASCII addresses); None for anything else."""
    if row.bulk_job_id is None or row.attachments not in (None, "", "[]") or \
            row.cc_addrs not in (None, "", "[]") or row.in_reply_to or row.references or \
            not row.from_addr.isascii():
        return None
    to = compose.addresses_from_json(row.to_addrs)
    if len(to) != 1 or not to[0][1].isascii():
        return None
    key = (row.from_name or "", row.from_addr)
    prepared = _prepared.get(key)
    if prepared is None:
        if len(_prepared) > 64:
            _prepared.clear()
        prepared = _prepared[key] = compose.PreparedMessage(*key)
    return prepared


def raw_for(config: Mapping[str, Any], row: OutboundRow,
            prepared: compose.PreparedMessage | None = None) -> bytes:
    """The bytes of a row as they are sent (and saved in Sent); the same row always
    gives the same bytes. Bulk rows of the common shape skip ``EmailMessage``
    (:class:`compose.PreparedMessage`, same bytes, a fiftieth of the time)."""
    prepared = prepared or bulk_template(row)
    if prepared is None:
        return compose.flatten(message_for(config, row))
    return prepared.build(to=compose.addresses_from_json(row.to_addrs), subject=row.subject,
                          body_text=row.body_text, body_html=row.body_html,
                          message_id=row.message_id_header, date=row.date or now(),
                          list_unsubscribe=getattr(row, "unsubscribe_url", None))
