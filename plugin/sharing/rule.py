"""Who may see which stored message: the one place the rule lives, as SQL.

Two kinds of mail, two rules (the seed article's "record sharing" and "email
sharing"):

* Mail the ATS itself sent (``origin = 'ats'``): whoever the host says may view a
  record it is linked to.  The host's answer is asked once per record set
  (:func:`viewable_refs`) and enters the query as bound parameters.
* Mail synced from a mailbox (``origin = 'synced'``): the owner's sharing option.
  Private: the owner only.  Custom: others see it when it is linked to a record on
  which the owner ticked "Share email".  Public: others see it when it is linked to
  any candidate or contact, unless the viewer is excluded from public mail or the
  mail involves an excluded domain.  Admin: administrators see it when linked.

The owner always sees all of their own mail.  Every query of stored mail (webmail,
timeline, search, attachments, reply/forward, JSON) ANDs :func:`visible` in, so a
message a viewer may not see simply does not exist for them (404).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, exists, false, func, or_, select, true, tuple_
from sqlalchemy import Select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from plugin.host import HostAdapter, HostUser, RecordRef
from plugin.models import Mailbox, Message, RecordLink
from plugin.models.settings import GlobalSettings
from plugin.models.sharing import RecordShare

#: admins may name at most this many domains whose mail is never shared publicly
MAX_EXCLUDED_DOMAINS = 5


def excluded_users(gs: GlobalSettings | None) -> set[str]:
    """Ids of users who never see others' public mail."""
    return {u.strip() for u in (gs.public_excluded_users or "").split(",") if u.strip()} \
        if gs else set()


def excluded_domains(gs: GlobalSettings | None) -> list[str]:
    """Domains whose mail is never shared publicly (at most five)."""
    if not gs:
        return []
    return [d.strip().lower().lstrip("@") for d in (gs.public_excluded_domains or "").splitlines()
            if d.strip()][:MAX_EXCLUDED_DOMAINS]


def _involves_domain(domain: str) -> ColumnElement[bool]:
    # to/cc are JSON lists of [name, address]: an address ends with the domain and a quote.
    return or_(func.lower(Message.from_addr).like(f"%@{domain}"),
               func.lower(Message.to_addrs).like(f'%@{domain}"%'),
               func.lower(Message.cc_addrs).like(f'%@{domain}"%'))


def visible(viewer: HostUser, gs: GlobalSettings | None,
            ats_refs: Iterable[RecordRef] = (),
            joined_link_to: RecordRef | None = None) -> ColumnElement[bool]:
    """SQL condition on ``Message``: true where ``viewer`` may see the message.

    ``ats_refs``: records whose ATS-sent mail the viewer may see (from
    :func:`viewable_refs`); empty means no one else's ATS-sent mail.
    ``joined_link_to``: the query already joins each message to its link to this record
    (the timeline), so "is linked" and "is linked to that record" are known per row and
    need no subquery; the rule is the same.
    """
    # Mailbox conditions are uncorrelated IN (...) lists the database computes once
    # per query; the few EXISTS probes name Message as correlated explicitly (a
    # nested EXISTS would otherwise silently match any row).
    def boxes(*conds: ColumnElement[bool]) -> Select:
        return select(Mailbox.id).where(*conds)

    link = aliased(RecordLink)
    linked = true() if joined_link_to is not None else \
        exists().where(link.message_id == Message.id).correlate(Message)
    owner = Message.mailbox_id.in_(boxes(Mailbox.user_id == str(viewer.id)))

    public_ok = (false() if str(viewer.id) in excluded_users(gs) else true())
    domains = excluded_domains(gs)
    if domains:
        public_ok = and_(public_ok, ~or_(*(_involves_domain(d) for d in domains)))
    mb = aliased(Mailbox)
    share = aliased(RecordShare)
    custom_link = aliased(RecordLink)
    custom_shared = exists().where(
        custom_link.message_id == Message.id, mb.id == Message.mailbox_id,
        share.owner_user_id == mb.user_id, share.record_kind == custom_link.record_kind,
        share.record_id == custom_link.record_id).correlate(Message)
    synced = and_(Message.origin == "synced", or_(
        and_(Message.mailbox_id.in_(boxes(Mailbox.sharing == "public")), public_ok, linked),
        # Only owners who ticked something can share anything under Custom.
        and_(Message.mailbox_id.in_(boxes(
            Mailbox.sharing == "custom",
            Mailbox.user_id.in_(select(RecordShare.owner_user_id)))), custom_shared),
        and_(Message.mailbox_id.in_(boxes(Mailbox.sharing == "admin")), linked)
        if viewer.sees_admin_mail else false()))

    refs = sorted({(r.kind, str(r.id)) for r in ats_refs})
    if joined_link_to is not None and (joined_link_to.kind, str(joined_link_to.id)) in refs:
        return or_(owner, synced, Message.origin == "ats")
    ats_link = aliased(RecordLink)
    ats = and_(Message.origin == "ats", exists().where(
        ats_link.message_id == Message.id,
        tuple_(ats_link.record_kind, ats_link.record_id).in_(refs)).correlate(Message)) \
        if refs else false()
    return or_(owner, synced, ats)


def viewable_refs(host: HostAdapter, viewer: HostUser, refs: Iterable[RecordRef]) -> set[RecordRef]:
    """The records among ``refs`` the host lets ``viewer`` see (one call per record)."""
    return {ref for ref in set(refs) if host.may_view_record(viewer, ref)}


def refs_linked_to(session: Session, message_ids: Iterable[int]) -> set[RecordRef]:
    """The records the messages are linked to."""
    ids = list(message_ids)
    if not ids:
        return set()
    rows = session.execute(select(RecordLink.record_kind, RecordLink.record_id)
                           .where(RecordLink.message_id.in_(ids)).distinct())
    return {RecordRef(k, rid) for k, rid in rows}


def may_see_message(session: Session, host: HostAdapter, viewer: HostUser,
                    message_id: int) -> bool:
    """One message: the same SQL rule, with the host asked about its records."""
    gs = session.get(GlobalSettings, 1)
    refs = viewable_refs(host, viewer, refs_linked_to(session, [message_id]))
    return session.scalar(select(Message.id).where(
        Message.id == message_id, visible(viewer, gs, refs))) is not None


def shares_record(session: Session, owner_id: str, ref: RecordRef) -> bool:
    """Whether ``owner_id`` ticked \"Share email\" on ``ref``."""
    return session.scalar(select(RecordShare.id).where(
        RecordShare.owner_user_id == owner_id, RecordShare.record_kind == ref.kind,
        RecordShare.record_id == str(ref.id))) is not None


def set_share(session: Session, owner_id: str, ref: RecordRef, shared: bool) -> None:
    """Tick or untick "Share email" for ``owner_id`` on ``ref`` (idempotent)."""
    row = session.scalar(select(RecordShare).where(
        RecordShare.owner_user_id == owner_id, RecordShare.record_kind == ref.kind,
        RecordShare.record_id == str(ref.id)))
    if shared and row is None:
        session.add(RecordShare(owner_user_id=owner_id, record_kind=ref.kind,
                                record_id=str(ref.id)))
    elif not shared and row is not None:
        session.delete(row)
