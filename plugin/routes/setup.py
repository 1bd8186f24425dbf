"""Personal mailbox set-up: list, the htmx form, Test connection, status panel.

Each handler answers a full page, or only its fragment when htmx asks
(``HX-Request``); the page includes the fragment, so markup exists once.
Without JavaScript the form still works by plain POST and redirect.
"""

from __future__ import annotations

from flask import (abort, flash, g, make_response, redirect, render_template, request,
                   url_for)
from werkzeug.wrappers import Response

from plugin.current import get_addon
from plugin.fetching import status as fetch_status
from plugin.i18n import gettext as _
from plugin.linking import notes as host_notes
from plugin.mail.errors import MailError
from plugin.mail.presets import preset_for
from plugin.routes._http import found_or_404, wants_fragment
from plugin.setup import mailbox as setup_service
from plugin.setup import discovery_config, oauth_signin, saving
from plugin.setup import settings as settings_service
from plugin.setup.discovery import domain_of
from plugin.setup.policy import connection_policy

Page = Response | str | tuple[str, int]


def _gate() -> tuple[str, int] | None:
    """The one sentence non-admins see until an admin has saved global settings."""
    s = get_addon().session()
    if not settings_service.is_complete(s) and not g.ie_user.is_admin:
        return render_template("integrated_email/gate.html"), 200
    return None


def _gate_or_403() -> None:
    """htmx helpers answer nothing until the settings are saved."""
    if _gate():
        abort(403, _("Your administrator must set up integrated email first."))


def _int(v: object) -> int | None:
    try:
        return int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def no_store(resp: Response) -> Response:
    """Forms may carry a password typed in this request: never cache them."""
    resp.headers["Cache-Control"] = "no-store"
    return resp


def saved_redirect(target: str) -> Response:
    """After a save: htmx follows HX-Redirect (a full load shows the flash); else 302."""
    if wants_fragment():
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = target
        return resp
    return redirect(target)


def saved_sentence(outcome: saving.SaveOutcome) -> str:
    """What the flash says after Save, in plain words."""
    mb = outcome.mailbox
    if outcome.unverified and not mb.is_active:
        return _("Mailbox '%(mailbox)s' saved, but it could not sign in, so it is not in use. "
                 "Correct its settings, or click Make active to use it anyway.",
                 mailbox=mb.account_name)
    if outcome.unverified:
        return _("Mailbox '%(mailbox)s' saved, but it could not sign in: fetching and "
                 "sending will fail until its settings are corrected.", mailbox=mb.account_name)
    return _("Mailbox '%(mailbox)s' saved.", mailbox=mb.account_name)


def mailbox_list() -> Page:
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


def mailbox_form(mailbox_id: int | None = None) -> Page:
    """Create or edit a mailbox (full page, or the form fragment for htmx)."""
    gate = _gate()
    if gate:
        return gate
    addon = get_addon()
    s = addon.session()
    gs = settings_service.load(s)
    existing = None
    if mailbox_id is not None:
        existing = found_or_404(setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id),
                                _("You have no mailbox with this number."))
    outcome = saving.SaveOutcome()
    test_result = None
    status = 200
    signed_in = existing is not None and bool(existing.oauth_provider)
    if request.method == "POST":
        values = setup_service.read_form(request.form)
        if signed_in:  # no password or server fields: the rest as stored
            values = {**setup_service.values_from_mailbox(existing), **values,
                      "email": existing.email}
        save_anyway = request.form.get("save_anyway") == "on"
        if request.form.get("action") == "test" and signed_in:
            test_result, outcome.message = _probe_signed_in(existing, values, gs.outbound_only)
        elif request.form.get("action") == "test":
            # No JavaScript: the Test connection button posts the whole form here.
            outcome.errors = setup_service.validate(
                values, outbound_only=gs.outbound_only, sharing_choices=gs.sharing_choices,
                existing=existing, policy=connection_policy(addon, s))
            if not outcome.errors:
                test_result = saving.probe_form(addon, s, values, existing, gs.outbound_only)
        else:
            if signed_in:
                outcome = saving.save_signed_in(
                    addon, s, existing, values, outbound_only=gs.outbound_only,
                    sharing_choices=gs.sharing_choices, save_anyway=save_anyway,
                    resume=fetch_status.password_changed)
            else:
                outcome = saving.check_and_save(
                    addon, s, g.ie_user.id, values, existing, outbound_only=gs.outbound_only,
                    sharing_choices=gs.sharing_choices, save_anyway=save_anyway,
                    resume=fetch_status.password_changed)
            if outcome.saved:
                s.commit()
                flash(saved_sentence(outcome))
                return saved_redirect(url_for("integrated_email.mailboxes"))
            test_result = outcome.probe
            status = 422
    else:
        values = (setup_service.values_from_mailbox(existing) if existing
                  else setup_service.initial_values(g.ie_user, gs))
    state = saving.form_state(s, values, outcome.errors, existing,
                              oauth=_sign_in_offer(values))
    tpl = ("integrated_email/_partials/mailbox_form.html" if wants_fragment()
           else "integrated_email/mailbox_form.html")
    # htmx swaps 422 responses too (configured on the page), so errors show in place.
    return no_store(make_response(render_template(
        tpl, state=state, mailbox=existing, test_result=test_result, outcome=outcome,
        message=outcome.message, outbound_only=gs.outbound_only,
        out_auth=values.get("out_auth") == "on"), status))


def form_fields() -> Page:
    """htmx: re-draw the parts of the form that follow from one edited field."""
    _gate_or_403()
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
    if changed == "outbound_only":
        # The incoming fields were hidden, not posted: draw them as stored.
        values = saving.keep_stored_incoming(values, existing)
    errors = {}
    if changed:
        errors = setup_service.validate(values, outbound_only=outbound_only,
                                        sharing_choices=gs.sharing_choices, existing=existing,
                                        policy=connection_policy(get_addon(), s), only=changed)
    state = saving.form_state(s, values, errors, existing,
                              gs_override={"outbound_only": outbound_only},
                              oauth=_sign_in_offer(values))
    looking_up = ""
    if changed == "email" and not state.signed_in:
        address = values.get("email", "")
        looking_up = (domain_of(address) or "") if _needs_lookup(address) else ""
    resp = no_store(make_response(render_template(
        "integrated_email/_partials/mailbox_fields_oob.html", state=state, changed=changed,
        mailbox=existing, looking_up=looking_up)))
    if changed == "email" and not state.signed_in:
        # Discovery is a request of its own, sent once this answer is in the form, so
        # typing never waits for it and it sees the servers this answer set.
        resp.headers["HX-Trigger-After-Swap"] = "ie-discover"
    return resp


def _sign_in_offer(values: dict) -> str | None:
    """The enabled provider to offer for the form's address (by domain, or at its MX)."""
    addon = get_addon()
    return oauth_signin.provider_for(addon, addon.session(), values.get("email", ""),
                                     hosted=values.get("_hosted") or None)


def _needs_lookup(address: str) -> bool:
    """Whether discovery has something to add for the address: not for a preset's (the
    fields answer filled it, its notes name the source) nor an address whose domain is an
    enabled sign-in provider's (the form already offers Sign in)."""
    addon = get_addon()
    return bool(domain_of(address)) and preset_for(address) is None \
        and oauth_signin.provider_for(addon, addon.session(), address) is None


def discover_settings() -> Page:
    """htmx: look up the address's servers and fill in the ones the user has not typed."""
    _gate_or_403()
    addon = get_addon()
    s = addon.session()
    values = setup_service.read_form(request.form)
    mailbox_id = _int(request.form.get("_mailbox_id"))
    existing = setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id) if mailbox_id else None
    address = values.get("email", "")
    found, filled = None, set()
    signed_in = existing is not None and bool(existing.oauth_provider)
    if not signed_in and _needs_lookup(address):
        found = discovery_config.discover_for(addon, connection_policy(addon, s), address,
                                              g.ie_user.id)
        values, filled = setup_service.apply_discovery(values, found)
    gs = settings_service.load(s)
    outbound_only = gs.outbound_only
    if request.form.get("_admin_page") == "1":
        outbound_only = request.form.get("outbound_only") == "yes"
    state = saving.form_state(s, values, {}, existing,
                              gs_override={"outbound_only": outbound_only},
                              oauth=_sign_in_offer(values))
    return no_store(make_response(render_template(
        "integrated_email/_partials/mailbox_discovered.html", state=state, found=found,
        filled=filled, mailbox=existing)))


def test_connection() -> Page:
    """htmx: log in to both servers and say in place what failed, in plain words."""
    _gate_or_403()
    addon = get_addon()
    s = addon.session()
    gs = settings_service.load(s)
    outbound_only = gs.outbound_only
    if request.form.get("_admin_page") == "1":
        outbound_only = request.form.get("outbound_only") == "yes"
    values = setup_service.read_form(request.form)
    mailbox_id = _int(request.form.get("_mailbox_id"))
    existing = setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id) if mailbox_id else None
    if existing is not None and existing.oauth_provider:
        result, message = _probe_signed_in(existing, values, outbound_only)
        return render_template("integrated_email/_partials/test_result.html",
                               test_result=result, message=message, errors={},
                               outbound_only=outbound_only, out_auth=True, oob_errors=True)
    errors = setup_service.validate(values, outbound_only=outbound_only,
                                    sharing_choices=gs.sharing_choices + ["_any"],
                                    existing=existing, policy=None)
    # The host policy is the probe's to report, as one sentence per server.
    errors.pop("sharing", None)
    errors.pop("account_name", None)
    result, message = None, None
    if errors:
        message = _("Fill in the highlighted fields first, then test again.")
    elif not saving.connection_limiter(addon).allow(g.ie_user.id):
        message = saving.RATE_LIMITED
    else:
        try:
            result = saving.probe_form(addon, s, values, existing, outbound_only)
        except MailError as exc:  # a failure before either server was reached
            message = exc.sentence
    return render_template("integrated_email/_partials/test_result.html", test_result=result,
                           message=message, errors=errors, outbound_only=outbound_only,
                           out_auth=values.get("out_auth") == "on", oob_errors=True)


def _probe_signed_in(mb: object, values: dict, outbound_only: bool
                     ) -> tuple[object | None, str | None]:
    """Test connection of a signed-in mailbox: (result, None) or (None, one sentence)."""
    addon = get_addon()
    if not saving.connection_limiter(addon).allow(g.ie_user.id):
        return None, saving.RATE_LIMITED
    try:
        return saving.probe_signed_in(addon, mb, values.get("protocol") or mb.protocol or "imap",
                                      outbound_only), None
    except MailError as exc:
        return None, exc.sentence


def mailbox_activate(mailbox_id: int) -> Page:
    """Make this mailbox the user's active one."""
    s = get_addon().session()
    mb = found_or_404(setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id),
                      _("You have no mailbox with this number."))
    setup_service.make_active(s, mb)
    s.commit()
    flash(_("'%(mailbox)s' is now your active mailbox.", mailbox=mb.account_name))
    return redirect(url_for("integrated_email.mailboxes"))


def mailbox_delete(mailbox_id: int) -> Page:
    """Confirm, then remove a mailbox and the mail stored from it."""
    addon = get_addon()
    s = addon.session()
    mb = found_or_404(setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id),
                      _("You have no mailbox with this number."))
    if request.method == "GET":
        return render_template("integrated_email/mailbox_delete.html", mailbox=mb,
                               notes=host_notes.count_for_mailbox(s, mb.id),
                               can_remove_notes=addon.host.can_delete_notes)
    name, was_active = mb.account_name, mb.is_active
    if request.form.get("notes") == "remove":  # the user's choice on the page
        host_notes.remove_for_mailbox(s, addon.host, mb.id)
    # Withdrawn at Google (Microsoft has no revocation): the app keeps no access it no
    # longer uses. Best effort: the removal never waits on the provider's answer.
    oauth_signin.revoke(addon, s, mb)
    s.delete(mb)
    s.flush()
    if was_active:
        rest = setup_service.user_mailboxes(s, g.ie_user.id)
        if rest:
            setup_service.make_active(s, rest[0])
    s.commit()
    flash(_("Mailbox '%(mailbox)s' removed.", mailbox=name))
    return redirect(url_for("integrated_email.mailboxes"))


def mailbox_status(mailbox_id: int) -> Page:
    """The status panel of one mailbox (a fragment hosts may embed)."""
    s = get_addon().session()
    mb = found_or_404(setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id),
                      _("You have no mailbox with this number."))
    return render_template("integrated_email/_partials/mailbox_status.html", mailbox=mb,
                           gs=settings_service.load(s))
