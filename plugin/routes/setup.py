"""Personal mailbox set-up: list, the htmx form, Test connection, status panel.

Each handler answers a full page, or only its fragment when htmx asks
(``HX-Request``); the page includes the fragment, so markup exists once.
Without JavaScript the form still works by plain POST and redirect.
"""

from __future__ import annotations

from flask import (abort, current_app, flash, g, make_response, redirect, render_template,
                   request, url_for)

from plugin.current import get_addon
from plugin.mail.errors import MailError
from plugin.mail.probe import test_connection as probe
from plugin.models import Mailbox
from plugin.fetching import status as fetch_status
from plugin.setup import settings as settings_service
from plugin.setup import mailbox as setup_service
from plugin.setup.policy import connection_policy
from plugin.setup.ratelimit import RateLimiter
from plugin.routes._http import wants_fragment





def _gate():
    """The one sentence non-admins see until an admin has saved global settings."""
    s = get_addon().session()
    if not settings_service.is_complete(s) and not g.ie_user.is_admin:
        return render_template("integrated_email/gate.html"), 200
    return None


def form_state(values: dict, errors: dict, existing: Mailbox | None,
               gs_override: dict | None = None) -> setup_service.FormState:
    s = get_addon().session()
    gs = settings_service.load(s)
    outbound_only = gs.outbound_only
    choices = gs.sharing_choices
    if gs_override:
        outbound_only = gs_override.get("outbound_only", outbound_only)
        picked = [c for c in (gs_override.get("sharing_allowed") or "").split(",") if c]
        choices = picked or choices
    name, notes = setup_service.preset_info(values)
    return setup_service.FormState(
        values=values, errors=errors, outbound_only=outbound_only, sharing_choices=choices,
        preset_notes=notes, preset_name=name,
        has_in_password=bool(existing and existing.in_password),
        has_out_password=bool(existing and existing.out_password))


def save_mailbox(s, mb: Mailbox, values: dict, outbound_only: bool) -> Mailbox:
    """Apply the form, keep one active mailbox, and resume a paused one on a new password."""
    addon = get_addon()
    is_new = mb.id is None
    server_changed = is_new or (mb.in_host, mb.in_port, mb.in_login) != (
        values.get("in_host"), _int(values.get("in_port")), values.get("in_login"))
    password_changed = setup_service.apply(mb, values, addon.secrets, outbound_only)
    if is_new:
        s.add(mb)
        s.flush()
    if is_new or not any(m.is_active for m in setup_service.user_mailboxes(s, mb.user_id)):
        setup_service.make_active(s, mb)
    if password_changed or server_changed:
        fetch_status.password_changed(mb)
    return mb


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def mailbox_list():
    """The user's mailboxes with their status panels."""
    gate = _gate()
    if gate:
        return gate
    s = get_addon().session()
    boxes = setup_service.user_mailboxes(s, g.ie_user.id)
    if not boxes:
        return redirect(url_for("integrated_email.mailbox_new"))
    return render_template("integrated_email/mailboxes.html", mailboxes=boxes,
                           gs=settings_service.load(s))


def mailbox_form(mailbox_id: int | None = None):
    """Create or edit a mailbox (full page, or the form fragment for htmx)."""
    gate = _gate()
    if gate:
        return gate
    addon = get_addon()
    s = addon.session()
    gs = settings_service.load(s)
    existing = None
    if mailbox_id is not None:
        existing = setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id)
        if existing is None:
            abort(404)
    test_result = None
    status = 200
    if request.method == "POST":
        values = setup_service.read_form(request.form)
        policy = connection_policy(addon, s)
        errors = setup_service.validate(values, outbound_only=gs.outbound_only,
                                        sharing_choices=gs.sharing_choices,
                                        existing=existing, policy=policy)
        if request.form.get("action") == "test" and not errors:
            # No JavaScript: the Test connection button posts the whole form here.
            test_result = _run_probe(values, existing, gs.outbound_only)
        elif not errors:
            mb = save_mailbox(s, existing or Mailbox(user_id=g.ie_user.id), values,
                              gs.outbound_only)
            s.commit()
            flash(f"Mailbox '{mb.account_name}' saved.")
            target = url_for("integrated_email.mailboxes")
            if wants_fragment():
                resp = make_response("", 204)
                resp.headers["HX-Redirect"] = target
                return resp
            return redirect(target)
        else:
            status = 422
    else:
        values = (setup_service.values_from_mailbox(existing) if existing
                  else setup_service.initial_values(g.ie_user, gs))
        errors = {}
    state = form_state(values, errors, existing)
    tpl = ("integrated_email/_partials/mailbox_form.html" if wants_fragment()
           else "integrated_email/mailbox_form.html")
    # htmx swaps 422 responses too (configured on the page), so errors show in place.
    return render_template(tpl, state=state, mailbox=existing, test_result=test_result,
                           outbound_only=gs.outbound_only), status


def form_fields():
    """htmx: re-draw the parts of the form that follow from one edited field."""
    gate = _gate()
    if gate:
        abort(403)
    changed = request.headers.get("HX-Trigger-Name") or request.form.get("_changed", "")
    values = setup_service.read_form(request.form)
    values = setup_service.derive(values, changed,
                                  previous_email=request.form.get("_previous_email", ""))
    s = get_addon().session()
    gs = settings_service.load(s)
    mailbox_id = _int(request.form.get("_mailbox_id"))
    existing = setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id) if mailbox_id else None
    outbound_only = gs.outbound_only
    if request.form.get("_admin_page") == "1":
        outbound_only = request.form.get("outbound_only") == "yes"
    errors = {}
    if changed:
        errors = setup_service.validate(values, outbound_only=outbound_only,
                                        sharing_choices=gs.sharing_choices, existing=existing,
                                        policy=connection_policy(get_addon(), s), only=changed)
    state = form_state(values, errors, existing,
                       gs_override={"outbound_only": outbound_only})
    return render_template("integrated_email/_partials/mailbox_fields_oob.html", state=state,
                           changed=changed, mailbox=existing)


def _run_probe(values: dict, existing: Mailbox | None, outbound_only: bool):
    addon = get_addon()
    incoming, outgoing = setup_service.server_settings(values, existing, addon.secrets,
                                                       outbound_only)
    s = addon.session()
    return probe(incoming, values.get("protocol") or "imap", outgoing,
                 values.get("out_auth") == "on", connection_policy(addon, s))


def test_connection():
    """htmx: log in to both servers and say in place what failed, in plain words."""
    gate = _gate()
    if gate:
        abort(403)
    addon = get_addon()
    per_minute = int(current_app.config["IE_TEST_CONNECTION_PER_MINUTE"])
    limiter = getattr(addon, "_test_limiter", None)
    if limiter is None:
        limiter = addon._test_limiter = RateLimiter(per_minute)
    s = addon.session()
    gs = settings_service.load(s)
    outbound_only = gs.outbound_only
    if request.form.get("_admin_page") == "1":
        outbound_only = request.form.get("outbound_only") == "yes"
    values = setup_service.read_form(request.form)
    mailbox_id = _int(request.form.get("_mailbox_id"))
    existing = setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id) if mailbox_id else None
    errors = setup_service.validate(values, outbound_only=outbound_only,
                                    sharing_choices=gs.sharing_choices + ["_any"],
                                    existing=existing, policy=None)
    # The host policy is the probe's to report, as one sentence per server.
    errors.pop("sharing", None)
    errors.pop("account_name", None)
    result, message = None, None
    if errors:
        message = "Fill in the highlighted fields first, then test again."
    elif not limiter.allow(g.ie_user.id):
        message = ("You have tested the connection several times in a row. "
                   "Wait a minute and try again.")
    else:
        try:
            result = _run_probe(values, existing, outbound_only)
        except MailError as exc:  # a failure before either server was reached
            message = exc.sentence
    return render_template("integrated_email/_partials/test_result.html", test_result=result,
                           message=message, errors=errors, outbound_only=outbound_only,
                           out_auth=values.get("out_auth") == "on")


def mailbox_activate(mailbox_id: int):
    """Make this mailbox the user's active one."""
    s = get_addon().session()
    mb = setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id)
    if mb is None:
        abort(404)
    setup_service.make_active(s, mb)
    s.commit()
    flash(f"'{mb.account_name}' is now your active mailbox.")
    return redirect(url_for("integrated_email.mailboxes"))


def mailbox_delete(mailbox_id: int):
    """Confirm, then remove a mailbox and the mail stored from it."""
    s = get_addon().session()
    mb = setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id)
    if mb is None:
        abort(404)
    if request.method == "GET":
        return render_template("integrated_email/mailbox_delete.html", mailbox=mb)
    name, was_active = mb.account_name, mb.is_active
    s.delete(mb)
    s.flush()
    if was_active:
        rest = setup_service.user_mailboxes(s, g.ie_user.id)
        if rest:
            setup_service.make_active(s, rest[0])
    s.commit()
    flash(f"Mailbox '{name}' removed.")
    return redirect(url_for("integrated_email.mailboxes"))


def mailbox_status(mailbox_id: int):
    """The status panel of one mailbox (a fragment hosts may embed)."""
    s = get_addon().session()
    mb = setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id)
    if mb is None:
        abort(404)
    return render_template("integrated_email/_partials/mailbox_status.html", mailbox=mb)
