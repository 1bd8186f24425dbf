"""HTML mail made safe to show: an nh3 allow-list, the sandboxed-iframe document with
its own Content-Security-Policy, and plain text with clickable links.

Pure: no Flask, no database.  Three layers, each enough on its own for scripts:

1. ``sanitize_html`` keeps only an allow-list of HTML tags, attributes and CSS
   properties (no script, style element, form, base, meta, link, SVG or MathML, no
   event handlers); links may only be http(s)/mailto; images only ``cid:`` (resolved to
   ``data:`` by the caller), raster ``data:`` images, and remote http(s) images when the
   user asked for them.  CSS ``url()``/``expression``/escapes are dropped, so the only
   remote fetch a message can ever make is an ``<img>`` the user unblocked.
2. ``srcdoc_document`` wraps it with a CSP meta (``default-src 'none'``) for the
   ``<iframe sandbox srcdoc>``; the sandbox has no ``allow-scripts``.
3. The webmail page's own CSP header (routes) allows scripts from 'self' only.

Why iterate to a fixed point: html5ever re-parses what it serialised and, for a few
mis-nested inputs (foster-parented table content, stray end tags), a second pass
changes the markup again.  ``sanitize_html`` repeats the pass until the output is
stable (twice is enough in practice), so sanitize(sanitize(x)) == sanitize(x) holds,
which is what makes the stored/previewed output predictable and the tests meaningful.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass

import nh3
from markupsafe import Markup

__all__ = ["SanitizedHtml", "sanitize_html", "srcdoc_document", "iframe_csp", "linkify_text",
           "ALLOWED_TAGS"]

#: tags kept (their content is kept when the tag is dropped, unless in DROP_WITH_CONTENT)
ALLOWED_TAGS: frozenset[str] = frozenset({
    "a", "abbr", "acronym", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "caption",
    "center", "cite", "code", "col", "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em",
    "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small",
    "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "time", "tr", "tt", "u", "ul", "var", "wbr",
})
#: removed together with everything inside them
DROP_WITH_CONTENT: frozenset[str] = frozenset({
    "script", "style", "title", "head", "template", "noscript", "noembed", "noframes",
    "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math", "textarea",
    "select", "xmp", "plaintext", "listing", "button",
})
_COMMON_ATTRS = {"style", "align", "valign", "bgcolor", "width", "height", "dir", "title",
                 "lang", "border", "cellpadding", "cellspacing"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": _COMMON_ATTRS,
    "a": {"href"},
    "img": {"src", "alt"},
    "font": {"color", "face", "size"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "scope", "nowrap"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
    "time": {"datetime"},
    "blockquote": {"cite"},
    "q": {"cite"},
}
STYLE_PROPERTIES: frozenset[str] = frozenset({
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "font-variant", "text-align", "text-decoration", "text-indent",
    "text-transform", "line-height", "letter-spacing", "word-spacing", "white-space",
    "vertical-align", "direction", "margin", "margin-top", "margin-right", "margin-bottom",
    "margin-left", "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-style", "border-width", "border-radius", "border-collapse", "border-spacing",
    "width", "height", "max-width", "min-width", "max-height", "min-height", "display",
    "list-style-type", "table-layout", "overflow-wrap", "word-break",
})
#: schemes that may reach ``_attribute_filter`` (which then narrows per attribute)
_URL_SCHEMES = {"http", "https", "mailto", "cid", "data"}
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|jpg|webp|bmp);base64,[A-Za-z0-9+/=\s]*$",
                         re.I)
#: CSS that can fetch, run code or escape the property filter
_BAD_CSS = re.compile(r"url\s*\(|expression|image-set|@import|behavior|binding|javascript|"
                      r"\\|/\*|<|&", re.I)
_MAX_PASSES = 4


@dataclass(frozen=True)
class SanitizedHtml:
    html: str
    #: remote images left out (there is something for "Show images" to show)
    blocked_images: int


def _attribute_filter_for(cid_map: Mapping[str, str], allow_remote: bool, counter: list[int]):
    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr == "href":
            return value if value.strip().lower().startswith(_LINK_SCHEMES) else None
        if attr == "src":
            v = value.strip()
            low = v.lower()
            if low.startswith("cid:"):
                return cid_map.get(_cid_key(v[4:]))
            if low.startswith("data:"):
                return v if _DATA_IMAGE.match(v) else None
            if low.startswith(("http:", "https:")):
                if allow_remote:
                    return v
                counter[0] += 1
                return None
            return None
        if attr == "style":
            kept = [d.strip() for d in value.split(";")
                    if d.strip() and not _BAD_CSS.search(d)]
            return ";".join(kept) or None
        if attr in ("face", "color", "bgcolor") and _BAD_CSS.search(value):
            return None
        return value
    return attribute_filter


def _cid_key(cid: str) -> str:
    return cid.strip().strip("<>").lower()


def _once(text: str, cid_map: Mapping[str, str], allow_remote: bool,
          counter: list[int]) -> str:
    return nh3.clean(
        text,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter_for(cid_map, allow_remote, counter),
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes=set(_URL_SCHEMES),
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=set(STYLE_PROPERTIES),
    )


def sanitize_html(text: str | None, cid_map: Mapping[str, str] | None = None,
                  allow_remote: bool = False) -> SanitizedHtml:
    """The allow-listed form of an HTML body (see the module docstring).

    ``cid_map`` maps Content-IDs (lower case, no angle brackets) to the ``data:`` URI of
    the inline part; ``allow_remote`` keeps http(s) images (after "Show images").
    """
    if not text:
        return SanitizedHtml("", 0)
    cids = {_cid_key(k): v for k, v in (cid_map or {}).items()}
    counter = [0]
    out = _once(text, cids, allow_remote, counter)
    blocked = counter[0]
    for _ in range(_MAX_PASSES):
        again = _once(out, cids, allow_remote, counter)
        if again == out:
            return SanitizedHtml(out, blocked)
        out = again
    # Never stable (not seen in practice): show the text only, which is.
    plain = html.escape(nh3.clean(out, tags=set(), clean_content_tags=set(DROP_WITH_CONTENT)))
    return SanitizedHtml(plain, blocked)


def iframe_csp(allow_remote: bool = False) -> str:
    """The policy inside the message frame: nothing but inline styles and images."""
    img = "data: cid:" + (" https: http:" if allow_remote else "")
    return ("default-src 'none'; img-src %s; style-src 'unsafe-inline'; font-src data:; "
            "form-action 'none'; base-uri 'none'" % img)


_FRAME_STYLE = ("body{margin:0;padding:12px;font:14px/1.45 system-ui,-apple-system,"
                "'Segoe UI',sans-serif;color:#1f2933;word-wrap:break-word;overflow-wrap:anywhere}"
                "img{max-width:100%;height:auto}table{max-width:100%}pre{white-space:pre-wrap}")


def srcdoc_document(safe_html: str, allow_remote: bool = False) -> str:
    """The whole document for ``<iframe sandbox srcdoc=...>`` (escape it as an attribute)."""
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"%s\">"
            "<meta name=\"referrer\" content=\"no-referrer\">"
            "<style>%s</style></head><body>%s</body></html>"
            % (iframe_csp(allow_remote), _FRAME_STYLE, safe_html))


_LINK = re.compile(
    r"(?P<url>\bhttps?://[^\s<>\"'`]+)|(?P<www>\bwww\.[^\s<>\"'`]+)|"
    r"(?P<mail>\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b)", re.I)
_TRAILING = ".,;:!?)]}'\""


def linkify_text(text: str | None) -> Markup:
    """Plain text as escaped HTML with http(s), www. and e-mail addresses made links."""
    if not text:
        return Markup("")
    out: list[str] = []
    pos = 0
    for m in _LINK.finditer(text):
        raw = m.group(0)
        trail = ""
        while raw and raw[-1] in _TRAILING:
            trail = raw[-1] + trail
            raw = raw[:-1]
        if not raw:
            continue
        out.append(html.escape(text[pos:m.start()]))
        if m.group("mail"):
            href = "mailto:" + raw
        elif m.group("www"):
            href = "https://" + raw
        else:
            href = raw
        out.append('<a href="%s" target="_blank" rel="noopener noreferrer">%s</a>'
                   % (html.escape(href, quote=True), html.escape(raw)))
        out.append(html.escape(trail))
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return Markup("".join(out))
