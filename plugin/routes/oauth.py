"""Sign in with Google or Microsoft: start (to the provider) and the callback (back).

Start remembers, in the user's own session, what the callback must check: a single-use
``state``, the PKCE verifier, the OpenID nonce, who started it, for which mailbox (a new
one with the values typed, or an existing one signing in again). Nothing is stored in
the database until the callback has checked all of it and the provider has given
tokens for the right account. Every failure is one plain sentence on a page that leads
back to the mailbox; tokens never reach a page, a log or a flash.
"""

from __future__ import annotations

import time

from flask import (current_app, flash, g, make_response, redirect, render_template, request,
                   session, url_for)
from werkzeug.wrappers import Response

from plugin.current import get_addon
from plugin.i18n import gettext as _
from plugin.words import N_
from plugin.routes._http import wants_fragment
from plugin.routes.setup import Page, _gate_or_403, _int, no_store, saved_redirect
from plugin.setup import mailbox as setup_service
from plugin.setup import oauth_client, oauth_signin, saving
from plugin.setup import settings as settings_service
from plugin.setup.oauth_client import OAuthFailure
from plugin.setup.oauth_providers import PROVIDERS

#: the Flask session key of the sign-in under way (one at a time per browser)
PENDING = "ie_oauth_pending"
#: a sign-in left at the provider's page longer than this must be started again
PENDING_SECONDS = 15 * 60
#: the typed values a new mailbox keeps across the trip to the provider
KEPT = ("account_name", "email", "protocol", "sharing", "delete_policy", "delete_after_days",
        "consolidate", "consolidate_folder")

STALE = N_("This sign-in was not started here, has expired or was already used, so nothing "
         "was connected. Start again from your mailbox settings.")
NOT_ENABLED = N_("Sign-in with %(name)s is not turned on. Ask your administrator to turn it on "
               "in the integrated email settings, or use a password instead.")


def redirect_uri() -> str:
    """The callback URL to register with the providers (the admin page shows it)."""
    return (current_app.config.get("IE_OAUTH_REDIRECT_URI")
            or url_for("integrated_email.oauth_callback", _external=True))


def _result(sentence: str, status: int = 400, **extra: object) -> Response:
    """A page with the one sentence; from the htmx form, the form again with it (htmx
    swaps only 422 answers, so every refusal there is one)."""
    if wants_fragment() and request.endpoint == "integrated_email.oauth_start":
        return _form_again(setup_service.read_form(request.form), {}, message=sentence)
    return no_store(make_response(render_template(
        "integrated_email/sign_in_result.html", sentence=sentence, **extra), status))


def _go(url: str) -> Response:
    """To the provider: htmx follows HX-Redirect with a full navigation; else 302."""
    if wants_fragment():
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = url
        return no_store(resp)
    return no_store(redirect(url))


def sign_in_start() -> Page:
    """Leave for the provider's sign-in page (a new mailbox, or signing in again)."""
    _gate_or_403()
    addon = get_addon()
    s = addon.session()
    key = request.form.get("provider", "")
    mailbox_id = _int(request.form.get("_mailbox_id"))
    existing = None
    if mailbox_id is not None:
        existing = setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id)
        if existing is None:
            return _result(_("You have no mailbox with this number."), 404)
    sign_in = oauth_signin.sign_in_for(addon, s, key, redirect_uri())
    if sign_in is None:
        name = PROVIDERS[key].name if key in PROVIDERS else "this provider"
        return _result(_(NOT_ENABLED, name=name), 403)
    values = {k: v for k, v in setup_service.read_form(request.form).items() if k in KEPT}
    if existing is not None:
        hint = existing.email
    else:
        gs = settings_service.load(s)
        errors = setup_service.validate_sign_in(values, sharing_choices=gs.sharing_choices)
        if errors:
            return _form_again(values, errors)
        hint = values["email"]
    if not saving.connection_limiter(addon).allow(g.ie_user.id):
        return _result(saving.RATE_LIMITED, 429)
    try:
        req = oauth_client.authorization_request(sign_in.provider, sign_in.client,
                                                 login_hint=hint)
    except OAuthFailure as failure:
        return _result(failure.sentence, 502)
    session[PENDING] = {
        "state": req.state, "verifier": req.code_verifier, "nonce": req.nonce,
        "provider": key, "user": str(g.ie_user.id), "mailbox": mailbox_id,
        "values": values, "accept": request.form.get("accept_account") or None,
        "started": time.time(),
    }
    return _go(req.url)


def _form_again(values: dict, errors: dict, message: str | None = None) -> Response:
    """The set-up form with what must be corrected before signing in."""
    s = get_addon().session()
    mailbox_id = _int(request.form.get("_mailbox_id"))
    existing = (setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id)
                if mailbox_id is not None else None)
    base = (setup_service.values_from_mailbox(existing) if existing is not None
            else setup_service.initial_values(g.ie_user, settings_service.load(s)))
    full = {**base, **{k: v for k, v in values.items() if v}}
    oauth = oauth_signin.provider_for(get_addon(), s, full.get("email", ""))
    state = saving.form_state(s, full, errors, existing, oauth=oauth)
    tpl = ("integrated_email/_partials/mailbox_form.html" if wants_fragment()
           else "integrated_email/mailbox_form.html")
    return no_store(make_response(render_template(
        tpl, state=state, mailbox=existing, test_result=None, outcome=saving.SaveOutcome(),
        message=message, outbound_only=state.outbound_only, out_auth=True), 422))


def sign_in_callback() -> Page:
    """Back from the provider: check everything, then connect the mailbox."""
    addon = get_addon()
    s = addon.session()
    pending = session.pop(PENDING, None)  # single use, whatever happens next
    if (not isinstance(pending, dict) or pending.get("user") != str(g.ie_user.id)
            or not oauth_client.state_matches(pending.get("state"), request.args.get("state"))
            or time.time() - float(pending.get("started") or 0) > PENDING_SECONDS):
        return _result(_(STALE))
    failure = oauth_client.callback_failure(request.args.to_dict())
    if failure is not None:
        return _result(failure.sentence)
    key = pending["provider"]
    sign_in = oauth_signin.sign_in_for(addon, s, key, redirect_uri())
    if sign_in is None:
        return _result(_(NOT_ENABLED, name=PROVIDERS[key].name), 403)
    existing = None
    if pending.get("mailbox") is not None:
        existing = setup_service.owned_mailbox(s, g.ie_user.id, int(pending["mailbox"]))
        if existing is None:
            return _result(_("You have no mailbox with this number."), 404)
    try:
        tokens = oauth_client.exchange_code(
            sign_in.provider, sign_in.client, request.args.get("code", ""),
            oauth_client.AuthorizationRequest("", pending["state"], pending["verifier"],
                                              pending["nonce"]))
    except OAuthFailure as failure:
        return _result(failure.sentence, 502 if not failure.permanent else 400)
    values = dict(pending.get("values") or {})
    wanted = existing.email if existing is not None else values["email"]
    # The mailbox's address, or (signing in again) the account it signed in as before.
    known = [wanted] + ([existing.in_login] if existing is not None else
                        [pending.get("accept")])
    if not any(oauth_signin.same_account(tokens.account, a) for a in known):
        _withdraw(sign_in, tokens)
        return _result(
            _("You signed in to %(provider)s as %(account)s, but this mailbox is for "
              "%(address)s, so nothing was connected.", provider=sign_in.provider.name,
              account=tokens.account, address=wanted), 409,
            other_account=tokens.account if existing is None else None,
            provider=key, values={**values, "email": tokens.account})
    protocol = (existing.protocol if existing is not None else values.get("protocol")) or "imap"
    incoming, _outgoing = oauth_signin.servers(sign_in, protocol)
    twin = saving.duplicate_of(s, g.ie_user.id, {"email": tokens.account,
                                                 "in_host": incoming.host,
                                                 "in_login": tokens.account}, existing)
    if twin is not None:
        _withdraw(sign_in, tokens)
        return _result(_("You have already connected %(account)s as '%(mailbox)s'. Sign in "
                         "again from that mailbox instead.", account=tokens.account,
                         mailbox=twin.account_name), 409)
    if existing is None:
        mb = saving.new_signed_in_mailbox(g.ie_user.id, values, tokens.account)
    else:
        mb = existing
    oauth_signin.connect(s, addon, mb, sign_in, tokens, protocol)
    if existing is None or not any(m.is_active for m in
                                   setup_service.user_mailboxes(s, g.ie_user.id)):
        setup_service.make_active(s, mb)
    s.commit()
    flash(_("Signed in with %(provider)s as %(account)s. Mailbox '%(mailbox)s' is ready.",
            provider=sign_in.provider.name, account=tokens.account, mailbox=mb.account_name))
    return saved_redirect(url_for("integrated_email.mailboxes"))


def _withdraw(sign_in: oauth_signin.SignIn, tokens: oauth_client.TokenSet) -> None:
    """Tokens for an account we do not connect are given back where the provider can."""
    token = tokens.refresh_token or tokens.access_token
    try:
        oauth_client.revoke(sign_in.provider, sign_in.client, token,
                            "refresh_token" if tokens.refresh_token else "access_token")
    except OAuthFailure:
        pass  # logged by kind in oauth_client; the tokens are not kept either way
