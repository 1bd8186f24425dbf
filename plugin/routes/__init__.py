"""The add-on's blueprint: each routes module lists its URL rules in ``RULES``.

Every request first passes ``guard``: 404 while the add-on is inactive, sign-in
required, CSRF checked on state-changing methods.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g

from plugin.csrf import protect


#: Modules that contribute URL rules; each has RULES = [(rule, endpoint, view, methods)].
ROUTE_MODULES = ("lifecycle", "admin", "setup", "fetch", "compose", "webmail", "records")


def make_blueprint(addon) -> Blueprint:  # noqa: ANN001
    import importlib

    bp = Blueprint("integrated_email", __name__, template_folder="../templates",
                   static_folder="../static")
    for name in ROUTE_MODULES:
        module = importlib.import_module(f"plugin.routes.{name}")
        for rule, endpoint, view, methods in module.RULES:
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
