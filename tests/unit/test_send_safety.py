"""Header checks, address lists, message building and the merge sandbox, without servers."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plugin.mail import build as compose
from plugin.sending import merge


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
    "{{ first_name.upper() }}", "{{ first_name|attr('__class__') }}",
    "{% for x in y %}{% endfor %}",
    "{{ first_name['__class__'] }}", "{% set x = 1 %}", "{{ first_name"])
def test_templates_reaching_internals_are_reported_and_render_nothing(template):
    assert merge.check_template(template, "body")
    with pytest.raises(merge.MergeError):
        out = merge.render(template, VALUES)
        # Anything the sandbox lets through must at least not be internals.
        assert "class" not in out and "Config" not in out
        raise merge.MergeError("rendered")


def test_prepared_bulk_messages_are_byte_for_byte_what_the_stdlib_builds():
    """The bulk fast path (PreparedMessage) must write exactly what EmailMessage writes,
    quoting, encoded-words, folding and quoted-printable bodies included."""
    import random
    import re
    from datetime import UTC, datetime, timedelta

    from plugin.mail import build as compose

    rnd = random.Random(7)
    names = ["Rita Recruiter", "O'Brien", "Smith, John", "J. Doe", "José Müller", "", "Ann  Lee",
             " lead", 'a"b', "=?utf-8?q?x?=", "X" * 70, "李 小龍", "name (comment)"]
    addrs = ["cand0@candidates.test", "a.b+c@x-y.example.org", "a" * 60 + "@example.org"]
    subjects = ["Hello First0", "Hello  World", " lead", "trail ", "a=?b", "é accent", "x" * 100,
                "Long subject " * 8, "", "tab\there", 'Re: [x] (y) <z> "q" ; , : .']
    bodies = ["Dear x,\n\nhi\n", ".dot\n..two\n", "bye é\n", "no newline", "", "a" * 1000,
              "crlf\r\nmix\rcr\n", "é" * 300, "line\n.\n"]
    htmls = [None, "<p>hi</p>", compose.formatted_html("**Hi** é\n\nhttp://x.test/a")]
    for _ in range(400):
        from_name, to = rnd.choice(names), [(rnd.choice(names), rnd.choice(addrs))]
        kw = {"to": to, "subject": rnd.choice(subjects), "body_text": rnd.choice(bodies),
              "body_html": rnd.choice(htmls),
              "message_id": compose.new_message_id("rita@example.test"),
              "date": datetime(2026, 1, 2, tzinfo=UTC) + timedelta(seconds=rnd.randrange(10**8))}
        fast = compose.PreparedMessage(from_name, "rita@example.test").build(**kw)
        slow = compose.flatten(compose.build_message(from_name=from_name,
                                                     from_addr="rita@example.test", cc=[], **kw))
        random_boundary = re.search(rb'boundary="([^"]+)"', slow)
        if random_boundary:  # the stdlib's is random, ours comes from the Message-ID
            ours = re.search(rb'boundary="([^"]+)"', fast).group(1)
            slow = slow.replace(random_boundary.group(1), ours)
        assert fast == slow, kw
