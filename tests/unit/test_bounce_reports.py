"""Reading bounce reports: RFC 3464 fields per recipient, the non-standard formats, and
mail that only looks like one (never a report, never a crash)."""
from __future__ import annotations

import pytest

from plugin.sending.bounces import failures_in, looks_like_report
from tests.lab import bounces as reports

ORIGINAL = (b"From: Rita <rita@acme.test>\r\nTo: ann@cand.test\r\nSubject: Hi\r\n"
            b"Message-ID: <abc.1@acme.test>\r\n\r\nHello\r\n")


def test_bounce_dsn_gives_each_recipient_status_and_words():
    (hard,) = failures_in(reports.dsn(ORIGINAL, "rita@acme.test", "Ann@Cand.test", "failed",
                                      "5.1.1", "550 5.1.1 user unknown"))
    assert (hard.address, hard.status, hard.suppresses) == ("ann@cand.test", "5.1.1", True)
    assert hard.reason == "mailbox does not exist"
    (soft,) = failures_in(reports.dsn(ORIGINAL, "rita@acme.test", "ann@cand.test", "delayed",
                                      "4.2.2", "452 4.2.2 full"))
    assert not soft.permanent and not soft.suppresses
    (policy,) = failures_in(reports.dsn(ORIGINAL, "rita@acme.test", "ann@cand.test", "failed",
                                        "5.7.1", "550 5.7.1 spam"))
    assert policy.permanent and not policy.suppresses  # a policy refusal keeps the address


def test_bounce_formats_of_qmail_and_exim_are_read():
    (q,) = failures_in(reports.qmail(ORIGINAL, "rita@acme.test", "ann@cand.test"))
    assert q.address == "ann@cand.test" and q.status == "5.1.1"
    (e,) = failures_in(reports.exim(ORIGINAL, "rita@acme.test", "ann@cand.test"))
    assert e.address == "ann@cand.test" and e.permanent


@pytest.mark.parametrize("raw", [
    b"",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
    b"Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822\r\n"
    b"Action: failed\r\nStatus: 9.9.9.9\r\n\r\n--x--\r\n",
    b"Content-Type: message/delivery-status\r\n\r\n\x00\xff\xfe garbage",
    b"Subject: Undeliverable\r\n\r\n" + b"A" * 200_000,
])
def test_bounce_reports_that_are_malformed_never_crash(raw):
    for f in failures_in(raw):
        assert f.status is None or f.status[0] in "45"


def test_bounce_look_alike_from_a_candidate_is_not_read_as_a_report():
    assert not looks_like_report("ann@cand.test", "About the role: user unknown to me")
    assert looks_like_report("MAILER-DAEMON@mx.cand.test", "anything")
    assert looks_like_report("ann@cand.test", "Undeliverable: Hi")
