"""The sent copy in the add-on's store: a ``Message`` row (origin "ats", the user's Sent
view and the records' timelines), its ``RecordLink`` rows, and a host note on every
linked record. Idempotent keys throughout: recording the same rows twice changes
nothing. The message rows are written through :func:`plugin.fetching.store.insert_new`,
the store's own idempotent insert, so the two writers of message rows share one rule.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from plugin.blobs import blob_store
from plugin.context import AddonContext
from plugin.fetching.store import attachment_rows, begin_write, insert_new
from plugin.host import HostAdapter, RecordRef
from plugin.mail import build as compose
from plugin.mail.parse import content_digest, message_key_for, parse_message
from plugin.models import Attachment as StoredAttachment
from plugin.models import Message, RecordLink
from plugin.models.notes import FULL, HostNote
from plugin.models.outbound import OutboundMessage
from plugin.sending.lease import now, write_lock
from plugin.sending.messages import OutboundRow, raw_for

log = logging.getLogger("plugin.integrated_email.send")


def note_key(message_id: str, ref: RecordRef) -> str:
    """The idempotency key of the host note about one sent message on one record."""
    digest = hashlib.sha256(f"{message_id}|{ref}".encode()).hexdigest()[:40]
    return f"ie-sent:{digest}"


def note_text(row: OutboundRow, sender_name: str) -> str:
    """The host note's sentence: who sent what to whom."""
    to = ", ".join(a for _n, a in compose.addresses_from_json(row.to_addrs))
    subject = row.subject or "(no subject)"
    return f"Email sent by {sender_name} to {to}: \u201c{subject}\u201d"


def refs_of(row: OutboundRow) -> list[RecordRef]:
    """The records the row is recorded on (unparsable references are skipped)."""
    out = []
    for text in (row.record_refs or "").split():
        try:
            out.append(RecordRef.parse_any(text))
        except ValueError:
            continue
    return out


def keeps_raw_copy(row: OutboundRow) -> bool:
    """Whether the sent copy's raw bytes go to the blob store.

    Raw bytes are only ever read back for attachments and inline images; a copy
    without attachments is shown from its text and HTML (in its row), filed from its
    outbox row (:func:`raw_for` rebuilds the same bytes) and kept whole in the user's
    Sent folder. So it gets no blob: one file less per recipient of a bulk email.
    Its ``blob_sha256`` still names the bytes that were sent."""
    return row.attachments not in (None, "", "[]")


def copy_digest(addon: AddonContext, row: OutboundRow, raw: bytes) -> str:
    """The sha256 of a sent copy, storing the bytes when :func:`keeps_raw_copy`."""
    if keeps_raw_copy(row):
        return blob_store(addon.app.config).put(raw)
    return hashlib.sha256(raw).hexdigest()


def sender_name(host: HostAdapter, user_id: str, fallback: str = "") -> str:
    """The sending user's name as the host knows it (``fallback`` if unknown)."""
    user = host.get_user(user_id)
    return user.name if user else fallback


def record_sent(addon: AddonContext, rows: Sequence[OutboundRow], raws: dict[int, bytes],
                sender_name: str, shas: dict[int, str] | None = None) -> None:
    """Store the copies, link them to their records and write the host notes.

    ``shas``: digests the caller already made (:func:`copy_digest`, by row id). One
    transaction, a few statements for the whole batch. Idempotent: a second call for
    the same rows changes nothing (unique keys)."""
    if not rows:
        return
    shas = dict(shas or {})
    # Bytes first, outside the transaction: a crash leaves at worst an orphan blob.
    for row in rows:
        if raws.get(row.id) is None:
            raws[row.id] = raw_for(addon.app.config, row)
        if row.id not in shas:
            shas[row.id] = copy_digest(addon, row, raws[row.id])
    stamp = now()
    values = [_message_values(row, raws[row.id], shas[row.id], stamp) for row in rows]
    with write_lock, addon.engine.connect() as conn:
        begin_write(conn)
        insert_new(conn, Message.__table__, values)
        ids = _stored_ids(conn, values)
        links, stored, notes = [], [], []
        for row, v in zip(rows, values, strict=True):
            message_id = ids[(row.mailbox_id, v["message_key"])]
            if v["has_attachments"]:
                _store_attachments(conn, message_id, raws[row.id])
            links += [{"message_id": message_id, "record_kind": ref.kind, "record_id": ref.id,
                       "how": "sent", "linked_by": row.user_id, "created_at": stamp}
                      for ref in refs_of(row)]
            # Recorded so removing the mailbox can remove them (ATS mail's notes are
            # full: it is shared with whoever may open the record).
            notes += [{"mailbox_id": row.mailbox_id, "message_id": message_id,
                       "record_kind": ref.kind, "record_id": ref.id, "detail": FULL,
                       "note_key": note_key(row.message_id_header, ref), "created_at": stamp}
                      for ref in refs_of(row)]
            stored.append({"row_id": row.id, "stored": message_id})
            row.stored_message_id = message_id
        if links:
            insert_new(conn, RecordLink.__table__, links)
            insert_new(conn, HostNote.__table__, notes)
        out_table = OutboundMessage.__table__
        conn.execute(update(out_table).where(out_table.c.id == bindparam("row_id"))
                     .values(stored_message_id=bindparam("stored")), stored)
        conn.commit()
    # Host notes after our commit: the host's add_note is idempotent by key.
    for row in rows:
        text = note_text(row, sender_name)
        for ref in refs_of(row):
            try:
                addon.host.add_note(ref, row.user_id, text, note_key(row.message_id_header, ref))
            except Exception:
                log.exception("host note for outbound %s failed", row.id)


def _message_values(row: OutboundRow, raw: bytes, sha: str, stamp: datetime) -> dict:
    """The ``Message`` row of one sent copy."""
    to = compose.addresses_from_json(row.to_addrs)
    return {
        "mailbox_id": row.mailbox_id, "message_key": message_key_for(row.message_id_header),
        "content_digest": content_digest(raw),
        "message_id_header": row.message_id_header, "in_reply_to": row.in_reply_to,
        "references": row.references, "subject": row.subject,
        "from_addr": row.from_addr, "from_name": row.from_name,
        "to_addrs": json.dumps([[n, a] for n, a in to], ensure_ascii=False),
        "cc_addrs": row.cc_addrs, "date": row.date or stamp,
        "snippet": " ".join((row.body_text or "").split())[:200],
        "body_text": row.body_text, "body_html": row.body_html,
        "has_attachments": row.attachments not in (None, "", "[]"),
        "size": len(raw), "blob_sha256": sha, "folder_role": "sent",
        "direction": "out", "origin": "ats", "seen": True, "deleted": False,
        "created_at": stamp}


def _stored_ids(conn: Connection, values: list[dict]) -> dict[tuple[int, str], int]:
    """The ids of the stored copies (new or already there), by (mailbox, message key)."""
    msg_table = Message.__table__
    ids: dict[tuple[int, str], int] = {}
    by_mailbox: dict[int, list[str]] = {}
    for v in values:
        by_mailbox.setdefault(v["mailbox_id"], []).append(v["message_key"])
    for mailbox_id, keys in by_mailbox.items():
        for start in range(0, len(keys), 500):
            for mid, key in conn.execute(select(msg_table.c.id, msg_table.c.message_key)
                                         .where(msg_table.c.mailbox_id == mailbox_id,
                                                msg_table.c.message_key.in_(
                                                    keys[start:start + 500]))):
                ids[(mailbox_id, key)] = mid
    return ids


def _store_attachments(conn: Connection, message_id: int, raw: bytes) -> None:
    """The attachment rows of a stored copy, unless it has them already."""
    att_table = StoredAttachment.__table__
    parsed = parse_message(raw)
    have = conn.execute(select(att_table.c.id).where(
        att_table.c.message_id == message_id)).first()
    if have is None and parsed.attachments:
        conn.execute(att_table.insert(), attachment_rows(message_id, parsed))
