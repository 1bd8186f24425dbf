"""Header injection refused at the form; the bytes the SMTP server gets are clean:
CRLF only, and every leading dot stuffed (it arrives intact after unstuffing)."""
from __future__ import annotations

import re

import pytest

from tests.integration.send_helpers import (assert_compose_refused, form, make_sender)

INJECTIONS = ["Hi\r\nBcc: victim@example.test", "Hi\nX-Evil: 1", "Hi\rX-Evil: 1",
              "=?UTF-8?Q?Hi=0ABcc:_victim@example.test?=", "=?UTF-8?B?SGkKQmNjOiB2QGV4LnRlc3Q=?=",
              "Hi\u2028Bcc: v@example.test", "Hi\u2029x", "Hi\u0085x", "Hi\x00x"]


@pytest.fixture
def rita(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    return make_sender(mini, dovecot, smtp_lab)


@pytest.mark.parametrize("evil", INJECTIONS)
def test_line_breaks_in_headers_are_refused(rita, smtp_lab, evil):
    cases = [{"subject": evil}]
    for field in ("to", "cc", "bcc"):  # in a display name, and in the address itself
        cases += [{field: f'"{evil}" <ok@example.test>'}, {field: f"x{evil}@example.test"}]
    assert_compose_refused(rita, smtp_lab, cases)


def test_bytes_at_the_server_have_crlf_only_and_stuffed_dots(rita, smtp_lab):
    body = "line one\nbare lf\rbare cr\r\n.\n.leading dot\n..two dots\n. space\nend"
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="Ok Person <ok@example.test>", subject="Dots", body=body))
    assert resp.status_code == 302
    raw = smtp_lab.wait_for(1)[0].data
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", raw)
    text = raw.split(b"\r\n\r\n", 1)[1]
    # Unstuffed by the server, so intact only if each was stuffed on the wire; a bare
    # "." line unstuffed would have ended the message early.
    assert text == (b"line one\r\nbare lf\r\nbare cr\r\n.\r\n.leading dot\r\n..two dots\r\n"
                    b". space\r\nend\r\n")
    assert not re.search(rb"^bcc:", raw, re.IGNORECASE | re.MULTILINE)


def test_bcc_is_envelope_only(rita, smtp_lab):
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="a@example.test", bcc="hidden@example.test", subject="x", body="x"))
    assert resp.status_code == 302
    got = smtp_lab.wait_for(1)[0]
    assert set(got.rcpt_tos) == {"a@example.test", "hidden@example.test"}
    assert b"hidden@example.test" not in got.data
