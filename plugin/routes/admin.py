"""Global settings (admins only), with the admin's own mailbox on the same page."""

from __future__ import annotations

from flask import abort, flash, g, make_response, render_template, request, url_for

from plugin.current import get_addon
from plugin.fetching import status as fetch_status
from plugin.i18n import gettext as _
from plugin.mail.errors import MailError
from plugin.models import GlobalSettings
from plugin.models.settings import SHARING_OPTIONS
from plugin.routes._http import wants_fragment
from plugin.routes.oauth import redirect_uri
from plugin.routes.setup import Page, no_store, saved_redirect
from plugin.setup import mailbox as setup_service
from plugin.setup import oauth_settings, oauth_signin, saving
from plugin.setup import settings as settings_service
from plugin.setup.oauth_providers import PROVIDERS
from plugin.setup.policy import connection_policy

#: the admin's own mailbox is saved only once they typed a password (or have one)
MAILBOX_TOUCHED = ("in_password", "out_password")


def global_settings() -> Page:
    """Show and save the global settings."""
    if not g.ie_user.is_admin:
        abort(403, _("Only administrators may change the integrated email settings."))
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
            signed_in = own is not None and bool(own.oauth_provider)
            if signed_in:
                mb_values = {**setup_service.values_from_mailbox(own), **mb_values,
                             "email": own.email}
            if request.form.get("action") == "test" and signed_in:
                try:
                    test_result = saving.probe_signed_in(
                        addon, own, mb_values.get("protocol") or "imap", outbound_only)
                except MailError as exc:
                    outcome.message = exc.sentence
            elif request.form.get("action") == "test" and touched:
                # No JavaScript: Test connection posted the whole page here.
                outcome.errors = setup_service.validate(
                    mb_values, outbound_only=outbound_only, sharing_choices=choices,
                    existing=own, policy=connection_policy(addon, s))
                if not outcome.errors:
                    test_result = saving.probe_form(addon, s, mb_values, own, outbound_only)
            else:
                if signed_in:
                    outcome = saving.save_signed_in(
                        addon, s, own, mb_values, outbound_only=outbound_only,
                        sharing_choices=choices,
                        save_anyway=request.form.get("save_anyway") == "on",
                        resume=fetch_status.password_changed)
                elif touched:
                    outcome = saving.check_and_save(
                        addon, s, g.ie_user.id, mb_values, own, outbound_only=outbound_only,
                        sharing_choices=choices,
                        save_anyway=request.form.get("save_anyway") == "on",
                        resume=fetch_status.password_changed)
                if not touched or outcome.saved:
                    sentence = settings_service.save(s, gs, parsed.values, g.ie_user.id)
                    s.commit()
                    flash(_(sentence))
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
        outbound_only=form_values["outbound_only"], **_sign_in_page(s)), 422 if failed else 200))


def _sign_in_page(s: object, posted: dict | None = None, errors: dict | None = None,
                  message: str | None = None) -> dict:
    """What the "Sign in with Google or Microsoft" section draws."""
    addon = get_addon()
    rows = []
    for key, provider in PROVIDERS.items():
        stored = oauth_settings.stored(s, key)
        sign_in = oauth_signin.sign_in_for(addon, s, key)
        source = sign_in.source if sign_in is not None else None
        mine = (posted or {}).get(key, {})
        rows.append({
            "key": key, "name": provider.name, "source": source,
            "config_key": oauth_signin.CONFIG_KEYS[key][0],
            "enabled": mine.get("enabled", stored is not None and stored.enabled),
            "client_id": mine.get("client_id", (stored.client_id if stored else "") or ""),
            "has_secret": bool(stored and stored.client_secret),
            "tenant": mine.get("tenant", (stored.tenant if stored else "") or ""),
            "has_tenant": provider.has_tenant, "errors": (errors or {}).get(key, {}),
            "id_help": (_("The Client ID of the OAuth client you created.") if key == "google"
                        else _("The Application (client) ID of your app registration.")),
            "guide": provider.guide, "notes": provider.notes, "scopes": provider.scopes,
        })
    return {"providers": rows, "redirect_uri": redirect_uri(), "oauth_message": message}


def sign_in_settings() -> Page:
    """Save the sign-in providers (admins only)."""
    if not g.ie_user.is_admin:
        abort(403, _("Only administrators may change the integrated email settings."))
    addon = get_addon()
    s = addon.session()
    posted: dict[str, dict] = {}
    errors: dict[str, dict] = {}
    for key in PROVIDERS:
        if oauth_signin.sign_in_for(addon, s, key) is not None and \
                oauth_signin.sign_in_for(addon, s, key).source == "config":
            continue  # the deployment's configuration decides
        mine = posted[key] = {
            "enabled": request.form.get(f"{key}_enabled") == "on",
            "client_id": request.form.get(f"{key}_client_id", "").strip(),
            "tenant": request.form.get(f"{key}_tenant", "").strip()}
        try:
            oauth_settings.save_provider(s, addon.secrets, key, enabled=mine["enabled"],
                                         client_id=mine["client_id"],
                                         client_secret=request.form.get(f"{key}_client_secret"),
                                         tenant=mine["tenant"])
        except ValueError as exc:
            field = ("tenant" if "tenant" in str(exc) else "client_secret"
                     if str(exc).startswith("The client secret") else "client_id")
            # args[0] keeps the sentence's msgid for translation (str() would drop it)
            errors[key] = {field: exc.args[0] if exc.args else str(exc)}
    if errors:
        s.rollback()
        return _admin_page_with(s, _sign_in_page(
            s, posted, errors, _("The sign-in settings were not saved; see the messages below.")))
    s.commit()
    on = [PROVIDERS[k].name for k in oauth_signin.enabled_providers(addon, s)]
    flash(_("Sign-in settings saved.") + " " + (
        _("Users may sign in with %(providers)s.", providers=" and ".join(on))
        if on else _("Users sign in with passwords only.")))
    return saved_redirect(url_for("integrated_email.admin_settings"))


def _admin_page_with(s: object, sign_in: dict) -> Page:
    """The settings page as stored, with the sign-in section's errors (422)."""
    addon = get_addon()
    gs = settings_service.load(s)
    own = next((m for m in setup_service.user_mailboxes(s, g.ie_user.id) if m.is_active), None)
    state = saving.form_state(s, setup_service.values_from_mailbox(own) if own
                              else setup_service.initial_values(g.ie_user, gs), {}, own)
    form_values = _settings_values(gs)
    return no_store(make_response(render_template(
        "integrated_email/admin_settings.html", gs=gs, sv=form_values, serr={}, state=state,
        sharing_options=SHARING_OPTIONS, sharing_labels=settings_service.SHARING_LABELS,
        own=own, test_result=None, outcome=saving.SaveOutcome(), message=None,
        out_auth=state.values.get("out_auth") == "on", users=list(addon.host.list_users()),
        outbound_only=form_values["outbound_only"], **sign_in), 422))


def _settings_values(gs: GlobalSettings) -> dict:
    return {c: getattr(gs, c) for c in (
        "outbound_only", "webmail_links", "auto_import", "sharing_allowed", "sharing_default",
        "fetch_interval_minutes", "initial_sync_days", "initial_sync_messages", "bulk_per_send",
        "bulk_per_day", "bulk_spacing_seconds", "allowed_mail_hosts", "public_excluded_users",
        "public_excluded_domains")}
