"""Smoke tests of the lab's OAuth path with stdlib/requests clients only (no add-on code),
so a lab bug is never confused with an add-on bug."""
from __future__ import annotations

import base64
import imaplib
import smtplib
import ssl
import time

import requests

from tests.lab.oauth import OAuthLab


def _http(lab: OAuthLab) -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    http.verify = str(lab.certs.ca_cert)
    return http


def test_oauth_lab_provider_starts_well_under_a_second(lab_certs):
    started = time.perf_counter()
    lab = OAuthLab(lab_certs).start()
    try:
        with _http(lab) as http:
            meta = http.get(lab.base_url + "/.well-known/openid-configuration", timeout=5).json()
        elapsed = time.perf_counter() - started
    finally:
        lab.stop()
    assert elapsed < 0.5, elapsed
    assert meta["token_endpoint"] == lab.token_url
    assert meta["code_challenge_methods_supported"] == ["S256"]


def test_oauth_lab_introspection_needs_the_mail_servers_credentials(oauth_lab):
    token = oauth_lab.mint_token("x@example.test").access_token
    with _http(oauth_lab) as http:
        anonymous = http.post(oauth_lab.introspect_url, data={"token": token}, timeout=5)
        other = oauth_lab.add_client()
        foreign = http.post(oauth_lab.introspect_url, data={"token": token}, timeout=5,
                            auth=(other.client_id, other.client_secret))
        ok = http.post(oauth_lab.introspect_url, data={"token": token}, timeout=5,
                       auth=(oauth_lab.mail_servers_client, oauth_lab.mail_servers_secret))
    assert anonymous.status_code == 401
    assert foreign.json() == {"active": False}
    assert ok.json()["active"] is True and ok.json()["username"] == "x@example.test"


def test_oauth_lab_records_authorize_requests_and_refuses_missing_pkce(oauth_lab):
    client = oauth_lab.add_client()
    url = (f"{oauth_lab.authorize_url}?response_type=code&client_id={client.client_id}"
           "&redirect_uri=http://127.0.0.1:1/cb&scope=openid&state=s1&access_type=offline")
    callback = oauth_lab.approve(url)
    assert callback["error"] == "invalid_request" and callback["state"] == "s1"
    assert oauth_lab.authorize_requests[-1]["access_type"] == "offline"


def test_oauth_lab_dovecot_takes_xoauth2_from_a_stdlib_client(dovecot, oauth_lab, mail_user):
    token = oauth_lab.mint_token(mail_user.email).access_token
    ctx = ssl.create_default_context(cafile=dovecot.ca_file)
    m = imaplib.IMAP4_SSL("localhost", dovecot.imaps, ssl_context=ctx)
    try:
        assert "AUTH=XOAUTH2" in m.capabilities and "AUTH=OAUTHBEARER" in m.capabilities
        typ, _ = m.authenticate(
            "XOAUTH2", lambda _: f"user={mail_user.email}\x01auth=Bearer {token}\x01\x01")
        assert typ == "OK"
    finally:
        m.logout()


def test_oauth_lab_smtp_answers_a_bad_token_like_gmail(smtp_lab, mail_user):
    ctx = ssl.create_default_context(cafile=smtp_lab.dovecot.ca_file)
    with smtplib.SMTP_SSL("localhost", smtp_lab.tls_port, context=ctx, timeout=5) as smtp:
        smtp.ehlo()
        assert "XOAUTH2" in smtp.esmtp_features["auth"].split()
        blob = base64.b64encode(f"user={mail_user.email}\x01auth=Bearer nope\x01\x01".encode())
        code, challenge = smtp.docmd("AUTH", "XOAUTH2 " + blob.decode())
        assert code == 334
        assert b'"status": "401"' in base64.b64decode(challenge)
        code, _ = smtp.docmd("")
        assert code == 535
