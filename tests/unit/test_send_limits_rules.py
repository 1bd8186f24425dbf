"""The throttling verdict on SMTP answers, the provider a mailbox sends through, and
the finish estimate of a paced bulk job."""
from __future__ import annotations

import smtplib
from datetime import UTC, datetime, timedelta

import pytest

from plugin.mail.errors import THROTTLED, classify, is_throttling
from plugin.sending import limits


@pytest.mark.parametrize("code, text", [
    (421, b"4.7.0 Try again later"),
    (421, b"4.4.2 Message submission rate for this client has exceeded the configured limit"),
    (451, b"4.7.0 Temporary System Problem. Try again later"),
    (450, b"4.2.1 The user you are trying to contact is receiving mail at a rate that "
          b"prevents additional messages from being delivered"),
    (550, b"5.4.5 Daily user sending quota exceeded"),
    (554, b"5.7.1 Message rate limit exceeded for this sender"),
])
def test_throttle_answers_are_recognised(code, text):
    assert is_throttling(code, text)
    assert classify(smtplib.SMTPDataError(code, text)).kind == THROTTLED
    assert classify(smtplib.SMTPSenderRefused(code, text, "a@b.test")).kind == THROTTLED


@pytest.mark.parametrize("code, text", [
    (550, b"5.1.1 The email account that you tried to reach does not exist"),
    (550, b"5.7.1 Relaying denied"),
    (550, b"5.7.515 Access denied, sending domain does not meet the required authentication"),
    (552, b"5.3.4 Message size exceeds fixed maximum message size"),
    (250, b"2.0.0 OK"),
])
def test_refusals_that_are_no_throttle_are_not_taken_for_one(code, text):
    assert not is_throttling(code, text)
    assert classify(smtplib.SMTPDataError(code, text)).kind != THROTTLED


def test_throttle_on_every_recipient_is_throttling_on_some_is_not():
    all_slow = smtplib.SMTPRecipientsRefused({"a@x.test": (451, b"4.7.1 rate limited")})
    assert classify(all_slow).kind == THROTTLED
    mixed = smtplib.SMTPRecipientsRefused({"a@x.test": (451, b"4.7.1 rate limited"),
                                           "b@x.test": (550, b"5.1.1 no such user")})
    assert classify(mixed).kind != THROTTLED


@pytest.mark.parametrize("email, host, key", [
    ("rita@gmail.com", "smtp.gmail.com", "gmail"),
    ("rita@acme.example", "smtp.gmail.com", "google_workspace"),
    ("rita@outlook.com", "smtp.office365.com", "outlook_com"),
    ("rita@acme.example", "SMTP.Office365.com.", "microsoft_365"),
    ("rita@icloud.com", "smtp.mail.me.com", "icloud"),
    ("rita@acme.example", "mail.acme.example", "other"),
])
def test_provider_of_a_mailbox_for_paced_sending(email, host, key):
    assert limits.provider_key(email, host) == key


def test_paced_finish_estimate_spans_the_days_the_daily_cap_needs():
    stamp = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    # 800 at 30 a minute and 300 a day, 300 left today: today, tomorrow, and 200 after.
    reopens = stamp + timedelta(hours=20)
    end = limits.expected_finish(800, 30, 300, 300, reopens, stamp)
    assert end == reopens + timedelta(days=1) + timedelta(seconds=2) * 200
    assert limits.expected_finish(10, 30, 300, 300, reopens, stamp) == stamp + \
        timedelta(seconds=20)
    assert limits.expected_finish(10, 0, 0, 0, stamp, stamp) is None
