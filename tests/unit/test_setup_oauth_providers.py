"""The OAuth provider table (issue 12 item 1) and the client's pure helpers."""

from __future__ import annotations

import base64
import json
import time

import pytest

from plugin.setup import oauth_client as oc
from plugin.setup.oauth_providers import (
    GOOGLE,
    MICROSOFT,
    PROVIDERS,
    configured,
    get_provider,
    provider_for_address,
    valid_tenant,
)


def test_oauth_google_entry():
    g = get_provider(GOOGLE)
    assert g.name == "Google"
    assert g.authorize_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert g.token_url == "https://oauth2.googleapis.com/token"
    assert g.revoke_url == "https://oauth2.googleapis.com/revoke"
    assert g.scopes == ("https://mail.google.com/", "openid", "email")
    assert dict(g.authorize_params) == {"access_type": "offline", "prompt": "consent"}
    assert (g.imap.host, g.imap.port, g.imap.security) == ("imap.gmail.com", 993, "ssl")
    assert (g.pop3.host, g.pop3.port) == ("pop.gmail.com", 995)
    assert (g.smtp.host, g.smtp.port, g.smtp.security) == ("smtp.gmail.com", 465, "ssl")
    assert not g.rotates_refresh_tokens and not g.has_tenant
    assert any("7 days" in n for n in g.notes)


def test_oauth_microsoft_entry_asks_outlook_scopes_and_never_graph():
    m = get_provider(MICROSOFT)
    assert m.authorize_url == ("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/"
                               "authorize")
    assert m.token_url == "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
    assert m.revoke_url is None and m.userinfo_url is None
    assert m.scopes == ("https://outlook.office.com/IMAP.AccessAsUser.All",
                        "https://outlook.office.com/POP.AccessAsUser.All",
                        "https://outlook.office.com/SMTP.Send", "offline_access", "openid",
                        "email")
    assert not any("graph" in s.lower() for s in m.scopes)
    assert (m.imap.host, m.imap.port) == ("outlook.office365.com", 993)
    assert (m.smtp.host, m.smtp.port, m.smtp.security) == ("smtp.office365.com", 587, "starttls")
    assert m.rotates_refresh_tokens and m.has_tenant


def test_oauth_table_is_read_only():
    with pytest.raises(TypeError):
        PROVIDERS["evil"] = PROVIDERS[GOOGLE]  # type: ignore[index]
    with pytest.raises(TypeError):
        PROVIDERS[GOOGLE].authorize_params["prompt"] = "none"  # type: ignore[index]
    with pytest.raises(ValueError):
        get_provider("yahoo")


@pytest.mark.parametrize("tenant", ["common", "organizations", "consumers",
                                    "72f988bf-86f1-41af-91ab-2d7cd011db47",
                                    "contoso.onmicrosoft.com", "example.co.uk"])
def test_oauth_microsoft_tenant_fills_every_endpoint(tenant):
    m = configured(get_provider(MICROSOFT), tenant=tenant)
    assert m.authorize_url == f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
    assert m.token_url == f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"


def test_oauth_microsoft_default_tenant_is_common():
    assert "/common/" in configured(get_provider(MICROSOFT)).token_url


@pytest.mark.parametrize("tenant", ["common/../evil", "a?b=c", "evil.com#", "x/y", "",
                                    " common", "comm on", "..", "a" * 300 + ".com",
                                    "attacker.example/oauth2?x=", "\ncommon"])
def test_oauth_hostile_tenants_are_refused(tenant):
    assert not valid_tenant(tenant)
    if tenant:
        with pytest.raises(ValueError):
            configured(get_provider(MICROSOFT), tenant=tenant)


def test_oauth_endpoint_overrides_are_https_and_known_names_only():
    g = configured(get_provider(GOOGLE), {"token_url": "https://127.0.0.1:8443/token",
                                          "authorize_url": ""})
    assert g.token_url == "https://127.0.0.1:8443/token"
    assert g.authorize_url == get_provider(GOOGLE).authorize_url  # empty keeps the default
    with pytest.raises(ValueError):
        configured(get_provider(GOOGLE), {"token_url": "http://127.0.0.1/token"})
    with pytest.raises(ValueError):
        configured(get_provider(GOOGLE), {"scopes": "https://x"})
    m = configured(get_provider(MICROSOFT),
                   {"token_url": "https://login.example/{tenant}/token"}, tenant="organizations")
    assert m.token_url == "https://login.example/organizations/token"


@pytest.mark.parametrize("address, key", [
    ("ann@gmail.com", GOOGLE), ("Ann@GoogleMail.com", GOOGLE), ("x@outlook.com", MICROSOFT),
    ("x@hotmail.co.uk", MICROSOFT), ("x@live.com.", MICROSOFT), ("x@example.com", None),
    ("no-at-sign", None), ("x@gmail.com.evil.test", None),
])
def test_oauth_provider_for_address(address, key):
    found = provider_for_address(address)
    assert (found.key if found else None) == key


def _jwt(claims: dict) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'ES256'})}.{part(claims)}.c2ln"


def test_oauth_id_token_claims_are_checked():
    now = int(time.time())
    good = {"aud": "cid", "exp": now + 60, "nonce": "n1", "email": "a@b.test"}
    assert oc.id_token_claims(_jwt(good), "cid", "n1")["email"] == "a@b.test"
    assert oc.id_token_claims(_jwt({**good, "aud": ["x", "cid"]}), "cid", "n1")
    for bad in ({**good, "aud": "other"}, {**good, "exp": now - 3600}, {**good, "nonce": "n2"},
                {k: v for k, v in good.items() if k != "exp"}, {**good, "exp": "soon"}):
        with pytest.raises(oc.OAuthFailure) as info:
            oc.id_token_claims(_jwt(bad), "cid", "n1")
        assert info.value.kind == "bad_answer"
    for garbage in ("", "a.b", "a.!!!.c", "a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c"):
        with pytest.raises(oc.OAuthFailure):
            oc.id_token_claims(garbage, "cid", None)


def test_oauth_failure_kinds_have_fixed_sentences():
    assert set(oc.SENTENCES) >= {"sign_in_again", "denied", "provider_timeout"}
    assert "Sign in again" in oc.OAuthFailure("sign_in_again").sentence
    assert oc.OAuthFailure("provider_error", error="server_error").error == "server_error"
    assert oc.OAuthFailure("bad_answer", error="x\r\ny").error is None
    with pytest.raises(ValueError):
        oc.OAuthFailure("nope")
