"""OAuth SASL strings byte for byte, hostile inputs, and server error challenges."""

from __future__ import annotations

import base64
import json

import pytest

from plugin.mail.account import ServerSettings
from plugin.mail.auth import (
    OAUTHBEARER,
    XOAUTH2,
    OAuthExchange,
    choose_mechanism,
    decode_b64,
    error_reply,
    initial_response,
    oauthbearer_initial_response,
    rejected,
    require_tls,
    xoauth2_initial_response,
)
from plugin.mail.errors import SENTENCES, MailError


def test_oauth_xoauth2_matches_googles_published_example():
    raw = xoauth2_initial_response("someuser@example.com",
                                   "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    assert raw == (b"user=someuser@example.com\x01"
                   b"auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01")
    # The base64 form printed in Google's XOAUTH2 protocol page.
    assert base64.b64encode(raw) == (
        b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNr"
        b"QmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==")


def test_oauth_oauthbearer_matches_rfc_7628_example():
    raw = oauthbearer_initial_response("user@example.com",
                                       "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
                                       "server.example.com", 143)
    assert raw == (b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
                   b"auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01")


def test_oauth_oauthbearer_without_host_and_port():
    assert oauthbearer_initial_response("a@b.test", "tok") == (
        b"n,a=a@b.test,\x01auth=Bearer tok\x01\x01")


def test_oauth_oauthbearer_escapes_comma_and_equals_in_the_authzid():
    raw = oauthbearer_initial_response('"a,b=c"@example.test', "tok")
    assert raw.startswith(b'n,a="a=2Cb=3Dc"@example.test,\x01')


def test_oauth_utf8_address_is_sent_as_utf8():
    assert xoauth2_initial_response("jörg@exämple.test", "t").startswith(
        "user=jörg@exämple.test\x01".encode())


@pytest.mark.parametrize("token", [
    "", "a b", "tok\x01auth=Bearer other", "tok\r\nA1 LOGIN x y", "tok\n", "tök", "=abc",
    "tok\x00", None, 123,
])
def test_oauth_hostile_or_malformed_tokens_are_refused_before_anything_is_sent(token):
    with pytest.raises(ValueError) as info:
        xoauth2_initial_response("a@b.test", token)
    with pytest.raises(ValueError):
        oauthbearer_initial_response("a@b.test", token)
    if isinstance(token, str) and token:
        assert token not in str(info.value)


@pytest.mark.parametrize("address", ["", "a@b\x01auth=Bearer x", "a@b\r\nQUIT", "a\x00@b"])
def test_oauth_hostile_addresses_are_refused(address):
    with pytest.raises(ValueError):
        xoauth2_initial_response(address, "tok")
    with pytest.raises(ValueError):
        oauthbearer_initial_response(address, "tok")


@pytest.mark.parametrize("host, port", [("h\x01port=1", 993), ("h", 0), ("h", 70000),
                                        ("h", "993")])
def test_oauth_oauthbearer_refuses_bad_host_or_port(host, port):
    with pytest.raises(ValueError):
        oauthbearer_initial_response("a@b.test", "tok", host, port)


@pytest.mark.parametrize("offered, chosen", [
    (["PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"], XOAUTH2),
    (["oauthbearer", "plain"], OAUTHBEARER),
    (["xoauth2"], XOAUTH2),
    (["PLAIN", "LOGIN"], None),
    ([], None),
])
def test_oauth_mechanism_choice_prefers_xoauth2(offered, chosen):
    assert choose_mechanism(offered) == chosen


def _settings(**kw) -> ServerSettings:
    base = {"host": "imap.example.test", "port": 993, "security": "ssl",
            "login": "a@example.test", "password": "", "access_token": "lab-at-SECRET"}
    base.update(kw)
    return ServerSettings(**base)


def test_oauth_initial_response_uses_the_settings_host_and_port():
    s = _settings()
    assert initial_response(XOAUTH2, s) == xoauth2_initial_response("a@example.test",
                                                                   "lab-at-SECRET")
    assert initial_response(OAUTHBEARER, s) == oauthbearer_initial_response(
        "a@example.test", "lab-at-SECRET", "imap.example.test", 993)
    with pytest.raises(ValueError):
        initial_response("PLAIN", s)
    with pytest.raises(ValueError):
        initial_response(XOAUTH2, _settings(access_token=None))


def test_oauth_settings_never_show_the_token():
    s = _settings(password="hunter2")
    assert s.uses_oauth and not _settings(access_token=None).uses_oauth
    assert "lab-at-SECRET" not in repr(s) and "hunter2" not in repr(s)


@pytest.mark.parametrize("security", ["none"])
def test_oauth_token_never_goes_over_plaintext(security):
    with pytest.raises(MailError) as info:
        require_tls(_settings(security=security))
    assert info.value.kind == "oauth_tls_required"
    require_tls(_settings(security="ssl"))
    require_tls(_settings(security="starttls"))


def test_oauth_error_replies():
    assert error_reply(XOAUTH2) == b""
    assert error_reply(OAUTHBEARER) == b"\x01"


def _challenge(obj) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize("challenge, kind, code", [
    # Gmail SMTP's answer to an expired token, Dovecot's XOAUTH2 and OAUTHBEARER ones.
    (_challenge({"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"}),
     "oauth_rejected", 400),
    (_challenge({"status": "401", "schemes": "bearer", "scope": "mail"}), "oauth_rejected", 401),
    (_challenge({"status": "invalid_token"}), "oauth_rejected", None),
    (_challenge({"status": "insufficient_scope", "scope": "x"}), "oauth_scope", None),
    (_challenge({"status": "403"}), "oauth_scope", 403),
    (b"not json at all", "oauth_rejected", None),
    (_challenge(["status", "401"]), "oauth_rejected", None),
    (_challenge({"status": 401}), "oauth_rejected", None),
    (b"\xff\xfe", "oauth_rejected", None),
    (None, "oauth_rejected", None),
    (_challenge({"status": "401", "pad": "x" * 10000}), "oauth_rejected", None),
])
def test_oauth_error_challenge_becomes_a_plain_sentence(challenge, kind, code):
    error = rejected(challenge)
    assert (error.kind, error.code) == (kind, code)
    assert str(error) == SENTENCES[kind]


def test_oauth_error_challenge_text_never_reaches_the_error():
    hostile = _challenge({"status": "<script>alert(1)</script>", "scope": "mx7.internal.corp"})
    error = rejected(hostile)
    assert error.kind == "oauth_rejected"
    for text in (str(error), repr(error), error.detail):
        assert "script" not in text and "mx7" not in text


def test_oauth_smtp_code_wins_over_the_challenge_status():
    assert rejected(_challenge({"status": "400"}), 535).code == 535


def test_oauth_decode_b64():
    assert decode_b64(base64.b64encode(b'{"status":"401"}')) == b'{"status":"401"}'
    assert decode_b64(b"  " + base64.b64encode(b"x") + b"\r\n") == b"x"
    assert decode_b64("eyJ9") == b'{"}'
    assert decode_b64(b"not base64!!") is None
    assert decode_b64(b"A" * 100000) is None


def test_oauth_exchange_with_sasl_ir_answers_the_error_challenge_then_gives_up():
    ex = OAuthExchange(OAUTHBEARER, b"first", sent_first=True)
    assert ex.respond(base64.b64encode(b'{"status":"invalid_token"}')) == b"AQ=="
    assert ex.challenge == b'{"status":"invalid_token"}'
    assert ex.error().kind == "oauth_rejected"
    ex.respond(b"")
    ex.respond(None)
    with pytest.raises(MailError) as info:
        ex.respond(b"")  # a server that never stops challenging
    assert info.value.kind == "protocol"


def test_oauth_exchange_without_sasl_ir_sends_the_initial_response_at_the_go_ahead():
    ex = OAuthExchange(XOAUTH2, b"user=a\x01auth=Bearer t\x01\x01", sent_first=False)
    assert base64.b64decode(ex.respond(b"")) == b"user=a\x01auth=Bearer t\x01\x01"
    assert ex.respond(base64.b64encode(b'{"status":"401"}')) == b""
    assert ex.error().code == 401
