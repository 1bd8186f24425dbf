"""POP3 session against the lab Dovecot: UIDL, RETR, DELE committed only by QUIT."""

from __future__ import annotations

import pytest

from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.pop3 import Pop3Session
from tests.lab.servers import HOST, LAB_ALLOWED


@pytest.fixture
def pop_settings(dovecot, mail_user):
    return ServerSettings(HOST, dovecot.pop3s, "ssl", mail_user.login, mail_user.password)


@pytest.fixture
def policy(dovecot):
    return ConnectionPolicy(allowed_hosts=frozenset({LAB_ALLOWED}), ca_file=dovecot.ca_file,
                            timeout=5)


def test_uidl_and_retr_return_exact_messages(dovecot, mail_user, pop_settings, policy):
    dotted = b"Subject: dots\r\n\r\n.\r\n..two\r\n.\r\n" + b"y" * 5000 + b"\r\n"
    dovecot.deliver(mail_user, dotted)
    dovecot.fill(mail_user, 2)
    with Pop3Session(pop_settings, policy) as pop:
        listing = pop.uidl()
        assert [n for n, _ in listing] == [1, 2, 3]
        assert len({uid for _, uid in listing}) == 3
        raws = [pop.retr(n) for n, _ in listing]
        assert sum(pop.sizes().values()) == sum(len(r) for r in raws)
    assert dotted in raws


def test_deletions_commit_on_quit_only(dovecot, mail_user, pop_settings, policy):
    dovecot.fill(mail_user, 3)
    with pytest.raises(RuntimeError), Pop3Session(pop_settings, policy) as pop:
        pop.dele(1)
        raise RuntimeError("import failed half-way")
    with Pop3Session(pop_settings, policy) as pop:
        assert pop.stat()[0] == 3  # the failed session's DELE was rolled back
        pop.dele(1)
    with Pop3Session(pop_settings, policy) as pop:
        assert pop.stat()[0] == 2


def test_stls_session_reads_the_same_mailbox(dovecot, mail_user, policy):
    dovecot.fill(mail_user, 1)
    settings = ServerSettings(HOST, dovecot.pop3, "starttls", mail_user.login, mail_user.password)
    with Pop3Session(settings, policy) as pop:
        assert len(pop.uidl()) == 1
