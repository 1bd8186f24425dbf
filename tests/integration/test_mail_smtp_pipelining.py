"""SMTP PIPELINING (RFC 2920): the envelope in one write where the server offers it,
with every answer read and every failure reported as without it."""

from __future__ import annotations

import pytest

from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import MailError
from plugin.mail.smtp import SmtpSession
from tests.lab.servers import HOST, LAB_ALLOWED
from tests.lab.smtp import SmtpLab

RAW = b"From: recruiter@example.test\r\nSubject: Interview\r\n\r\nHello\r\n.hidden dot\r\n"


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def lab(request, dovecot):
    server = SmtpLab(dovecot, with_plain=False, pipelining=request.param).start()
    yield server
    server.stop()


@pytest.fixture
def session(lab, dovecot, mail_user):
    policy = ConnectionPolicy(allowed_hosts=frozenset({LAB_ALLOWED}), ca_file=dovecot.ca_file,
                              timeout=5)
    settings = ServerSettings(HOST, lab.tls_port, "ssl", mail_user.login, mail_user.password)
    with SmtpSession(settings, policy, local_hostname="ats.example.test") as smtp:
        writes = []
        real = smtp._smtp.send
        smtp._smtp.send = lambda data: writes.append(data) or real(data)
        smtp.writes = writes
        yield smtp


def test_a_message_goes_out_in_two_writes_when_the_server_pipelines(session, lab, mail_user):
    assert session.send_bytes("recruiter@example.test", [mail_user.email], RAW) == {}
    [got] = lab.wait_for(1)
    assert got.rcpt_tos == (mail_user.email,) and b"\r\n.hidden dot\r\n" in got.data
    # envelope (MAIL, RCPT, DATA) + message; without PIPELINING each command alone
    assert len(session.writes) == (2 if lab.pipelining else 4)


def test_partly_refused_recipients_are_reported_and_the_rest_get_it(session, lab, mail_user):
    refused = session.send_bytes("recruiter@example.test",
                                 ["reject-1@example.test", mail_user.email], RAW)
    assert refused == {"reject-1@example.test": 550}
    assert lab.wait_for(1)[0].rcpt_tos == (mail_user.email,)


def test_all_refused_recipients_raise_and_the_connection_stays_usable(session, lab, mail_user):
    with pytest.raises(MailError) as info:
        session.send_bytes("recruiter@example.test", ["reject-1@example.test",
                                                      "reject-2@example.test"], RAW)
    assert info.value.kind == "recipient_refused" and info.value.code == 550
    assert session.send_bytes("recruiter@example.test", [mail_user.email], RAW) == {}
    assert len(lab.wait_for(1)) == 1  # the refused message was never delivered


def test_a_server_that_takes_data_for_no_accepted_recipient_gets_no_message(
        session, lab, mail_user):
    # 252 is not "accepted" for the client; the lab still counts the recipient, so a
    # pipelined DATA gets 354. Ending it with a dot would deliver: the line is dropped.
    with pytest.raises(MailError) as info:
        session.send_bytes("recruiter@example.test", ["maybe-1@example.test"], RAW)
    assert info.value.kind == "recipient_refused" and info.value.code == 252
    assert session.send_bytes("recruiter@example.test", [mail_user.email], RAW) == {}
    [got] = lab.wait_for(1)
    assert got.rcpt_tos == (mail_user.email,)


def test_a_refused_sender_raises_and_the_connection_stays_usable(session, lab, mail_user):
    with pytest.raises(MailError) as info:
        session.send_bytes("reject-sender@example.test", [mail_user.email], RAW)
    assert info.value.kind == "sender_refused" and info.value.code == 553
    assert session.send_bytes("recruiter@example.test", [mail_user.email], RAW) == {}
    [got] = lab.wait_for(1)
    assert got.mail_from == "recruiter@example.test"


def test_an_envelope_hook_that_fails_sends_nothing_and_keeps_the_connection(
        session, lab, mail_user):
    class Stop(Exception):
        pass

    def refuse() -> None:
        raise Stop

    with pytest.raises(Stop):
        session.send_bytes("recruiter@example.test", [mail_user.email], RAW, on_envelope=refuse)
    assert session.send_bytes("recruiter@example.test", [mail_user.email], RAW) == {}
    [got] = lab.wait_for(1)  # only the second one arrived
    assert b"Hello" in got.data
