"""Global settings (admins only), with the admin's own mailbox on the same page."""

from __future__ import annotations

from flask import abort, flash, g, make_response, render_template, request, url_for

from plugin.current import get_addon
from plugin.fetching import status as fetch_status
from plugin.models import GlobalSettings
from plugin.models.settings import SHARING_OPTIONS
from plugin.routes._http import wants_fragment
from plugin.routes.setup import Page, no_store, saved_redirect
from plugin.setup import mailbox as setup_service
from plugin.setup import saving
from plugin.setup import settings as settings_service
from plugin.setup.policy import connection_policy

#: the admin's own mailbox is saved only once they typed a password (or have one)
MAILBOX_TOUCHED = ("in_password", "out_password")


def global_settings() -> Page:
    """Show and save the global settings."""
    if not g.ie_user.is_admin:
        abort(403, "Only administrators may change the integrated email settings.")
    addon = get_addon()
    s = addon.session()
    gs = settings_service.load(s)
    own = next((m for m in setup_service.user_mailboxes(s, g.ie_user.id) if m.is_active), None)
    settings_errors: dict[str, str] = {}
    test_result = None
    outcome = saving.SaveOutcome()
    if request.method == "POST":
        parsed = settings_service.parse_settings_form(request.form)
        settings_errors = parsed.errors
        mb_values = setup_service.read_form(request.form)
        # The admin's own mailbox is optional here: only checked when they started it.
        touched = own is not None or any(mb_values.get(k) for k in MAILBOX_TOUCHED)
        if not settings_errors:
            outbound_only = parsed.values["outbound_only"]
            choices = [c for c in parsed.values["sharing_allowed"].split(",") if c]
            if request.form.get("action") == "test" and touched:
                # No JavaScript: Test connection posted the whole page here.
                outcome.errors = setup_service.validate(
                    mb_values, outbound_only=outbound_only, sharing_choices=choices,
                    existing=own, policy=connection_policy(addon, s))
                if not outcome.errors:
                    test_result = saving.probe_form(addon, s, mb_values, own, outbound_only)
            else:
                if touched:
                    outcome = saving.check_and_save(
                        addon, s, g.ie_user.id, mb_values, own, outbound_only=outbound_only,
                        sharing_choices=choices,
                        save_anyway=request.form.get("save_anyway") == "on",
                        resume=fetch_status.password_changed)
                if not touched or outcome.saved:
                    sentence = settings_service.save(s, gs, parsed.values, g.ie_user.id)
                    s.commit()
                    flash(sentence)
                    return saved_redirect(url_for("integrated_email.admin_settings"))
                test_result = outcome.probe
        state = saving.form_state(s, mb_values, outcome.errors, own,
                                  gs_override=parsed.values)
        form_values = {**_settings_values(gs), **parsed.shown}
    else:
        state = saving.form_state(s, setup_service.values_from_mailbox(own) if own
                                  else setup_service.initial_values(g.ie_user, gs), {}, own)
        form_values = _settings_values(gs)
    failed = request.method == "POST" and (settings_errors or state.errors or outcome.message
                                           or outcome.probe)
    tpl = ("integrated_email/_partials/admin_form.html" if wants_fragment()
           else "integrated_email/admin_settings.html")
    return no_store(make_response(render_template(
        tpl, gs=gs, sv=form_values, serr=settings_errors, state=state,
        sharing_options=SHARING_OPTIONS, sharing_labels=settings_service.SHARING_LABELS,
        own=own, test_result=test_result, outcome=outcome, message=outcome.message,
        out_auth=state.values.get("out_auth") == "on",
        users=list(addon.host.list_users()),
        outbound_only=form_values["outbound_only"]), 422 if failed else 200))


def _settings_values(gs: GlobalSettings) -> dict:
    return {c: getattr(gs, c) for c in (
        "outbound_only", "webmail_links", "auto_import", "sharing_allowed", "sharing_default",
        "fetch_interval_minutes", "initial_sync_days", "initial_sync_messages", "bulk_per_send",
        "bulk_per_day", "bulk_spacing_seconds", "allowed_mail_hosts", "public_excluded_users",
        "public_excluded_domains")}
