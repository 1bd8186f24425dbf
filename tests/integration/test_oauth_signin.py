"""Issue 12 end to end through HTTP on SQLite and PostgreSQL: an admin enables Google and
Microsoft, a recruiter signs in at the lab provider, and the mailbox fetches (real
Dovecot with its oauth2 passdb), tests its connection and sends (lab SMTP with XOAUTH2)
on that sign-in; expiry, rotation, revocation and every bad callback."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from plugin.fetching.sync import sync_mailbox
from plugin.models import Mailbox, Message
from plugin.models.oauth import OAuthProviderSettings, OAuthToken
from plugin.models._types import utcnow
from tests.helpers import form, raw_mail, save_global_settings, signed_in
from tests.integration.oauth_helpers import (
    GOOGLE_DOMAIN,
    MICROSOFT_DOMAIN,
    callback_path,
    enable_providers,
    point_at_lab,
    query,
)

CALLBACK = "http://localhost/integrated-email/oauth/callback"


class Seen:
    """Everything a leak could hide in: response bodies and headers of the test."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, resp) -> object:
        self.texts.append(resp.get_data(as_text=True))
        self.texts.append(str(resp.headers))
        return resp


@pytest.fixture
def lab(mini, oauth_lab, dovecot, smtp_lab, caplog):
    """Admin with both providers enabled; Rita, a recruiter, signed in to the ATS."""
    caplog.set_level(logging.DEBUG)
    app, host, addon = mini
    clients = point_at_lab(app, oauth_lab, dovecot, smtp_lab, CALLBACK)
    admin = host.add_person("Ada Admin", "ada@example.test", admin=True)
    rita = host.add_person("Rita", "rita@example.test")
    admin_client = signed_in(app, admin)
    save_global_settings(admin_client)
    resp = enable_providers(admin_client, clients)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]
    smtp_lab.clear()
    seen = Seen()
    return type("Lab", (), dict(app=app, host=host, addon=addon, clients=clients,
                                admin=admin_client, rita=signed_in(app, rita),
                                seen=seen, oauth=oauth_lab))


def start(lab, address: str, provider: str, **extra):
    """Rita clicks "Sign in with <provider>" on the new-mailbox form."""
    values = {"account_name": "Work", "email": address, "protocol": "imap",
              "sharing": "private", "provider": provider, **extra}
    resp = lab.seen.add(lab.rita.post("/integrated-email/oauth/start", data=form(**values)))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    return resp.headers["Location"]


def come_back(lab, authorize_url: str, login: str, decision: str = "approve"):
    """Approve (or deny) at the lab provider's page, then follow its redirect back."""
    back = lab.oauth.approve(authorize_url, login=login, decision=decision)
    return lab.seen.add(lab.rita.get(callback_path(back))), back


def mailboxes(addon) -> list[Mailbox]:
    with Session(addon.engine) as s:
        return list(s.scalars(select(Mailbox).order_by(Mailbox.id)))


def token_row(addon, mailbox_id: int) -> OAuthToken | None:
    with Session(addon.engine) as s:
        return s.scalar(select(OAuthToken).where(OAuthToken.mailbox_id == mailbox_id))


def database_text(addon) -> str:
    """Every column of every add-on table, as text (for plaintext-token checks)."""
    out = []
    with addon.engine.connect() as conn:
        for table in ("ie_mailbox", "ie_oauth_token", "ie_oauth_provider", "ie_message"):
            out += [repr(tuple(r)) for r in conn.execute(text(f"SELECT * FROM {table}"))]
    return "\n".join(out)


def assert_no_secret_leaked(lab, caplog) -> None:
    everything = "\n".join(lab.seen.texts) + caplog.text + database_text(lab.addon)
    for prefix in ("lab-at-", "lab-rt-"):
        assert prefix not in everything, f"a {prefix}… token leaked"
    for client in lab.clients.values():
        assert client.client_secret not in everything


def sign_in_microsoft(lab, mail_user) -> Mailbox:
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    url = start(lab, address, "microsoft")
    resp, _ = come_back(lab, url, address)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/mailboxes")
    (mb,) = [m for m in mailboxes(lab.addon) if m.email == address]
    return mb


def test_oauth_microsoft_sign_in_then_test_fetch_send_and_file_in_sent(
        lab, mail_user, dovecot, smtp_lab, caplog):
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    page = lab.seen.add(lab.rita.post("/integrated-email/setup/fields", data=form(
        account_name="Work", email=address, _previous_email="", protocol="imap"),
        headers={"HX-Request": "true", "HX-Trigger-Name": "email"})).get_data(as_text=True)
    assert "Sign in with Microsoft" in page and "data-offer" in page
    url = start(lab, address, "microsoft")
    params = query(url)
    assert url.startswith(lab.oauth.authorize_url)
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["login_hint"] == address and params["redirect_uri"] == CALLBACK
    assert set(params["scope"].split()) == {
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/POP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send", "offline_access", "openid", "email"}
    resp, _ = come_back(lab, url, address)
    assert resp.status_code == 302
    (mb,) = mailboxes(lab.addon)
    assert (mb.oauth_provider, mb.email, mb.is_active, mb.in_password) == (
        "microsoft", address, True, None)
    listing = lab.seen.add(lab.rita.get("/integrated-email/mailboxes")).get_data(as_text=True)
    assert f"Signed in with Microsoft as {address}" in listing
    tested = lab.seen.add(lab.rita.post("/integrated-email/setup/test", data=form(
        _mailbox_id=str(mb.id), protocol="imap"))).get_data(as_text=True)
    assert tested.count("Signed in successfully.") == 2, tested
    dovecot.deliver(mail_user, raw_mail("cand@example.test", address, "My CV"))
    result = sync_mailbox(lab.addon, mb.id)
    assert result.error_kind is None and result.stored == 1
    sent = lab.seen.add(lab.rita.post("/integrated-email/compose", headers={"HX-Request": "true"},
                                      data=form(to="cand@example.test", subject="Thanks",
                                                body="Got it.")))
    assert "Sent." in sent.get_data(as_text=True)
    (got,) = smtp_lab.wait_for(1)
    assert got.login == address and got.mail_from == address
    assert any(b"Thanks" in raw for _n, _f, raw in dovecot.list_messages(mail_user, "Sent"))
    # The edit page has no password or server field, and saving a new name works.
    edit = lab.seen.add(lab.rita.get(f"/integrated-email/mailboxes/{mb.id}")).get_data(
        as_text=True)
    assert 'name="in_password"' not in edit and 'name="in_host"' not in edit
    assert "Sign in with Microsoft again" in edit
    saved = lab.seen.add(lab.rita.post(f"/integrated-email/mailboxes/{mb.id}", data=form(
        account_name="Renamed", protocol="imap", sharing="public")))
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    (mb,) = mailboxes(lab.addon)
    assert (mb.account_name, mb.sharing, mb.oauth_provider) == ("Renamed", "public", "microsoft")
    assert_no_secret_leaked(lab, caplog)


def test_oauth_google_asks_for_offline_access_and_sends_on_pop3(
        lab, mail_user, dovecot, smtp_lab, caplog):
    address = f"{mail_user.login}@{GOOGLE_DOMAIN}"
    url = start(lab, address, "google", protocol="pop3", delete_policy="leave")
    params = query(url)
    assert params["access_type"] == "offline" and params["prompt"] == "consent"
    assert set(params["scope"].split()) == {"https://mail.google.com/", "openid", "email"}
    resp, _ = come_back(lab, url, address)
    assert resp.status_code == 302
    (mb,) = mailboxes(lab.addon)
    assert (mb.oauth_provider, mb.protocol, mb.in_port) == ("google", "pop3", dovecot.pop3s)
    row = token_row(lab.addon, mb.id)
    assert row.refresh_token is not None  # offline access gave one
    dovecot.deliver(mail_user, raw_mail("cand@example.test", address, "Over POP3"))
    assert sync_mailbox(lab.addon, mb.id).stored == 1
    # Removing the mailbox withdraws the grant at Google (the lab's revocation endpoint).
    refresh = lab.addon.secrets.decrypt(row.refresh_token)
    lab.seen.add(lab.rita.post(f"/integrated-email/mailboxes/{mb.id}/delete", data=form()))
    assert mailboxes(lab.addon) == []
    assert lab.oauth.find(refresh).refresh_revoked
    assert_no_secret_leaked(lab, caplog)


def test_oauth_expiry_refreshes_once_and_stores_the_rotated_refresh_token(
        lab, mail_user, dovecot):
    lab.oauth.access_token_lifetime = 3600
    mb = sign_in_microsoft(lab, mail_user)
    before = token_row(lab.addon, mb.id)
    dovecot.deliver(mail_user, raw_mail("a@example.test", mb.email, "One"))
    n = len(lab.oauth.token_requests)
    assert sync_mailbox(lab.addon, mb.id).stored == 1
    assert len(lab.oauth.token_requests) == n  # a valid token: no refresh on a poll
    with Session(lab.addon.engine) as s, s.begin():  # the hour has passed
        s.get(OAuthToken, before.id).access_expires_at = utcnow() - timedelta(seconds=5)
    for i in range(3):
        dovecot.deliver(mail_user, raw_mail("a@example.test", mb.email, f"Later {i}"))
    assert sync_mailbox(lab.addon, mb.id).stored == 3
    refreshes = [r for r in lab.oauth.token_requests[n:] if r["grant_type"] == "refresh_token"]
    assert len(refreshes) == 1
    after = token_row(lab.addon, mb.id)
    old_rt = lab.addon.secrets.decrypt(before.refresh_token)
    new_rt = lab.addon.secrets.decrypt(after.refresh_token)
    assert new_rt != old_rt and lab.oauth.find(old_rt).refresh_revoked  # rotated, Microsoft-style
    assert sync_mailbox(lab.addon, mb.id).error_kind is None


def test_oauth_revoked_sign_in_pauses_and_signing_in_again_resumes_without_duplicates(
        lab, mail_user, dovecot, caplog):
    mb = sign_in_microsoft(lab, mail_user)
    dovecot.deliver(mail_user, raw_mail("a@example.test", mb.email, "Before"))
    assert sync_mailbox(lab.addon, mb.id).stored == 1
    row = token_row(lab.addon, mb.id)
    lab.oauth.revoke_grant(lab.addon.secrets.decrypt(row.refresh_token))
    dovecot.deliver(mail_user, raw_mail("a@example.test", mb.email, "During"))
    result = sync_mailbox(lab.addon, mb.id)
    assert result.error_kind == "oauth_sign_in_again"
    (paused,) = mailboxes(lab.addon)
    assert paused.paused and paused.pause_reason == "oauth"
    panel = lab.seen.add(lab.rita.get("/integrated-email/mailboxes")).get_data(as_text=True)
    assert "Sign in with Microsoft again" in panel and "has expired or was withdrawn" in panel
    # Signing in again from the status panel resumes the same mailbox.
    resp = lab.seen.add(lab.rita.post("/integrated-email/oauth/start", data=form(
        _mailbox_id=str(mb.id), provider="microsoft")))
    back, _ = come_back(lab, resp.headers["Location"], mb.email)
    assert back.status_code == 302
    (again,) = mailboxes(lab.addon)
    assert again.id == mb.id and not again.paused
    dovecot.deliver(mail_user, raw_mail("a@example.test", mb.email, "After"))
    assert sync_mailbox(lab.addon, mb.id).stored == 2  # "During" and "After", once each
    with Session(lab.addon.engine) as s:
        subjects = sorted(s.scalars(select(Message.subject).where(Message.mailbox_id == mb.id)))
    assert subjects == ["After", "Before", "During"]
    assert_no_secret_leaked(lab, caplog)


# -- bad input: a clear sentence, nothing stored ----------------------------------------

def _nothing_stored(lab) -> None:
    assert mailboxes(lab.addon) == []
    with Session(lab.addon.engine) as s:
        assert s.scalars(select(OAuthToken)).all() == []


def test_oauth_wrong_reused_or_missing_state_is_refused(lab, mail_user, caplog):
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    url = start(lab, address, "microsoft")
    back = lab.oauth.approve(url, login=address)
    wrong = lab.seen.add(lab.rita.get(callback_path({**back, "state": "forged"})))
    assert wrong.status_code == 400 and "already used" in wrong.get_data(as_text=True)
    _nothing_stored(lab)
    # The pending sign-in was spent by the forged attempt: the real one is refused too.
    replay = lab.seen.add(lab.rita.get(callback_path(back)))
    assert replay.status_code == 400
    _nothing_stored(lab)
    # A fresh sign-in works once, and its callback cannot be replayed.
    url = start(lab, address, "microsoft")
    back = lab.oauth.approve(url, login=address)
    assert lab.rita.get(callback_path(back)).status_code == 302
    again = lab.seen.add(lab.rita.get(callback_path(back)))
    assert again.status_code == 400 and len(mailboxes(lab.addon)) == 1
    assert_no_secret_leaked(lab, caplog)


def test_oauth_denied_consent_and_missing_code(lab, mail_user):
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    denied, _ = come_back(lab, start(lab, address, "microsoft"), address, decision="deny")
    assert denied.status_code == 400
    assert "Access was not allowed" in denied.get_data(as_text=True)
    url = start(lab, address, "microsoft")
    state = query(url)["state"]
    missing = lab.seen.add(lab.rita.get(callback_path({"state": state})))
    assert missing.status_code == 400 and "did not expect" in missing.get_data(as_text=True)
    _nothing_stored(lab)


def test_oauth_a_different_account_is_refused_unless_confirmed(lab, mail_user, dovecot):
    address = f"{mail_user.login}@{GOOGLE_DOMAIN}"
    other = dovecot.add_user(f"{mail_user.login}x", "pw-other")
    other_address = f"{other.login}@{GOOGLE_DOMAIN}"
    resp, _ = come_back(lab, start(lab, address, "google"), other_address)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert f"as {other_address}, but this mailbox is for {address}" in page
    assert f"Use {other_address}" in page
    _nothing_stored(lab)
    google_tokens = lab.oauth.tokens_for(other_address)
    assert google_tokens and all(t.refresh_revoked for t in google_tokens)  # given back
    # "Use other@…" starts again for that account; signing in as it connects it.
    confirm = lab.seen.add(lab.rita.post("/integrated-email/oauth/start", data=form(
        provider="google", accept_account=other_address, account_name="Work",
        email=other_address, protocol="imap", sharing="private")))
    back, _ = come_back(lab, confirm.headers["Location"], other_address)
    assert back.status_code == 302
    (mb,) = mailboxes(lab.addon)
    assert mb.email == other_address


def test_oauth_token_endpoint_down_or_slow(lab, mail_user):
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    lab.oauth.token_status = 503
    down, _ = come_back(lab, start(lab, address, "microsoft"), address)
    assert down.status_code == 502 and "had a problem" in down.get_data(as_text=True)
    lab.oauth.token_status = None
    lab.oauth.token_delay = 4.5  # over IE_OAUTH_TIMEOUT (3 s)
    slow, _ = come_back(lab, start(lab, address, "microsoft"), address)
    assert slow.status_code == 502 and "did not answer in time" in slow.get_data(as_text=True)
    lab.oauth.token_delay = 0
    _nothing_stored(lab)


def test_oauth_provider_not_enabled_and_another_users_mailbox(lab, mail_user):
    enable_providers(lab.admin, lab.clients, google_enabled="")
    with Session(lab.addon.engine) as s:
        row = s.scalar(select(OAuthProviderSettings).where(
            OAuthProviderSettings.provider == "google"))
        assert not row.enabled and row.client_secret  # the secret stays for later
    refused = lab.seen.add(lab.rita.post("/integrated-email/oauth/start", data=form(
        account_name="Work", email=f"{mail_user.login}@{GOOGLE_DOMAIN}", protocol="imap",
        sharing="private", provider="google")))
    assert refused.status_code == 403
    assert "Sign-in with Google is not turned on" in refused.get_data(as_text=True)
    form_page = lab.rita.post("/integrated-email/setup/fields", data=form(
        email=f"x@{GOOGLE_DOMAIN}", _previous_email=""),
        headers={"HX-Request": "true", "HX-Trigger-Name": "email"}).get_data(as_text=True)
    assert "Sign in with Google" not in form_page
    # Another recruiter cannot sign in again "for" Rita's mailbox.
    mb = sign_in_microsoft(lab, mail_user)
    bob = lab.host.add_person("Bob", "bob@example.test")
    bob_client = signed_in(lab.app, bob)
    theirs = bob_client.post("/integrated-email/oauth/start", data=form(
        _mailbox_id=str(mb.id), provider="microsoft"))
    assert theirs.status_code == 404
    # ...nor finish Rita's sign-in in his session.
    url = start(lab, mb.email, "microsoft", _mailbox_id=str(mb.id))
    back = lab.oauth.approve(url, login=mb.email)
    assert bob_client.get(callback_path(back)).status_code == 400


def test_oauth_admin_sees_the_redirect_uri_and_secrets_are_never_shown(lab, caplog):
    page = lab.seen.add(lab.admin.get("/integrated-email/admin/settings")).get_data(as_text=True)
    assert CALLBACK in page and "A secret is stored; leave blank to keep it." in page
    bad = lab.seen.add(enable_providers(lab.admin, lab.clients, microsoft_tenant="not a tenant"))
    assert bad.status_code == 422 and "The tenant must be" in bad.get_data(as_text=True)
    assert_no_secret_leaked(lab, caplog)


def test_oauth_deployment_config_turns_a_provider_on(mini, oauth_lab, dovecot, smtp_lab):
    app, host, addon = mini
    clients = point_at_lab(app, oauth_lab, dovecot, smtp_lab, CALLBACK)
    app.config["IE_OAUTH_MICROSOFT_CLIENT_ID"] = clients["microsoft"].client_id
    app.config["IE_OAUTH_MICROSOFT_CLIENT_SECRET"] = clients["microsoft"].client_secret
    admin = signed_in(app, host.add_person("Ada", "ada@example.test", admin=True))
    save_global_settings(admin)
    page = admin.get("/integrated-email/admin/settings").get_data(as_text=True)
    assert "Turned on by your deployment&#39;s configuration (IE_OAUTH_MICROSOFT_CLIENT_ID)" in page
    assert clients["microsoft"].client_secret not in page
    rita = signed_in(app, host.add_person("Rita", "rita@example.test"))
    resp = rita.post("/integrated-email/oauth/start", data=form(
        account_name="Work", email=f"r@{MICROSOFT_DOMAIN}", protocol="imap",
        sharing="private", provider="microsoft"))
    assert resp.status_code == 302 and query(resp.headers["Location"])["client_id"] == \
        clients["microsoft"].client_id


def test_oauth_refusals_from_the_htmx_form_come_back_in_the_form(lab, mail_user):
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    headers = {"HX-Request": "true"}
    missing = lab.rita.post("/integrated-email/oauth/start", headers=headers, data=form(
        account_name="", email=address, protocol="imap", sharing="private",
        provider="microsoft"))
    page = missing.get_data(as_text=True)
    assert missing.status_code == 422 and 'id="mailbox-form"' in page
    assert "Give this mailbox a name" in page and "Sign in with Microsoft" in page
    enable_providers(lab.admin, lab.clients, microsoft_enabled="")
    off = lab.rita.post("/integrated-email/oauth/start", headers=headers, data=form(
        account_name="Work", email=address, protocol="imap", sharing="private",
        provider="microsoft"))
    page = off.get_data(as_text=True)
    assert off.status_code == 422 and "Sign-in with Microsoft is not turned on" in page
    assert f'value="{address}"' in page  # nothing typed is lost
    _nothing_stored(lab)


def test_oauth_a_password_mailbox_is_offered_sign_in_and_switches(lab, mail_user, dovecot,
                                                                   smtp_lab):
    from tests.helpers import mailbox_form
    address = f"{mail_user.login}@{MICROSOFT_DOMAIN}"
    saved = lab.rita.post("/integrated-email/mailboxes/new", data=mailbox_form(
        dovecot, smtp_lab, mail_user, email=address, use_password="on"))
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    (mb,) = mailboxes(lab.addon)
    edit = lab.rita.get(f"/integrated-email/mailboxes/{mb.id}").get_data(as_text=True)
    assert "Sign in with Microsoft instead" in edit and "data-offer" not in edit
    resp = lab.rita.post("/integrated-email/oauth/start", data=form(
        _mailbox_id=str(mb.id), provider="microsoft"))
    # Signing in as another account is refused; as the mailbox's address it switches.
    other = f"someone.else@{MICROSOFT_DOMAIN}"
    back, _ = come_back(lab, resp.headers["Location"], other)
    assert back.status_code == 409 and "Use " not in back.get_data(as_text=True)
    resp = lab.rita.post("/integrated-email/oauth/start", data=form(
        _mailbox_id=str(mb.id), provider="microsoft"))
    back, _ = come_back(lab, resp.headers["Location"], address)
    assert back.status_code == 302
    (mb,) = mailboxes(lab.addon)
    assert mb.oauth_provider == "microsoft" and mb.in_password is None
    dovecot.deliver(mail_user, raw_mail("a@example.test", address, "Switched"))
    assert sync_mailbox(lab.addon, mb.id).stored == 1
