"""Small helpers for tests that drive the add-on through Flask's test client."""

from __future__ import annotations

from flask import Flask

from plugin.csrf import SESSION_KEY

CSRF = "test-csrf-token"


def signed_in(app: Flask, person) -> "object":  # noqa: ANN001
    """A test client signed in as ``person`` of the mini host, with a CSRF token."""
    client = app.test_client()
    assert client.post(f"/_login/{person.get_id()}").status_code == 200
    with client.session_transaction() as sess:
        sess[SESSION_KEY] = CSRF
    return client


def form(**values) -> dict:  # noqa: ANN003
    return {"csrf_token": CSRF, **values}


def save_global_settings(client, **overrides) -> None:  # noqa: ANN001, ANN003
    data = form(outbound_only="no", webmail_links="yes", auto_import="yes",
                sharing_allowed=["private", "custom", "public", "admin"],
                sharing_default="private", fetch_interval_minutes="10",
                initial_sync_days="30", initial_sync_messages="500", bulk_per_send="200",
                bulk_per_day="500", bulk_spacing_seconds="0", allowed_mail_hosts="",
                account_name="Admin mail", email="admin@example.test")
    data.update(overrides)
    resp = client.post("/integrated-email/admin/settings", data=data)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]


def mailbox_form(dovecot, smtp_lab, user, **overrides) -> dict:  # noqa: ANN001, ANN003
    """A complete set-up form for a lab mailbox over IMAPS and SMTPS."""
    data = form(account_name="Work", email=user.email, protocol="imap", in_login=user.login,
                in_password=user.password, in_host="127.0.0.1", in_port=str(dovecot.imaps),
                in_security="ssl", same_credentials="on", out_auth="on",
                out_host="127.0.0.1", out_port=str(smtp_lab.tls_port), out_security="ssl",
                delete_policy="leave", sharing="private")
    data.update(overrides)
    return data
