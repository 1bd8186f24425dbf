"""Per-mailbox OAuth tokens at rest (SQLite and PostgreSQL) against the lab provider:
refresh before expiry, rotation stored, two refreshers, invalid_grant pauses."""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from plugin.crypto import SecretBox
from plugin.db import Base, make_engine
from plugin.models import Mailbox
from plugin.models.oauth import OAuthProviderSettings, OAuthToken
from plugin.setup import oauth_client as oc
from plugin.setup import oauth_tokens as ot
from plugin.setup.oauth_providers import MICROSOFT, configured, get_provider

REDIRECT = "http://127.0.0.1:5999/cb"


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


KEY = Fernet.generate_key().decode()


@pytest.fixture
def box():
    return SecretBox([KEY])


@pytest.fixture
def flow(oauth_lab):
    """(provider, client config, refresh callable) pointed at the lab, Microsoft-style."""
    client = oauth_lab.add_client(redirect_uris=(REDIRECT,))
    provider = configured(get_provider(MICROSOFT), {
        "authorize_url": oauth_lab.authorize_url, "token_url": oauth_lab.token_url})
    config = oc.ClientConfig(client.client_id, client.client_secret, REDIRECT,
                             ca_file=str(oauth_lab.certs.ca_cert), timeout=3)
    return provider, config, lambda rt: oc.refresh(provider, config, rt)


def signed_in_mailbox(engine, box, oauth_lab, flow, login="ann@example.test") -> tuple[int, str]:
    provider, config, _ = flow
    request = oc.authorization_request(provider, config)
    callback = oauth_lab.approve(request.url, login=login)
    tokens = oc.exchange_code(provider, config, callback["code"], request)
    with Session(engine) as s, s.begin():
        mb = Mailbox(user_id="u1", account_name="Work", email=login, out_host="smtp.example",
                     out_port=587, out_security="starttls")
        s.add(mb)
        s.flush()
        ot.save_sign_in(s, box, mb.id, MICROSOFT, tokens)
        mailbox_id = mb.id
    return mailbox_id, tokens.refresh_token


def stored(engine, box, mailbox_id) -> dict:
    with Session(engine) as s:
        row = s.scalar(select(OAuthToken).where(OAuthToken.mailbox_id == mailbox_id))
        return {"refresh": box.decrypt(row.refresh_token) if row.refresh_token else None,
                "access": box.decrypt(row.access_token) if row.access_token else None,
                "version": row.version, "claim": row.refreshing_until}


def mailbox(engine, mailbox_id) -> Mailbox:
    with Session(engine, expire_on_commit=False) as s:
        return s.get(Mailbox, mailbox_id)


def test_oauth_valid_access_token_costs_no_refresh(engine, box, oauth_lab, flow):
    oauth_lab.access_token_lifetime = 3600
    mailbox_id, _ = signed_in_mailbox(engine, box, oauth_lab, flow)
    before = len(oauth_lab.token_requests)
    first = ot.access_token(engine, box, mailbox_id, flow[2])
    assert ot.access_token(engine, box, mailbox_id, flow[2]) == first
    assert len(oauth_lab.token_requests) == before
    assert oauth_lab.introspect(first)["active"] is True


def test_oauth_token_near_expiry_is_refreshed_once_and_the_rotated_one_stored(
        engine, box, oauth_lab, flow):
    oauth_lab.access_token_lifetime = 60  # inside the 5-minute margin
    mailbox_id, old_refresh = signed_in_mailbox(engine, box, oauth_lab, flow)
    old_access = stored(engine, box, mailbox_id)["access"]
    oauth_lab.access_token_lifetime = 3600
    new_access = ot.access_token(engine, box, mailbox_id, flow[2])
    assert new_access != old_access and oauth_lab.introspect(new_access)["active"] is True
    row = stored(engine, box, mailbox_id)
    assert row["refresh"] != old_refresh and row["access"] == new_access and row["claim"] is None
    assert ot.access_token(engine, box, mailbox_id, flow[2]) == new_access
    assert [r["grant_type"] for r in oauth_lab.token_requests].count("refresh_token") == 1
    # the stored (rotated) refresh token is the live one
    assert oc.refresh(flow[0], flow[1], row["refresh"]).rotated


def test_oauth_two_refreshers_at_once_leave_one_valid_token_and_no_invalid_grant(
        engine, box, oauth_lab, flow):
    oauth_lab.access_token_lifetime = 1
    mailbox_id, _ = signed_in_mailbox(engine, box, oauth_lab, flow)
    oauth_lab.access_token_lifetime = 3600
    oauth_lab.token_delay = 0.4  # both are surely inside the race window
    results, errors = [], []

    def worker():
        try:
            results.append(ot.access_token(engine, box, mailbox_id, flow[2]))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == [] and len(results) == 4 and len(set(results)) == 1
    assert [r["grant_type"] for r in oauth_lab.token_requests].count("refresh_token") == 1
    assert not mailbox(engine, mailbox_id).paused
    oauth_lab.token_delay = 0
    assert oc.refresh(flow[0], flow[1], stored(engine, box, mailbox_id)["refresh"]).rotated


def test_oauth_revoked_sign_in_pauses_the_mailbox_until_signed_in_again(
        engine, box, oauth_lab, flow, caplog):
    caplog.set_level(logging.DEBUG)
    oauth_lab.access_token_lifetime = 1
    mailbox_id, refresh = signed_in_mailbox(engine, box, oauth_lab, flow)
    oauth_lab.revoke_grant(refresh)
    with pytest.raises(oc.OAuthFailure) as info:
        ot.access_token(engine, box, mailbox_id, flow[2])
    assert info.value.kind == "sign_in_again"
    mb = mailbox(engine, mailbox_id)
    assert mb.paused and mb.pause_reason == "oauth" and "Sign in again" in mb.last_error
    assert stored(engine, box, mailbox_id)["refresh"] is None
    with pytest.raises(oc.OAuthFailure):  # no second call to the provider
        n = len(oauth_lab.token_requests)
        ot.access_token(engine, box, mailbox_id, flow[2])
    assert len(oauth_lab.token_requests) == n
    assert refresh not in caplog.text
    # Signing in again resumes it.
    oauth_lab.access_token_lifetime = 3600
    provider, config, _ = flow
    request = oc.authorization_request(provider, config)
    callback = oauth_lab.approve(request.url, login="ann@example.test")
    with Session(engine) as s, s.begin():
        ot.save_sign_in(s, box, mailbox_id, MICROSOFT,
                        oc.exchange_code(provider, config, callback["code"], request))
    assert not mailbox(engine, mailbox_id).paused
    assert oauth_lab.introspect(ot.access_token(engine, box, mailbox_id, flow[2]))["active"]


def test_oauth_provider_down_changes_nothing_and_does_not_pause(engine, box, oauth_lab, flow):
    oauth_lab.access_token_lifetime = 1
    mailbox_id, refresh = signed_in_mailbox(engine, box, oauth_lab, flow)
    oauth_lab.token_status = 503
    before = stored(engine, box, mailbox_id)
    with pytest.raises(oc.OAuthFailure) as info:
        ot.access_token(engine, box, mailbox_id, flow[2])
    assert info.value.kind == "provider_error" and not info.value.permanent
    after = stored(engine, box, mailbox_id)
    assert after["refresh"] == refresh == before["refresh"] and after["claim"] is None
    assert not mailbox(engine, mailbox_id).paused


def test_oauth_no_token_or_secret_is_stored_in_plaintext(engine, box, oauth_lab, flow):
    mailbox_id, refresh = signed_in_mailbox(engine, box, oauth_lab, flow)
    access = stored(engine, box, mailbox_id)["access"]
    with Session(engine) as s, s.begin():
        s.add(OAuthProviderSettings(provider=MICROSOFT, enabled=True, client_id="cid",
                                    client_secret=box.encrypt(flow[1].client_secret),
                                    tenant="organizations"))
    with engine.connect() as conn:
        dump = repr(conn.execute(text("SELECT * FROM ie_oauth_token")).all())
        dump += repr(conn.execute(text("SELECT * FROM ie_oauth_provider")).all())
    for secret in (refresh, access, flow[1].client_secret):
        assert secret not in dump
    assert "ann@example.test" in dump  # the account address is kept, on purpose


def test_oauth_claim_of_a_crashed_process_lapses(engine, box, oauth_lab, flow):
    oauth_lab.access_token_lifetime = 1
    mailbox_id, _ = signed_in_mailbox(engine, box, oauth_lab, flow)
    oauth_lab.access_token_lifetime = 3600
    with engine.begin() as conn:  # a process claimed the refresh, then died
        conn.execute(OAuthToken.__table__.update().values(
            version=OAuthToken.__table__.c.version + 1,
            refreshing_until=ot.utcnow() - timedelta(seconds=1)))
    assert oauth_lab.introspect(ot.access_token(engine, box, mailbox_id, flow[2]))["active"]


def test_oauth_without_a_sign_in_says_sign_in_again(engine, box, flow):
    with pytest.raises(oc.OAuthFailure) as info:
        ot.access_token(engine, box, 424242, flow[2])
    assert info.value.kind == "sign_in_again"
    assert dataclasses.is_dataclass(oc.TokenSet)


def test_oauth_rotate_keys_reencrypts_tokens_and_client_secrets(engine, box, oauth_lab, flow):
    from types import SimpleNamespace

    from sqlalchemy.orm import sessionmaker

    from plugin.setup.secrets import rotate_all

    mailbox_id, refresh = signed_in_mailbox(engine, box, oauth_lab, flow)
    with Session(engine) as s, s.begin():
        s.add(OAuthProviderSettings(provider=MICROSOFT, enabled=True, client_id="cid",
                                    client_secret=box.encrypt("the-client-secret")))
    new_key = Fernet.generate_key().decode()
    both = SecretBox([new_key, KEY])
    done, total = rotate_all(SimpleNamespace(secrets=both, session=sessionmaker(engine)))
    assert done == total == 3
    only_new = SecretBox([new_key])
    assert stored(engine, only_new, mailbox_id)["refresh"] == refresh
    with Session(engine) as s:
        secret = s.scalar(select(OAuthProviderSettings.client_secret))
    assert only_new.decrypt(secret) == "the-client-secret"


def test_oauth_provider_settings_enable_keep_the_secret_and_check_the_tenant(engine, box):
    from plugin.setup import oauth_settings as os_

    with Session(engine) as s, s.begin():
        with pytest.raises(ValueError, match="client id and secret"):
            os_.save_provider(s, box, MICROSOFT, enabled=True, client_id="cid")
    with Session(engine) as s, s.begin():
        os_.save_provider(s, box, MICROSOFT, enabled=False, client_id="cid",
                          client_secret="s3cret-value", tenant="organizations")
        assert os_.client_for(s, box, MICROSOFT, REDIRECT) is None  # not enabled yet
    with Session(engine) as s, s.begin():
        os_.save_provider(s, box, MICROSOFT, enabled=True, client_id="cid", client_secret="",
                          tenant="organizations")  # an empty secret keeps the stored one
        provider, config = os_.client_for(s, box, MICROSOFT, REDIRECT)
        assert config.client_secret == "s3cret-value" and "s3cret" not in repr(config)
        assert "/organizations/oauth2/v2.0/token" in provider.token_url
        assert os_.enabled_keys(s) == [MICROSOFT]
        with pytest.raises(ValueError, match="tenant"):
            os_.save_provider(s, box, MICROSOFT, enabled=True, client_id="cid",
                              tenant="evil.example/x?")
        with pytest.raises(ValueError):
            os_.save_provider(s, box, "yahoo", enabled=True, client_id="x", client_secret="y")
    with engine.connect() as conn:
        assert "s3cret-value" not in repr(conn.execute(text("SELECT * FROM ie_oauth_provider"))
                                          .all())


def test_oauth_stored_sign_in_opens_imap_and_sends_through_the_credentials_helpers(
        engine, box, oauth_lab, flow, dovecot, smtp_lab, mail_user):
    from email.message import EmailMessage

    from plugin.mail.connect import ConnectionPolicy
    from plugin.mail.imap import ImapSession
    from plugin.mail.smtp import SmtpSession
    from plugin.setup.credentials import incoming_settings, outgoing_settings
    from tests.lab.servers import HOST

    mailbox_id, _ = signed_in_mailbox(engine, box, oauth_lab, flow, login=mail_user.email)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        mb = s.get(Mailbox, mailbox_id)
        mb.protocol, mb.in_host, mb.in_port, mb.in_security = "imap", HOST, dovecot.imaps, "ssl"
        mb.out_host, mb.out_port, mb.out_security = HOST, smtp_lab.tls_port, "ssl"
    token = ot.access_token(engine, box, mailbox_id, flow[2])
    policy = ConnectionPolicy(allowed_hosts=frozenset({HOST}), ca_file=dovecot.ca_file, timeout=5)
    with ImapSession(incoming_settings(mb, box, access_token=token), policy) as imap:
        assert imap.status("INBOX").messages == 0
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = mail_user.email, mail_user.email, "Hi"
    msg.set_content("Hello")
    smtp_lab.clear()
    with SmtpSession(outgoing_settings(mb, box, access_token=token), policy) as smtp:
        smtp.send(mail_user.email, [mail_user.email], msg)
    assert smtp_lab.wait_for(1)[0].login == mail_user.email
