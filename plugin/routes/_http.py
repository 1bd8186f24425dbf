"""What every page group shares about HTTP: fragment or page, the pages' security
headers, downloads, and "load it or answer 404 with a reason"."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote, urlsplit

from flask import Response, abort, current_app, g, make_response
from flask.typing import ResponseReturnValue
from flask_htmx import HTMX

from plugin.i18n import gettext as _
from plugin.reading.messages import attachment_bytes

T = TypeVar("T")

#: Reads the htmx request headers of the current request; not bound to the host's app
#: (``HTMX(app)`` would add a context processor and an attribute to the host's app).
htmx = HTMX()

#: types an attachment keeps when downloaded; everything else is application/octet-stream
SAFE_DOWNLOAD_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp",
                                 "application/pdf", "text/plain", "text/csv",
                                 "application/zip"})


def wants_fragment() -> bool:
    """Whether htmx asked for the fragment only (a boosted link wants the whole page)."""
    return bool(htmx) and not htmx.boosted


def found_or_404(value: T | None, reason: str) -> T:
    """``value``, or abort with 404 and ``reason`` (for logs and the host's error page)."""
    if value is None:
        abort(404, reason)
    return value


def csp_nonce() -> str:
    """This request's CSP nonce (Jinja: ``ie_csp_nonce()``): a host layout's inline
    ``<script nonce="...">`` runs on the add-on's pages."""
    if "ie_csp_nonce" not in g:
        g.ie_csp_nonce = secrets.token_urlsafe(18)
    return g.ie_csp_nonce


def page_csp(remote_images: bool = False) -> str:
    """The mail pages' policy: our scripts and styles only; inline scripts only with
    this request's nonce (IE_CSP_INLINE_SCRIPTS) -- never an inline script of a mail."""
    scripts = "'self'"
    inline = str(current_app.config.get("IE_CSP_INLINE_SCRIPTS") or "nonce").lower()
    if inline == "nonce":
        scripts += " 'nonce-%s'" % csp_nonce()
    elif inline == "unsafe-inline":
        scripts += " 'unsafe-inline'"
    htmx_url = current_app.config.get("IE_HTMX_URL")
    if htmx_url and urlsplit(htmx_url).netloc:
        parts = urlsplit(htmx_url)
        scripts += " %s://%s" % (parts.scheme, parts.netloc)
    images = "'self' data:" + (" https: http:" if remote_images else "")
    return ("default-src 'none'; script-src %s; style-src 'self' 'unsafe-inline'; "
            "img-src %s; font-src 'self'; connect-src 'self'; form-action 'self'; "
            "frame-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'self'"
            % (scripts, images))


def mail_derived(view: Callable[..., ResponseReturnValue]) -> Callable[..., Response]:
    """The mail pages' CSP and ``Cache-Control: private, no-store`` on a page or fragment
    that shows text from mail (names, subjects, quotes): escaping is not the only guard,
    and no shared cache keeps a copy."""
    @functools.wraps(view)
    def wrapper(*args: object, **kwargs: object) -> Response:
        resp = make_response(view(*args, **kwargs))
        resp.headers.setdefault("Content-Security-Policy",
                                page_csp(bool(g.get("ie_remote_images"))))
        resp.headers.setdefault("Cache-Control", "private, no-store")
        return resp
    return wrapper


def content_disposition(filename: str) -> str:
    """attachment; an ASCII fallback name and the real one per RFC 5987."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_"
                       for c in filename) or "attachment"
    return "attachment; filename=\"%s\"; filename*=UTF-8''%s" % (
        fallback, quote(filename, safe=""))


def attachment_response(att: object) -> Response:
    """The download of a stored attachment: never inline, never sniffed."""
    data = found_or_404(attachment_bytes(current_app.config, att),
                        _("The attachment's stored bytes are missing."))
    ctype = att.content_type.lower()
    resp = make_response(data)
    resp.headers["Content-Type"] = ctype if ctype in SAFE_DOWNLOAD_TYPES else \
        "application/octet-stream"
    resp.headers["Content-Disposition"] = content_disposition(att.filename or "attachment")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return resp
