"""Issue 12 attacked: what an outsider, a curious colleague or a misbehaving provider can
send the OAuth sign-in, each answered with a plain sentence and nothing stored or leaked.

The lab provider misbehaves on purpose through ``token_rewrite`` (its token endpoint's
answer replaced) and through the account typed on its authorize page (which becomes the
ID token's ``email`` claim, whatever it is)."""

from __future__ import annotations

import calendar
import json
import logging
import time

import pytest

from tests.helpers import form, signed_in
from tests.integration import test_oauth_signin as base
from tests.integration.oauth_helpers import MICROSOFT_DOMAIN, callback_path, enable_providers, query

lab = base.lab  # the same fixture: both providers enabled, Rita signed in to the ATS
start, come_back, mailboxes = base.start, base.come_back, base.mailboxes
nothing_stored, assert_no_secret_leaked = base._nothing_stored, base.assert_no_secret_leaked

START = "/integrated-email/oauth/start"


def new_mailbox(address: str, provider: str = "microsoft", **extra) -> dict:
    return form(account_name="Work", email=address, protocol="imap", sharing="private",
                provider=provider, **extra)


def test_oauth_start_without_the_csrf_token_goes_nowhere(lab, mail_user):
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    data = new_mailbox(address)
    del data["csrf_token"]
    refused = lab.seen.add(lab.rita.post(START, data=data))
    assert refused.status_code == 400 and "came from another site" in refused.get_data(
        as_text=True)
    assert lab.oauth.authorize_requests == []
    with lab.rita.session_transaction() as sess:
        assert "ie_oauth_pending" not in sess
    forged = lab.seen.add(lab.rita.post(START, data={**data, "csrf_token": "guessed"}))
    assert forged.status_code == 400 and "Location" not in forged.headers


def test_oauth_an_attackers_callback_in_the_victims_browser_connects_nothing(lab, mail_user):
    """Login CSRF: Bob signs in to his own account, stops before the callback and makes
    Rita's browser open it (an image, a link). Rita's session has no such sign-in."""
    bob = signed_in(lab.app, lab.host.add_person("Bob", "bob@example.test"))
    bob_address = f"bob-{mail_user.login}@{MICROSOFT_DOMAIN}"
    resp = bob.post(START, data=new_mailbox(bob_address))
    back = lab.oauth.approve(resp.headers["Location"], login=bob_address)
    planted = lab.seen.add(lab.rita.get(callback_path(back)))
    assert planted.status_code == 400 and "not started here" in planted.get_data(as_text=True)
    nothing_stored(lab)
    # Rita has a sign-in of her own under way: Bob's state still does not fit it, and
    # Bob's code sent with Rita's state fails at the provider (PKCE verifier, client).
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    url = start(lab, address, "microsoft")
    assert lab.rita.get(callback_path(back)).status_code == 400
    url = start(lab, address, "microsoft")
    mixed = lab.seen.add(lab.rita.get(callback_path({**back, "state": query(url)["state"]})))
    assert mixed.status_code == 400, mixed.get_data(as_text=True)[:2000]
    assert "Sign in again" in mixed.get_data(as_text=True)
    nothing_stored(lab)


def test_oauth_callback_parameters_cannot_redirect_elsewhere_or_be_doubled(lab, mail_user):
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    url = start(lab, address, "microsoft")
    assert query(url)["redirect_uri"] == base.CALLBACK
    back = lab.oauth.approve(url, login=address)
    # A second state before the real one: the first counts, and it is wrong.
    doubled = ("/integrated-email/oauth/callback?state=forged&" +
               callback_path(back).split("?", 1)[1])
    assert lab.rita.get(doubled).status_code == 400
    url = start(lab, address, "microsoft")
    back = lab.oauth.approve(url, login=address)
    extra = callback_path({**back, "next": "https://evil.test/", "redirect_uri":
                           "https://evil.test/", "return_to": "//evil.test"})
    done = lab.seen.add(lab.rita.get(extra + "&code=forged-second-code"))
    assert done.status_code == 302
    assert done.headers["Location"].endswith("/integrated-email/mailboxes")
    assert len(mailboxes(lab.addon)) == 1


@pytest.mark.parametrize("key", ["__class__", "GOOGLE", "", "google ", "__init__", "x" * 5000])
def test_oauth_unknown_provider_names_are_refused_plainly(lab, key):
    refused = lab.seen.add(lab.rita.post(START, data=new_mailbox("r@example.test",
                                                                 provider=key)))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 403 and "Sign-in with this provider is not turned on" in page
    assert "x" * 100 not in page and lab.oauth.authorize_requests == []


def test_oauth_another_users_mailbox_number_is_refused(lab, mail_user):
    mb = base.sign_in_microsoft(lab, mail_user)
    bob = signed_in(lab.app, lab.host.add_person("Bob", "bob@example.test"))
    for value in (str(mb.id), f" {mb.id}", f"{mb.id}.0", "-1", "1e3"):
        resp = bob.post(START, data=form(provider="microsoft", _mailbox_id=value))
        assert resp.status_code in (403, 404, 422), (value, resp.status_code)
        assert "Location" not in resp.headers
    assert lab.oauth.authorize_requests[-1:] != [] and len(lab.oauth.authorize_requests) == 1


def test_oauth_pending_sign_in_keeps_only_the_typed_fields_it_needs(lab, mail_user):
    """Fields a forged form adds (ids, servers, owners) never reach the new mailbox."""
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    url = start(lab, address, "microsoft", user_id="someone-else", id="1", in_host="evil.test",
                in_password="pw", oauth_provider="google", is_active="on", paused="on")
    with lab.rita.session_transaction() as sess:
        kept = set(sess["ie_oauth_pending"]["values"])
    from plugin.routes.oauth import KEPT
    assert kept <= set(KEPT)
    resp, _ = come_back(lab, url, address)
    assert resp.status_code == 302
    (mb,) = mailboxes(lab.addon)
    assert (mb.in_host, mb.oauth_provider, mb.in_password) == (
        "127.0.0.1", "microsoft", None)
    with lab.rita.session_transaction() as sess:
        assert "ie_oauth_pending" not in sess


# -- a hostile account address -----------------------------------------------------------

HOSTILE = [
    '<script>alert(1)</script>@contoso.test',
    'a@b.test>,evil@contoso.test',
    'rita@contoso.test\r\nBcc: evil@contoso.test',
    'rita@contoso.test\nX-Injected: 1',
    '"rita@contoso.test"@evil.test',
    "r" * 10_000 + "@contoso.test",
]


@pytest.mark.parametrize("account", HOSTILE, ids=range(len(HOSTILE)))
def test_oauth_a_hostile_account_address_is_never_connected_or_shown_raw(lab, account):
    url = start(lab, "rita@contoso.test", "microsoft")
    back = lab.oauth.approve(url, login=account)
    resp = lab.seen.add(lab.rita.get(callback_path(back)))
    page = resp.get_data(as_text=True)
    assert resp.status_code in (409, 502), page[:2000]
    assert "<script>alert" not in page and "\r\nBcc" not in str(resp.headers)
    nothing_stored(lab)
    if resp.status_code == 409 and "Use " in page:
        # "Use <that account>" posts it back: it is not a valid address, so the form says so.
        again = lab.rita.post(START, data=new_mailbox(account, accept_account=account))
        assert again.status_code == 422 and lab.oauth.authorize_requests[-1:] != []
        assert "<script>alert" not in again.get_data(as_text=True)
    nothing_stored(lab)


def test_oauth_accept_account_forged_cannot_bind_an_address_the_provider_did_not_vouch_for(
        lab, mail_user):
    """``accept_account`` only lets through the account the provider signed in; naming
    the boss's address in it connects nothing when the provider says another one."""
    mine = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    url = start(lab, f"boss@{MICROSOFT_DOMAIN}", "microsoft",
                accept_account=f"boss@{MICROSOFT_DOMAIN}")
    resp, _ = come_back(lab, url, mine)
    assert resp.status_code == 409
    nothing_stored(lab)
    # Accepting one's own account while typing the boss's address: the mailbox is the
    # account's, never the typed address.
    url = start(lab, f"boss@{MICROSOFT_DOMAIN}", "microsoft", accept_account=mine)
    resp, _ = come_back(lab, url, mine)
    assert resp.status_code == 302
    (mb,) = mailboxes(lab.addon)
    assert mb.email == mine and mb.in_login == mine


# -- a token endpoint that answers badly ---------------------------------------------------

def _claims(lab, token: dict, **change) -> dict:
    claims = {**lab.oauth.id_claims(token["id_token"]), **change}
    return {**token, "id_token": lab.oauth.id_token(
        {k: v for k, v in claims.items() if v is not None})}


def _unsigned(lab, token: dict, **change) -> str:
    """An ID token whose claims JSON only Python reads (NaN): the client skips signatures."""
    import base64
    claims = json.dumps({**lab.oauth.id_claims(token["id_token"]), **change}).encode()
    head, _, sig = token["id_token"].split(".")
    return f"{head}.{base64.urlsafe_b64encode(claims).decode().rstrip('=')}.{sig}"


BAD_ANSWERS = {
    "wrong audience": lambda lab, t: _claims(lab, t, aud="someone-elses-client"),
    "wrong nonce": lambda lab, t: _claims(lab, t, nonce="replayed"),
    "no nonce": lambda lab, t: _claims(lab, t, nonce=None),
    "expired id token": lambda lab, t: _claims(lab, t, exp=int(time.time()) - 3600),
    "id token not a JWT": lambda lab, t: {**t, "id_token": "not-a-jwt"},
    "id token a number": lambda lab, t: {**t, "id_token": 12345},
    "id token claims a list": lambda lab, t: {**t, "id_token": "e30.WzFd.sig"},
    "id token expiry NaN": lambda lab, t: {**t, "id_token": _unsigned(lab, t, exp=float("nan"))},
    "no access token": lambda lab, t: {k: v for k, v in t.items() if k != "access_token"},
    "access token a number": lambda lab, t: {**t, "access_token": 12345},
    "access token an object": lambda lab, t: {**t, "access_token": {"a": 1}},
    "access token with CR/LF": lambda lab, t: {**t, "access_token": "lab-at-x\r\nA1 LOGOUT"},
    "access token with ^A": lambda lab, t: {**t, "access_token": "lab-at-x\x01auth=x"},
    "access token of 10 MB": lambda lab, t: {**t, "access_token": "lab-at-" + "A" * 10**7},
    "refresh token a number": lambda lab, t: {**t, "refresh_token": 99},
    "expires_in text": lambda lab, t: {**t, "expires_in": "soon"},
    "expires_at text": lambda lab, t: {**{k: v for k, v in t.items() if k != "expires_in"},
                                       "expires_at": "soon"},
    "expires_in infinite": lambda lab, t: json.dumps(t)[:-1] + ', "expires_in": 1e400}',
    "a JSON list": lambda lab, t: "[1, 2]",
    "a JSON string": lambda lab, t: '"lab-at-only"',
    "deeply nested JSON": lambda lab, t: "[" * 100_000 + "]" * 100_000,
    "HTML with 200": lambda lab, t: "<html><body>Sign in to continue</body></html>",
    "10 MB of HTML": lambda lab, t: "<html>" + "x" * 10**7 + "</html>",
    "empty body": lambda lab, t: "",
}


@pytest.mark.parametrize("how", list(BAD_ANSWERS))
def test_oauth_a_misbehaving_token_endpoint_gives_a_sentence_and_stores_nothing(
        lab, mail_user, caplog, how):
    lab.oauth.token_rewrite = lambda token: BAD_ANSWERS[how](lab, token)
    lab.oauth.token_rewrite_mimetype = "text/html" if "HTML" in how else "application/json"
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    resp, _ = come_back(lab, start(lab, address, "microsoft"), address)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 502, (resp.status_code, page[:3000])
    assert "answered in a way we did not expect" in page
    assert len(page) < 100_000
    nothing_stored(lab)
    assert_no_secret_leaked(lab, caplog)


def test_oauth_an_endless_token_answer_is_cut_off_after_a_megabyte(lab, mail_user):
    """A token endpoint that streams without end is not read into memory: the client
    stops at a limit far above any real answer (a few KB) and says so plainly."""
    sent = []

    def endless(_token):
        for _ in range(64):  # 64 MB if nobody stops reading
            sent.append(1)
            yield b"x" * 2**20

    lab.oauth.token_rewrite = endless
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    resp, _ = come_back(lab, start(lab, address, "microsoft"), address)
    assert resp.status_code == 502 and "did not expect" in resp.get_data(as_text=True)
    assert len(sent) < 32, f"{len(sent)} MB were read"
    nothing_stored(lab)


def test_oauth_a_token_answer_dripping_slowly_is_given_up(lab, mail_user):
    """Each byte comes within the read timeout (3 s in the lab), the whole answer never:
    the client gives up after its time for the whole answer, not after each read."""
    def drip(_token):
        for _ in range(16):  # 8 s in all, over IE_OAUTH_TIMEOUT
            time.sleep(0.5)
            yield b" "
        yield b"<html></html>"

    lab.oauth.token_rewrite = drip
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    resp, _ = come_back(lab, start(lab, address, "microsoft"), address)
    assert resp.status_code == 502 and "did not answer in time" in resp.get_data(as_text=True)
    nothing_stored(lab)


def test_oauth_an_absurd_token_lifetime_is_capped_not_a_crash(lab, mail_user):
    lab.oauth.token_rewrite = lambda token: {**token, "expires_in": 10**30}
    mb = base.sign_in_microsoft(lab, mail_user)
    row = base.token_row(lab.addon, mb.id)
    expires = calendar.timegm(row.access_expires_at.utctimetuple())  # naive = UTC
    assert time.time() + 3600 < expires <= time.time() + 24 * 3600 + 60


def test_oauth_a_misbehaving_refresh_answer_keeps_the_mailbox_and_its_tokens(
        lab, mail_user, dovecot):
    from datetime import timedelta

    from sqlalchemy.orm import Session

    from plugin.fetching.sync import sync_mailbox
    from plugin.models._types import utcnow
    from plugin.models.oauth import OAuthToken
    mb = base.sign_in_microsoft(lab, mail_user)
    before = base.token_row(lab.addon, mb.id)
    for how in ("access token with CR/LF", "expires_in infinite", "a JSON list",
                "10 MB of HTML"):
        with Session(lab.addon.engine) as s, s.begin():
            s.get(OAuthToken, before.id).access_expires_at = utcnow() - timedelta(seconds=5)
        lab.oauth.rotate_refresh_tokens = False  # the refresh token survives a bad answer
        lab.oauth.token_rewrite = lambda token, how=how: BAD_ANSWERS[how](lab, {
            **token, "id_token": lab.oauth.id_token({"aud": "x"})})
        result = sync_mailbox(lab.addon, mb.id)
        assert result.error_kind == "oauth_provider", (how, result.error_kind)
        after = base.token_row(lab.addon, mb.id)
        assert after.refresh_token == before.refresh_token and after.refreshing_until is None
    lab.oauth.token_rewrite = None
    assert sync_mailbox(lab.addon, mb.id).error_kind is None


# -- logs at DEBUG, the admin form ----------------------------------------------------------

def test_oauth_no_token_in_debug_logs_of_authlib_urllib3_and_requests(lab, mail_user, caplog):
    # The client's loggers only: the lab provider's own (authlib.oauth2, authlib.oidc)
    # log the tokens it issues, and a real provider's logs are not ours.
    for name in ("authlib.integrations", "urllib3", "requests", "werkzeug", "plugin"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        mb = base.sign_in_microsoft(lab, mail_user)
        lab.seen.add(lab.rita.post("/integrated-email/setup/test", data=form(
            _mailbox_id=str(mb.id), protocol="imap")))
        lab.seen.add(lab.rita.post(f"/integrated-email/mailboxes/{mb.id}/delete", data=form()))
    finally:
        logging.getLogger("authlib.integrations").setLevel(logging.NOTSET)
    assert "127.0.0.1" in caplog.text  # urllib3 did log its requests
    assert_no_secret_leaked(lab, caplog)


@pytest.mark.parametrize("field, value, sentence", [
    ("microsoft_client_id", "abc\ndef", "client id"),
    ("microsoft_client_id", "a" * 300, "client id"),
    ("microsoft_client_id", "<b>id</b> x", "client id"),
    ("microsoft_client_secret", "s" * 100_000, "client secret"),
    ("microsoft_client_secret", "abc\r\ndef", "client secret"),
], ids=["id-newline", "id-300", "id-spaces", "secret-100k", "secret-newline"])
def test_oauth_admin_sign_in_form_refuses_ids_and_secrets_that_cannot_be_real(
        lab, field, value, sentence, caplog):
    resp = lab.seen.add(enable_providers(lab.admin, lab.clients, **{field: value}))
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422, page[:2000]
    assert f"The {sentence}" in page and "<b>id</b>" not in page
    if "secret" in field:
        assert value not in page
    # Nothing changed: the stored client still signs users in.
    url = start(lab, f"r@{MICROSOFT_DOMAIN}", "microsoft")
    assert query(url)["client_id"] == lab.clients["microsoft"].client_id
    assert_no_secret_leaked(lab, caplog)


def test_oauth_endpoints_moved_to_plain_http_are_never_used(lab, mail_user, caplog):
    """IE_OAUTH_ENDPOINTS is the deployment's (trusted, it may name a private address:
    the lab is on loopback), but a token must never travel without TLS."""
    endpoints = lab.app.config["IE_OAUTH_ENDPOINTS"]
    endpoints["microsoft"] = {**endpoints["microsoft"],
                              "token_url": endpoints["microsoft"]["token_url"].replace(
                                  "https://", "http://")}
    page = lab.seen.add(lab.rita.get("/integrated-email/mailboxes/new"))
    assert page.status_code == 200
    resp = lab.seen.add(lab.rita.post(START, data=new_mailbox(
        f"{mail_user.login}@{MICROSOFT_DOMAIN}")))
    assert "Location" not in resp.headers and lab.oauth.token_requests == []
    assert resp.status_code == 403 and "not turned on" in resp.get_data(as_text=True)
    assert "sign-in with microsoft is off: IE_OAUTH_ENDPOINTS: token_url must be an " \
        "https:// URL" in caplog.text
    nothing_stored(lab)
    # Google, configured correctly, still works.
    assert "Location" in lab.rita.post(START, data=new_mailbox(
        f"{mail_user.login}@fabrikam.test", provider="google")).headers


@pytest.mark.parametrize("answer", ['[1, 2]', '"a@b.test"', '{"email": ["a@b.test"]}',
                                    '{"email": "<x>@fabrikam.test"}', "not json", "null"])
def test_oauth_google_userinfo_answering_nonsense_is_no_address(lab, mail_user, answer):
    """Without an ID token the address comes from userinfo (Google): its answer is checked
    as carefully as the token endpoint's."""
    lab.oauth.token_rewrite = lambda token: {k: v for k, v in token.items() if k != "id_token"}
    lab.oauth.userinfo_answer = answer
    address = f"{mail_user.login}@fabrikam.test"
    resp, _ = come_back(lab, start(lab, address, "google"), address)
    page = resp.get_data(as_text=True)
    assert resp.status_code in (409, 502), page[:2000]
    assert "<x>" not in page
    nothing_stored(lab)


def test_oauth_the_providers_spelling_of_the_same_address_is_the_same_account(lab, mail_user):
    """Microsoft answers the UPN as it was created ("Rita.Smith@Contoso.com") while the
    recruiter types it in lower case: one account (same_account says case-insensitive),
    not "you signed in as another account"."""
    typed = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    spelled = f"{mail_user.login.capitalize()}@{MICROSOFT_DOMAIN.upper()}"
    resp, _ = come_back(lab, start(lab, typed, "microsoft"), spelled)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    (mb,) = mailboxes(lab.addon)
    assert mb.email.lower() == typed


def test_oauth_the_providers_error_text_never_reaches_the_page_or_log(lab, mail_user, caplog):
    url = start(lab, f"{mail_user.login}@{MICROSOFT_DOMAIN}", "microsoft")
    resp = lab.seen.add(lab.rita.get(callback_path({
        "state": query(url)["state"], "error": "access_denied\r\n<script>x</script>",
        "error_description": "<script>alert(1)</script> lab-at-leak",
        "error_uri": "https://evil.test/"})))
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "did not expect" in page
    for text in ("<script>", "lab-at-leak", "evil.test"):
        assert text not in page and text not in caplog.text
    nothing_stored(lab)


def test_oauth_a_recruiter_cannot_change_the_sign_in_settings(lab, mail_user):
    """A curious colleague posting the admin's form with her own app's client: refused,
    and users keep signing in with the admin's client."""
    mine = lab.oauth.add_client(redirect_uris=(base.CALLBACK,))
    resp = lab.seen.add(enable_providers(lab.rita, {"google": mine, "microsoft": mine}))
    assert resp.status_code == 403
    url = start(lab, f"{mail_user.login}@{MICROSOFT_DOMAIN}", "microsoft")
    assert query(url)["client_id"] == lab.clients["microsoft"].client_id
