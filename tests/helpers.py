"""Small helpers for tests that drive the add-on through Flask's test client."""

from __future__ import annotations

from flask import Flask

from plugin.csrf import SESSION_KEY

CSRF = "test-csrf-token"


def signed_in(app: Flask, person) -> object:
    """A test client signed in as ``person`` of the mini host, with a CSRF token."""
    client = app.test_client()
    assert client.post(f"/_login/{person.get_id()}").status_code == 200
    with client.session_transaction() as sess:
        sess[SESSION_KEY] = CSRF
    return client


def form(**values) -> dict:
    return {"csrf_token": CSRF, **values}


def save_global_settings(client, **overrides) -> None:
    data = form(outbound_only="no", webmail_links="yes", auto_import="yes",
                sharing_allowed=["private", "custom", "public", "admin"],
                sharing_default="private", fetch_interval_minutes="10",
                initial_sync_days="30", initial_sync_messages="500", bulk_per_send="200",
                bulk_per_day="500", bulk_spacing_seconds="0", allowed_mail_hosts="",
                account_name="Admin mail", email="admin@example.test")
    data.update(overrides)
    resp = client.post("/integrated-email/admin/settings", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]


def mailbox_form(dovecot, smtp_lab, user, **overrides) -> dict:
    """A complete set-up form for a lab mailbox over IMAPS and SMTPS."""
    data = form(account_name="Work", email=user.email, protocol="imap", in_login=user.login,
                in_password=user.password, in_host="127.0.0.1", in_port=str(dovecot.imaps),
                in_security="ssl", same_credentials="on", out_auth="on",
                out_host="127.0.0.1", out_port=str(smtp_lab.tls_port), out_security="ssl",
                delete_policy="leave", sharing="private")
    data.update(overrides)
    return data


def complete_settings(addon, **values) -> None:
    """Save global settings directly (as an admin would), opening the gate."""
    from datetime import datetime, timezone

    from plugin.setup import settings as settings_service

    with addon.session() as s:
        gs = settings_service.load(s)
        for key, val in values.items():
            setattr(gs, key, val)
        gs.saved_at = datetime.now(timezone.utc)
        s.add(gs)
        s.commit()


def make_mailbox(addon, owner_id: str, dovecot, user, smtp_lab=None,
                 protocol: str = "imap", **values) -> int:
    """An active lab mailbox for ``owner_id`` written straight to the store; its id."""
    from plugin.models import Mailbox

    port = dovecot.imaps if protocol == "imap" else dovecot.pop3s
    mb = Mailbox(user_id=owner_id, account_name="Work", email=user.email, is_active=True,
                 protocol=protocol, in_host="127.0.0.1", in_port=port, in_security="ssl",
                 in_login=user.login, in_password=addon.secrets.encrypt(user.password),
                 same_credentials=True, out_host="127.0.0.1",
                 out_port=smtp_lab.tls_port if smtp_lab else 465, out_security="ssl",
                 out_auth=True, sharing="private", delete_policy="leave")
    for key, val in values.items():
        setattr(mb, key, val)
    with addon.session() as s:
        s.add(mb)
        s.commit()
        return mb.id


def raw_mail(sender: str, to: str, subject: str = "Hello", body: str = "Hi there",
             cc: str | None = None, message_id: str | None = None,
             in_reply_to: str | None = None) -> bytes:
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id or make_msgid(domain="lab.test")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    return msg.as_bytes()
