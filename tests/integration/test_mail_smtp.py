"""SMTP session against the lab submission servers."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import MailError
from plugin.mail.smtp import SmtpSession
from tests.lab.servers import HOST, LAB_ALLOWED


@pytest.fixture
def smtp(dovecot, smtp_lab, mail_user):
    smtp_lab.clear()
    policy = ConnectionPolicy(allowed_hosts=frozenset({LAB_ALLOWED}), ca_file=dovecot.ca_file,
                              timeout=5)
    settings = ServerSettings(
        HOST, smtp_lab.starttls_port, "starttls", mail_user.login, mail_user.password
    )
    with SmtpSession(settings, policy, local_hostname="ats.example.test") as session:
        yield session


def message(to: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "recruiter@example.test"
    msg["To"] = to
    msg["Subject"] = "Interview"
    msg.set_content(body)
    return msg


def test_one_connection_sends_many_messages(smtp, smtp_lab, mail_user):
    for i in range(5):
        assert (
            smtp.send(
                "recruiter@example.test", [mail_user.email], message(mail_user.email, f"Hello {i}")
            )
            == {}
        )
    received = smtp_lab.wait_for(5)
    assert {r.port for r in received} == {smtp_lab.starttls_port}
    assert all(r.login == mail_user.login for r in received)


def test_lines_starting_with_a_dot_arrive_intact(smtp, smtp_lab, mail_user):
    body = "first\n.\n..double\n.end\n"
    smtp.send("recruiter@example.test", [mail_user.email], message(mail_user.email, body))
    [received] = smtp_lab.wait_for(1)
    assert b"\r\n.\r\n..double\r\n.end\r\n" in received.data


def test_raw_bytes_get_crlf_line_endings(smtp, smtp_lab, mail_user):
    raw = b"Subject: raw\nFrom: recruiter@example.test\n\nline one\n.\nline two\n"
    smtp.send("recruiter@example.test", [mail_user.email], raw)
    [received] = smtp_lab.wait_for(1)
    assert b"\n" not in received.data.replace(b"\r\n", b"")
    assert b"line one\r\n.\r\nline two" in received.data


def test_partly_refused_recipients_are_reported(smtp, smtp_lab, mail_user):
    refused = smtp.send(
        "recruiter@example.test",
        [mail_user.email, "reject-me@example.test"],
        message(mail_user.email, "hi"),
    )
    assert refused == {"reject-me@example.test": 550}
    assert smtp_lab.wait_for(1)[0].rcpt_tos == (mail_user.email,)


def test_all_refused_recipients_raise_and_the_connection_stays_usable(smtp, smtp_lab, mail_user):
    with pytest.raises(MailError) as info:
        smtp.send(
            "recruiter@example.test",
            ["reject-a@example.test"],
            message("reject-a@example.test", "hi"),
        )
    assert info.value.kind == "recipient_refused" and info.value.code == 550
    assert (
        smtp.send("recruiter@example.test", [mail_user.email], message(mail_user.email, "after"))
        == {}
    )


def test_oversized_message_is_too_large(smtp, mail_user):
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 34_000  # > 32 MiB SIZE
    with pytest.raises(MailError) as info:
        smtp.send("recruiter@example.test", [mail_user.email], big)
    assert info.value.kind == "too_large"
