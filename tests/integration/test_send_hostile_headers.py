"""Hostile header values through compose, reply and bulk, with the bytes captured at the
lab SMTP server, on this Python (3.11.7: no CVE-2024-6923 fix). Each value is either
refused with a sentence (nothing reaches the server) or sent with clean bytes: CRLF
only, no NUL, no field the add-on does not write, no early end of DATA."""
from __future__ import annotations

import base64
import json
import re

import pytest
from sqlalchemy.orm import Session

from plugin.mail.parse import parse_message
from plugin.models import Message
from tests.integration.send_helpers import (
    assert_compose_refused,
    form,
    header,
    lab_user,
    make_sender,
    outbound_rows,
    wait_until,
)

INJECTED = "a\r\nX-Injected: 1"


def _b(text: str, charset: str = "utf-8") -> str:
    return base64.b64encode(text.encode(charset)).decode()


#: encoded CR/LF/NUL in every encoding: q, b, whitespace inside, charsets, folded, nested
HOSTILE = [
    "=?utf-8?q?a=0D=0AX-Injected:_1?=",
    "=?UTF-8?Q?a=0d=0aBcc:_victim@example.test?=",
    "=?utf-8?q?a=0D=0AX-Injected:_1 ?=",
    "=?utf-8?q?a =0A X-Injected: 1?=",
    f"=?utf-8?b?{_b(INJECTED)}?=",
    f"=?utf-8?B?{_b(INJECTED)[:6]} {_b(INJECTED)[6:]}?=",
    f"=?iso-8859-1?b?{_b(INJECTED, 'latin-1')}?=",
    f"=?utf-16?b?{_b(INJECTED, 'utf-16')}?=",
    "=?x-unknown?q?a=0AX-Injected:_1?=",
    "=?utf-8?q?a=00b?=",
    "=?utf-8?q?a=0D?= =?utf-8?q?=0AX-Injected:_1?=",
    "=?utf-8?b?4oCoWC1JbmplY3RlZDogMQ==?=",
    "=?utf-8?q?a=0D=0A.=0D=0AMAIL_FROM:<x@evil.test>?=",
    "Hi\r\n X-Injected: 1",
    "Hi\rX-Injected: 1",
    "Hi\x00",
]
#: fields the add-on writes on a composed message (List-* on bulk: one-click unsubscribe)
FIELDS = {b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"in-reply-to",
          b"references", b"mime-version", b"content-type", b"content-transfer-encoding",
          b"list-unsubscribe", b"list-unsubscribe-post"}


def assert_clean(raw: bytes) -> None:
    assert b"\x00" not in raw
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", raw)
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")
             if line[:1] not in (b" ", b"\t")]
    assert set(names) <= FIELDS and len(names) == len(set(names)), names
    assert not re.search(rb"^(x-injected|bcc|mail from)", raw, re.I | re.M)


@pytest.fixture
def rita(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    return make_sender(mini, dovecot, smtp_lab)


def test_compose_refuses_every_hostile_subject_and_display_name(rita, smtp_lab):
    cases = []
    for evil in HOSTILE:
        cases += [{"subject": evil}, {"to": f'"{evil}" <ok@example.test>'},
                  {"cc": f'"{evil}" <ok2@example.test>'}]
    assert_compose_refused(rita, smtp_lab, cases)


@pytest.mark.parametrize("evil", HOSTILE[:6] + HOSTILE[9:11])
def test_a_hostile_profile_name_is_refused_with_a_sentence(mini, dovecot, smtp_lab, evil):
    smtp_lab.clear()
    sender = make_sender(mini, dovecot, smtp_lab)
    sender.person.name = evil  # the sender's own profile name, as the host gives it
    resp = sender.client.post("/integrated-email/compose", data=form(
        to="ok@example.test", subject="Hello", body="x"))
    assert resp.status_code == 422
    assert "must be on one line" in resp.get_data(as_text=True)
    assert smtp_lab.received == []


def test_legitimate_encoded_words_go_out_clean(rita, smtp_lab):
    resp = rita.client.post("/integrated-email/compose", data=form(
        to='"=?utf-8?q?Ren=C3=A9e?=" <ok@example.test>', subject="=?utf-8?q?Caf=C3=A9?= ok",
        body="bell \x07 inside, bare\rcr and\nlf\n.\n"))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    raw = smtp_lab.wait_for(1)[0].data
    assert_clean(raw)
    assert b"=07" in raw and b"\x07" not in raw  # control characters go quoted-printable
    # The "." line was stuffed on the wire (the server unstuffed it): DATA did not end there.
    assert raw.endswith(b"bare\r\ncr and\r\nlf\r\n.\r\n")
    assert len(smtp_lab.received) == 1


HOSTILE_IDS = ["=?utf-8?q?x=0D=0AX-Injected:_1?=@evil.test",
               "=?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLnRlc3Q=?=@evil.test",
               "x=?utf-8?q?=00?=@evil.test", "x@evil.test=?utf-8?q?=0D=0A.=0D=0A?="]


@pytest.mark.parametrize("evil", HOSTILE_IDS)
def test_reply_to_an_outsiders_crafted_message_id_drops_it(rita, dovecot, smtp_lab, evil):
    cand = lab_user(dovecot, "cand")
    incoming = (f"From: Outsider <{cand.email}>\r\nTo: {rita.user.email}\r\n"
                f"Subject: Application\r\nMessage-ID: <{evil}>\r\n"
                f"References: <root@example.test> <{evil}>\r\n\r\nHello\r\n").encode()
    parsed = parse_message(incoming)
    with Session(rita.addon.engine) as s:
        original = Message(mailbox_id=rita.mailbox_id, message_key=parsed.message_key,
                           message_id_header=parsed.message_id, references=parsed.references,
                           subject=parsed.subject, from_addr=parsed.from_addr,
                           from_name=parsed.from_name, to_addrs=json.dumps([]),
                           body_text=parsed.body_text, blob_sha256="0" * 64)
        s.add(original)
        s.commit()
        mid = original.id
    resp = rita.client.post("/integrated-email/compose", data=form(
        to=cand.email, subject="Re: Application", body="Thanks", source=str(mid), mode="reply"))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    raw = smtp_lab.wait_for(1)[0].data
    assert_clean(raw)
    assert header(raw, "In-Reply-To") is None
    assert header(raw, "References") == "<root@example.test>"
    assert b"evil" not in raw


def test_a_nul_in_the_body_is_refused_with_a_sentence(rita, smtp_lab):
    for body in ["nul \x00 inside", "\x00", "signature\n--\nRita\x00"]:
        for formatted in ("", "on"):
            resp = rita.client.post("/integrated-email/compose", data=form(
                to="ok@example.test", subject="Hello", body=body, formatted=formatted))
            assert resp.status_code == 422
            assert "invisible NUL character" in resp.get_data(as_text=True)
    assert outbound_rows(rita.addon) == [] and smtp_lab.received == []


def test_bulk_with_hostile_merge_fields_sends_only_clean_bytes(rita, smtp_lab):
    recs = [rita.host.add_record("candidate", evil, "Last", f"c{i}@candidates.test")
            for i, evil in enumerate(HOSTILE[:8])]
    recs.append(rita.host.add_record("candidate", "Good", "Person", "good@candidates.test"))
    ids = [str(r.num) for r in recs]
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids, subject="Hi {{ first_name }}",
        body="Dear {{ first_name }},\n.\nbell\x07 here", signature="Rita"))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    wait_until(lambda: 'data-state="done"' in rita.client.get(
        f"/integrated-email/bulk/{job_id}/progress",
        headers={"HX-Request": "true"}).get_data(as_text=True))
    got = smtp_lab.wait_for(1)
    for rec in got:
        assert_clean(rec.data)
    # Every hostile first name was refused; the good recipient got the message.
    assert [r.rcpt_tos for r in got] == [("good@candidates.test",)]
    assert b"=07" in got[0].data


def test_bulk_refuses_a_nul_in_the_template(rita, smtp_lab):
    rec = rita.host.add_record("candidate", "Ann", "Lee", "ann@candidates.test")
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=[str(rec.num)], subject="Hi", body="Dear\x00 {{ first_name }}",
        signature="Rita"))
    assert resp.status_code == 422
    assert "invisible NUL character" in resp.get_data(as_text=True)
    assert smtp_lab.received == []
