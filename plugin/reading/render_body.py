"""The one renderer of a stored message's body, for the webmail and the record pages:
HTML sanitized (inline images embedded, remote ones blocked unless asked) inside a
sandboxed srcdoc document, or the plain text with its links made clickable."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from plugin.blobs import blob_store
from plugin.mail.parse import find_part
from plugin.mail.sanitize import linkify_text, sanitize_html, srcdoc_document
from plugin.models import Message

#: inline images up to this total are embedded as data: URIs in the message frame
MAX_INLINE_BYTES = 5 * 1024 * 1024
INLINE_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


@dataclass(frozen=True)
class RenderedBody:
    """What a message page shows: the HTML frame, or else the plain text."""

    #: the srcdoc document of the sanitized HTML; None for a text-only message
    frame: str | None
    #: how many remote images were blocked (None without HTML)
    blocked: int | None
    #: the text with links made clickable, when there is no HTML
    plain: Markup | None


def render_body(config: Mapping[str, Any], msg: Message, remote_images: bool) -> RenderedBody:
    """The body of ``msg`` ready for the page (``remote_images``: the reader asked)."""
    frame = blocked = None
    if msg.body_html:
        # HTML past the sanitizer's limits shows as the message's own text part instead
        clean = sanitize_html(msg.body_html, cid_images(config, msg), remote_images,
                              fallback_text=msg.body_text)
        frame, blocked = srcdoc_document(clean.html, remote_images), clean.blocked_images
    return RenderedBody(frame, blocked, None if frame else linkify_text(msg.body_text))


def cid_images(config: Mapping[str, Any], msg: Message) -> dict[str, str]:
    """Content-ID -> data: URI of the message's inline images (raster types only)."""
    wanted = [a for a in msg.attachments
              if a.content_id and a.content_type.lower() in INLINE_IMAGE_TYPES]
    if not wanted or sum(a.size for a in wanted) > MAX_INLINE_BYTES:
        return {}
    try:
        raw = blob_store(config).get(msg.blob_sha256)
    except (OSError, ValueError):
        return {}
    out = {}
    for a in wanted:
        found = find_part(raw, a.part_index)
        if found and found[2]:
            out[a.content_id.strip("<>").lower()] = "data:%s;base64,%s" % (
                a.content_type.lower(), base64.b64encode(found[2]).decode("ascii"))
    return out
