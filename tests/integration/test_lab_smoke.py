"""Smoke tests for the real-server lab itself: if these fail, every integration test would.

They use only the stdlib clients so a lab bug is never confused with an add-on bug.
"""
from __future__ import annotations

import email
import imaplib
import poplib
import re
import smtplib
import socket
import ssl
import threading
import time
import uuid

import pytest

from tests.lab.servers import closed_port


def _ctx(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def _msg(to: str, subject: str) -> bytes:
    return (f"From: Recruiter <recruiter@example.test>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{uuid.uuid4().hex}@example.test>\r\n\r\nHello\r\n").encode()


def _imap_subjects(dovecot, user) -> list[str]:
    m = imaplib.IMAP4_SSL("localhost", dovecot.imaps, ssl_context=_ctx(dovecot.ca_file))
    try:
        m.login(user.email, user.password)
        _, (count,) = m.select("INBOX", readonly=True)
        if int(count) == 0:
            return []
        _, data = m.fetch(f"1:{int(count)}", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return [email.message_from_bytes(p[1])["Subject"] for p in data if isinstance(p, tuple)]
    finally:
        m.logout()


def test_imaps_and_starttls_login(dovecot, mail_user):
    m = imaplib.IMAP4_SSL("localhost", dovecot.imaps, ssl_context=_ctx(dovecot.ca_file))
    assert m.login(mail_user.email, mail_user.password)[0] == "OK"
    m.logout()
    m = imaplib.IMAP4("localhost", dovecot.imap)
    assert "STARTTLS" in m.capabilities
    m.starttls(ssl_context=_ctx(dovecot.ca_file))
    assert m.login(mail_user.login, mail_user.password)[0] == "OK"
    m.logout()


def test_pop3s_and_stls_login(dovecot, mail_user):
    dovecot.deliver(mail_user, _msg(mail_user.email, "pop"))
    p = poplib.POP3_SSL("localhost", dovecot.pop3s, context=_ctx(dovecot.ca_file))
    p.user(mail_user.email)
    p.pass_(mail_user.password)
    assert p.stat()[0] == 1
    uidl = p.uidl(1).split()[-1]
    assert re.fullmatch(rb"[0-9a-f]{16}", uidl.lower())  # %08Xu%08Xv
    p.quit()
    p = poplib.POP3("localhost", dovecot.pop3)
    p.stls(context=_ctx(dovecot.ca_file))
    p.user(mail_user.login)
    p.pass_(mail_user.password)
    p.quit()


@pytest.mark.parametrize("proto", ["imaps", "imap-starttls", "pop3s", "pop3-stls"])
def test_system_trust_store_rejects_lab_cert(dovecot, proto):
    ctx = ssl.create_default_context()  # no lab CA
    with pytest.raises(ssl.SSLCertVerificationError):
        if proto == "imaps":
            imaplib.IMAP4_SSL("localhost", dovecot.imaps, ssl_context=ctx)
        elif proto == "imap-starttls":
            imaplib.IMAP4("localhost", dovecot.imap).starttls(ssl_context=ctx)
        elif proto == "pop3s":
            poplib.POP3_SSL("localhost", dovecot.pop3s, context=ctx)
        else:
            poplib.POP3("localhost", dovecot.pop3).stls(context=ctx)


def test_wrong_host_cert_is_rejected(lab_certs):
    """The 'certificate for another host' cert chains to the lab CA but not to localhost."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(lab_certs.wrong_cert, lab_certs.wrong_key)
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        def serve():
            conn, _ = srv.accept()
            try:
                server_ctx.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        with (pytest.raises(ssl.SSLCertVerificationError, match="mismatch|match"),
              socket.create_connection(("127.0.0.1", port), timeout=3) as s):
            _ctx(str(lab_certs.ca_cert)).wrap_socket(s, server_hostname="localhost")
        t.join(3)


def test_wrong_password_fails_fast(dovecot, mail_user):
    m = imaplib.IMAP4("127.0.0.1", dovecot.imap)
    start = time.monotonic()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.login(mail_user.login, "wrong")
    assert time.monotonic() - start < 1.0
    m.logout()


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_smtp_auth_send_arrives_in_inbox(dovecot, smtp_lab, mail_user, mode):
    smtp_lab.clear()
    ctx = _ctx(dovecot.ca_file)
    if mode == "starttls":
        c = smtplib.SMTP("localhost", smtp_lab.starttls_port, timeout=5)
        c.starttls(context=ctx)
    else:
        c = smtplib.SMTP_SSL("localhost", smtp_lab.tls_port, context=ctx, timeout=5)
    c.login(mail_user.email, mail_user.password)
    subject = f"via {mode}"
    refused = c.sendmail(mail_user.email, [mail_user.email, "cand@remote.test",
                                           "reject-me@remote.test"],
                         _msg(mail_user.email, subject))
    c.quit()
    assert list(refused) == ["reject-me@remote.test"]
    (rec,) = smtp_lab.wait_for(1)
    assert rec.rcpt_tos == (mail_user.email, "cand@remote.test")
    assert rec.login == mail_user.email
    assert _imap_subjects(dovecot, mail_user) == [subject]


def test_smtp_bad_password_and_plain_port(dovecot, smtp_lab, mail_user):
    c = smtplib.SMTP_SSL("localhost", smtp_lab.tls_port, context=_ctx(dovecot.ca_file),
                         timeout=5)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        c.login(mail_user.login, "nope")
    c.close()
    c = smtplib.SMTP("127.0.0.1", smtp_lab.plain_port, timeout=5)
    c.ehlo()
    assert not c.has_extn("starttls")
    c.quit()


def test_fill_and_select(dovecot, mail_user):
    dovecot.fill(mail_user, 1000)
    m = imaplib.IMAP4_SSL("localhost", dovecot.imaps, ssl_context=_ctx(dovecot.ca_file))
    m.login(mail_user.login, mail_user.password)
    typ, (exists,) = m.select("INBOX", readonly=True)
    assert (typ, int(exists)) == ("OK", 1000)
    m.logout()
    assert len(dovecot.list_messages(mail_user)) == 1000


def test_sent_folder_by_special_use(dovecot, mail_user):
    m = imaplib.IMAP4_SSL("localhost", dovecot.imaps, ssl_context=_ctx(dovecot.ca_file))
    m.login(mail_user.login, mail_user.password)
    typ, lines = m._simple_command("LIST", '""', "*", "RETURN", "(SPECIAL-USE)")
    lines = m._untagged_response(typ, lines, "LIST")[1]
    m.logout()
    sent = [line for line in lines if b"\\Sent" in line]
    assert len(sent) == 1 and sent[0].endswith(b"Sent")


def test_deliver_flags_and_uidvalidity_change(dovecot, mail_user):
    dovecot.deliver(mail_user, _msg(mail_user.email, "seen"), seen=True)
    dovecot.deliver(mail_user, _msg(mail_user.email, "sent"), folder="Sent", seen=True)
    assert [f for _, f, _ in dovecot.list_messages(mail_user)] == ["S"]
    old = dovecot.uidvalidity(mail_user)
    new = dovecot.change_uidvalidity(mail_user)
    assert new != old
    m = imaplib.IMAP4_SSL("localhost", dovecot.imaps, ssl_context=_ctx(dovecot.ca_file))
    m.login(mail_user.login, mail_user.password)
    m.select("INBOX", readonly=True)
    assert int(m.response("UIDVALIDITY")[1][0]) == new
    _, (sent_count,) = m.select("Sent", readonly=True)
    assert int(sent_count) == 1
    m.logout()


def test_silent_and_closed_ports(silent_server):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=1)
    with socket.create_connection((silent_server.host, silent_server.port), timeout=1) as s:
        s.settimeout(0.2)
        with pytest.raises(TimeoutError):
            s.recv(1)


def test_postgres_database(pg_url):
    import psycopg

    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE lab_smoke (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO lab_smoke (note) VALUES ('ok')")
        assert conn.execute("SELECT note FROM lab_smoke").fetchone() == ("ok",)


@pytest.mark.browser
def test_chromium_opens_page(page):
    page.goto("data:text/html,<title>Lab Smoke</title><p>hi</p>")
    assert page.title() == "Lab Smoke"
