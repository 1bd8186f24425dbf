"""OAuth sign-in of the mail layer at the real lab servers: Dovecot (IMAP, POP3) and the
lab SMTP server, both checking each token at the lab provider's introspection endpoint."""

from __future__ import annotations

import logging
import secrets
from email.message import EmailMessage

import pytest

from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import SENTENCES, MailError
from plugin.mail.imap import ImapSession
from plugin.mail.pop3 import Pop3Session
from plugin.mail.probe import test_connection as probe
from plugin.mail.smtp import SmtpSession
from tests.lab.fixtures import mint_access_token
from tests.lab.servers import HOST, LAB_ALLOWED

REJECTED = SENTENCES["oauth_rejected"]


@pytest.fixture
def policy(dovecot) -> ConnectionPolicy:
    return ConnectionPolicy(allowed_hosts=frozenset({LAB_ALLOWED}), ca_file=dovecot.ca_file,
                            timeout=5)


@pytest.fixture(autouse=True)
def _debug_logs(caplog):
    caplog.set_level(logging.DEBUG)


def settings(port: int, user, token: str, security: str = "ssl") -> ServerSettings:
    return ServerSettings(HOST, port, security, user.email, "", access_token=token)


def assert_secret_nowhere(token: str, caplog, *things) -> None:
    """The token is in no captured log record and no exception text or repr."""
    assert token not in caplog.text
    for thing in things:
        assert token not in str(thing) and token not in repr(thing)


def login_lines(dovecot, user, wait: float = 3.0) -> list[str]:
    """Dovecot's login lines for ``user``; its log writer may lag the session by a moment
    on a busy machine, so wait up to ``wait`` seconds for the first one."""
    import time
    deadline = time.monotonic() + wait
    while True:
        lines = [line for line in dovecot.log_text().splitlines()
                 if f"Login: user=<{user.login}>" in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


class _OnlyOauthbearerImap(ImapSession):
    """A client view of a server that offers OAUTHBEARER and not XOAUTH2 (the real
    Dovecot offers both; hiding one from the client picks the other path)."""

    def _connect(self, addresses):
        imap = super()._connect(addresses)
        imap.capabilities = tuple(c for c in imap.capabilities if c != "AUTH=XOAUTH2")
        return imap


class _OnlyOauthbearerPop3(Pop3Session):
    def _connect(self, addresses):
        super()._connect(addresses)
        capa = self._pop.capa

        def without_xoauth2():
            caps = capa()
            caps["SASL"] = [m for m in caps.get("SASL", []) if m != "XOAUTH2"]
            return caps

        self._pop.capa = without_xoauth2


# ------------------------------------------------------------------------------ IMAP


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_imap_oauth_xoauth2_with_a_valid_token_signs_in(dovecot, oauth_lab, mail_user, policy,
                                                        caplog, security):
    dovecot.fill(mail_user, 2)
    token = mint_access_token(oauth_lab, mail_user)
    port = dovecot.imaps if security == "ssl" else dovecot.imap
    with ImapSession(settings(port, mail_user, token, security), policy) as imap:
        assert imap.status("INBOX").messages == 2
        assert "IMAP4REV1" in imap.capabilities
    assert any("method=XOAUTH2" in line for line in login_lines(dovecot, mail_user))
    assert_secret_nowhere(token, caplog)


def test_imap_oauth_uses_oauthbearer_when_the_server_offers_only_that(dovecot, oauth_lab,
                                                                       mail_user, policy, caplog):
    token = mint_access_token(oauth_lab, mail_user)
    with _OnlyOauthbearerImap(settings(dovecot.imaps, mail_user, token), policy) as imap:
        assert imap.status("INBOX").messages == 0
    lines = login_lines(dovecot, mail_user)
    assert lines and all("method=OAUTHBEARER" in line for line in lines)
    assert_secret_nowhere(token, caplog)


def test_imap_oauth_token_of_real_size_fits_sasl_ir(dovecot, oauth_lab, mail_user, policy):
    token = "ya29." + secrets.token_urlsafe(1500)  # Google/Microsoft tokens are 1-2.5 KB
    oauth_lab.mint_token(mail_user.email, access_token=token)
    with ImapSession(settings(dovecot.imaps, mail_user, token), policy) as imap:
        assert imap.status("INBOX").messages == 0


def _bad_tokens(oauth_lab, user) -> dict[str, str]:
    expired = mint_access_token(oauth_lab, user)
    oauth_lab.expire(expired)
    revoked = mint_access_token(oauth_lab, user)
    oauth_lab.revoke_grant(revoked)
    return {"expired": expired, "revoked": revoked, "garbage": "lab-at-" + "x" * 32}


@pytest.mark.parametrize("which", ["expired", "revoked", "garbage"])
@pytest.mark.parametrize("session_class", [ImapSession, _OnlyOauthbearerImap])
def test_imap_oauth_bad_token_fails_with_the_sign_in_again_sentence(
        dovecot, oauth_lab, mail_user, policy, caplog, which, session_class):
    token = _bad_tokens(oauth_lab, mail_user)[which]
    with pytest.raises(MailError) as info:
        with session_class(settings(dovecot.imaps, mail_user, token), policy):
            pass
    assert info.value.kind == "oauth_rejected"
    assert str(info.value) == REJECTED and "Sign in again" in REJECTED
    assert not login_lines(dovecot, mail_user, wait=0)
    assert_secret_nowhere(token, caplog, info.value)


def test_imap_oauth_token_of_another_account_is_refused(dovecot, oauth_lab, mail_user, policy):
    other = dovecot.add_user(f"other{secrets.token_hex(3)}", "pw")
    token = mint_access_token(oauth_lab, other)
    with pytest.raises(MailError) as info:
        with ImapSession(settings(dovecot.imaps, mail_user, token), policy):
            pass
    assert info.value.kind == "oauth_rejected"
    assert not login_lines(dovecot, mail_user, wait=0)


def test_imap_oauth_token_with_a_command_injection_never_reaches_the_server(
        dovecot, oauth_lab, mail_user, policy, caplog):
    token = "abc\r\nA1 LOGIN " + mail_user.login + " " + mail_user.password
    with pytest.raises(MailError) as info:
        with ImapSession(settings(dovecot.imaps, mail_user, token), policy):
            pass
    assert info.value.kind == "protocol"
    assert not login_lines(dovecot, mail_user, wait=0)
    assert_secret_nowhere(mail_user.password, caplog, info.value)


def test_imap_oauth_refuses_to_send_a_token_in_plaintext(dovecot, oauth_lab, mail_user, policy,
                                                         caplog):
    token = mint_access_token(oauth_lab, mail_user)
    with pytest.raises(MailError) as info:
        with ImapSession(settings(dovecot.imap, mail_user, token, "none"), policy):
            pass
    assert info.value.kind == "oauth_tls_required"
    assert not login_lines(dovecot, mail_user, wait=0)
    assert_secret_nowhere(token, caplog, info.value)


def test_password_users_still_sign_in_next_to_oauth(dovecot, mail_user, policy):
    plain = ServerSettings(HOST, dovecot.imaps, "ssl", mail_user.email, mail_user.password)
    with ImapSession(plain, policy) as imap:
        assert imap.status("INBOX").messages == 0
    # ...and a password is never taken as a token, nor a token as a password.
    as_token = ServerSettings(HOST, dovecot.imaps, "ssl", mail_user.email, "",
                              access_token=mail_user.password)
    with pytest.raises(MailError, match="Sign in again"):
        with ImapSession(as_token, policy):
            pass


# ------------------------------------------------------------------------------ POP3


@pytest.mark.parametrize("session_class", [Pop3Session, _OnlyOauthbearerPop3])
def test_pop3_oauth_with_a_valid_token_signs_in(dovecot, oauth_lab, mail_user, policy, caplog,
                                                session_class):
    dovecot.fill(mail_user, 3)
    token = mint_access_token(oauth_lab, mail_user)
    with session_class(settings(dovecot.pop3s, mail_user, token), policy) as pop:
        assert pop.stat()[0] == 3
    want = "XOAUTH2" if session_class is Pop3Session else "OAUTHBEARER"
    assert any(f"method={want}" in line for line in login_lines(dovecot, mail_user))
    assert_secret_nowhere(token, caplog)


def test_pop3_oauth_long_token_waits_for_the_go_ahead(dovecot, oauth_lab, mail_user, policy):
    """RFC 5034: an AUTH line over 255 octets sends the response after an empty challenge."""
    token = "EwB" + secrets.token_urlsafe(1800)
    oauth_lab.mint_token(mail_user.email, access_token=token)
    with Pop3Session(settings(dovecot.pop3, mail_user, token, "starttls"), policy) as pop:
        assert pop.stat()[0] == 0


@pytest.mark.parametrize("which", ["expired", "revoked", "garbage"])
@pytest.mark.parametrize("session_class", [Pop3Session, _OnlyOauthbearerPop3])
def test_pop3_oauth_bad_token_fails_with_the_sign_in_again_sentence(
        dovecot, oauth_lab, mail_user, policy, caplog, which, session_class):
    token = _bad_tokens(oauth_lab, mail_user)[which]
    with pytest.raises(MailError) as info:
        with session_class(settings(dovecot.pop3s, mail_user, token), policy):
            pass
    assert info.value.kind == "oauth_rejected" and str(info.value) == REJECTED
    assert not login_lines(dovecot, mail_user, wait=0)
    assert_secret_nowhere(token, caplog, info.value)


# ------------------------------------------------------------------------------ SMTP


def _message(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "recruiter@example.test", to, "Interview"
    msg.set_content("Hello")
    return msg


@pytest.mark.parametrize("port_kind", ["tls_port", "starttls_port"])
def test_smtp_oauth_xoauth2_send_is_delivered(dovecot, oauth_lab, smtp_lab, mail_user, policy,
                                              caplog, port_kind):
    smtp_lab.clear()
    token = mint_access_token(oauth_lab, mail_user)
    security = "ssl" if port_kind == "tls_port" else "starttls"
    with SmtpSession(settings(getattr(smtp_lab, port_kind), mail_user, token, security),
                     policy) as smtp:
        assert smtp.send(mail_user.email, [mail_user.email], _message(mail_user.email)) == {}
    (received,) = smtp_lab.wait_for(1)
    assert received.login == mail_user.email
    assert dovecot.list_messages(mail_user)
    assert_secret_nowhere(token, caplog)


@pytest.mark.parametrize("which", ["expired", "revoked", "garbage"])
def test_smtp_oauth_bad_token_gets_the_challenge_then_535_as_a_sentence(
        dovecot, oauth_lab, smtp_lab, mail_user, policy, caplog, which):
    token = _bad_tokens(oauth_lab, mail_user)[which]
    before = smtp_lab.oauth_failures
    with pytest.raises(MailError) as info:
        with SmtpSession(settings(smtp_lab.tls_port, mail_user, token), policy):
            pass
    assert info.value.kind == "oauth_rejected" and info.value.code == 535
    assert str(info.value) == REJECTED
    assert smtp_lab.oauth_failures == before + 1
    assert_secret_nowhere(token, caplog, info.value)


def test_smtp_oauth_unavailable_where_the_server_offers_no_oauth(dovecot, oauth_lab, smtp_lab,
                                                                 mail_user, policy):
    token = mint_access_token(oauth_lab, mail_user)
    with pytest.raises(MailError) as info:  # the plain port offers no AUTH at all
        with SmtpSession(settings(smtp_lab.plain_port, mail_user, token, "starttls"), policy):
            pass
    assert info.value.kind == "starttls_missing"


# ----------------------------------------------------------------------------- probe


def test_connection_test_oauth_passes_and_reports_a_withdrawn_sign_in(dovecot, oauth_lab,
                                                                      smtp_lab, mail_user,
                                                                      policy, caplog):
    token = mint_access_token(oauth_lab, mail_user)
    result = probe(settings(dovecot.imaps, mail_user, token), "imap",
                   settings(smtp_lab.tls_port, mail_user, token), True, policy)
    assert result.ok
    oauth_lab.revoke_grant(token)
    result = probe(settings(dovecot.pop3s, mail_user, token), "pop3",
                   settings(smtp_lab.tls_port, mail_user, token), True, policy)
    assert result.incoming_error.kind == result.outgoing_error.kind == "oauth_rejected"
    assert_secret_nowhere(token, caplog, result)
