"""Bidirectional and invisible characters are neutralised in attachment and sender names,
wherever they are parsed (stored rows, downloads, outgoing attachments)."""

from __future__ import annotations

import pytest

from plugin.mail.invisible import neutralise, safe_display_name
from plugin.mail.parse import find_part, parse_message, safe_filename
from plugin.mail import build as compose

TRICKS = ["\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068",
          "\u2069", "\u200e", "\u200f", "\u061c", "\u200b", "\u2060", "\u2063", "\ufeff",
          "\u00ad", "\U000e0041", "\u3164", "\u115f", "\u180e"]


@pytest.mark.parametrize("trick", TRICKS)
def test_filenames_lose_every_reordering_or_invisible_character(trick):
    name = safe_filename(f"invoice{trick}fdp.exe")
    assert trick not in name
    assert name == "invoice_fdp.exe"


def test_the_classic_rlo_attachment_shows_its_real_extension():
    assert safe_filename("invoice\u202efdp.exe").endswith(".exe")
    assert safe_filename("=?utf-8?q?invoice=E2=80=AEfdp.exe?=") == "invoice_fdp.exe"
    assert compose.safe_attachment_name("cv\u2067gpj.scr") == "cv_gpj.scr"


@pytest.mark.parametrize("trick", TRICKS)
def test_display_names_lose_them(trick):
    assert safe_display_name(f"Pay{trick}Pal Support") == "PayPal Support"


def test_joiners_and_ordinary_text_stay():
    for text in ["Zoë Brontë", "محمد", "می\u200cخواهم", "👨\u200d👩\u200d👧", "李小龍"]:
        assert neutralise(text) == text
        assert safe_display_name(text) == text


def test_parsed_message_names_are_neutralised():
    raw = (b"From: =?utf-8?q?Bank=E2=80=AE_Support?= <bank@evil.test>\r\n"
           b"To: =?utf-8?q?Ann=E2=81=A6?= <ann@x.test>\r\nSubject: x\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
           b"--b\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Disposition: attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nTVo=\r\n--b--\r\n")
    parsed = parse_message(raw)
    assert parsed.from_name == "Bank Support"
    assert parsed.to == [("Ann", "ann@x.test")]
    (att,) = parsed.attachments
    assert att.filename == "invoice_fdp.exe"
    found = [find_part(raw, i) for i in range(4)]
    assert ("application/octet-stream", "invoice_fdp.exe", b"MZ") in found
