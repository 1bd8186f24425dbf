"""CSRF protection for every state-changing request the add-on answers.

A per-session token goes in forms as ``csrf_token`` and in htmx requests as the
``X-CSRF-Token`` header (set once with ``hx-headers`` on the page wrapper).
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

SESSION_KEY = "_ie_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token() -> str:
    """The session's CSRF token (made on first use), for forms and htmx headers."""
    token = session.get(SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def protect() -> None:
    """Refuse a state-changing request without the session's token."""
    if request.method in SAFE_METHODS:
        return
    expected = session.get(SESSION_KEY)
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        abort(400, "The form expired or came from another site. Reload the page and try again.")
