"""The parser turns any bytes into something storable and never raises."""
from __future__ import annotations

import email
import hashlib
import os
from pathlib import Path

import pytest

from plugin.blobs import BlobStore
from plugin.mail.parse import find_part, parse_message, safe_filename, walk_parts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CPYTHON_DATA = Path(email.__file__).parent.parent / "test" / "test_email" / "data"


def cpython_messages() -> list[Path]:
    if not CPYTHON_DATA.is_dir():  # fail loudly: a silent skip would test nothing
        raise RuntimeError(f"CPython's email test data is missing at {CPYTHON_DATA}")
    return sorted(p for p in CPYTHON_DATA.iterdir() if p.is_file())


def big_attachment(mb: int = 25) -> bytes:
    chunk = (b"A" * 76 + b"\r\n") * (mb * 1024 * 1024 // 57 + 1)
    return (b"From: big@example.test\r\nSubject: big CV\r\nMessage-ID: <big@example.test>\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain"
            b"\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/pdf\r\n"
            b"Content-Disposition: attachment; filename=cv.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + chunk + b"--b--\r\n")


def deep_nesting(levels: int = 150) -> bytes:
    head = b"From: deep@example.test\r\nSubject: deep\r\nMessage-ID: <deep@example.test>\r\n"
    parts, tail = [], []
    for i in range(levels):
        parts.append(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i))
        tail.insert(0, b"\r\n--b%d--\r\n" % i)
    return head + b"".join(parts) + b"Content-Type: text/plain\r\n\r\nbottom" + b"".join(tail)


def test_cpython_email_test_data_is_there():
    assert len(cpython_messages()) > 40


@pytest.mark.parametrize("path", cpython_messages() + sorted(FIXTURES.glob("*.eml")),
                         ids=lambda p: p.name)
def test_every_sample_message_parses_into_storable_fields(path):
    raw = path.read_bytes()
    p = parse_message(raw)
    assert p.message_key and len(p.message_key) <= 255
    for text in (p.subject, p.from_name, p.from_addr, p.body_text, p.snippet, p.body_html or ""):
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates: PostgreSQL would refuse them
    assert len(p.snippet) <= 200 and p.size == len(raw)
    parts = [i for i, _d, _p in walk_parts(email.message_from_bytes(raw))]
    assert all(a.part_index in parts for a in p.attachments)


def test_message_without_message_id_is_keyed_by_its_content_hash():
    raw = (FIXTURES / "no_message_id.eml").read_bytes()
    p = parse_message(raw)
    assert p.message_key == "sha256:" + p.sha256 and p.message_id is None
    assert p.date is None and p.body_text.startswith("There is no Message-ID")


def test_bad_charsets_and_broken_encoded_words_are_read_as_far_as_possible():
    p = parse_message((FIXTURES / "bad_charsets.eml").read_bytes())
    assert p.message_key == "badcharset@example.test"
    assert "café" in p.subject and p.body_text.startswith("Caf")


def test_eight_bit_headers_are_decoded_as_utf8_or_windows_1252():
    p = parse_message((FIXTURES / "eight_bit_headers.eml").read_bytes())
    assert p.from_name.startswith("Jürgen") and "été" in p.subject


def test_nested_attachments_are_listed_with_safe_names_and_walk_indexes():
    raw = (FIXTURES / "nested_attachments.eml").read_bytes()
    p = parse_message(raw)
    assert p.body_text.strip() == "See my CV" and "<b>CV</b>" in p.body_html
    names = {a.filename: a for a in p.attachments}
    assert set(names) == {"cv.pdf", "fwd.eml", "Phöto.png", "attachment.txt"}
    assert names["Phöto.png"].inline and names["Phöto.png"].content_id == "img1@x"
    assert names["cv.pdf"].size == 320
    ctype, name, data = find_part(raw, names["cv.pdf"].part_index)
    assert (ctype, name, len(data)) == ("application/pdf", "cv.pdf", 320)


def test_no_boundary_multipart_keeps_its_headers_and_lists_no_attachment():
    p = parse_message((FIXTURES / "no_boundary.eml").read_bytes())
    assert p.message_key == "noboundary@example.test"
    assert (p.subject, p.from_name, p.from_addr) == ("no boundary", "Someone",
                                                     "someone@example.test")
    assert p.attachments == [] and p.body_html is None


def test_25_mb_attachment_is_listed_without_decoding_it():
    raw = big_attachment()
    p = parse_message(raw)
    assert p.body_text.strip() == "see attached"
    (att,) = p.attachments
    assert att.filename == "cv.pdf" and att.size >= 25 * 1024 * 1024


def test_deep_nesting_keeps_its_headers_and_lists_no_attachment():
    for levels in (150, 1200):
        raw = deep_nesting(levels)
        p = parse_message(raw)
        assert p.message_key == "deep@example.test" and p.size == len(raw)
        assert (p.subject, p.from_addr) == ("deep", "deep@example.test")
        assert p.attachments == [] and "\x00" not in p.body_text


@pytest.mark.parametrize("name,expected", [
    ("../../etc/passwd", "passwd"), ("C:\\x\\cv.doc", "cv.doc"), ("", "attachment"),
    ("a\x00b\r\n.pdf", "a_b_.pdf"), ("...", "attachment")])
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


@pytest.mark.parametrize("raw", [b"", b"\x00\xff" * 100, os.urandom(4096)],
                         ids=["empty", "nul-and-ff", "random"])
def test_garbage_bytes_become_an_empty_message_keyed_by_its_hash(raw):
    p = parse_message(raw)
    assert p.message_id is None and p.message_key == "sha256:" + p.sha256
    assert p.sha256 == hashlib.sha256(raw).hexdigest() and p.size == len(raw)
    assert (p.subject, p.from_name, p.from_addr, p.attachments) == ("", "", "", [])
    assert "\x00" not in p.body_text and len(p.snippet) <= 200


def test_a_broken_encoded_word_is_kept_as_written():
    p = parse_message(b"Subject: =?utf-8?q?\r\n\r\n")
    assert p.subject == "=?utf-8?q?" and p.body_text == "" and p.attachments == []


def test_blob_store_is_content_addressed_and_idempotent(tmp_path):
    store = BlobStore(tmp_path)
    a = store.put(b"hello")
    assert store.put(b"hello") == a and store.get(a) == b"hello"
    assert store.path(a).relative_to(tmp_path).parts[:2] == (a[:2], a[2:4])
    assert not list((tmp_path / "tmp").iterdir())
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")
