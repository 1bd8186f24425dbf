"""Issue 15 through HTTP: what a recruiter or admin touches in set-up behaves as they expect.
Real Dovecot/SMTP; the mailbox rows are read back from the database."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from plugin.models import Mailbox
from plugin.routes._filters import filesize, merge_placeholders, plain_markdown
from plugin.setup.mailbox import derive
from tests.helpers import form, mailbox_form, save_global_settings, signed_in


@pytest.fixture
def people(mini):
    app, host, addon = mini
    admin = host.add_person("Ada Admin", "ada@example.test", admin=True)
    rita = host.add_person("Rita", "rita@example.test")
    return app, host, addon, admin, rita


def _boxes(addon) -> list[Mailbox]:
    with addon.session() as s:
        return list(s.scalars(select(Mailbox).order_by(Mailbox.id)))


# -- point 9: the same account twice ----------------------------------------------------

def test_adding_the_same_account_twice_is_refused_with_a_sentence(people, dovecot, smtp_lab,
                                                                  mail_user):
    app, _host, addon, admin, rita = people
    save_global_settings(signed_in(app, admin))
    client = signed_in(app, rita)
    first = client.post("/integrated-email/mailboxes/new",
                        data=mailbox_form(dovecot, smtp_lab, mail_user))
    assert first.status_code == 302
    again = client.post("/integrated-email/mailboxes/new",
                        data=mailbox_form(dovecot, smtp_lab, mail_user, account_name="Again"))
    assert again.status_code == 422
    page = again.get_data(as_text=True)
    assert "You have already connected this account as &#39;Work&#39;" in page
    assert len(_boxes(addon)) == 1
    # The same login on the same server under another address is the same account too.
    other = client.post("/integrated-email/mailboxes/new", data=mailbox_form(
        dovecot, smtp_lab, mail_user, account_name="Alias", email="alias@example.test"))
    assert other.status_code == 422 and len(_boxes(addon)) == 1


# -- point 6: Save signs in first --------------------------------------------------------

def test_save_with_a_wrong_password_is_stopped_and_saved_inactive_only_on_request(
        people, dovecot, smtp_lab, mail_user):
    app, _host, addon, admin, rita = people
    save_global_settings(signed_in(app, admin))
    client = signed_in(app, rita)
    data = mailbox_form(dovecot, smtp_lab, mail_user, in_password="wrong-password")
    stopped = client.post("/integrated-email/mailboxes/new", data=data)
    assert stopped.status_code == 422
    page = stopped.get_data(as_text=True)
    assert "Not saved yet: this mailbox could not sign in." in page
    assert "Incoming server:" in page and 'name="save_anyway"' in page
    assert _boxes(addon) == []
    # The typed password comes back in the form (this response only, never cached).
    assert 'value="wrong-password"' in page
    assert stopped.headers["Cache-Control"] == "no-store"
    saved = client.post("/integrated-email/mailboxes/new", data={**data, "save_anyway": "on"})
    assert saved.status_code == 302
    [mb] = _boxes(addon)
    assert not mb.is_active
    with client.session_transaction() as sess:
        flashes = [text for _cat, text in sess.get("_flashes", [])]
    assert any("could not sign in, so it is not in use" in f for f in flashes), flashes
    listing = client.get("/integrated-email/mailboxes").get_data(as_text=True)
    assert "Make active" in listing


def test_test_connection_names_the_missing_fields_and_marks_them(people, dovecot, smtp_lab,
                                                                 mail_user):
    app, _host, _addon, admin, rita = people
    save_global_settings(signed_in(app, admin))
    client = signed_in(app, rita)
    resp = client.post("/integrated-email/setup/test", headers={"HX-Request": "true"},
                       data=mailbox_form(dovecot, smtp_lab, mail_user, in_password=""))
    page = resp.get_data(as_text=True)
    assert "Fill in the highlighted fields first" in page
    assert "Enter your email password (not your ATS password)." in page
    assert re.search(r'<p id="e-in_password" class="error"[^>]*hx-swap-oob="true">Enter your',
                     page)


# -- point 4: outbound-only keeps the stored incoming settings ----------------------------

def test_outbound_only_and_back_keep_the_admins_incoming_settings(people, dovecot, smtp_lab,
                                                                  mail_user):
    app, _host, addon, admin, _rita = people
    client = signed_in(app, admin)
    own = {k: v for k, v in mailbox_form(dovecot, smtp_lab, mail_user).items()
           if k != "csrf_token"}
    save_global_settings(client, **own)
    [before] = _boxes(addon)
    assert before.in_host == "127.0.0.1" and before.same_credentials
    # Yes: the page posts no incoming fields and no password; the save must work.
    outgoing = {k: v for k, v in own.items() if not k.startswith("in_") and k not in (
        "protocol", "same_credentials", "delete_policy")}
    outgoing.update(in_password="", out_login=before.in_login, out_password="")
    save_global_settings(client, outbound_only="yes", **outgoing)
    [during] = _boxes(addon)
    assert (during.protocol, during.in_host, during.in_port, during.in_login) == (
        before.protocol, before.in_host, before.in_port, before.in_login)
    assert during.in_password == before.in_password
    # Switching back: the hidden fields come back as stored, and saving needs no retyping.
    fields = signed_in(app, admin).post(
        "/integrated-email/setup/fields", headers={"HX-Trigger-Name": "outbound_only"},
        data=form(_admin_page="1", outbound_only="no", _mailbox_id=str(before.id),
                  **outgoing)).get_data(as_text=True)
    assert 'value="127.0.0.1"' in fields and f'value="{dovecot.imaps}"' in fields
    save_global_settings(client, outbound_only="no", **{**own, "in_password": ""})
    [after] = _boxes(addon)
    assert (after.in_host, after.in_port, after.in_password) == (
        before.in_host, before.in_port, before.in_password)


# -- point 5: the admin page keeps what was typed ----------------------------------------

def test_admin_page_shows_the_refused_numbers_as_typed(people):
    app, _host, _addon, admin, _rita = people
    client = signed_in(app, admin)
    resp = client.post("/integrated-email/admin/settings", data=form(
        outbound_only="no", webmail_links="yes", auto_import="yes",
        sharing_allowed=["private"], sharing_default="private", fetch_interval_minutes="ten",
        initial_sync_days="30", initial_sync_messages="500", bulk_per_send="200",
        bulk_per_day="-3", bulk_spacing_seconds="0", in_password="typed-pw",
        account_name="Mine", email="ada@example.test"))
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'value="ten"' in page and 'value="-3"' in page
    assert "None" not in re.findall(r'value="([^"]*)"', page)
    assert 'value="typed-pw"' in page


# -- point 11: the admin's save message ------------------------------------------------

def test_only_the_first_admin_save_says_users_can_now_set_up(people):
    app, _host, _addon, admin, _rita = people
    client = signed_in(app, admin)
    def flashed() -> list[str]:
        with client.session_transaction() as sess:
            return [text for _cat, text in sess.pop("_flashes", [])]

    save_global_settings(client)
    assert flashed() == ["Integrated email settings saved. Users can now set up their mailboxes."]
    save_global_settings(client)
    assert flashed() == ["Integrated email settings saved."]


# -- point 7: presets never overwrite typed servers ------------------------------------

def test_a_stale_preset_is_removed_and_typed_servers_are_kept() -> None:
    base = {"email": "ada@fastmail.com", "in_host": "", "out_host": "", "in_port": "993",
            "out_port": "465", "in_security": "ssl", "out_security": "ssl",
            "protocol": "imap", "in_login": ""}
    filled = derive(base, "email")
    assert filled["in_host"] == "imap.fastmail.com"
    corrected = derive({**filled, "email": "ada@acme.test"}, "email",
                       previous_email="ada@fastmail.com")
    assert corrected["in_host"] == "" and corrected["out_host"] == ""
    assert "no longer a Fastmail address" in corrected["_preset_notice"]
    typed = derive({**base, "email": "ada@gmail.com", "in_host": "mail.acme.test",
                    "out_host": "smtp.acme.test"}, "email", previous_email="ada@acme.test")
    assert (typed["in_host"], typed["out_host"]) == ("mail.acme.test", "smtp.acme.test")
    assert "imap.gmail.com" in typed["_preset_notice"]


# -- point 11: sizes, merge fields, Markdown previews ----------------------------------

@pytest.mark.parametrize(("size", "shown"), [(0, "0 bytes"), (1, "1 byte"), (312, "312 bytes"),
                                             (4300, "4.2 KB"), (3 * 1024 * 1024, "3.0 MB")])
def test_attachment_sizes_read_as_people_read_them(size: int, shown: str) -> None:
    assert filesize(size) == shown


def test_bulk_titles_show_placeholders_and_previews_drop_markdown_marks() -> None:
    assert merge_placeholders("Hello {{ first_name }}, about {{job_title}}") == \
        "Hello [first name], about [job title]"
    assert plain_markdown("**Bold** and *it* and [the job](https://x.test/j) ***both***") == \
        "Bold and it and the job both"
    assert plain_markdown("a * b * c") == "a * b * c"  # lone stars are words, not marks
