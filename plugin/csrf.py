"""CSRF protection for every state-changing request the add-on answers.

A per-session token goes in forms as ``csrf_token`` and in htmx requests as the
``X-CSRF-Token`` header (set once with ``hx-headers`` on the page wrapper).

Beside Flask-WTF: when the host registered ``CSRFProtect``, the token *is*
Flask-WTF's (``generate_csrf``) and it is checked with ``validate_csrf``, so the
field name and headers both extensions read carry one token, and the add-on's
blueprint is never exempted (only its one public view, the one-click unsubscribe,
which RFC 8058 has mail providers POST to with no token of ours).  Without Flask-WTF
the add-on keeps its own token.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, abort, current_app, request, session

SESSION_KEY = "_ie_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _flask_wtf() -> bool:
    """Whether the host protects its app with Flask-WTF's CSRFProtect."""
    ext = current_app.extensions.get("csrf")
    return ext is not None and type(ext).__module__.startswith("flask_wtf")


def csrf_token() -> str:
    """The session's CSRF token (made on first use), for forms and htmx headers."""
    if _flask_wtf():
        from flask_wtf.csrf import generate_csrf
        return generate_csrf()
    token = session.get(SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def protect() -> None:
    """Refuse a state-changing request without the session's token."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
    if _flask_wtf():
        from flask_wtf.csrf import ValidationError, validate_csrf
        try:
            validate_csrf(sent)
        except ValidationError:
            abort(400, "The form expired or came from another site. Reload the page and "
                       "try again.")
        return
    expected = session.get(SESSION_KEY)
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        abort(400, "The form expired or came from another site. Reload the page and try again.")


def exempt_from_host_csrf(app: Flask, views: list[Callable[..., Any]]) -> None:
    """Keep a host's Flask-WTF ``CSRFProtect`` off ``views`` (the blueprint's PUBLIC ones,
    which authenticate by a signed token instead), whether the host set it up before the
    add-on (done now) or after (done by a hook that runs before the host's)."""

    def exempt() -> None:
        ext = app.extensions.get("csrf")
        if ext is not None and type(ext).__module__.startswith("flask_wtf"):
            for view in views:
                ext.exempt(view)

    exempt()
    app.before_request(exempt)
