"""Who may see which stored message: the one place the rule lives, as SQL.

Two rules, ANDed (the seed article's "email sharing" and "record sharing"):

* **Sharing** (who the mail's owner shares it with).  Mail the ATS itself sent
  (``origin = 'ats'``) is shared with whoever may open a record it is linked to.
  Synced mail follows the owner's option.  Private: the owner only.  Custom: others
  see it through a record on which the owner ticked "Share email".  Public: through
  any linked record, unless the viewer is excluded from public mail or the mail
  involves an excluded domain.  Admin: viewers who see Admin-shared mail, through
  any linked record.
* **Record access** (who the host lets open the record).  Others' mail reaches a
  viewer only *through* a linked record the host lets them open: a message linked
  to a candidate a recruiter gets 404 for does not exist for that recruiter, in
  any list, search, view, attachment, reply or timeline.  Mail linked to no record
  is never others' to see, so it follows the sharing rule alone.

The owner always sees all of their own mail.  The host's answers enter the query as
bound parameters (:class:`RecordAccess`, one batched ``may_view_records`` call per
query, :func:`record_access`), so every query of stored mail ANDs :func:`visible`
in and a message a viewer may not see simply does not exist for them (404).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, exists, false, func, not_, or_, select, true, tuple_
from sqlalchemy import Select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from plugin.host import HostAdapter, HostUser, RecordRef
from plugin.models import Mailbox, Message, RecordLink
from plugin.models.settings import GlobalSettings
from plugin.models.sharing import RecordShare

log = logging.getLogger("plugin.integrated_email.sharing")

#: admins may name at most this many domains whose mail is never shared publicly
MAX_EXCLUDED_DOMAINS = 5
#: the most record references bound into one query; beyond it the rule fails closed
MAX_BOUND_REFS = 5000


@dataclass(frozen=True)
class RecordAccess:
    """The host's answer for one viewer and one query: which records they may open.

    Bound into the SQL the smaller way round.  ``denied`` form: every record linked
    to a message in the query's scope was asked about (links up to ``through``, the
    highest link id when they were collected); a link is open unless its record is
    denied, and a link made after the question is closed until asked.  ``allowed``
    form (``denied is None``): only the listed records are open.
    """

    allowed: frozenset[tuple[str, str]]
    denied: frozenset[tuple[str, str]] | None = None
    through: int = 0

    @classmethod
    def of(cls, refs: Iterable[RecordRef]) -> RecordAccess:
        """Access to exactly these records."""
        return cls(frozenset((r.kind, str(r.id)) for r in refs))

    def opens(self, link: type[RecordLink]) -> ColumnElement[bool]:
        """SQL: the viewer may open the record of ``link`` (a RecordLink alias)."""
        if self.denied is None:
            if not self.allowed:
                return false()
            if len(self.allowed) == 1:  # plain equalities: the planner keeps its index
                ((kind, rid),) = self.allowed
                return and_(link.record_kind == kind, link.record_id == rid)
            return tuple_(link.record_kind, link.record_id).in_(sorted(self.allowed))
        cond = link.id <= self.through
        if self.denied:
            cond = and_(cond, not_(tuple_(link.record_kind, link.record_id)
                                   .in_(sorted(self.denied))))
        return cond


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


def visible(viewer: HostUser, gs: GlobalSettings | None, access: RecordAccess,
            joined_link_to: RecordRef | None = None) -> ColumnElement[bool]:
    """SQL condition on ``Message``: true where ``viewer`` may see the message.

    ``access``: the records the host lets the viewer open (:func:`record_access`);
    others' mail is seen only through one of them.  ``joined_link_to``: the query
    already joins each message to its link to this record (the timeline), so the
    Public, Admin and ATS grants need no subquery; the rule is the same.
    """
    # Mailbox conditions are uncorrelated IN (...) lists the database computes once
    # per query; the few EXISTS probes name Message as correlated explicitly (a
    # nested EXISTS would otherwise silently match any row).
    def boxes(*conds: ColumnElement[bool]) -> Select:
        return select(Mailbox.id).where(*conds)

    closed = access.denied is None and not access.allowed  # the host opened nothing
    if closed:
        through_open: ColumnElement[bool] = false()
    elif joined_link_to is not None:
        # The joined link is to that record: open when the record is (known here).
        joined = (joined_link_to.kind, str(joined_link_to.id))
        through_open = true() if access.denied is None and joined in access.allowed \
            else access.opens(RecordLink)
    else:
        link = aliased(RecordLink)
        through_open = exists().where(link.message_id == Message.id,
                                      access.opens(link)).correlate(Message)
    owner = Message.mailbox_id.in_(boxes(Mailbox.user_id == str(viewer.id)))

    public_ok = (false() if str(viewer.id) in excluded_users(gs) else true())
    domains = excluded_domains(gs)
    if domains:
        public_ok = and_(public_ok, ~or_(*(_involves_domain(d) for d in domains)))
    mb = aliased(Mailbox)
    share = aliased(RecordShare)
    custom_link = aliased(RecordLink)
    # Custom shares through a ticked record, and only one the viewer may open.
    custom_shared = false() if closed else exists().where(
        custom_link.message_id == Message.id, mb.id == Message.mailbox_id,
        share.owner_user_id == mb.user_id, share.record_kind == custom_link.record_kind,
        share.record_id == custom_link.record_id, access.opens(custom_link)).correlate(Message)
    synced = and_(Message.origin == "synced", or_(
        and_(Message.mailbox_id.in_(boxes(Mailbox.sharing == "public")), public_ok,
             through_open),
        # Only owners who ticked something can share anything under Custom.
        and_(Message.mailbox_id.in_(boxes(
            Mailbox.sharing == "custom",
            Mailbox.user_id.in_(select(RecordShare.owner_user_id)))), custom_shared),
        and_(Message.mailbox_id.in_(boxes(Mailbox.sharing == "admin")), through_open)
        if viewer.sees_admin_mail else false()))
    ats = and_(Message.origin == "ats", through_open)
    return or_(owner, synced, ats)


def viewable_refs(host: HostAdapter, viewer: HostUser, refs: Iterable[RecordRef]) -> set[RecordRef]:
    """The records among ``refs`` the host lets ``viewer`` open (one batched call)."""
    refs = set(refs)
    if not refs:
        return set()
    batched = getattr(host, "may_view_records", None)
    if callable(batched):
        return set(batched(viewer, refs)) & refs
    return {ref for ref in refs if host.may_view_record(viewer, ref)}


def _not_own(viewer: HostUser) -> ColumnElement[bool]:
    return ~Message.mailbox_id.in_(select(Mailbox.id).where(Mailbox.user_id == str(viewer.id)))


def record_access(session: Session, host: HostAdapter, viewer: HostUser,
                  scope: Iterable[ColumnElement[bool]]) -> RecordAccess:
    """Ask the host, in one call, about every record linked to others' mail in
    ``scope`` (conditions on ``Message``), and bind the answer the smaller way."""
    through = session.scalar(select(func.max(RecordLink.id))) or 0
    in_scope = select(Message.id).where(*scope, _not_own(viewer))
    rows = session.execute(select(RecordLink.record_kind, RecordLink.record_id).where(
        RecordLink.message_id.in_(in_scope), RecordLink.id <= through).distinct()).all()
    asked = {RecordRef(k, r) for k, r in rows}
    allowed = viewable_refs(host, viewer, asked)
    allowed_keys = frozenset((r.kind, str(r.id)) for r in allowed)
    denied_keys = frozenset((r.kind, str(r.id)) for r in asked - allowed)
    if len(denied_keys) <= len(allowed_keys) and len(denied_keys) <= MAX_BOUND_REFS:
        return RecordAccess(allowed_keys, denied_keys, through)
    if len(allowed_keys) > MAX_BOUND_REFS:
        # Fail closed: the records beyond the bound are treated as not open.
        log.warning("%d viewable records in one query; only %d are bound",
                    len(allowed_keys), MAX_BOUND_REFS)
        allowed_keys = frozenset(sorted(allowed_keys)[:MAX_BOUND_REFS])
    return RecordAccess(allowed_keys)


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
    scope = [Message.id == message_id]
    access = record_access(session, host, viewer, scope)
    return session.scalar(select(Message.id).where(
        *scope, visible(viewer, gs, access))) is not None


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
