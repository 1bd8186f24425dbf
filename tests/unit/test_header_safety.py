"""Header safety without trusting the interpreter (this suite runs on 3.11.7, which lacks
the CVE-2024-6923 fix): encoded line breaks in every encoding are refused, message-ids
follow the RFC 5322 grammar, and the flattened bytes are checked on their own."""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime

import pytest

from plugin.mail import msgid
from plugin.mail.encoded_words import decoded_words
from plugin.mail import build as compose

#: what a hostile value wants to get into the header block
BREAKS = ["\r\n", "\n", "\r", "\x00", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\u2028",
          "\u2029", "\u0085"]
PAYLOAD = "X-Injected: 1"


def _q(data: bytes, lower: bool = False) -> str:
    out = "".join(chr(b) if chr(b).isascii() and chr(b).isalnum() else f"={b:02X}"
                  for b in data)
    return out.lower() if lower else out


def encoded_forms(brk: str) -> list[str]:
    """The same hostile text as encoded-words in every way a decoder may take."""
    text = "a" + brk + PAYLOAD
    utf8 = text.encode("utf-8")
    b64 = base64.b64encode(utf8).decode()
    forms = [
        f"=?utf-8?q?{_q(utf8)}?=",
        f"=?UTF-8?Q?{_q(utf8, lower=True)}?=",
        f"=?utf-8?q?{_q(utf8)} ?=",                      # whitespace inside
        f"=?utf-8?q?a {_q(brk.encode('utf-8'))}X?=",     # whitespace in the middle
        f"=?utf-8?b?{b64}?=",
        f"=?UtF-8?B?{b64[:8]} {b64[8:]}?=",              # whitespace inside base64
        f"=?utf-8?b?{b64.rstrip('=')}?=",                # padding left out
        f"=?utf-8*en?q?{_q(utf8)}?=",                    # RFC 2231 language tag
        f"=?x-unknown?q?{_q(utf8)}?=",                   # a charset nobody knows
        f"Hi =?utf-8?q?{_q(utf8)}?= there",             # inside other text
        f'"=?utf-8?q?{_q(utf8)}?="',                     # inside a quoted string
    ]
    if all(ord(c) < 256 for c in text):
        latin = text.encode("latin-1")
        forms += [f"=?iso-8859-1?q?{_q(latin)}?=",
                  f"=?iso-8859-1?b?{base64.b64encode(latin).decode()}?="]
    if text.isascii():
        forms.append(f"=?us-ascii?q?{_q(text.encode())}?=")
    forms.append(f"=?utf-16?b?{base64.b64encode(text.encode('utf-16')).decode()}?=")
    # Split across two encoded-words, as a folded header would carry it.
    first, second = brk[:1], brk[1:] or ""
    forms.append(f"=?utf-8?q?a{_q(first.encode('utf-8'))}?= =?utf-8?q?"
                 f"{_q((second + PAYLOAD).encode('utf-8'))}?=")
    return forms


HOSTILE = [(brk, form) for brk in BREAKS for form in encoded_forms(brk)] + [
    ("\u2028", "=?utf-8?q?a\u00e2=80=A8X?="),  # raw Latin-1 byte inside the encoded text
]


@pytest.mark.parametrize(("brk", "value"), HOSTILE, ids=lambda v: repr(v)[:40])
def test_encoded_line_breaks_are_refused_in_every_encoding(brk, value):
    with pytest.raises(compose.HeaderError):
        compose.check_header(value, "subject")


@pytest.mark.parametrize("value", ["=?UTF-8?Q?Caf=C3=A9?=", "=?utf-8?b?w4VzYQ==?=",
                                   "Price =? 10 ?= maybe", "Q&A: why? =)", "a=?b",
                                   "=?iso-8859-1?q?=C5sa?="])
def test_encoded_words_without_line_breaks_pass(value):
    assert compose.check_header(value, "subject") == value


def test_lenient_decoder_reads_whitespace_and_late_ends():
    raws, texts = decoded_words("=?utf-8?q?a=0D=0AX: 1 ?=")
    assert any(b"\r\n" in r for r in raws)
    _raws, texts = decoded_words("=?utf-8?q?=3D?=0A?=")  # the stdlib runs past the first ?=
    assert any("\n" in t for t in texts)


def test_this_python_writes_a_decoded_crlf_raw_and_the_flattened_check_catches_it(monkeypatch):
    # The proof that the output check does not depend on the input check or on Python.
    monkeypatch.setattr(compose, "check_header", lambda value, label: value)
    evil = "=?utf-8?q?a=0D=0AX-Injected:_1?="
    with pytest.raises(compose.HeaderError):
        compose.build_message(from_name=evil, from_addr="r@acme.test", to=[(evil, "a@x.test")],
                              cc=[], subject=evil, body_text="x", body_html=None,
                              message_id="m@acme.test", date=datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(compose.HeaderError):
        compose.PreparedMessage("Rita", "r@acme.test").build(
            to=[("Ann", "a@x.test")], subject=evil, body_text="x", body_html=None,
            message_id="m@acme.test", date=datetime(2026, 1, 2, tzinfo=UTC))


@pytest.mark.parametrize("raw", [
    b"Subject: a\r\nX-Injected: 1\r\n\r\nbody\r\n",
    b"Subject: a\nBcc: v@x.test\r\n\r\nbody\r\n",
    b"Subject: a\rX\r\n\r\nbody\r\n",
    b"Subject: a\r\n\r\nbo\x00dy\r\n",
    b"Subject: a\r\n \r\nTo: b\r\n\r\nbody\r\n",
    b"Subject: a\r\nSubject: b\r\n\r\nbody\r\n",
    b"Subject: a\r\nnot a header line\r\n\r\nbody\r\n",
    b"Subject: a\r\n\r\n.\nMAIL FROM:<x@y>\r\n",
])
def test_flattened_bytes_with_injections_are_refused(raw):
    with pytest.raises(compose.HeaderError):
        compose.check_flattened(raw)


def test_message_id_grammar():
    assert msgid.parse_msg_id("<a.b@c.d>") == "a.b@c.d"
    assert msgid.parse_msg_id("CAF+x=y_z@mail.gmail.com") == "CAF+x=y_z@mail.gmail.com"
    assert msgid.parse_msg_id("<x@[127.0.0.1]>") == "x@[127.0.0.1]"
    for bad in ["", "<>", "no-at", "<a@b", "a@b>", "a b@c", "<a@b>\r\nBcc: x@y", "a@b\x00",
                "a@b\nX: 1", "=?utf-8?q?=0D=0A?=@x", "a@=?utf-8?b?DQo=?=", "a..b@c", ".a@b",
                "a@b.", "a@@b", "\"q\"@b", "a(c)@b", "a@[x]]", "a@[x\\]", "a@b\u2028",
                "x" * 300 + "@b", "<a@b> <c@d>", "a@b;c", "a@b,c"]:
        assert msgid.parse_msg_id(bad) is None, bad
    assert msgid.parse_msg_id_list("<a@b> junk <c@d>\t<a@b> <=?x?q?y?=@z>") == ["a@b", "c@d"]


def test_a_hostile_message_id_is_dropped_from_a_reply_not_copied():
    # As the parser stores them: one token each (no whitespace), whatever else they hold.
    evil_ids = ["=?utf-8?q?x=0D=0AX-Injected:_1?=@evil.test", "x\x00@evil.test",
                "x@evil.test>.<MAIL", "x@evil.test\u2028Bcc:v@x.test", "a@b@evil.test",
                "=?utf-8?b?DQpYLUluamVjdGVkOiAx?=@evil.test", "x@[evil.test\\]"]
    for evil in evil_ids:
        msg = compose.build_message(
            from_name="Rita", from_addr="r@acme.test", to=[("", "a@x.test")], cc=[],
            subject="Re: hi", body_text="x", body_html=None, message_id="m@acme.test",
            date=datetime(2026, 1, 2, tzinfo=UTC), in_reply_to=evil,
            references=f"ok-1@x.test {evil} ok-2@x.test")
        raw = compose.flatten(msg)
        assert b"In-Reply-To" not in raw
        assert b"References: <ok-1@x.test> <ok-2@x.test>\r\n" in raw
        assert b"evil" not in raw and b"Injected" not in raw


def test_line_breaks_around_message_ids_never_reach_the_bytes():
    for evil in ["x@evil.test\r\nBcc: v@x.test", "x@evil.test\r\n.\r\nMAIL FROM:<a@b>"]:
        raw = compose.flatten(compose.build_message(
            from_name="Rita", from_addr="r@acme.test", to=[("", "a@x.test")], cc=[],
            subject="Re: hi", body_text="x", body_html=None, message_id="m@acme.test",
            date=datetime(2026, 1, 2, tzinfo=UTC), in_reply_to=evil, references=evil))
        assert b"In-Reply-To" not in raw
        assert b"Bcc" not in raw and b"MAIL FROM" not in raw and b"\r\n.\r\n" not in raw


def test_long_references_fold_between_ids_and_never_encode():
    ids = [f"{'p' * 60}-{n}@example.test" for n in range(30)]
    msg = compose.build_message(
        from_name="Rita", from_addr="r@acme.test", to=[("", "a@x.test")], cc=[],
        subject="Re: hi", body_text="x", body_html=None, message_id="m@acme.test",
        date=datetime(2026, 1, 2, tzinfo=UTC), in_reply_to=ids[-1], references=" ".join(ids))
    raw = compose.flatten(msg)
    refs = raw.split(b"References:", 1)[1].split(b"\r\n\r\n")[0]
    block = refs.split(b"\r\nMIME-Version")[0]
    assert b"=?" not in block
    kept = [i.encode() for i in ids[-msgid.MAX_REFERENCES:]]
    assert block.replace(b"\r\n", b"").split() == [b"<" + i + b">" for i in kept]


@pytest.mark.parametrize("body", ["a\x00b", "\x00", "line\r\nnul\x00here", "caf\u00e9\x00",
                                  "bell\x07", "esc\x1b[31m"])
def test_control_characters_in_bodies_are_sent_quoted_printable(body):
    msg = compose.build_message(
        from_name="Rita", from_addr="r@acme.test", to=[("", "a@x.test")], cc=[],
        subject="x", body_text=body, body_html=compose.formatted_html(body),
        message_id="m@acme.test", date=datetime(2026, 1, 2, tzinfo=UTC))
    raw = compose.flatten(msg)
    assert b"\x00" not in raw and b"\x07" not in raw and b"\x1b" not in raw
    assert b"Content-Transfer-Encoding: quoted-printable" in raw
    # Nothing is lost: the part decodes to what was written.
    assert msg.get_body(("plain",)).get_content().rstrip("\n") == body.replace("\r\n", "\n")
    prepared = compose.PreparedMessage("Rita", "r@acme.test").build(
        to=[("", "a@x.test")], subject="x", body_text=body, body_html=None,
        message_id="m@acme.test", date=datetime(2026, 1, 2, tzinfo=UTC))
    assert b"\x00" not in prepared and b"=00" in prepared or "\x00" not in body


def test_attachment_names_with_encoded_line_breaks_are_neutralised():
    name = "=?utf-8?q?x=0D=0AX-Injected:_1?=.pdf"
    msg = compose.build_message(
        from_name="Rita", from_addr="r@acme.test", to=[("", "a@x.test")], cc=[],
        subject="x", body_text="x", body_html=None, message_id="m@acme.test",
        date=datetime(2026, 1, 2, tzinfo=UTC),
        attachments=[compose.Attachment(name, "application/pdf", b"%PDF-1.4")])
    raw = compose.flatten(msg)
    assert b"\r\nX-Injected" not in raw
    assert msg.get_payload()[1].get_filename() == "x_X-Injected_ 1.pdf"


def test_the_python_floor_is_declared_and_warned_about(caplog):
    import logging
    import tomllib
    from pathlib import Path

    from plugin.mail import interpreter

    pyproject = Path(__file__).parents[2].joinpath("pyproject.toml").read_text()
    assert interpreter.RECOMMENDED_PYTHON in pyproject  # documented where pip looks
    # Still satisfiable here, so that `make install` works on this 3.11.7.
    assert tomllib.loads(pyproject)["project"]["requires-python"] == ">=3.11"
    for version, fixed in [((3, 11, 7), False), ((3, 11, 9), False), ((3, 11, 10), True),
                           ((3, 12, 4), False), ((3, 12, 5), True), ((3, 13, 0), True),
                           ((3, 14, 1), True)]:
        assert interpreter.has_header_fix(version) is fixed, version
    with caplog.at_level(logging.WARNING):
        warned = interpreter.warn_if_unpatched(logging.getLogger("t"))
    assert warned is (not interpreter.has_header_fix())
    assert ("CVE-2024-6923" in caplog.text) is warned
    if sys.version_info[:3] == (3, 11, 7):
        assert warned  # the Python the tests above prove the add-on safe on
