"""Bulk mail that lands: the admin's sending limits page, and the public one-click
unsubscribe endpoint (RFC 8058) that recipients reach without signing in."""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from plugin.current import get_addon
from plugin.i18n import gettext as _
from plugin.sending import limits
from plugin.sending import unsubscribe as unsubscribe_service
from plugin.setup import settings as settings_service

T = "integrated_email/"
#: the largest figures the form takes (a typo of extra zeros is caught)
MAX_PER_MINUTE = 100_000
MAX_PER_DAY = 10_000_000


def _read_limits(form: dict, current: list[limits.ProviderLimit]) -> tuple[dict, dict]:
    """The figures typed per provider, and a sentence per field that is wrong."""
    values: dict[str, tuple[str, str]] = {}
    errors: dict[str, str] = {}
    for p in current:
        minute = (form.get(f"per_minute_{p.key}") or "").strip()
        day = (form.get(f"per_day_{p.key}") or "").strip()
        values[p.key] = (minute, day)
        for field, text, top in (("per_minute", minute, MAX_PER_MINUTE),
                                 ("per_day", day, MAX_PER_DAY)):
            if not text.isdigit() or int(text) > top:
                errors[f"{field}_{p.key}"] = (
                    _("Type a whole number from 0 to %(top)s for %(provider)s (0: no limit).",
                      top=format(top, ","), provider=p.label))
    return values, errors


def send_limits() -> ResponseReturnValue:
    """Show and save each provider's sending limits and the unsubscribe switch."""
    if not g.ie_user.is_admin:
        abort(403, _("Only administrators may change the sending limits."))
    addon = get_addon()
    s = addon.session()
    current = limits.all_limits(s, addon.app.config)
    gs = settings_service.load(s)
    values = {p.key: (str(p.per_minute), str(p.per_day)) for p in current}
    errors: dict[str, str] = {}
    unsubscribe = gs.bulk_unsubscribe is not False
    if request.method == "POST":
        values, errors = _read_limits(request.form, current)
        unsubscribe = request.form.get("bulk_unsubscribe") == "on"
        if not errors:
            for key, (minute, day) in values.items():
                limits.save_limit(s, key, int(minute), int(day))
            if gs in s:
                gs.bulk_unsubscribe = unsubscribe
            s.commit()
            flash(_("Sending limits saved."))
            return redirect(url_for("integrated_email.admin_send_limits"))
    return render_template(T + "admin_send_limits.html", limits=current, values=values,
                           errors=errors, unsubscribe=unsubscribe), 422 if errors else 200


# ------------------------------------------------------------------ unsubscribe (public)


def unsubscribe_base() -> str:
    """``https://<host>/.../unsubscribe/``: where a bulk row's token is appended."""
    path = url_for("integrated_email.unsubscribe", token="-")[:-1]
    public = current_app.config.get("IE_PUBLIC_URL")
    if public:
        return public.rstrip("/") + path
    return "https://" + request.host + path


def unsubscribe(token: str) -> ResponseReturnValue:
    """The public one-click unsubscribe page (no sign-in: the signed token is the key).

    GET shows the address and one button; POST with ``List-Unsubscribe=One-Click``
    (RFC 8058: what mail providers send, and what the button sends) confirms."""
    addon = get_addon()
    s = addon.session()
    asked = unsubscribe_service.read(s, addon.secrets, token)
    if asked is None:
        return _public(render_template(T + "unsubscribe.html", state="invalid"), 400)
    if request.method != "POST":  # GET and HEAD (link scanners) only ask
        return _public(render_template(T + "unsubscribe.html", state="ask",
                                       address=asked.address, token=token), 200)
    if request.form.get("List-Unsubscribe") != "One-Click":
        return _public(render_template(T + "unsubscribe.html", state="ask",
                                       address=asked.address, token=token,
                                       problem=True), 400)
    added = unsubscribe_service.confirm(s, asked)
    return _public(render_template(T + "unsubscribe.html", state="done",
                                   address=asked.address, again=not added), 200)


def _public(body: str, status: int) -> ResponseReturnValue:
    resp = make_response(body, status)
    resp.headers["Cache-Control"] = "no-store"
    # The token is in the URL: never hand it on to another site.
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Content-Security-Policy"] = ("default-src 'none'; style-src 'unsafe-inline'; "
                                               "form-action 'self'; frame-ancestors 'none'")
    return resp
