"""Issue 15 in Chromium on the reference host, clicking as a recruiter or admin does:
the New email button and menu entries (3), outbound-only and back (4), the admin page
keeping what was typed (5), Save's sign-in check (6), stale presets (7) and the one
mailbox alert wherever the owner works (8)."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from examples.host_ats.models import User
from plugin.models import Mailbox
from tests.browser.conftest import ADMIN, RITA, change_field, change_select, click_menu

pytestmark = pytest.mark.browser


def _user_id(live_host, email: str) -> str:
    with live_host.app.extensions["host_ats.db"].sessions() as hs:
        return str(hs.scalar(select(User.id).where(User.email == email)))


def _lab_mailbox(live_host, dovecot, smtp_lab, email: str, **extra) -> tuple[object, int]:
    """A working lab mailbox for the host user ``email``, stored as set-up saves it."""
    user = dovecot.add_user(f"u{secrets.token_hex(4)}", f"pw-{secrets.token_urlsafe(9)}")
    addon = live_host.addon
    with Session(addon.engine) as s:
        mb = Mailbox(user_id=_user_id(live_host, email), account_name="Lab", email=user.email,
                     is_active=True, protocol="imap", in_host="127.0.0.1",
                     in_port=dovecot.imaps, in_security="ssl", in_login=user.login,
                     in_password=addon.secrets.encrypt(user.password), same_credentials=True,
                     out_host="127.0.0.1", out_port=smtp_lab.tls_port, out_security="ssl",
                     out_auth=True, sharing="private", **extra)
        s.add(mb)
        s.commit()
        return user, mb.id


def test_webmail_has_new_email_and_the_menu_has_compose(ready, page, dovecot, smtp_lab):
    _lab_mailbox(ready, dovecot, smtp_lab, RITA[0])
    ready.login(page, *RITA)
    click_menu(page, "Mail")
    page.get_by_role("link", name="New email").first.click()
    expect(page.locator("h1")).to_contain_text("ew email")  # "New email" / "Write a new email"
    expect(page.locator("input[name=to]")).to_be_visible()
    click_menu(page, "New email")
    expect(page.locator("input[name=to]")).to_be_visible()
    click_menu(page, "Sent from the ATS")
    expect(page).to_have_title("Sent from the ATS – Integrated email · " + page.title().split(
        " · ")[-1])


def test_a_paused_mailbox_is_announced_once_where_the_recruiter_works(ready, page, dovecot,
                                                                      smtp_lab):
    _user, mb_id = _lab_mailbox(ready, dovecot, smtp_lab, RITA[0], paused=True,
                                pause_reason="auth", auth_failures=3,
                                last_error="The mail server rejected your password. "
                                           "Update your password to resume fetching.")
    ready.login(page, *RITA)
    page.get_by_role("link", name="Candidates", exact=True).click()
    alert = page.locator("[data-ie-alert]")
    expect(alert).to_have_count(1)
    expect(alert).to_contain_text("the mail server rejected its password")
    click_menu(page, "Mail")
    expect(page.locator("[data-ie-alert]")).to_have_count(1)
    assert page.get_by_text("Update your password").count() == 1
    page.locator("[data-ie-alert]").get_by_role("link", name="Update your password").click()
    expect(page.locator("#ie-in_password")).to_be_visible()
    assert page.url.endswith(f"/integrated-email/mailboxes/{mb_id}")
    # "My mailboxes": the panel says it, once, and no banner repeats it.
    page.get_by_role("link", name="My mailboxes").first.click()
    expect(page.locator("[data-ie-alert]")).to_have_count(0)
    assert page.locator("main").inner_text().count("Update your password") == 1


def test_a_stale_preset_is_removed_and_typed_servers_are_kept(ready, page):
    ready.login(page, *RITA)
    click_menu(page, "Integrated email")
    change_field(page, "#ie-email", "rita@fastmail.com")
    expect(page.locator("#ie-in_host")).to_have_value("imap.fastmail.com")
    expect(page.locator("#ie-out_host")).to_have_value("smtp.fastmail.com")
    change_field(page, "#ie-email", "rita@acme.test")
    expect(page.locator("#ie-in_host")).to_have_value("")
    expect(page.locator("#ie-out_host")).to_have_value("")
    expect(page.locator("#mb-preset")).to_contain_text("no longer a Fastmail address")
    change_field(page, "#ie-in_host", "mail.acme.test")
    change_field(page, "#ie-out_host", "smtp.acme.test")
    change_field(page, "#ie-email", "rita@gmail.com")
    expect(page.locator("#ie-in_host")).to_have_value("mail.acme.test")
    expect(page.locator("#ie-out_host")).to_have_value("smtp.acme.test")
    expect(page.locator("#mb-preset")).to_contain_text("imap.gmail.com")


def test_save_signs_in_first_and_test_connection_marks_what_is_missing(ready, page, dovecot,
                                                                       smtp_lab):
    user = dovecot.add_user(f"r{secrets.token_hex(4)}", "right-password")
    ready.login(page, *RITA)
    click_menu(page, "Integrated email")
    change_field(page, "#ie-email", user.email)
    change_field(page, "#ie-in_login", user.login)
    change_field(page, "#ie-in_host", "127.0.0.1")
    change_field(page, "#ie-in_port", str(dovecot.imaps))
    change_field(page, "#ie-out_host", "127.0.0.1")
    change_field(page, "#ie-out_port", str(smtp_lab.tls_port))
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Enter your email password")
    expect(page.locator("#e-in_password")).to_have_text(
        "Enter your email password (not your ATS password).")
    page.fill("#ie-in_password", "wrong-password")
    page.get_by_role("button", name="Save mailbox").click()
    expect(page.locator("#save-blocked")).to_contain_text("could not sign in")
    expect(page.locator("#ie-in_password")).to_have_value("wrong-password")
    with Session(ready.addon.engine) as s:
        assert s.scalars(select(Mailbox)).all() == []
    page.check("#ie-save_anyway")
    page.get_by_role("button", name="Save mailbox").click()
    expect(page.get_by_text("could not sign in, so it is not in use")).to_be_visible()
    expect(page.get_by_role("button", name="Make active")).to_be_visible()
    with Session(ready.addon.engine) as s:
        [mb] = s.scalars(select(Mailbox)).all()
        assert not mb.is_active


def test_admin_toggles_outbound_only_and_back_without_retyping(active, page, dovecot, smtp_lab):
    user, mb_id = _lab_mailbox(active, dovecot, smtp_lab, ADMIN[0])
    active.login(page, *ADMIN)
    click_menu(page, "Integrated email")
    page.fill("#ie-fetch_interval_minutes", "often")
    page.fill("#ie-in_password", user.password)
    page.locator("#admin-form button.ie-primary", has_text="Save").click()
    expect(page.locator("#e-fetch_interval_minutes")).to_contain_text("whole number")
    expect(page.locator("#ie-fetch_interval_minutes")).to_have_value("often")
    expect(page.locator("#ie-in_password")).to_have_value(user.password)
    page.fill("#ie-fetch_interval_minutes", "10")
    change_select(page, "#ie-outbound_only", "yes")
    expect(page.locator("#ie-in_host")).to_have_count(0)
    page.locator("#admin-form button.ie-primary", has_text="Save").click()
    expect(page.get_by_text("Integrated email settings saved")).to_be_visible()
    with Session(active.addon.engine) as s:
        mb = s.get(Mailbox, mb_id)
        assert (mb.in_host, mb.in_port, mb.in_login) == ("127.0.0.1", dovecot.imaps, user.login)
    change_select(page, "#ie-outbound_only", "no")
    expect(page.locator("#ie-in_host")).to_have_value("127.0.0.1")
    expect(page.locator("#ie-in_port")).to_have_value(str(dovecot.imaps))
    page.locator("#admin-form button.ie-primary", has_text="Save").click()
    expect(page.get_by_text("Integrated email settings saved.")).to_be_visible()
    with Session(active.addon.engine) as s:
        mb = s.get(Mailbox, mb_id)
        assert (mb.in_host, mb.in_port, mb.in_login) == ("127.0.0.1", dovecot.imaps, user.login)
        assert active.addon.secrets.decrypt(mb.in_password) == user.password
