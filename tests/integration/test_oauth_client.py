"""The OAuth client (Authlib over requests) against the lab's real authorization server."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import time

import pytest

from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.imap import ImapSession
from plugin.setup import oauth_client as oc
from plugin.setup.oauth_providers import GOOGLE, MICROSOFT, configured, get_provider
from tests.lab.servers import HOST, closed_port

REDIRECT = "http://127.0.0.1:5999/integrated-email/oauth/callback"


@pytest.fixture(autouse=True)
def _debug_logs(caplog):
    caplog.set_level(logging.DEBUG)


def lab_provider(lab, key: str, **changes):
    """A built-in provider with its endpoints pointed at the lab (as settings would)."""
    provider = configured(get_provider(key), {
        "authorize_url": lab.authorize_url, "token_url": lab.token_url,
        "revoke_url": lab.revoke_url, "userinfo_url": lab.userinfo_url})
    return dataclasses.replace(provider, **changes)


@pytest.fixture
def client_config(oauth_lab):
    client = oauth_lab.add_client(redirect_uris=(REDIRECT,))
    return oc.ClientConfig(client.client_id, client.client_secret, REDIRECT,
                           ca_file=str(oauth_lab.certs.ca_cert), timeout=2)


def sign_in(lab, provider, config, login="ann@example.test"):
    request = oc.authorization_request(provider, config, login_hint=login)
    callback = lab.approve(request.url)
    assert oc.callback_failure(callback) is None
    assert oc.state_matches(request.state, callback["state"])
    return request, callback


def secrets_of(tokens: oc.TokenSet, config: oc.ClientConfig) -> list[str]:
    return [t for t in (tokens.access_token, tokens.refresh_token, config.client_secret) if t]


def assert_nowhere(secrets: list[str], caplog, *things) -> None:
    for secret in secrets:
        assert secret not in caplog.text
        for thing in things:
            assert secret not in str(thing) and secret not in repr(thing)


def test_oauth_authorize_request_carries_pkce_state_nonce_and_googles_offline_params(
        oauth_lab, client_config):
    provider = lab_provider(oauth_lab, GOOGLE)
    request, callback = sign_in(oauth_lab, provider, client_config)
    sent = oauth_lab.authorize_requests[-1]
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(request.code_verifier.encode()).digest()).rstrip(b"=").decode()
    assert sent["code_challenge_method"] == "S256" and sent["code_challenge"] == challenge
    assert sent["access_type"] == "offline" and sent["prompt"] == "consent"
    assert sent["scope"] == "https://mail.google.com/ openid email"
    assert sent["state"] == request.state and sent["nonce"] == request.nonce
    assert sent["redirect_uri"] == REDIRECT and sent["client_id"] == client_config.client_id
    assert sent["login_hint"] == "ann@example.test" and sent["response_type"] == "code"
    assert 43 <= len(request.code_verifier) <= 128
    again = oc.authorization_request(provider, client_config)
    assert again.state != request.state and again.code_verifier != request.code_verifier
    assert "lab-at-" not in repr(request) and request.state not in repr(request)


def test_oauth_microsoft_authorize_request_asks_outlook_scopes_only(oauth_lab, client_config):
    sign_in(oauth_lab, lab_provider(oauth_lab, MICROSOFT), client_config)
    scope = oauth_lab.authorize_requests[-1]["scope"].split()
    assert "offline_access" in scope and "https://outlook.office.com/SMTP.Send" in scope
    assert not any("graph.microsoft.com" in s for s in scope)
    assert "access_type" not in oauth_lab.authorize_requests[-1]


def test_oauth_code_exchange_gives_tokens_and_the_account_from_the_id_token(
        oauth_lab, client_config, caplog):
    oauth_lab.access_token_lifetime = 120
    provider = lab_provider(oauth_lab, MICROSOFT, userinfo_url=None)
    request, callback = sign_in(oauth_lab, provider, client_config, login="Ann@Example.test")
    tokens = oc.exchange_code(provider, client_config, callback["code"], request)
    assert tokens.account == "Ann@Example.test"
    assert tokens.refresh_token and tokens.access_token.startswith("lab-at-")
    assert time.time() + 100 < tokens.expires_at <= time.time() + 121
    assert oauth_lab.introspect(tokens.access_token)["active"] is True
    assert_nowhere(secrets_of(tokens, client_config), caplog, tokens)


def test_oauth_without_an_id_token_the_account_comes_from_userinfo(oauth_lab, client_config):
    provider = lab_provider(oauth_lab, GOOGLE, scopes=("https://mail.google.com/", "email"))
    request, callback = sign_in(oauth_lab, provider, client_config, login="bo@example.test")
    assert oc.exchange_code(provider, client_config, callback["code"], request).account == \
        "bo@example.test"


def test_oauth_no_address_anywhere_is_a_plain_sentence(oauth_lab, client_config):
    provider = lab_provider(oauth_lab, MICROSOFT, scopes=("offline_access",), userinfo_url=None)
    request, callback = sign_in(oauth_lab, provider, client_config)
    with pytest.raises(oc.OAuthFailure) as info:
        oc.exchange_code(provider, client_config, callback["code"], request)
    assert info.value.kind == "no_address"


def test_oauth_signed_in_token_opens_the_lab_mailbox(oauth_lab, client_config, dovecot,
                                                    mail_user):
    provider = lab_provider(oauth_lab, GOOGLE)
    request, callback = sign_in(oauth_lab, provider, client_config, login=mail_user.email)
    tokens = oc.exchange_code(provider, client_config, callback["code"], request)
    policy = ConnectionPolicy(allowed_hosts=frozenset({HOST}), ca_file=dovecot.ca_file, timeout=5)
    settings = ServerSettings(HOST, dovecot.imaps, "ssl", tokens.account, "",
                              access_token=tokens.access_token)
    with ImapSession(settings, policy) as imap:
        assert imap.status("INBOX").messages == 0


def test_oauth_code_is_single_use_and_bound_to_its_verifier_and_nonce(oauth_lab, client_config,
                                                                      caplog):
    provider = lab_provider(oauth_lab, GOOGLE)
    request, callback = sign_in(oauth_lab, provider, client_config)
    other = oc.authorization_request(provider, client_config)
    with pytest.raises(oc.OAuthFailure) as info:  # another flow's PKCE verifier
        oc.exchange_code(provider, client_config, callback["code"], other)
    assert info.value.kind == "sign_in_again" and info.value.error == "invalid_grant"

    request, callback = sign_in(oauth_lab, provider, client_config)
    with pytest.raises(oc.OAuthFailure) as info:  # an ID token minted for another nonce
        oc.exchange_code(provider, client_config, callback["code"],
                         dataclasses.replace(request, nonce="someone-elses"))
    assert info.value.kind == "bad_answer"
    with pytest.raises(oc.OAuthFailure) as info:  # the code was spent by the try above
        oc.exchange_code(provider, client_config, callback["code"], request)
    assert info.value.kind == "sign_in_again"
    assert str(info.value) == "Your sign-in has expired or was withdrawn. Sign in again."
    assert callback["code"] not in caplog.text


def test_oauth_wrong_client_secret_tells_to_ask_the_administrator(oauth_lab, client_config,
                                                                  caplog):
    provider = lab_provider(oauth_lab, GOOGLE)
    request, callback = sign_in(oauth_lab, provider, client_config)
    wrong = dataclasses.replace(client_config, client_secret="wrong-secret-value")
    with pytest.raises(oc.OAuthFailure) as info:
        oc.exchange_code(provider, wrong, callback["code"], request)
    assert info.value.kind == "client_rejected" and info.value.permanent
    assert "administrator" in str(info.value)
    assert_nowhere(["wrong-secret-value", client_config.client_secret], caplog, info.value)


def test_oauth_refresh_rotates_and_the_old_refresh_token_is_then_invalid_grant(
        oauth_lab, client_config, caplog):
    provider = lab_provider(oauth_lab, MICROSOFT)
    request, callback = sign_in(oauth_lab, provider, client_config)
    first = oc.exchange_code(provider, client_config, callback["code"], request)
    second = oc.refresh(provider, client_config, first.refresh_token)
    assert second.rotated and second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert oauth_lab.token_requests[-1]["grant_type"] == "refresh_token"
    with pytest.raises(oc.OAuthFailure) as info:
        oc.refresh(provider, client_config, first.refresh_token)
    assert info.value.kind == "sign_in_again" and info.value.permanent
    third = oc.refresh(provider, client_config, second.refresh_token)
    assert third.rotated
    assert_nowhere(secrets_of(first, client_config) + secrets_of(second, client_config),
                   caplog, info.value)


def test_oauth_refresh_without_rotation_keeps_the_refresh_token(oauth_lab, client_config):
    oauth_lab.rotate_refresh_tokens = False  # Google's way
    provider = lab_provider(oauth_lab, GOOGLE)
    request, callback = sign_in(oauth_lab, provider, client_config)
    first = oc.exchange_code(provider, client_config, callback["code"], request)
    for _ in range(2):
        again = oc.refresh(provider, client_config, first.refresh_token)
        assert not again.rotated and again.refresh_token == first.refresh_token
        assert oauth_lab.introspect(again.access_token)["active"] is True


def test_oauth_expired_refresh_token_says_sign_in_again(oauth_lab, client_config):
    provider = lab_provider(oauth_lab, GOOGLE)
    request, callback = sign_in(oauth_lab, provider, client_config)
    tokens = oc.exchange_code(provider, client_config, callback["code"], request)
    oauth_lab.expire(tokens.refresh_token)
    with pytest.raises(oc.OAuthFailure) as info:
        oc.refresh(provider, client_config, tokens.refresh_token)
    assert info.value.kind == "sign_in_again"


def test_oauth_revoke_kills_the_grant(oauth_lab, client_config, caplog):
    provider = lab_provider(oauth_lab, GOOGLE)
    request, callback = sign_in(oauth_lab, provider, client_config)
    tokens = oc.exchange_code(provider, client_config, callback["code"], request)
    assert oc.revoke(provider, client_config, tokens.refresh_token) is True
    assert oauth_lab.introspect(tokens.access_token) == {"active": False}
    with pytest.raises(oc.OAuthFailure) as info:
        oc.refresh(provider, client_config, tokens.refresh_token)
    assert info.value.kind == "sign_in_again"
    assert oc.revoke(provider, client_config, tokens.refresh_token) is True  # idempotent
    assert_nowhere(secrets_of(tokens, client_config), caplog, info.value)


def test_oauth_revoke_is_a_no_op_where_the_provider_has_none(oauth_lab, client_config):
    provider = lab_provider(oauth_lab, MICROSOFT, revoke_url=None)
    assert oc.revoke(provider, client_config, "lab-rt-whatever") is False


def test_oauth_denied_consent_and_missing_code_are_sentences(oauth_lab, client_config):
    provider = lab_provider(oauth_lab, GOOGLE)
    request = oc.authorization_request(provider, client_config)
    callback = oauth_lab.approve(request.url, decision="deny")
    failure = oc.callback_failure(callback)
    assert failure.kind == "denied" and failure.error == "access_denied"
    assert oc.callback_failure({"state": request.state}).kind == "bad_answer"
    assert oc.callback_failure({"error": "<b>x</b>"}).error is None
    assert not oc.state_matches(request.state, request.state + "x")
    assert not oc.state_matches(request.state, None) and not oc.state_matches(None, None)


@pytest.mark.parametrize("status", [503, 500, 429])
def test_oauth_token_endpoint_down_is_a_try_later_sentence(oauth_lab, client_config, status,
                                                           caplog):
    provider = lab_provider(oauth_lab, GOOGLE)
    request, callback = sign_in(oauth_lab, provider, client_config)
    oauth_lab.token_status = status
    with pytest.raises(oc.OAuthFailure) as info:
        oc.exchange_code(provider, client_config, callback["code"], request)
    assert info.value.kind == "provider_error" and not info.value.permanent
    assert "Service Unavailable" not in caplog.text + str(info.value)


def test_oauth_slow_token_endpoint_fails_within_the_timeout(oauth_lab, client_config):
    provider = lab_provider(oauth_lab, MICROSOFT)
    oauth_lab.token_delay = 3
    started = time.monotonic()
    with pytest.raises(oc.OAuthFailure) as info:
        oc.refresh(provider, dataclasses.replace(client_config, timeout=0.5), "lab-rt-x")
    assert info.value.kind == "provider_timeout"
    assert time.monotonic() - started < 1.5


def test_oauth_unreachable_and_untrusted_providers(oauth_lab, client_config):
    closed = configured(get_provider(GOOGLE), {"token_url": f"https://{HOST}:{closed_port()}/t"})
    with pytest.raises(oc.OAuthFailure) as info:
        oc.refresh(closed, client_config, "lab-rt-x")
    assert info.value.kind == "provider_unreachable"
    system_store_only = dataclasses.replace(client_config, ca_file=None)
    with pytest.raises(oc.OAuthFailure) as info:
        oc.refresh(lab_provider(oauth_lab, GOOGLE), system_store_only, "lab-rt-x")
    assert info.value.kind == "provider_tls"
