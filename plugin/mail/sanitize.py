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

Bounded: HTML past a size, tag-count, nesting or entity-run limit is never parsed
(html5ever's cost grows faster than the input for deep nesting and long text runs:
20,000 nested ``<div>`` took 42 s); it is shown as text with a sentence saying why
(``SanitizedHtml.too_complex``). The check is one linear scan.

Why iterate to a fixed point: html5ever re-parses what it serialised and, for a few
mis-nested inputs (foster-parented table content, stray end tags), a second pass
changes the markup again.  ``sanitize_html`` repeats the pass until the output is
stable (twice is enough in practice), so sanitize(sanitize(x)) == sanitize(x) holds,
which is what makes the stored/previewed output predictable and the tests meaningful.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import nh3
from markupsafe import Markup

__all__ = ["SanitizedHtml", "TooComplex", "sanitize_html", "sanitize_once", "finish_sanitized",
           "check_complexity", "as_text",
           "clean_remote_url", "srcdoc_document", "iframe_csp", "linkify_text", "ALLOWED_TAGS"]

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


#: HTML longer than this (characters) is shown as text: html5ever's cost grows faster
#: than the size for some shapes, and no view may cost more than a bounded time
MAX_HTML_CHARS = 1_000_000
#: more tags than this, or deeper nesting (estimated), and the message is shown as text
MAX_TAGS = 40_000
MAX_DEPTH = 400
#: entities in one run of text: html5ever joins them quadratically (0.4 s for 18,000)
MAX_RUN_ENTITIES = 8_000
#: characters of text kept when a message is shown as text instead
MAX_FALLBACK_CHARS = 200_000


@dataclass(frozen=True)
class SanitizedHtml:
    html: str
    #: remote images left out (there is something for "Show images" to show)
    blocked_images: int
    #: why the message is shown as text instead of formatted (a sentence), or None
    too_complex: str | None = None


class TooComplex(ValueError):
    """HTML past one of the limits above; ``sentence`` says which, for the page."""

    def __init__(self, sentence: str) -> None:
        self.sentence = sentence
        super().__init__(sentence)


def _attribute_filter_for(cid_map: Mapping[str, str] | None, allow_remote: bool,
                          counter: list[int]):
    """The nh3 attribute filter; ``cid_map`` None keeps ``cid:`` sources as ``cid:key``
    (the cached form, resolved per view by :func:`finish_sanitized`)."""
    def attribute_filter(tag: str, attr: str, value: str) -> str | None:
        if attr == "href":
            return value if value.strip().lower().startswith(_LINK_SCHEMES) else None
        if attr == "src":
            v = value.strip()
            low = v.lower()
            if low.startswith("cid:"):
                if cid_map is None:
                    return "cid:" + _cid_key(v[4:])
                return cid_map.get(_cid_key(v[4:]))
            if low.startswith("data:"):
                return v if _DATA_IMAGE.match(v) else None
            if low.startswith(("http:", "https:")):
                if allow_remote:
                    return v if clean_remote_url(v) else None
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


#: characters no honest image URL holds raw: whitespace, quotes, markup, backslash
_URL_FORBIDDEN = frozenset(" \t\r\n\f\v\"'`<>\\{}|^")


def clean_remote_url(url: str) -> bool:
    """True when ``url`` is a plain ``http(s)://host/...`` fit to fetch as an image.

    Refused: anything but http(s) with ``//`` and a host; credentials (``a@b``, which
    also disguises the real host); whitespace, quotes, ``<``/``>``, backslashes and
    control or invisible characters: the marks of dangling markup, where an unclosed
    quote runs the URL on over the text after it and carries that text away.
    """
    if not isinstance(url, str) or len(url) > 4096 or not url.isprintable():
        return False
    if any(ch in _URL_FORBIDDEN or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp")
           for ch in url):
        return False
    if not url[:8].lower().startswith(("http://", "https://")):
        return False
    try:
        parts = urlsplit(url)
        if parts.port is not None and not 0 < parts.port < 65536:
            return False
    except ValueError:  # a bad port or IPv6 literal
        return False
    if parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc:
        return False
    host = parts.hostname or ""
    return bool(host) and bool(re.fullmatch(r"[a-z0-9.\-]+|\[[0-9a-f:.]+\]|[0-9a-f:.]+",
                                            host))


def _cid_key(cid: str) -> str:
    return cid.strip().strip("<>").lower()


def _once(text: str, cid_map: Mapping[str, str] | None, allow_remote: bool,
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
                  allow_remote: bool = False,
                  fallback_text: str | None = None, keep_cids: bool = False) -> SanitizedHtml:
    """The allow-listed form of an HTML body (see the module docstring).

    ``cid_map`` maps Content-IDs (lower case, no angle brackets) to the ``data:`` URI of
    the inline part; ``allow_remote`` keeps http(s) images (after "Show images").
    HTML past the limits (size, tags, nesting) is not parsed at all: the result is the
    text (``fallback_text``, the message's own text part, when given) with a sentence
    saying why, in ``html`` and in ``too_complex``.
    """
    if not text:
        return SanitizedHtml("", 0)
    try:
        check_complexity(text)
    except TooComplex as exc:
        return as_text(text, exc.sentence, fallback_text)
    cids = None if keep_cids else {_cid_key(k): v for k, v in (cid_map or {}).items()}
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


def sanitize_once(text: str | None, fallback_text: str | None = None) -> str:
    """The form of an HTML body to keep (sanitize once, show many times): allow-listed
    like :func:`sanitize_html`, with clean remote images kept and ``cid:`` sources left
    as ``cid:key``; :func:`finish_sanitized` makes a view of it in linear time."""
    return sanitize_html(text, None, True, fallback_text, keep_cids=True).html


#: an <img> tag of the sanitizer's output (its attribute values are always "quoted")
_IMG_TAG = re.compile(r'<img\b(?:[^>"]|"[^"]*")*>')
_SRC_ATTR = re.compile(r'\ssrc="([^"]*)"')


def finish_sanitized(kept: str, cid_map: Mapping[str, str] | None = None,
                     allow_remote: bool = False) -> SanitizedHtml:
    """One view of :func:`sanitize_once`'s output: ``cid:`` images resolved to their
    ``data:`` URIs (or dropped), remote images kept only when the reader asked."""
    cids = {_cid_key(k): v for k, v in (cid_map or {}).items()}
    blocked = [0]

    def image(tag: re.Match) -> str:
        def source(m: re.Match) -> str:
            value = html.unescape(m.group(1))
            low = value.lower()
            if low.startswith("cid:"):
                found = cids.get(_cid_key(value[4:]))
                return ' src="%s"' % html.escape(found, quote=True) if found else ""
            if low.startswith(("http:", "https:")) and not allow_remote:
                blocked[0] += 1
                return ""
            return m.group(0)
        return _SRC_ATTR.sub(source, tag.group(0))

    out = _IMG_TAG.sub(image, kept) if "<img" in kept else kept
    return SanitizedHtml(out, blocked[0])


_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:._-]*)")
#: elements with no end tag, or whose end tag the parser implies (not nesting)
_NOT_NESTING = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "tbody",
    "thead", "tfoot", "colgroup", "rt", "rp", "optgroup", "basefont", "bgsound", "keygen",
})
_TAG_OR_SPACE = re.compile(r"<[^<>]*>")
_SPACES = re.compile(r"[ \t]{2,}")
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){2,}")


def check_complexity(text: str) -> None:
    """Raise :class:`TooComplex` when ``text`` is past a limit; cost linear in its size.

    The nesting depth is estimated without a parser: open tags minus their own end
    tags, ignoring elements that do not nest. It errs high (an HTML parser closes more
    than it is told), which only ever means showing text.
    """
    if len(text) > MAX_HTML_CHARS:
        raise TooComplex(f"This message is too large to show formatted (over "
                         f"{MAX_HTML_CHARS // 1_000_000} MB of HTML), so it is shown as text.")
    if text.count("&") > MAX_RUN_ENTITIES and \
            max(run.count("&") for run in text.split("<")) > MAX_RUN_ENTITIES:
        raise TooComplex("This message has text the formatter cannot show quickly, so it "
                         "is shown as text.")
    if text.count("<") <= MAX_DEPTH:
        return
    open_counts: dict[str, int] = {}
    depth = tags = 0
    for m in _TAG.finditer(text):
        tags += 1
        if tags > MAX_TAGS:
            raise TooComplex(f"This message has too many HTML elements to show formatted "
                             f"(over {MAX_TAGS:,}), so it is shown as text.")
        name = m.group(2).lower()
        if name in _NOT_NESTING:
            continue
        if m.group(1):
            if open_counts.get(name):
                open_counts[name] -= 1
                depth -= 1
            continue
        open_counts[name] = open_counts.get(name, 0) + 1
        depth += 1
        if depth > MAX_DEPTH:
            raise TooComplex(f"This message's formatting is nested too deeply to show "
                             f"(over {MAX_DEPTH} levels), so it is shown as text.")


def as_text(html_text: str, reason: str, fallback_text: str | None = None) -> SanitizedHtml:
    """The message as escaped text under a line saying why: cheap whatever the input."""
    if fallback_text is None or not fallback_text.strip():
        # No parser: drop what looks like tags (linear: a tag never spans a '<').
        stripped = _TAG_OR_SPACE.sub(" ", html_text[:MAX_HTML_CHARS * 2])
        fallback_text = html.unescape(_BLANK_LINES.sub("\n\n", _SPACES.sub(" ", stripped)))
    shown = fallback_text[:MAX_FALLBACK_CHARS]
    if len(fallback_text) > MAX_FALLBACK_CHARS:
        shown += "\n[…]"
    body = ('<p class="ie-too-complex" style="padding:6px 8px;background:#fff4d6;'
            'border:1px solid #e8c268">%s</p><pre style="white-space:pre-wrap">%s</pre>'
            % (html.escape(reason), html.escape(shown)))
    return SanitizedHtml(body, 0, reason)


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
