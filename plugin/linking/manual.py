"""Record links as the webmail shows and edits them: the badges of linked records
the viewer may open, and links made or removed by hand (a link made by hand writes
the same note automatic import would, by the same privacy rule)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.host import HostAdapter, HostRecord, HostUser, RecordRef
from plugin.linking import notes
from plugin.models import GlobalSettings, Mailbox, Message, RecordLink
from plugin.sending.sent_copy import note_key as sent_key
from plugin.sharing.rule import viewable_refs


def badges(session: Session, host: HostAdapter, message_ids: Iterable[int],
           viewer: HostUser | None = None) -> dict[int, list[tuple[RecordLink, HostRecord]]]:
    """Linked records per message id, in one query and one host call (two with
    ``viewer``: then only the records the host lets them open)."""
    ids = list(message_ids)
    if not ids:
        return {}
    links = list(session.scalars(select(RecordLink).where(RecordLink.message_id.in_(ids))
                                 .order_by(RecordLink.id)))
    if not links:
        return {}
    refs = {RecordRef(link.record_kind, link.record_id) for link in links}  # type: ignore[arg-type]
    if viewer is not None:
        refs = viewable_refs(host, viewer, refs)
    records = host.get_records(refs)
    out: dict[int, list] = {}
    for link in links:
        rec = records.get(RecordRef(link.record_kind, link.record_id))  # type: ignore[arg-type]
        if rec is not None:
            out.setdefault(link.message_id, []).append((link, rec))
    return out


def find_records(host: HostAdapter, user: HostUser, query: str,
                 limit: int = 10) -> list[HostRecord]:
    """Candidates and contacts matching ``query`` that ``user`` may view."""
    query = (query or "").strip()
    if len(query) < 2:
        return []
    # contract 2.0: the host leaves out what the viewer may not open (plugin.hosting.Host
    # checks once more in one batched call)
    return host.search_records(query, limit, viewer=user)[:limit]


def add_link(session: Session, host: HostAdapter, user: HostUser, msg: Message,
             ref: RecordRef) -> bool:
    """Link ``msg`` to a record by hand; False when the user may not see the record."""
    if not host.may_view_record(user, ref) or not host.get_records([ref]):
        return False
    exists = session.scalars(select(RecordLink).where(
        RecordLink.message_id == msg.id, RecordLink.record_kind == ref.kind,
        RecordLink.record_id == ref.id)).first()
    if exists is None:
        mailbox = session.get(Mailbox, msg.mailbox_id)
        notes.write(session, host, session.get(GlobalSettings, 1), mailbox, msg, ref,
                    _key(msg, ref))
        session.add(RecordLink(message_id=msg.id, record_kind=ref.kind, record_id=ref.id,
                               how="manual", linked_by=str(user.id)))
    return True


def _key(msg: Message, ref: RecordRef) -> str:
    if msg.origin == "ats":  # the key sending wrote its notes under
        return sent_key(msg.message_id_header or msg.message_key, ref)
    return notes.note_key(msg.message_key, ref)


def remove_link(session: Session, msg: Message, link_id: int,
                host: HostAdapter | None = None) -> bool:
    """Remove a link of ``msg``; False when it is not one of that message's.  With
    ``host``, the note the link wrote goes too (unless another mailbox holds it)."""
    link = session.get(RecordLink, link_id)
    if link is None or link.message_id != msg.id:
        return False
    if host is not None:
        notes.forget(session, host, msg.id, RecordRef(link.record_kind, link.record_id))
    session.delete(link)
    return True
