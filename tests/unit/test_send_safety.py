"""Header checks, address lists, message building and the merge sandbox, without servers."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plugin.services import compose, merge


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nb", "a\x00b", "a\u2028b", "a\u2029b",
                                   "a\u0085b", "a\x0bb", "a\x0cb", "=?UTF-8?Q?=0A?=",
                                   "=?utf-8?q?x=0D=0Ay?=", "=?UTF-8?B?Cg==?=",
                                   "ok =?iso-8859-1?q?a=0Ab?= ok", "=?utf-8?b?4oCo?="])
def test_header_values_with_line_breaks_are_refused(value):
    with pytest.raises(compose.HeaderError):
        compose.check_header(value, "subject")


@pytest.mark.parametrize("value", ["Interview", "Café – rendez-vous", "=?UTF-8?Q?Caf=C3=A9?=",
                                   "Tab\tinside", ""])
def test_ordinary_header_values_pass(value):
    assert compose.check_header(value, "subject") == value


def test_address_lists_are_validated_without_network():
    assert compose.parse_addresses("Ann <ann@x.test>; b@y.test", "To field") == [
        ("Ann", "ann@x.test"), ("", "b@y.test")]
    for bad in ["ann", "a@b", "ann@x.test\r\nBcc: e@x.test", "\u2028 <a@x.test>"]:
        with pytest.raises(compose.HeaderError):
            compose.parse_addresses(bad, "To field")


def test_built_message_has_no_bcc_and_crlf_only():
    msg = compose.build_message(
        from_name="Rita", from_addr="rita@acme.test", to=[("Ann", "ann@x.test")], cc=[],
        subject="Hi", body_text="a\nb\rc\r\n.d", body_html=None, message_id="m1@acme.test",
        date=datetime(2026, 1, 2, tzinfo=UTC), references="r0@x r1@x",
        in_reply_to="r1@x")
    raw = compose.flatten(msg)
    assert b"Bcc" not in raw and b"\r\n.d" in raw
    assert b"References: <r0@x> <r1@x>" in raw and b"In-Reply-To: <r1@x>" in raw
    assert raw == compose.flatten(compose.build_message(
        from_name="Rita", from_addr="rita@acme.test", to=[("Ann", "ann@x.test")], cc=[],
        subject="Hi", body_text="a\nb\rc\r\n.d", body_html=None, message_id="m1@acme.test",
        date=datetime(2026, 1, 2, tzinfo=UTC), references="r0@x r1@x",
        in_reply_to="r1@x"))


def test_message_id_is_on_the_senders_domain():
    assert compose.new_message_id("rita@acme.test").endswith("@acme.test")


def test_formatted_text_is_escaped():
    html = compose.formatted_html("**Hi** <script>x</script>\n\nsee https://a.test/x")
    assert "<strong>Hi</strong>" in html and "&lt;script&gt;" in html
    assert '<a href="https://a.test/x">' in html


VALUES = {"first_name": "Ann", "last_name": "Lee", "full_name": "Ann Lee", "email": "a@x.test",
          "recruiter_name": "Rita", "recruiter_signature": "Rita, Acme"}


def test_merge_fields_render():
    assert merge.render("Hi {{ first_name|title }} {{ last_name }}, {{ recruiter_signature }}",
                        VALUES) == "Hi Ann Lee, Rita, Acme"
    assert merge.check_template("{{ full_name }} {% if email %}{{ email }}{% endif %}", "b") == []


@pytest.mark.parametrize("template", [
    "{{ ''.__class__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ config }}",
    "{{ self }}", "{{ range(10) }}", "{{ lipsum() }}", "{{ cycler }}", "{{ request }}",
    "{{ first_name.upper() }}", "{{ first_name|attr('__class__') }}", "{% for x in y %}{% endfor %}",
    "{{ first_name['__class__'] }}", "{% set x = 1 %}", "{{ first_name"])
def test_templates_reaching_internals_are_reported_and_render_nothing(template):
    assert merge.check_template(template, "body")
    with pytest.raises(merge.MergeError):
        out = merge.render(template, VALUES)
        # Anything the sandbox lets through must at least not be internals.
        assert "class" not in out and "Config" not in out
        raise merge.MergeError("rendered")
