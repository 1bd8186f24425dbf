"""Automatic import: stored mail recorded on the candidates and contacts it concerns.

After a batch is stored (and again after each sync, to sweep up any batch whose
import a crash interrupted), every message not yet checked is matched in ONE
batched host lookup of its From, To and Cc addresses.  Addresses of ATS users
are never taken for candidates.  A reply to a message sent from the ATS (its
In-Reply-To or References naming that message) is linked to the same records
even when the replying address differs.

Exactly once: a link row is unique per (message, record) and the host note's
key is unique per (email, record); the note is written before the link row, so
a crash in between only makes the host see the same key again, which it ignores.
What a note says follows the mail's sharing (:mod:`plugin.linking.notes`).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.context import AddonContext
from plugin.host import RecordRef
from plugin.linking import notes
from plugin.linking.consolidate import consolidate
from plugin.models import GlobalSettings, Mailbox, Message, RecordLink
from plugin.sending import bounces
from plugin.setup import settings as settings_service

log = logging.getLogger("plugin.integrated_email.import")
BATCH = 500


def _addresses(m: Message) -> set[str]:
    out = {m.from_addr.lower()} if m.from_addr else set()
    for raw in (m.to_addrs, m.cc_addrs):
        try:
            out |= {addr.lower() for _name, addr in json.loads(raw or "[]") if addr}
        except (ValueError, TypeError):
            continue
    return out


def _thread_ids(m: Message) -> set[str]:
    ids = set((m.references or "").split())
    if m.in_reply_to:
        ids.add(m.in_reply_to)
    return {i.strip("<>") for i in ids if i}


def note_text(m: Message, owner_email: str) -> str:
    """The full note a host shows on the record: who, what, when."""
    return notes.full_text(m, owner_email)


def note_key(m: Message, ref: RecordRef) -> str:
    """The host note's idempotency key for ``m`` on ``ref``."""
    return notes.note_key(m.message_key, ref)


def link_pending(addon: AddonContext, mailbox_id: int, message_ids: list[int] | None = None) -> int:
    """Link the mailbox's unchecked messages to records; returns links created."""
    total = 0
    while True:
        created, checked = _link_batch(addon, mailbox_id, message_ids)
        total += created
        if checked < BATCH or message_ids is not None:
            return total


#: what linking reads of a message (never the bodies)
_FIELDS = (Message.id, Message.message_key, Message.from_addr, Message.from_name,
           Message.to_addrs, Message.cc_addrs, Message.in_reply_to, Message.references,
           Message.subject, Message.snippet, Message.date, Message.origin,
           Message.blob_sha256, Message.direction)


def _link_batch(addon: AddonContext, mailbox_id: int,
                message_ids: list[int] | None) -> tuple[int, int]:
    host = addon.host
    with Session(addon.engine, expire_on_commit=False) as s:
        q = select(*_FIELDS).where(Message.mailbox_id == mailbox_id,
                                   Message.import_checked.is_(False))
        if message_ids is not None:
            q = q.where(Message.id.in_(message_ids))
        msgs = s.execute(q.order_by(Message.id).limit(BATCH)).all()
        if not msgs:
            return 0, 0
        mb = s.execute(select(Mailbox.id, Mailbox.user_id, Mailbox.email, Mailbox.protocol,
                              Mailbox.consolidate_folder, Mailbox.sharing)
                       .where(Mailbox.id == mailbox_id)).first()
        if mb is None:
            return 0, 0
        ids = [m.id for m in msgs]
        # Bounce reports are recorded on the mail we sent, never linked as mail.
        reports = bounces.take_reports(addon, s, mailbox_id, msgs)
        msgs = [m for m in msgs if m.id not in reports]
        gs = s.get(GlobalSettings, 1)  # one read: the import switch and the notes' rule
        if not settings_service.auto_import(gs):
            s.execute(update(Message).where(Message.id.in_(ids)).values(import_checked=True))
            s.commit()
            return 0, len(ids)

        wanted: dict[int, dict[RecordRef, str]] = defaultdict(dict)
        addresses = set().union(*(_addresses(m) for m in msgs))
        addresses.discard(mb.email.lower())
        if addresses:
            users = host.users_by_email(addresses)
            records = host.records_by_email(addresses - set(users))
            for m in msgs:
                for addr in _addresses(m):
                    for rec in records.get(addr, ()):
                        wanted[m.id].setdefault(rec.ref, "auto")

        # Replies to mail sent from the ATS follow the thread, whatever the address.
        thread_ids = set().union(*(_thread_ids(m) for m in msgs))
        if thread_ids:
            rows = s.execute(
                select(Message.message_id_header, RecordLink.record_kind, RecordLink.record_id)
                .join(RecordLink, RecordLink.message_id == Message.id)
                .where(Message.origin == "ats", Message.message_id_header.in_(thread_ids)))
            by_parent: dict[str, set[RecordRef]] = defaultdict(set)
            for parent, kind, rid in rows:
                by_parent[parent].add(RecordRef(kind, rid))
            for m in msgs:
                for parent in _thread_ids(m):
                    for ref in by_parent.get(parent, ()):
                        wanted[m.id].setdefault(ref, "reply")

        existing = {(mid, k, r) for mid, k, r in s.execute(
            select(RecordLink.message_id, RecordLink.record_kind, RecordLink.record_id)
            .where(RecordLink.message_id.in_(list(wanted))))} if wanted else set()
        by_id = {m.id: m for m in msgs}
        created = 0
        for mid, refs in wanted.items():
            m = by_id[mid]
            for ref, how in refs.items():
                if (mid, ref.kind, ref.id) in existing:
                    continue
                # Only what every viewer of the record may read (plugin.linking.notes).
                notes.write(s, host, gs, mb, m, ref, note_key(m, ref))
                s.add(RecordLink(message_id=mid, record_kind=ref.kind, record_id=ref.id,
                                 how=how))
                created += 1
        s.execute(update(Message).where(Message.id.in_(ids)).values(import_checked=True))
        s.commit()
        if created:
            log.info("linked %d messages of mailbox %s to records", created, mailbox_id)
        linked_ids = [mid for mid in wanted if wanted[mid]]
    if linked_ids and mb.consolidate_folder and mb.protocol == "imap":
        consolidate(addon, mailbox_id)
    return created, len(ids)

