"""F2/F3 through HTTP: the gate, global settings, personal set-up, passwords,
Test connection, ownership and CSRF.  Real Dovecot/SMTP, SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from plugin.models import Base, Mailbox
from tests.conftest import TEST_KEY
from tests.helpers import form, mailbox_form, save_global_settings, signed_in

GATE = "Your administrator must set up integrated email before you can connect your mailbox."


@pytest.fixture
def people(mini):
    app, host, addon = mini
    admin = host.add_person("Ada Admin", "ada@example.test", admin=True)
    rita = host.add_person("Rita", "rita@example.test")
    rob = host.add_person("Rob", "rob@example.test")
    return app, host, addon, admin, rita, rob


def _all_rows_text(addon) -> str:
    with addon.engine.connect() as conn:
        return "\n".join(str(row) for table in Base.metadata.sorted_tables
                         for row in conn.execute(table.select()))


def test_gate_until_admin_saves_global_settings(people):
    app, _host, _addon, admin, rita, _rob = people
    client = signed_in(app, rita)
    for url in ("/integrated-email/", "/integrated-email/mailboxes",
                "/integrated-email/mailboxes/new"):
        page = client.get(url, follow_redirects=True).get_data(as_text=True)
        assert GATE in page
        assert "mailbox-form" not in page
    assert client.post("/integrated-email/mailboxes/new", data=form()).status_code == 200
    # Admins are sent to the settings page instead of being gated.
    admin_client = signed_in(app, admin)
    resp = admin_client.get("/integrated-email/")
    assert resp.headers["Location"].endswith("/integrated-email/admin/settings")
    save_global_settings(admin_client)
    page = client.get("/integrated-email/mailboxes/new").get_data(as_text=True)
    assert GATE not in page and 'id="mailbox-form"' in page
    assert 'value="rita@example.test"' in page  # pre-filled from the host profile


def test_recruiters_cannot_open_global_settings(people):
    app, _host, _addon, _admin, rita, _rob = people
    assert signed_in(app, rita).get("/integrated-email/admin/settings").status_code == 403


@pytest.mark.parametrize("field,value,message", [
    ("fetch_interval_minutes", "1", "between 5 and"),
    ("fetch_interval_minutes", "often", "whole number"),
    ("sharing_allowed", [], "at least one"),
    ("sharing_default", "public", "among the allowed"),
])
def test_global_settings_errors_show_beside_the_field(people, field, value, message):
    app, _host, addon, admin, _rita, _rob = people
    client = signed_in(app, admin)
    data = form(outbound_only="no", webmail_links="yes", auto_import="yes",
                sharing_allowed=["private"], sharing_default="private",
                fetch_interval_minutes="10", initial_sync_days="30",
                initial_sync_messages="500", bulk_per_send="10", bulk_per_day="100",
                bulk_spacing_seconds="0", account_name="x", email="ada@example.test")
    data[field] = value
    resp = client.post("/integrated-email/admin/settings", data=data)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert f'id="e-{field}"' in html and message in html
    from plugin.setup.settings import is_complete
    assert not is_complete(addon.session())


def test_set_up_a_mailbox_against_the_lab(people, dovecot, smtp_lab, mail_user):
    app, _host, addon, admin, rita, _rob = people
    save_global_settings(signed_in(app, admin))
    client = signed_in(app, rita)
    resp = client.post("/integrated-email/mailboxes/new",
                       data=mailbox_form(dovecot, smtp_lab, mail_user))
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/mailboxes")
    page = client.get("/integrated-email/mailboxes").get_data(as_text=True)
    assert "Work" in page and "Active" in page
    with addon.session() as s:
        mb = s.scalars(select(Mailbox)).one()
        assert mb.user_id == rita.get_id() and mb.is_active
        assert addon.secrets.decrypt(mb.in_password) == mail_user.password
        assert mb.out_password is None and mb.same_credentials


def test_passwords_are_encrypted_never_shown_and_kept_when_blank(people, dovecot, smtp_lab,
                                                                 mail_user):
    app, _host, addon, admin, rita, _rob = people
    save_global_settings(signed_in(app, admin))
    client = signed_in(app, rita)
    secret_in, secret_out = "Incoming-S3cret-pw", "Outgoing-S3cret-pw"
    client.post("/integrated-email/mailboxes/new", data=mailbox_form(
        dovecot, smtp_lab, mail_user, in_password=secret_in, same_credentials="",
        out_login="sender", out_password=secret_out, save_anyway="on"))
    dump = _all_rows_text(addon)
    assert secret_in not in dump and secret_out not in dump
    with addon.session() as s:
        mb = s.scalars(select(Mailbox)).one()
        mb_id, token_in, token_out = mb.id, mb.in_password, mb.out_password
    page = client.get(f"/integrated-email/mailboxes/{mb_id}").get_data(as_text=True)
    assert secret_in not in page and secret_out not in page and token_in not in page
    assert "Leave blank to keep the stored password." in page
    # Blank passwords keep both; a new outgoing password changes only that one.
    client.post(f"/integrated-email/mailboxes/{mb_id}", data=mailbox_form(
        dovecot, smtp_lab, mail_user, in_password="", same_credentials="",
        out_login="sender", out_password="New-outgoing", save_anyway="on"))
    with addon.session() as s:
        mb = s.get(Mailbox, mb_id)
        assert mb.in_password == token_in
        assert mb.out_password != token_out
        assert addon.secrets.decrypt(mb.out_password) == "New-outgoing"


def test_rotate_keys_reencrypts_every_secret_then_old_key_can_go(people, dovecot, smtp_lab):
    app, _host, addon, admin, rita, rob = people
    save_global_settings(signed_in(app, admin))
    for person in (rita, rob):
        user = dovecot.add_user(f"rot{person.name.lower()}{int(time.time()*1000)%100000}", "pw-1")
        signed_in(app, person).post("/integrated-email/mailboxes/new", data=mailbox_form(
            dovecot, smtp_lab, user, same_credentials="", out_login="o", out_password="pw-2",
            save_anyway="on"))
    new_key = Fernet.generate_key().decode()
    app.config["IE_SECRET_KEYS"] = f"{new_key},{TEST_KEY}"
    addon.__dict__.pop("secrets", None)
    result = app.test_cli_runner().invoke(args=["integrated-email", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 4 of 4" in result.output
    app.config["IE_SECRET_KEYS"] = new_key  # the old key is dropped
    addon.__dict__.pop("secrets", None)
    with addon.session() as s:
        tokens = [t for mb in s.scalars(select(Mailbox)) for t in (mb.in_password, mb.out_password)]
    assert len(tokens) == 4
    assert all(addon.secrets.is_current(t) for t in tokens)
    assert sorted(addon.secrets.decrypt(t) for t in tokens) == ["pw-1", "pw-1", "pw-2", "pw-2"]


def test_wrong_key_fails_with_a_clear_message(people, dovecot, smtp_lab, mail_user):
    app, _host, addon, admin, rita, _rob = people
    save_global_settings(signed_in(app, admin))
    signed_in(app, rita).post("/integrated-email/mailboxes/new",
                              data=mailbox_form(dovecot, smtp_lab, mail_user))
    app.config["IE_SECRET_KEYS"] = Fernet.generate_key().decode()
    addon.__dict__.pop("secrets", None)
    result = app.test_cli_runner().invoke(args=["integrated-email", "rotate-keys"])
    assert result.exit_code != 0
    assert "cannot be decrypted" in result.output and "Traceback" not in result.output
    app.config["IE_SECRET_KEYS"] = "not-a-key"
    addon.__dict__.pop("secrets", None)
    result = app.test_cli_runner().invoke(args=["integrated-email", "rotate-keys"])
    assert result.exit_code != 0 and "not a Fernet key" in result.output


def test_another_users_mailbox_is_404(people, dovecot, smtp_lab, mail_user):
    app, _host, addon, admin, rita, rob = people
    save_global_settings(signed_in(app, admin))
    signed_in(app, rita).post("/integrated-email/mailboxes/new",
                              data=mailbox_form(dovecot, smtp_lab, mail_user))
    with addon.session() as s:
        mb_id = s.scalars(select(Mailbox.id)).one()
    rob_client = signed_in(app, rob)
    assert rob_client.get(f"/integrated-email/mailboxes/{mb_id}").status_code == 404
    assert rob_client.get(f"/integrated-email/mailboxes/{mb_id}/status").status_code == 404
    assert rob_client.post(f"/integrated-email/mailboxes/{mb_id}",
                           data=mailbox_form(dovecot, smtp_lab, mail_user,
                                             account_name="hijack")).status_code == 404
    assert rob_client.post(f"/integrated-email/mailboxes/{mb_id}/activate",
                           data=form()).status_code == 404
    assert rob_client.post(f"/integrated-email/mailboxes/{mb_id}/delete",
                           data=form()).status_code == 404
    with addon.session() as s:
        assert s.get(Mailbox, mb_id).account_name == "Work"


def test_state_changing_requests_without_csrf_are_refused(people, dovecot, smtp_lab, mail_user):
    app, _host, addon, admin, rita, _rob = people
    client = signed_in(app, admin)
    data = {"outbound_only": "no", "sharing_allowed": "private", "sharing_default": "private"}
    assert client.post("/integrated-email/admin/settings", data=data).status_code == 400
    wrong = dict(data, csrf_token="forged")
    assert client.post("/integrated-email/admin/settings", data=wrong).status_code == 400
    assert client.post("/integrated-email/admin/settings", data=data,
                       headers={"X-CSRF-Token": "forged"}).status_code == 400
    from plugin.setup.settings import is_complete
    assert not is_complete(addon.session())


def test_several_mailboxes_exactly_one_active(people, dovecot, smtp_lab):
    app, _host, addon, admin, rita, _rob = people
    save_global_settings(signed_in(app, admin))
    client = signed_in(app, rita)
    ids = []
    for n in range(3):
        user = dovecot.add_user(f"multi{n}x{int(time.time()*1000)%100000}", "pw")
        client.post("/integrated-email/mailboxes/new",
                    data=mailbox_form(dovecot, smtp_lab, user, account_name=f"Box {n}"))
    with addon.session() as s:
        boxes = s.scalars(select(Mailbox).order_by(Mailbox.id)).all()
        ids = [b.id for b in boxes]
        assert [b.is_active for b in boxes].count(True) == 1
    client.post(f"/integrated-email/mailboxes/{ids[0]}/activate", data=form())
    with addon.session() as s:
        assert [s.get(Mailbox, i).is_active for i in ids] == [True, False, False]
    confirm = client.get(f"/integrated-email/mailboxes/{ids[0]}/delete").get_data(as_text=True)
    assert "Remove" in confirm and "Nothing is deleted from your mail server" in confirm
    client.post(f"/integrated-email/mailboxes/{ids[0]}/delete", data=form())
    with addon.session() as s:
        left = s.scalars(select(Mailbox).order_by(Mailbox.id)).all()
        assert [b.id for b in left] == ids[1:]
        assert [b.is_active for b in left].count(True) == 1


def test_field_changes_answer_out_of_band_fragments(people):
    app, _host, _addon, admin, rita, _rob = people
    save_global_settings(signed_in(app, admin))
    client = signed_in(app, rita)
    hx = {"HX-Request": "true"}
    base = form(email="someone@gmail.com", protocol="imap", in_security="ssl", in_port="993",
                out_security="ssl", _previous_email="rita@example.test",
                in_login="rita@example.test", sharing="private")
    html = client.post("/integrated-email/setup/fields", data=base,
                       headers={**hx, "HX-Trigger-Name": "email"}).get_data(as_text=True)
    assert 'value="imap.gmail.com"' in html and "recent:" in html
    assert 'value="someone@gmail.com"' in html  # the login follows the address
    html = client.post("/integrated-email/setup/fields", data=dict(base, protocol="pop3"),
                       headers={**hx, "HX-Trigger-Name": "protocol"}).get_data(as_text=True)
    assert 'value="pop.gmail.com"' in html and 'value="995"' in html
    assert "Delete message settings" in html
    html = client.post("/integrated-email/setup/fields",
                       data=dict(base, email="x@corp.example", in_security="starttls"),
                       headers={**hx, "HX-Trigger-Name": "in_security"}).get_data(as_text=True)
    assert 'value="143"' in html
    html = client.post("/integrated-email/setup/fields", data=dict(base, in_port="abc"),
                       headers={**hx, "HX-Trigger-Name": "in_port"}).get_data(as_text=True)
    assert 'id="e-in_port"' in html and "as a number" in html


def _test(client, data):
    return client.post("/integrated-email/setup/test", data=data,
                       headers={"HX-Request": "true"}).get_data(as_text=True)


def test_test_connection_reports_success_and_each_failure(people, dovecot, smtp_lab, mail_user,
                                                          silent_server):
    from tests.lab.servers import closed_port

    app, _host, _addon, admin, rita, _rob = people
    app.config["IE_TEST_CONNECTION_PER_MINUTE"] = 100
    save_global_settings(signed_in(app, admin))
    client = signed_in(app, rita)
    ok = _test(client, mailbox_form(dovecot, smtp_lab, mail_user))
    assert ok.count("Signed in successfully.") == 2
    bad_pw = _test(client, mailbox_form(dovecot, smtp_lab, mail_user, in_password="nope"))
    assert "rejected the username or password" in bad_pw
    refused = _test(client, mailbox_form(dovecot, smtp_lab, mail_user, in_port=str(closed_port())))
    assert "refused the connection" in refused
    started = time.monotonic()
    timed_out = _test(client, mailbox_form(dovecot, smtp_lab, mail_user,
                                           in_port=str(silent_server.port)))
    assert "did not answer in time" in timed_out
    assert time.monotonic() - started < app.config["IE_MAIL_TIMEOUT"] * 2 + 2
    blocked = _test(client, mailbox_form(dovecot, smtp_lab, mail_user, in_host="10.0.0.1"))
    assert "not allowed" in blocked
    for html in (ok, bad_pw, refused, timed_out, blocked):
        assert "Dovecot" not in html and "Traceback" not in html and "Errno" not in html


def test_test_connection_is_rate_limited_per_user(people, dovecot, smtp_lab, mail_user):
    app, _host, _addon, admin, rita, rob = people
    app.config["IE_TEST_CONNECTION_PER_MINUTE"] = 2
    save_global_settings(signed_in(app, admin))
    client = signed_in(app, rita)
    data = mailbox_form(dovecot, smtp_lab, mail_user)
    assert "successfully" in _test(client, data)
    assert "successfully" in _test(client, data)
    assert "Wait a minute" in _test(client, data)
    assert "successfully" in _test(signed_in(app, rob), data)  # per user


def test_new_password_resumes_a_mailbox_paused_for_its_password(people, dovecot, smtp_lab,
                                                                mail_user):
    app, _host, addon, admin, rita, _rob = people
    save_global_settings(signed_in(app, admin))
    client = signed_in(app, rita)
    client.post("/integrated-email/mailboxes/new", data=mailbox_form(dovecot, smtp_lab, mail_user))
    with addon.session() as s:
        mb = s.scalars(select(Mailbox)).one()
        mb.paused, mb.pause_reason, mb.auth_failures = True, "auth", 3
        mb.last_error = "The mail server rejected your password."
        s.commit()
        mb_id = mb.id
    page = client.get("/integrated-email/mailboxes").get_data(as_text=True)
    assert "Update your password" in page
    client.post(f"/integrated-email/mailboxes/{mb_id}",
                data=mailbox_form(dovecot, smtp_lab, mail_user, in_password=mail_user.password))
    with addon.session() as s:
        mb = s.get(Mailbox, mb_id)
        assert not mb.paused and mb.auth_failures == 0 and mb.last_error is None


def test_database_url_is_not_reached_by_host_tables(people):
    """The add-on keeps to its own tables even on a shared database."""
    _app, _host, addon, *_ = people
    with addon.engine.connect() as conn:
        if addon.engine.dialect.name == "sqlite":
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
        else:
            names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = "
                                      "current_schema()"))
        assert all(n.startswith("ie_") for (n,) in names)
