"""The add-on's blueprint: every URL rule in one table, handlers in the modules.

Every request first passes ``guard``: 404 while the add-on is inactive, sign-in
required, CSRF checked on state-changing methods.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g

from plugin.csrf import protect


def make_blueprint(addon) -> Blueprint:  # noqa: ANN001
    from plugin.routes import admin, lifecycle, setup

    bp = Blueprint("integrated_email", __name__, template_folder="../templates",
                   static_folder="../static")

    # (rule, endpoint, view, methods)
    rules = [
        ("/", "home", lifecycle.home, ["GET"]),
        ("/admin/settings", "admin_settings", admin.global_settings, ["GET", "POST"]),
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
    ]
    for rule, endpoint, view, methods in rules:
        bp.add_url_rule(rule, endpoint, view, methods=methods)

    @bp.before_request
    def guard():  # noqa: ANN202
        if not addon.is_active():
            abort(404)
        user = addon.host.current_user()
        if user is None:
            lm = getattr(current_app, "login_manager", None)
            if lm is not None:
                return lm.unauthorized()
            abort(401)
        g.ie_user = user
        protect()
        return None

    @bp.context_processor
    def page_context():  # noqa: ANN202
        return {"host_base": addon.host.base_template, "ie": addon}

    @bp.after_request
    def security_headers(resp):  # noqa: ANN001, ANN202
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return resp

    return bp
