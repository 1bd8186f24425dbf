"""The one renderer of a stored message's body, for the webmail and the record pages:
HTML sanitized (inline images embedded, remote ones blocked unless asked) inside a
sandboxed srcdoc document, or the plain text with its links made clickable."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from plugin.mail.sanitize import finish_sanitized, linkify_text, sanitize_once, srcdoc_document
from plugin.models import Message
from plugin.reading.messages import attachment_bytes

#: inline images up to this total are embedded as data: URIs in the message frame
MAX_INLINE_BYTES = 5 * 1024 * 1024
INLINE_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
#: marks what ``body_html_safe`` was made by; a change of the sanitizer's rules
#: bumps it, and every message is sanitized again on its next view
SANITIZED_VERSION = "ie-sanitized-1\n"


@dataclass(frozen=True)
class RenderedBody:
    """What a message page shows: the HTML frame, or else the plain text."""

    #: the srcdoc document of the sanitized HTML; None for a text-only message
    frame: str | None
    #: how many remote images were blocked (None without HTML)
    blocked: int | None
    #: the text with links made clickable, when there is no HTML
    plain: Markup | None


def kept_html(msg: Message) -> str:
    """``msg``'s HTML sanitized once: from ``body_html_safe``, else made now and put
    there (the caller's commit keeps it), so no view after the first pays the parser."""
    kept = msg.body_html_safe
    if kept is None or not kept.startswith(SANITIZED_VERSION):
        # HTML past the sanitizer's limits shows as the message's own text part instead
        kept = SANITIZED_VERSION + sanitize_once(msg.body_html, fallback_text=msg.body_text)
        msg.body_html_safe = kept
    return kept[len(SANITIZED_VERSION):]


def render_body(config: Mapping[str, Any], msg: Message, remote_images: bool) -> RenderedBody:
    """The body of ``msg`` ready for the page (``remote_images``: the reader asked)."""
    frame = blocked = None
    if msg.body_html:
        kept = kept_html(msg)
        cids = cid_images(config, msg) if 'src="cid:' in kept else {}
        clean = finish_sanitized(kept, cids, remote_images)
        frame, blocked = srcdoc_document(clean.html, remote_images), clean.blocked_images
    return RenderedBody(frame, blocked, None if frame else linkify_text(msg.body_text))


def cid_images(config: Mapping[str, Any], msg: Message) -> dict[str, str]:
    """Content-ID -> data: URI of the message's inline images (raster types only)."""
    wanted = [a for a in msg.attachments
              if a.content_id and a.content_type.lower() in INLINE_IMAGE_TYPES]
    if not wanted or sum(a.size for a in wanted) > MAX_INLINE_BYTES:
        return {}
    out = {}
    for a in wanted:
        data = attachment_bytes(config, a)  # its slice of the message, not all of it
        if data:
            out[a.content_id.strip("<>").lower()] = "data:%s;base64,%s" % (
                a.content_type.lower(), base64.b64encode(data).decode("ascii"))
    return out
