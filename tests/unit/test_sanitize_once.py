"""Sanitize once, show many times: the kept form (``sanitize_once``) finished per view
(``finish_sanitized``) shows exactly what sanitizing on every view showed, for the
hostile corpus, inline cid: images and remote images blocked or allowed."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest

from plugin.mail.sanitize import finish_sanitized, sanitize_html, sanitize_once
from tests.unit.test_sanitize import PAYLOADS

CIDS = {"logo@x": "data:image/png;base64,iVBORw0KGgo=", "Other@Y": "data:image/gif;base64,R0lG"}
EXTRA = [
    '<p>Hi <img src="cid:logo@x" alt="a>b"> <img src="cid:missing@x">'
    '<img alt=\'x src="cid:logo@x"\' src="https://img.example/a.png"></p>',
    '<img src="CID:<Other@Y>"><img src="http://img.example/p.gif?a=1&amp;b=2">',
    '<img src="https://trusted.example.com@attacker.example/x.png">'
    '<img src="https://img.example/x.png?%20code=734219 token=SECRET">',
]


def canonical(html: str) -> list:
    """Tags (attributes in sorted order), end tags and text: what the browser builds."""
    out: list = []

    class Reader(HTMLParser):
        def handle_starttag(self, tag, attrs):
            out.append(("start", tag, sorted(attrs)))

        def handle_endtag(self, tag):
            out.append(("end", tag))

        def handle_data(self, data):
            out.append(("text", data))

    Reader(convert_charrefs=True).feed(html)
    return out


@pytest.mark.parametrize("remote", [False, True])
def test_finished_views_equal_sanitizing_each_time(remote):
    for html in PAYLOADS + EXTRA:
        once = finish_sanitized(sanitize_once(html), CIDS, remote)
        each = sanitize_html(html, CIDS, remote)
        assert canonical(once.html) == canonical(each.html), html


def test_blocked_images_are_counted_and_cids_resolved():
    kept = sanitize_once(EXTRA[0])
    assert 'src="cid:logo@x"' in kept and "data:" not in kept
    view = finish_sanitized(kept, CIDS, False)
    assert view.blocked_images == 1 and "img.example" not in view.html
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in view.html
    assert "missing@x" not in view.html
    shown = finish_sanitized(kept, CIDS, True)
    assert shown.blocked_images == 0 and 'src="https://img.example/a.png"' in shown.html
    # a dangling-markup or credentials URL was never kept, so no view can show it
    for url_bit in ("attacker.example", "SECRET"):
        assert url_bit not in finish_sanitized(sanitize_once(EXTRA[2]), {}, True).html


def test_too_complex_html_is_kept_as_its_text():
    monster = "<div>" * 5_000 + "deep" + "</div>" * 5_000
    kept = sanitize_once(monster, fallback_text="the text part")
    assert "the text part" in kept and "so it is shown as text" in kept
    assert finish_sanitized(kept).html == kept
