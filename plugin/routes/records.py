"""What the add-on shows on the host's candidate and contact pages: the email
timeline and the "Share email" box, as panels the host embeds, and their routes."""

from __future__ import annotations

import hashlib

from flask import current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from sqlalchemy import select

from plugin.context import AddonContext
from plugin.current import get_addon
from plugin.host import RecordRef
from plugin.i18n import gettext as _
from plugin.models import Attachment, GlobalSettings, Message, RecordLink
from plugin.reading.messages import addresses
from plugin.reading.render_body import render_body
from plugin.routes._http import attachment_response, found_or_404, page_csp
from plugin.sending import bounces, suppression
from plugin.setup import mailbox as setup_service
from plugin.sharing import rule as sharing
from plugin.sharing import timeline


def dom_id(ref: RecordRef) -> str:
    """The prefix of a panel's element ids, from its record: two panels on one page (of
    two records) never share an id; safe in HTML ids and CSS selectors whatever the id."""
    digest = hashlib.sha256(str(ref).encode()).hexdigest()[:12]
    return f"ie-{ref.kind}-{digest}"


def _context(addon: AddonContext, ref: RecordRef) -> dict[str, object]:
    s = addon.session()
    viewer = addon.host.current_user()
    gs = s.get(GlobalSettings, 1)
    own = setup_service.active_mailbox(s, viewer.id)
    entries = timeline.entries(s, addon.host, viewer, ref)
    return {
        "ref": ref,
        "dom": dom_id(ref),
        "entries": entries,
        # Bulk email's view of the address: unsubscribed or bounced, and bounced sends.
        "bulk_status": _bulk_status(addon, ref),
        "bounces": bounces.for_stored(s, [e.message.id for e in entries]),
        "webmail": not (gs and gs.outbound_only),
        # The box is for Custom sharing only: Public shares everything already.
        "show_share": own is not None and own.sharing == "custom",
        "shared": own is not None and sharing.shares_record(s, viewer.id, ref),
        "viewer": viewer,
    }


def _bulk_status(addon: AddonContext, ref: RecordRef) -> str | None:
    """Why bulk email leaves this record's address out, if it does."""
    rec = addon.host.get_records([ref]).get(ref)
    if rec is None or not rec.email:
        return None
    entry = suppression.suppressed(addon.session(), [rec.email]).get(rec.email.strip().lower())
    return suppression.sentence(entry) if entry else None


def panels_for(addon: AddonContext, ref: RecordRef) -> list[Markup]:
    """HTML panels for the record ``ref`` on a host page (the viewer may see the record)."""
    viewer = addon.host.current_user()
    if viewer is None or not addon.host.may_view_record(viewer, ref):
        return []
    html = render_template("integrated_email/_partials/record_panel.html",
                           **_context(addon, ref), ie=addon)
    return [Markup(html)]


def _ref_or_404(kind: str, record_id: str) -> RecordRef:
    addon = get_addon()
    try:
        ref = addon.host.parse_ref(f"{kind}:{record_id}")
    except ValueError:
        ref = None
    if ref is not None and not (addon.host.get_records([ref])
                                and addon.host.may_view_record(g.ie_user, ref)):
        ref = None
    return found_or_404(ref, _("No such %(record)s, or you may not see it.",
                               record=addon.host.kind(kind).label))


def record_timeline(kind: str, record_id: str) -> ResponseReturnValue:
    """The timeline fragment (hosts may load it with hx-get)."""
    ref = _ref_or_404(kind, record_id)
    return render_template("integrated_email/_partials/record_timeline.html",
                           **_context(get_addon(), ref))


def record_share(kind: str, record_id: str) -> ResponseReturnValue:
    """Tick or untick "Share email" on this record for the current user."""
    ref = _ref_or_404(kind, record_id)
    addon = get_addon()
    s = addon.session()
    own = setup_service.active_mailbox(s, g.ie_user.id)
    found_or_404(own if own is not None and own.sharing == "custom" else None,
                 _("Sharing by record is for mailboxes set to Custom sharing."))
    sharing.set_share(s, g.ie_user.id, ref, request.form.get("shared") == "on")
    s.commit()
    return render_template("integrated_email/_partials/record_share.html",
                           **_context(addon, ref))


def _linked_message_or_404(ref: RecordRef, message_id: int) -> Message:
    """A message linked to ``ref`` that the viewer may see, by the one sharing rule."""
    addon = get_addon()
    s = addon.session()
    linked = s.scalar(select(RecordLink.id).where(
        RecordLink.message_id == message_id, RecordLink.record_kind == ref.kind,
        RecordLink.record_id == str(ref.id)))
    msg = None
    if linked is not None and sharing.may_see_message(s, addon.host, g.ie_user, message_id):
        msg = s.get(Message, message_id)
    return found_or_404(msg if msg is not None and not msg.deleted else None,
                        _("No such message on this record, or you may not see it."))


def record_message(kind: str, record_id: str, message_id: int) -> ResponseReturnValue:
    """A message from the record's timeline, read-only, in the safe viewer."""
    ref = _ref_or_404(kind, record_id)
    msg = _linked_message_or_404(ref, message_id)
    remote = request.args.get("images") == "1"
    body = render_body(current_app.config, msg, remote)
    session = get_addon().session()
    if session.is_modified(msg):  # the HTML was sanitized for the first time: keep it
        session.commit()
    record = get_addon().host.get_records([ref]).get(ref)
    resp = current_app.make_response(render_template(
        "integrated_email/record_message.html", msg=msg, ref=ref, record=record,
        frame=body.frame, blocked=body.blocked, remote=remote, addresses=addresses,
        plain=body.plain))
    resp.headers["Content-Security-Policy"] = page_csp(remote)
    return resp


def record_attachment(kind: str, record_id: str, attachment_id: int) -> ResponseReturnValue:
    """An attachment of a message on the record's timeline (same rule, download only)."""
    ref = _ref_or_404(kind, record_id)
    att = found_or_404(get_addon().session().get(Attachment, attachment_id),
                       _("No such attachment."))
    _linked_message_or_404(ref, att.message_id)
    return attachment_response(att)
