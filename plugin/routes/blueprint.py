"""The add-on's blueprint and its one URL table.

Every request first passes ``guard``: 404 while the add-on is inactive, sign-in
required, CSRF checked on state-changing methods. One exception, :data:`PUBLIC`:
the one-click unsubscribe page, which recipients of bulk email (not users of the ATS)
reach from their mail program; the signed token in its URL is its only key. The
handlers live in one module per page group; this table is the only place URLs are named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, abort, current_app, g, request
from flask.blueprints import BlueprintSetupState

from plugin.csrf import exempt_from_host_csrf, protect
from plugin.i18n import gettext as _
from plugin.routes._filters import FILTERS
from plugin.routes._http import mail_derived
from plugin.routes import (
    admin,
    compose,
    deliverability,
    fetch,
    lifecycle,
    oauth,
    records,
    setup,
    templates,
    webmail,
)

if TYPE_CHECKING:
    from plugin.addon import IntegratedEmail

_M = "/mail/messages/<int:message_id>"
_R = "/records/<kind>/<record_id>"
_W = webmail.webmail_view  # 404 in outbound-only mode, the mail pages' CSP
_D = mail_derived  # pages that quote mail or candidates' names: CSP, private, no-store

#: (rule, endpoint, view, methods): every URL the add-on answers.
URLS = [
    ("/", "home", lifecycle.home, ["GET"]),
    # the admin's global settings and the mailbox overview
    ("/admin/settings", "admin_settings", admin.global_settings, ["GET", "POST"]),
    ("/admin/mailboxes", "admin_health", fetch.mailbox_health, ["GET"]),
    ("/admin/sign-in", "admin_sign_in", admin.sign_in_settings, ["POST"]),
    ("/admin/send-limits", "admin_send_limits", deliverability.send_limits, ["GET", "POST"]),
    # personal set-up
    ("/mailboxes", "mailboxes", setup.mailbox_list, ["GET"]),
    ("/mailboxes/new", "mailbox_new", setup.mailbox_form, ["GET", "POST"]),
    ("/mailboxes/<int:mailbox_id>", "mailbox_edit", setup.mailbox_form, ["GET", "POST"]),
    ("/mailboxes/<int:mailbox_id>/activate", "mailbox_activate", setup.mailbox_activate,
     ["POST"]),
    ("/mailboxes/<int:mailbox_id>/delete", "mailbox_delete", setup.mailbox_delete,
     ["GET", "POST"]),
    ("/mailboxes/<int:mailbox_id>/status", "mailbox_status", setup.mailbox_status, ["GET"]),
    ("/setup/fields", "setup_fields", setup.form_fields, ["POST"]),
    ("/setup/test", "setup_test", setup.test_connection, ["POST"]),
    ("/setup/discover", "setup_discover", setup.discover_settings, ["POST"]),
    # signing in with Google or Microsoft (the callback is the redirect URI to register)
    ("/oauth/start", "oauth_start", oauth.sign_in_start, ["POST"]),
    ("/oauth/callback", "oauth_callback", oauth.sign_in_callback, ["GET"]),
    # fetching
    ("/mailboxes/<int:mailbox_id>/fetch", "fetch_now", fetch.fetch_now, ["POST"]),
    ("/mailboxes/<int:mailbox_id>/progress", "fetch_progress", fetch.fetch_progress, ["GET"]),
    # sending
    ("/compose", "compose", _D(compose.compose), ["GET", "POST"]),
    ("/compose/reply/<int:message_id>", "compose_reply", _D(compose.compose_reply), ["GET"]),
    ("/outbox", "outbox", _D(compose.outbox_list), ["GET"]),
    ("/outbox/<int:outbound_id>/resend", "outbox_resend", _D(compose.outbox_resend), ["POST"]),
    ("/outbox/<int:outbound_id>/cancel", "outbox_cancel", _D(compose.outbox_cancel), ["POST"]),
    ("/outbox/<int:outbound_id>/edit", "outbox_edit", _D(compose.outbox_edit), ["POST"]),
    ("/templates", "templates", templates.template_list, ["GET", "POST"]),
    ("/templates/<int:template_id>", "template_edit", templates.template_edit, ["GET", "POST"]),
    ("/templates/<int:template_id>/delete", "template_delete", templates.template_delete,
     ["POST"]),
    ("/signature", "signature", templates.signature, ["GET", "POST"]),
    ("/bulk/new", "bulk_new", _D(compose.bulk_new), ["GET", "POST"]),
    ("/bulk/preview", "bulk_preview", _D(compose.bulk_preview), ["POST"]),
    ("/bulk/send", "bulk_send", _D(compose.bulk_send), ["POST"]),
    ("/bulk/<int:job_id>", "bulk_job", _D(compose.bulk_job), ["GET"]),
    ("/bulk/<int:job_id>/progress", "bulk_progress", _D(compose.bulk_progress), ["GET"]),
    ("/bulk/<int:job_id>/cancel", "bulk_cancel", _D(compose.bulk_cancel), ["POST"]),
    # public: recipients of bulk email, no sign-in (see PUBLIC)
    ("/unsubscribe/<token>", "unsubscribe", deliverability.unsubscribe, ["GET", "POST"]),
    # reading: the webmail
    ("/mail", "webmail", _W(webmail.inbox), ["GET"]),
    ("/mail/folders/<role>", "webmail_folder", _W(webmail.folder), ["GET"]),
    ("/mail/search", "webmail_search", _W(webmail.search), ["GET"]),
    (_M, "webmail_message", _W(webmail.message), ["GET"]),
    (_M + "/seen", "webmail_mark", _W(webmail.mark), ["POST"]),
    (_M + "/delete", "webmail_delete", _W(webmail.delete), ["POST"]),
    ("/mail/attachments/<int:attachment_id>", "webmail_attachment",
     _W(webmail.attachment), ["GET"]),
    # linking a message to records by hand
    (_M + "/records", "webmail_record_search", _W(webmail.record_search), ["GET"]),
    (_M + "/records", "webmail_record_add", _W(webmail.record_add), ["POST"]),
    (_M + "/records/<int:link_id>/delete", "webmail_record_remove",
     _W(webmail.record_remove), ["POST"]),
    # the panels on the host's record pages
    (_R + "/messages/<int:message_id>", "record_message", _D(records.record_message), ["GET"]),
    (_R + "/attachments/<int:attachment_id>", "record_attachment", _D(records.record_attachment),
     ["GET"]),
    (_R + "/timeline", "record_timeline", _D(records.record_timeline), ["GET"]),
    (_R + "/share", "record_share", _D(records.record_share), ["POST"]),
]


#: endpoints that need no sign-in and no CSRF token. Only the unsubscribe page: RFC 8058
#: has mail providers POST to it with no cookie and no token of ours, and its signed
#: token (plugin.sending.unsubscribe) proves the request came from the message sent.
#: GET there never changes anything. Add nothing here without the same proof.
PUBLIC = frozenset({"integrated_email.unsubscribe"})


def make_blueprint(addon: IntegratedEmail) -> Blueprint:
    """The ``integrated_email`` blueprint of ``addon``, with its guard and headers."""
    bp = Blueprint("integrated_email", __name__, template_folder="../templates",
                   static_folder="../static")
    for rule, endpoint, view, methods in URLS:
        bp.add_url_rule(rule, endpoint, view, methods=methods)
    for name, fn in FILTERS.items():
        bp.add_app_template_filter(fn, name)

    @bp.record_once
    def public_views(state: BlueprintSetupState) -> None:
        """A host's Flask-WTF CSRFProtect must let the PUBLIC views' POSTs through."""
        exempt_from_host_csrf(state.app, [view for _rule, endpoint, view, _m in URLS
                                          if f"integrated_email.{endpoint}" in PUBLIC])

    @bp.before_request
    def guard() -> Response | None:
        """404 while inactive, sign-in required, CSRF checked on state changes."""
        if not addon.is_active():
            abort(404, _("Integrated email is not active."))
        if request.endpoint in PUBLIC:
            return None
        user = addon.host.current_user()
        if user is None:
            lm = getattr(current_app, "login_manager", None)
            if lm is not None:
                return lm.unauthorized()
            abort(401, _("Sign in to use Integrated email."))
        g.ie_user = user
        protect()
        return None

    @bp.context_processor
    def page_context() -> dict:
        """The host's base template and the add-on, for every page."""
        return {"host_base": addon.host.base_template, "ie": addon}

    @bp.after_request
    def security_headers(resp: Response) -> Response:
        """nosniff, same-origin referrers, no framing by others."""
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return resp

    return bp
