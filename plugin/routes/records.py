"""What the add-on shows on the host's candidate and contact pages: the email
timeline and the "Share email" box, as panels the host embeds, and their routes."""

from __future__ import annotations

from flask import abort, g, render_template, request
from markupsafe import Markup
from sqlalchemy import select

from plugin.current import get_addon
from plugin.host import RecordRef
from plugin.models import GlobalSettings
from plugin.setup import mailbox as setup_service
from plugin.sharing import rule as sharing
from plugin.sharing import timeline


def _context(addon, ref: RecordRef) -> dict:
    s = addon.session()
    viewer = addon.host.current_user()
    gs = s.get(GlobalSettings, 1)
    own = setup_service.active_mailbox(s, viewer.id)
    return {
        "ref": ref,
        "entries": timeline.entries(s, addon.host, viewer, ref),
        "webmail": not (gs and gs.outbound_only),
        # The box is for Custom sharing only: Public shares everything already.
        "show_share": own is not None and own.sharing == "custom",
        "shared": own is not None and sharing.shares_record(s, viewer.id, ref),
        "viewer": viewer,
    }


def panels_for(addon, ref: RecordRef) -> list[Markup]:
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
        ref = RecordRef.parse(f"{kind}:{record_id}")
    except ValueError:
        abort(404)
    if not addon.host.get_records([ref]) or not addon.host.may_view_record(g.ie_user, ref):
        abort(404)
    return ref


def record_timeline(kind: str, record_id: str):
    """The timeline fragment (hosts may load it with hx-get)."""
    ref = _ref_or_404(kind, record_id)
    return render_template("integrated_email/_partials/record_timeline.html",
                           **_context(get_addon(), ref))


def record_share(kind: str, record_id: str):
    """Tick or untick "Share email" on this record for the current user."""
    ref = _ref_or_404(kind, record_id)
    addon = get_addon()
    s = addon.session()
    own = setup_service.active_mailbox(s, g.ie_user.id)
    if own is None or own.sharing != "custom":
        abort(404)
    sharing.set_share(s, g.ie_user.id, ref, request.form.get("shared") == "on")
    s.commit()
    return render_template("integrated_email/_partials/record_share.html",
                           **_context(addon, ref))


def _linked_message_or_404(ref: RecordRef, message_id: int):
    """A message linked to ``ref`` that the viewer may see, by the one sharing rule."""
    from plugin.models import Message, RecordLink

    addon = get_addon()
    s = addon.session()
    linked = s.scalar(select(RecordLink.id).where(
        RecordLink.message_id == message_id, RecordLink.record_kind == ref.kind,
        RecordLink.record_id == str(ref.id)))
    if linked is None or not sharing.may_see_message(s, addon.host, g.ie_user, message_id):
        abort(404)
    msg = s.get(Message, message_id)
    if msg is None or msg.deleted:
        abort(404)
    return msg


def record_message(kind: str, record_id: str, message_id: int):
    """A message from the record's timeline, read-only, in the safe viewer."""
    from flask import current_app

    from plugin.mail.sanitize import linkify_text, sanitize_html, srcdoc_document
    from plugin.routes.webmail import page_csp
    from plugin.reading import webmail as wm

    ref = _ref_or_404(kind, record_id)
    msg = _linked_message_or_404(ref, message_id)
    remote = request.args.get("images") == "1"
    frame = blocked = None
    if msg.body_html:
        clean = sanitize_html(msg.body_html, wm.cid_images(current_app.config, msg), remote)
        frame, blocked = srcdoc_document(clean.html, remote), clean.blocked_images
    record = get_addon().host.get_records([ref]).get(ref)
    resp = current_app.make_response(render_template(
        "integrated_email/record_message.html", msg=msg, ref=ref, record=record, frame=frame,
        blocked=blocked, remote=remote, addresses=wm.addresses,
        plain=None if frame else linkify_text(msg.body_text)))
    resp.headers["Content-Security-Policy"] = page_csp(remote)
    return resp


def record_attachment(kind: str, record_id: str, attachment_id: int):
    """An attachment of a message on the record's timeline (same rule, download only)."""
    from plugin.models import Attachment
    from plugin.routes.webmail import attachment_response

    ref = _ref_or_404(kind, record_id)
    att = get_addon().session().get(Attachment, attachment_id)
    if att is None:
        abort(404)
    _linked_message_or_404(ref, att.message_id)
    return attachment_response(att)
