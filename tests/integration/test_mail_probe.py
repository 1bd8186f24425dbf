"""Every connection failure kind, produced for real against lab servers.

Each case checks the kind, and that the user-facing sentence carries no server text.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Self

import pytest

from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import SENTENCES, MailError
from plugin.mail.imap import ImapSession
from plugin.mail.pop3 import Pop3Session
from plugin.mail.probe import test_connection as probe_connection
from plugin.mail.smtp import SmtpSession
from tests.lab.servers import HOST, LAB_ALLOWED, closed_port, free_port

BANNER_WORDS = (
    "Dovecot",
    "lab-smtp",
    "SECRET-BANNER",
    "wrong.example",
    "ESMTP",
    "Errno",
    "127.0.0.1",
)
TIMEOUT = 1.5


def assert_clean(error: MailError, kind: str) -> None:
    assert error.kind == kind, error
    assert error.sentence == SENTENCES[kind] == str(error)
    for word in BANNER_WORDS:
        assert word not in error.sentence


@pytest.fixture
def policy(dovecot) -> ConnectionPolicy:
    return ConnectionPolicy(
        allowed_hosts=frozenset({LAB_ALLOWED}), ca_file=dovecot.ca_file, timeout=TIMEOUT
    )


def settings(
    port: int, security: str, login: str = "nobody", password: str = "x", host: str = HOST
) -> ServerSettings:
    return ServerSettings(host, port, security, login, password)


class LineServer:
    """A scripted plain-text server: a greeting, then one canned answer per command.

    ``answer(line)`` returns the bytes to send back for a received line; every line is
    recorded so tests can prove no password was ever sent.
    """

    def __init__(self, greeting: bytes, answer, tls_context: ssl.SSLContext | None = None):
        self.greeting, self.answer, self.tls_context = greeting, answer, tls_context
        self.lines: list[bytes] = []
        self.port = free_port()
        self._sock = socket.create_server((HOST, self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self.tls_context is not None:
                conn = self.tls_context.wrap_socket(conn, server_side=True)
            conn.sendall(self.greeting)
            reader = conn.makefile("rb")
            for line in reader:
                self.lines.append(line)
                reply = self.answer(line)
                if reply is None:
                    break
                conn.sendall(reply)
        except OSError:
            pass
        finally:
            conn.close()


def imap_without_starttls(line: bytes) -> bytes | None:
    tag, _, rest = line.strip().partition(b" ")
    command = rest.split(b" ")[0].upper()
    if command == b"CAPABILITY":
        return b"* CAPABILITY IMAP4rev1 AUTH=PLAIN SECRET-BANNER\r\n" + tag + b" OK done\r\n"
    if command == b"LOGOUT":
        return b"* BYE SECRET-BANNER\r\n" + tag + b" OK bye\r\n"
    return tag + b" NO SECRET-BANNER\r\n"


def pop3_without_stls(line: bytes) -> bytes | None:
    command = line.strip().split(b" ")[0].upper()
    if command == b"CAPA":
        return b"+OK SECRET-BANNER\r\nUSER\r\nUIDL\r\n.\r\n"
    if command == b"QUIT":
        return None
    return b"-ERR SECRET-BANNER\r\n"


# --- successful sign-ins ------------------------------------------------------------


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_imap_signs_in_over_tls(dovecot, mail_user, policy, security):
    port = dovecot.imaps if security == "ssl" else dovecot.imap
    with ImapSession(settings(port, security, mail_user.email, mail_user.password), policy) as imap:
        assert "IMAP4REV1" in imap.capabilities
        assert imap.select("INBOX").exists == 0


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_pop3_signs_in_over_tls(dovecot, mail_user, policy, security):
    port = dovecot.pop3s if security == "ssl" else dovecot.pop3
    with Pop3Session(settings(port, security, mail_user.login, mail_user.password), policy) as pop:
        assert pop.stat() == (0, 0)


@pytest.mark.parametrize("which", ["starttls", "ssl"])
def test_smtp_authenticates_over_tls(smtp_lab, mail_user, policy, which):
    """The session signs in over TLS: the lab server (which offers AUTH only after TLS
    and requires it for mail) records the identity the message was sent under."""
    port = smtp_lab.starttls_port if which == "starttls" else smtp_lab.tls_port
    smtp_lab.clear()
    with SmtpSession(
        settings(port, which, mail_user.email, mail_user.password),
        policy,
        local_hostname="ats.example.test",
    ) as smtp:
        smtp.noop()
        smtp.send(mail_user.email, [mail_user.email],
                  b"From: <%s>\r\nSubject: auth\r\n\r\nhello\r\n" % mail_user.email.encode())
    [received] = smtp_lab.wait_for(1)
    assert received.login == mail_user.email
    assert received.port == port


def test_probe_reports_ok_for_good_imap_and_smtp(dovecot, smtp_lab, mail_user, policy):
    result = probe_connection(
        settings(dovecot.imaps, "ssl", mail_user.login, mail_user.password),
        "imap",
        settings(smtp_lab.starttls_port, "starttls", mail_user.login, mail_user.password),
        True,
        policy,
    )
    assert result.ok and result.incoming_error is None and result.outgoing_error is None


def test_probe_reports_ok_for_pop3_and_unauthenticated_smtp(dovecot, smtp_lab, mail_user, policy):
    result = probe_connection(
        settings(dovecot.pop3s, "ssl", mail_user.login, mail_user.password),
        "pop3",
        settings(smtp_lab.plain_port, "none"),
        False,
        policy,
    )
    assert result.ok


# --- every failure kind ---------------------------------------------------------------


def test_closed_port_is_refused(policy):
    result = probe_connection(
        settings(closed_port(), "ssl"), "imap", settings(closed_port(), "starttls"), True, policy
    )
    assert_clean(result.incoming_error, "refused")
    assert_clean(result.outgoing_error, "refused")
    assert not result.ok


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_silent_server_times_out_within_the_policy_timeout(
    silent_server, policy, protocol, security
):
    server = settings(silent_server.port, security)
    started = time.monotonic()
    if protocol == "smtp":
        result = probe_connection(None, "imap", server, True, policy)
        error = result.outgoing_error
    else:
        error = probe_connection(server, protocol, None, True, policy).incoming_error
    elapsed = time.monotonic() - started
    assert_clean(error, "timeout")
    assert elapsed < TIMEOUT * 2 + 0.5


def test_probe_runs_both_sides_at_once(silent_server, policy):
    started = time.monotonic()
    result = probe_connection(
        settings(silent_server.port, "ssl"),
        "imap",
        settings(silent_server.port, "ssl"),
        True,
        policy,
    )
    assert result.incoming_error.kind == result.outgoing_error.kind == "timeout"
    assert time.monotonic() - started < TIMEOUT * 2


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_certificate_for_another_name_is_refused(lab_certs, policy, protocol):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(lab_certs.wrong_cert, lab_certs.wrong_key)
    with LineServer(b"* OK SECRET-BANNER\r\n", lambda line: None, context) as server:
        if protocol == "smtp":
            error = probe_connection(
                None, "imap", settings(server.port, "ssl"), True, policy
            ).outgoing_error
        else:
            error = probe_connection(
                settings(server.port, "ssl"), protocol, None, True, policy
            ).incoming_error
    assert_clean(error, "tls_certificate")
    assert server.lines == []


def test_certificate_from_an_untrusted_ca_is_refused(dovecot, mail_user):
    untrusting = ConnectionPolicy(allowed_hosts=frozenset({LAB_ALLOWED}), timeout=TIMEOUT)
    result = probe_connection(
        settings(dovecot.imaps, "ssl", mail_user.login, mail_user.password),
        "imap",
        None,
        True,
        untrusting,
    )
    assert_clean(result.incoming_error, "tls_certificate")


def test_imap_without_starttls_never_gets_the_password(policy):
    with LineServer(b"* OK SECRET-BANNER ready\r\n", imap_without_starttls) as server:
        result = probe_connection(
            settings(server.port, "starttls", "alice", "hunter2"), "imap", None, True, policy
        )
    assert_clean(result.incoming_error, "starttls_missing")
    sent = b"".join(server.lines)
    assert b"hunter2" not in sent and b"aHVudGVyMg" not in sent
    assert b"LOGIN" not in sent.upper() and b"AUTHENTICATE" not in sent.upper()


def test_pop3_without_stls_never_gets_the_password(policy):
    with LineServer(b"+OK SECRET-BANNER ready\r\n", pop3_without_stls) as server:
        result = probe_connection(
            settings(server.port, "starttls", "alice", "hunter2"), "pop3", None, True, policy
        )
    assert_clean(result.incoming_error, "starttls_missing")
    sent = b"".join(server.lines).upper()
    assert b"HUNTER2" not in sent and b"USER" not in sent and b"PASS" not in sent


def test_smtp_without_starttls_never_gets_the_password(smtp_lab, mail_user, policy):
    result = probe_connection(
        None,
        "imap",
        settings(smtp_lab.plain_port, "starttls", mail_user.login, mail_user.password),
        True,
        policy,
    )
    assert_clean(result.outgoing_error, "starttls_missing")


def test_smtp_without_auth_on_a_plain_port_says_sign_in_is_unavailable(smtp_lab, mail_user, policy):
    result = probe_connection(
        None, "imap", settings(smtp_lab.plain_port, "none", mail_user.login, "pw"), True, policy
    )
    assert_clean(result.outgoing_error, "auth_unavailable")


def test_implicit_tls_against_a_plaintext_port_fails_cleanly(dovecot, policy):
    result = probe_connection(settings(dovecot.imap, "ssl"), "imap", None, True, policy)
    assert result.incoming_error.kind in ("tls_failed", "protocol")
    assert_clean(result.incoming_error, result.incoming_error.kind)


@pytest.mark.parametrize(
    ("protocol", "security", "port_name"),
    [
        ("imap", "ssl", "imaps"),
        ("imap", "starttls", "imap"),
        ("pop3", "ssl", "pop3s"),
        ("pop3", "starttls", "pop3"),
        ("imap", "none", "imap"),
        ("pop3", "none", "pop3"),
    ],
)
def test_wrong_password_is_auth_failed(dovecot, mail_user, policy, protocol, security, port_name):
    result = probe_connection(
        settings(getattr(dovecot, port_name), security, mail_user.login, "not-the-password"),
        protocol,
        None,
        True,
        policy,
    )
    assert_clean(result.incoming_error, "auth_failed")


@pytest.mark.parametrize("which", ["starttls", "ssl"])
def test_wrong_smtp_password_is_auth_failed(smtp_lab, mail_user, policy, which):
    port = smtp_lab.starttls_port if which == "starttls" else smtp_lab.tls_port
    result = probe_connection(
        None, "imap", settings(port, which, mail_user.login, "not-the-password"), True, policy
    )
    assert_clean(result.outgoing_error, "auth_failed")
    assert result.outgoing_error.code == 535


def test_unknown_host_is_host_not_found(monkeypatch, policy):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    result = probe_connection(
        settings(993, "ssl", host="imap.nowhere.example"),
        "imap",
        settings(587, "starttls", host="smtp.nowhere.example"),
        True,
        policy,
    )
    assert_clean(result.incoming_error, "host_not_found")
    assert_clean(result.outgoing_error, "host_not_found")


def test_loopback_server_is_not_allowed_without_the_allow_list(dovecot, smtp_lab, mail_user):
    strict = ConnectionPolicy(ca_file=dovecot.ca_file, timeout=TIMEOUT)
    result = probe_connection(
        settings(dovecot.imaps, "ssl", mail_user.login, mail_user.password),
        "imap",
        settings(smtp_lab.tls_port, "ssl", mail_user.login, mail_user.password),
        True,
        strict,
    )
    assert_clean(result.incoming_error, "host_not_allowed")
    assert_clean(result.outgoing_error, "host_not_allowed")
