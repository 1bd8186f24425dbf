"""A per-session CSRF token for the host's own forms.

The add-on protects its own routes; the host does not lean on that.
"""

from __future__ import annotations

import secrets

from flask import abort, request, session

SESSION_KEY = "_host_csrf"
FORM_FIELD = "_host_csrf"
HEADER = "X-Host-CSRF"


def host_csrf_token() -> str:
    """The token of this session, created on first use."""
    token = session.get(SESSION_KEY)
    if not token:
        token = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def check_host_csrf() -> None:
    """Refuse a state-changing request that does not carry this session's token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get(SESSION_KEY)
    sent = request.form.get(FORM_FIELD) or request.headers.get(HEADER)
    if not expected or not sent or not secrets.compare_digest(expected, sent):
        abort(400, "This form has expired. Reload the page and try again.")
