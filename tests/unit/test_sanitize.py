"""The HTML sanitizer, the frame document and the plain-text linkifier."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugin.mail.sanitize import iframe_csp, linkify_text, sanitize_html, srcdoc_document

PAYLOAD_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile" / "payloads.txt"


def load_payloads() -> list[str]:
    text = "\n".join(line for line in PAYLOAD_FILE.read_text().splitlines()
                     if not line.startswith("# "))
    return [p.strip("\n") for p in text.split("\n%%\n") if p.strip()]


PAYLOADS = load_payloads()
#: things that must never survive, whatever the input
FORBIDDEN = re.compile(
    r"<\s*(script|style|svg|math|form|input|button|base|meta|link|iframe|object|embed|"
    r"textarea|template|video|audio|source|picture|isindex|marquee|details|noscript)\b"
    r"|\son[a-z]+\s*=|javascript:|vbscript:|data:text|expression\(|url\(|@import|"
    r"(?<!href=\")https?://attacker\.invalid|srcset|background=|poster=|ping=|formaction", re.I)


def test_there_are_at_least_sixty_payloads():
    assert len(PAYLOADS) >= 60


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_payload_comes_out_harmless_and_stable(payload):
    once = sanitize_html(payload).html
    assert not FORBIDDEN.search(once), once
    assert sanitize_html(once).html == once


def test_remote_images_blocked_by_default_and_counted_then_shown_on_request():
    body = '<p>Hi</p><img src="https://img.example/a.png" alt="logo">'
    blocked = sanitize_html(body)
    assert "img.example" not in blocked.html and blocked.blocked_images == 1
    shown = sanitize_html(body, allow_remote=True)
    assert 'src="https://img.example/a.png"' in shown.html and shown.blocked_images == 0


def test_cid_images_resolve_to_data_uris_and_unknown_cids_vanish():
    uri = "data:image/png;base64,iVBORw0KGgo="
    out = sanitize_html('<img src="cid:Logo@X"><img src="cid:other">', {"<logo@x>": uri}).html
    assert out.count("<img") == 2 and out.count(uri) == 1 and "cid:" not in out


def test_links_open_in_a_new_context_without_opener():
    out = sanitize_html('<a href="https://ok.example/" target="_self" rel="opener">x</a>').html
    assert 'target="_blank"' in out and 'rel="noopener noreferrer"' in out
    assert "_self" not in out and '"opener"' not in out


def test_inline_styles_survive_without_fetching_anything():
    out = sanitize_html('<p style="color:red;background:url(http://x/y);font-weight:bold">t</p>')
    assert "color:red" in out.html and "font-weight:bold" in out.html and "url" not in out.html


def test_frame_document_carries_its_own_policy():
    doc = srcdoc_document("<p>x</p>")
    assert "default-src 'none'" in doc and "img-src data: cid;" not in doc
    assert "img-src data: cid:;" in iframe_csp() and "form-action 'none'" in iframe_csp()
    assert "style-src 'unsafe-inline'" in iframe_csp()
    assert "https:" not in iframe_csp() and "https:" in iframe_csp(allow_remote=True)


def test_plain_text_is_escaped_and_links_are_clickable_safely():
    out = str(linkify_text('<b>hi</b> see https://ok.example/a?b=1&c=2. or www.x.example, '
                           'mail me@x.example; javascript:alert(1)'))
    assert "<b>" not in out and "&lt;b&gt;" in out
    assert '<a href="https://ok.example/a?b=1&amp;c=2" target="_blank" ' \
           'rel="noopener noreferrer">' in out
    assert 'href="https://www.x.example"' in out and 'href="mailto:me@x.example"' in out
    assert 'href="javascript' not in out


def test_quotes_in_urls_cannot_break_out_of_the_attribute():
    out = str(linkify_text('http://x.example/"onmouseover="alert(1)'))
    assert 'onmouseover="' not in out


_TAGS = ["a", "b", "p", "div", "table", "tr", "td", "svg", "math", "style", "script", "img",
         "form", "select", "option", "template", "noscript", "li", "ul", "font", "span",
         "mglyph", "mtext", "title", "textarea", "xmp", "iframe", "base", "meta"]
_ATTRS = ["href", "src", "style", "onclick", "onerror", "title", "id", "xlink:href", "color"]
_VALUES = ["javascript:alert(1)", "x", "url(http://a.invalid)", "</style><img src=x>",
           "https://ok.example/", "cid:a", "data:image/png;base64,AA==", "color:red", '"', "'"]


@st.composite
def html_soup(draw):
    parts = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 3))
        tag = draw(st.sampled_from(_TAGS))
        if kind == 0:
            attrs = "".join(' %s="%s"' % (draw(st.sampled_from(_ATTRS)),
                                          draw(st.sampled_from(_VALUES)))
                            for _ in range(draw(st.integers(0, 2))))
            parts.append("<%s%s>" % (tag, attrs))
        elif kind == 1:
            parts.append("</%s>" % tag)
        elif kind == 2:
            parts.append(draw(st.text(max_size=12)))
        else:
            parts.append(draw(st.sampled_from(
                ["<!--", "-->", "&lt;", "&amp;", "<", ">", "&#106;"])))
    return "".join(parts)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html_soup())
def test_sanitizing_is_stable_for_generated_html(soup):
    once = sanitize_html(soup).html
    assert sanitize_html(once).html == once
    # An event handler counts only inside a tag: the same words as escaped text are harmless.
    assert not re.search(r"<\s*(script|svg|math|style|base|meta|iframe)\b|<[^>]*\son\w+=",
                         once, re.I)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_sanitizing_is_stable_for_any_text(text):
    once = sanitize_html(text).html
    assert sanitize_html(once).html == once
