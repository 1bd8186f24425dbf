"""The parser's identity and slice facts: the content digest ignores transport headers,
line endings and folding but not what a reader sees; each attachment's slice of the
raw bytes decodes to exactly what re-parsing the whole message gives."""
from __future__ import annotations

import os
from email.message import EmailMessage

from plugin.mail.parse import content_digest, decode_slice, find_part, parse_message

BASE = (b"From: HR <hr@employer.example>\r\nTo: me@example.test\r\nSubject: Offer\r\n"
        b"Message-ID: <m1@employer.example>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
        b"\r\nThe offer.\r\n")


def test_digest_ignores_transport_but_not_content():
    same = [
        b"Received: from a by b; Tue, 01 Dec 2026 10:00:01 +0000\r\nReturn-Path: <x@y>\r\n"
        b"Delivered-To: me@example.test\r\nDKIM-Signature: v=1; b=abc\r\n" + BASE,
        BASE.replace(b"\r\n", b"\n"),
        BASE.replace(b"Subject: Offer", b"Subject:\r\n  Offer"),
        BASE + b"\r\n\r\n",
    ]
    for raw in same:
        assert content_digest(raw) == content_digest(BASE), raw
    other = [
        BASE.replace(b"The offer.", b"Wire the deposit."),
        BASE.replace(b"Subject: Offer", b"Subject: Offer!"),
        BASE.replace(b"hr@employer.example>", b"hr@employer-pay.example>"),
        BASE.replace(b"\r\n\r\n", b"\r\nReply-To: evil@example.test\r\n\r\n", 1),
    ]
    for raw in other:
        assert content_digest(raw) != content_digest(BASE), raw
    assert parse_message(BASE).content_digest == content_digest(BASE)


def test_attachment_slices_decode_like_the_whole_message():
    m = EmailMessage()
    m["From"], m["Subject"], m["Message-ID"] = "a@example.test", "Files", "<f@example.test>"
    m.set_content("text")
    m.add_alternative("<p>html</p>", subtype="html")
    m.add_attachment(os.urandom(50_000), maintype="application", subtype="pdf",
                     filename="a.pdf")
    m.add_attachment("caf\u00e9 line\nnext\n", subtype="plain", filename="b.txt",
                     cte="quoted-printable")
    m.add_attachment("plain ascii\n", subtype="csv", filename="c.csv", cte="7bit")
    raw = bytes(m)
    parsed = parse_message(raw)
    assert len(parsed.attachments) == 3
    for a in parsed.attachments:
        assert a.offset is not None and a.encoding
        data = decode_slice(raw[a.offset:a.offset + a.length], a.encoding)
        assert data == find_part(raw, a.part_index)[2], a.filename
