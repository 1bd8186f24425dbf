"""Record links as the webmail shows and edits them: the badges of linked candidates
and contacts, and links made or removed by hand."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.host import HostAdapter, HostRecord, HostUser, RecordRef
from plugin.models import Message, RecordLink


def badges(session: Session, host: HostAdapter,
           message_ids: Iterable[int]) -> dict[int, list[tuple[RecordLink, HostRecord]]]:
    """Linked candidates/contacts per message id, in one query and one host call."""
    ids = list(message_ids)
    if not ids:
        return {}
    links = list(session.scalars(select(RecordLink).where(RecordLink.message_id.in_(ids))
                                 .order_by(RecordLink.id)))
    if not links:
        return {}
    refs = {RecordRef(link.record_kind, link.record_id) for link in links}  # type: ignore[arg-type]
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
        session.add(RecordLink(message_id=msg.id, record_kind=ref.kind, record_id=ref.id,
                               how="manual", linked_by=str(user.id)))
    return True


def remove_link(session: Session, msg: Message, link_id: int) -> bool:
    """Remove a link of ``msg``; False when it is not one of that message's."""
    link = session.get(RecordLink, link_id)
    if link is None or link.message_id != msg.id:
        return False
    session.delete(link)
    return True
