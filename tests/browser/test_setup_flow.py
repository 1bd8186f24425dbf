"""F2/F3 in a real browser: the gate, the admin's global settings, and a recruiter's
personal set-up against the lab's Dovecot and SMTP, with the htmx behaviour
(presets, default ports, in-place errors, Test connection) and the no-JavaScript path."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    ADMIN,
    GATE_SENTENCE,
    RITA,
    _fields_response,
    change_field,
    change_select,
    click_menu,
    wait_live,
)

pytestmark = pytest.mark.browser

NEW = "/integrated-email/mailboxes/new"
MAILBOXES = "/integrated-email/mailboxes"
SIGNED_IN = re.compile(r"signed in successfully", re.IGNORECASE)


# -- helpers ------------------------------------------------------------------------


def set_marker(page) -> None:
    """A value that survives only as long as no new page is loaded."""
    page.evaluate("window.__marker = 1")


def assert_no_page_load(page) -> None:
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"


def lab_user(dovecot, prefix: str = "rita"):
    return dovecot.add_user(f"{prefix}{secrets.token_hex(3)}", f"pw-{secrets.token_urlsafe(9)}")


def fill_lab_form(page, dovecot, smtp_lab, user, password: str | None = None) -> str:
    """Fill the set-up form for the lab user (IMAPS + SMTPS on 127.0.0.1); returns email."""
    email = f"{user.login}@example.test"
    page.fill("#ie-account_name", "Lab mailbox")
    change_field(page, "#ie-email", email)
    # The login followed the email (it was pre-filled with the old one).
    expect(page.locator("#ie-in_login")).to_have_value(email)
    change_field(page, "#ie-in_login", user.login)
    page.fill("#ie-in_password", user.password if password is None else password)
    change_field(page, "#ie-in_host", "127.0.0.1")
    change_select(page, "#ie-in_security", "ssl")
    change_field(page, "#ie-in_port", str(dovecot.imaps))
    change_field(page, "#ie-out_host", "127.0.0.1")
    change_select(page, "#ie-out_security", "ssl")
    change_field(page, "#ie-out_port", str(smtp_lab.tls_port))
    expect(page.locator("#ie-same_credentials")).to_be_checked()
    expect(page.locator("#ie-in_port")).to_have_value(str(dovecot.imaps))
    expect(page.locator("#ie-out_port")).to_have_value(str(smtp_lab.tls_port))
    expect(page.locator("#ie-in_login")).to_have_value(user.login)
    return email


# -- (a) the gate ---------------------------------------------------------------------


@pytest.mark.browser
def test_recruiter_sees_the_gate_before_global_settings(active, page) -> None:
    active.login(page, *RITA)
    click_menu(page, "Integrated email")
    expect(page.locator("main")).to_contain_text(GATE_SENTENCE)
    expect(page.locator("#mailbox-form")).to_have_count(0)
    expect(page.locator("input[type=password]")).to_have_count(0)
    # Every set-up URL shows the gate too, never the form.
    for path in (NEW, MAILBOXES):
        page.goto(active.url + path)
        expect(page.locator(".ie-gate")).to_have_text(GATE_SENTENCE)
        expect(page.locator("#mailbox-form")).to_have_count(0)
    # Global settings are for admins only.
    assert page.request.get(active.url + "/integrated-email/admin/settings").status == 403


# -- (b) the admin completes global settings --------------------------------------------


@pytest.mark.browser
def test_admin_completes_global_settings_with_defaults(active, page) -> None:
    active.login(page, *ADMIN)
    click_menu(page, "Integrated email")
    expect(page).to_have_url(active.url + "/integrated-email/admin/settings")
    expect(page.locator(".ie-alert-info")).to_contain_text("Complete and save these settings")
    # The admin's own mailbox is optional: leave its pre-filled name/email/login as they are.
    expect(page.locator("#ie-email")).to_have_value("admin@acme.test")
    expect(page.locator("#ie-in_login")).to_have_value("admin@acme.test")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("Integrated email settings saved")
    expect(page.locator(".ie-alert-error")).to_have_count(0)
    expect(page.locator(".ie-alert-info")).to_have_count(0)  # the "complete and save" banner
    # Saved for real: a fresh load shows the saved state.
    page.reload()
    expect(page.locator(".ie-alert-info")).to_have_count(0)
    expect(page.get_by_role("link", name="My mailboxes")).to_be_visible()


@pytest.mark.browser
def test_admin_settings_error_shows_beside_the_field(active, page) -> None:
    active.login(page, *ADMIN)
    page.goto(active.url + "/integrated-email/admin/settings")
    page.fill("#ie-fetch_interval_minutes", "1")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#e-fetch_interval_minutes")).not_to_be_empty()
    expect(page.locator("#admin-form [role=alert]")).to_be_visible()
    # Nothing was saved: a recruiter still meets the gate.
    page.goto(active.url + "/integrated-email/admin/settings")
    expect(page.locator(".ie-alert-info")).to_contain_text("Complete and save these settings")


# -- (c) the recruiter sets up against the lab ------------------------------------------


@pytest.mark.browser
def test_recruiter_sets_up_against_the_lab(ready, page, dovecot, smtp_lab) -> None:
    user = lab_user(dovecot)
    ready.login(page, *RITA)
    click_menu(page, "Integrated email")
    expect(page.locator("#mailbox-form")).to_be_visible()
    expect(page.get_by_text(GATE_SENTENCE)).to_have_count(0)
    # Pre-filled from the host profile.
    expect(page.locator("#ie-email")).to_have_value("rita@acme.test")
    expect(page.locator("#ie-in_login")).to_have_value("rita@acme.test")

    fill_lab_form(page, dovecot, smtp_lab, user)
    set_marker(page)
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result")
    expect(result.locator("li")).to_have_count(2, timeout=15_000)
    expect(result.locator("li").nth(0)).to_contain_text("Incoming server")
    expect(result.locator("li").nth(0)).to_contain_text(SIGNED_IN)
    expect(result.locator("li").nth(1)).to_contain_text("Outgoing server")
    expect(result.locator("li").nth(1)).to_contain_text(SIGNED_IN)
    expect(result.locator("li.fail")).to_have_count(0)
    assert_no_page_load(page)
    # The password typed is not lost by testing.
    expect(page.locator("#ie-in_password")).to_have_value(user.password)

    page.get_by_role("button", name="Save mailbox").click()
    expect(page).to_have_url(ready.url + MAILBOXES)
    expect(page.get_by_role("heading", name="My mailboxes")).to_be_visible()
    expect(page.locator(".flash")).to_contain_text("Mailbox 'Lab mailbox' saved.")
    card = page.locator("section.ie-card",
                        has=page.get_by_role("heading", name=re.compile("Lab mailbox")))
    expect(card).to_have_count(1)
    expect(card.locator(".ie-badge")).to_have_text("Active")
    expect(card).to_contain_text(f"{user.login}@example.test")
    expect(card).to_contain_text("127.0.0.1")
    # The stored password is never rendered back into the edit form.
    card.get_by_role("link", name="Edit").click()
    expect(page.locator("#ie-in_password")).to_have_value("")
    assert user.password not in page.content()


# -- (d) provider presets ---------------------------------------------------------------


def _assert_gmail_preset(page) -> None:
    expect(page.locator("#ie-in_host")).to_have_value("imap.gmail.com")
    expect(page.locator("#ie-in_port")).to_have_value("993")
    expect(page.locator("#ie-in_security")).to_have_value("ssl")
    expect(page.locator("#ie-out_host")).to_have_value("smtp.gmail.com")
    expect(page.locator("#ie-in_login")).to_have_value("rita.recruits@gmail.com")
    notes = page.locator("#mb-preset")
    expect(notes).to_contain_text("Gmail")
    expect(notes).to_contain_text("app password")
    expect(notes).to_contain_text("recent:")


@pytest.mark.browser
def test_gmail_address_fills_the_preset_in_place(ready, page) -> None:
    """Type a Gmail address and leave the field: hosts and notes fill in, no page load."""
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    expect(page.locator("#mb-preset")).to_be_empty()
    expect(page.locator("#ie-in_host")).to_have_value("")
    wait_live(page, "#ie-email")
    set_marker(page)
    email = page.locator("#ie-email")
    email.fill("")
    with page.expect_response(_fields_response):
        email.press_sequentially("rita.recruits@gmail.com")
        email.press("Tab")
    _assert_gmail_preset(page)
    expect(email).to_have_value("rita.recruits@gmail.com")
    assert_no_page_load(page)


@pytest.mark.browser
def test_gmail_preset_fills_while_still_typing(ready, page) -> None:
    """The email field promises 'Typing a Gmail ... address fills in the servers': the
    preset must arrive after a pause in typing, without leaving the field."""
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    wait_live(page, "#ie-email")
    set_marker(page)
    email = page.locator("#ie-email")
    email.fill("")
    email.press_sequentially("rita.recruits@gmail.com")
    _assert_gmail_preset(page)
    # Typing went on uninterrupted: the field keeps focus and its value.
    expect(email).to_be_focused()
    expect(email).to_have_value("rita.recruits@gmail.com")
    assert_no_page_load(page)


# -- (e) protocol and security switch the default port ------------------------------------


@pytest.mark.browser
def test_protocol_and_security_change_the_port(ready, page) -> None:
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    set_marker(page)
    # rita@acme.test matches no preset: ports follow the protocol and security.
    expect(page.locator("#ie-in_port")).to_have_value("993")
    expect(page.locator("#ie-delete_policy")).to_have_count(0)

    change_select(page, "#ie-protocol", "pop3")
    expect(page.locator("#ie-in_port")).to_have_value("995")
    expect(page.locator("#ie-in_security")).to_have_value("ssl")
    expect(page.locator("#ie-delete_policy")).to_be_visible()
    expect(page.get_by_label("Delete message settings")).to_have_value("leave")

    change_select(page, "#ie-in_security", "starttls")
    expect(page.locator("#ie-in_port")).to_have_value("110")

    change_select(page, "#ie-protocol", "imap")
    expect(page.locator("#ie-delete_policy")).to_have_count(0)
    expect(page.locator("#ie-in_security")).to_have_value("starttls")
    expect(page.locator("#ie-in_port")).to_have_value("143")

    change_select(page, "#ie-in_security", "ssl")
    expect(page.locator("#ie-in_port")).to_have_value("993")
    change_select(page, "#ie-in_security", "starttls")
    expect(page.locator("#ie-in_port")).to_have_value("143")

    change_select(page, "#ie-out_security", "starttls")
    expect(page.locator("#ie-out_port")).to_have_value("587")
    assert_no_page_load(page)


@pytest.mark.browser
def test_gmail_pop3_switch_uses_the_pop_preset(ready, page) -> None:
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    change_field(page, "#ie-email", "rita.recruits@gmail.com")
    expect(page.locator("#ie-in_host")).to_have_value("imap.gmail.com")
    change_select(page, "#ie-protocol", "pop3")
    expect(page.locator("#ie-in_host")).to_have_value("pop.gmail.com")
    expect(page.locator("#ie-in_port")).to_have_value("995")
    expect(page.locator("#ie-delete_policy")).to_be_visible()
    expect(page.locator("#mb-preset")).to_contain_text("recent:")


@pytest.mark.browser
def test_same_credentials_toggle_shows_outgoing_login(ready, page) -> None:
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    expect(page.locator("#ie-out_login")).to_have_count(0)
    wait_live(page, "#ie-same_credentials")
    with page.expect_response(_fields_response):
        page.uncheck("#ie-same_credentials")
    expect(page.locator("#ie-out_login")).to_be_visible()
    expect(page.locator("#ie-out_password")).to_be_visible()
    wait_live(page, "#ie-same_credentials")
    with page.expect_response(_fields_response):
        page.check("#ie-same_credentials")
    expect(page.locator("#ie-out_login")).to_have_count(0)


# -- (f) wrong password -------------------------------------------------------------------


@pytest.mark.browser
def test_wrong_password_says_so(ready, page, dovecot, smtp_lab) -> None:
    user = lab_user(dovecot, "wrong")
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    fill_lab_form(page, dovecot, smtp_lab, user, password="not-the-password")
    set_marker(page)
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result")
    # IE_MAIL_TIMEOUT is 3 s here; the answer must come well within a few seconds.
    expect(result).to_contain_text("rejected the username or password", timeout=8_000)
    expect(result.locator("li.fail").first).to_contain_text("Incoming server")
    expect(result).not_to_contain_text("Signed in successfully")
    # Never the server's raw words.
    for raw in ("AUTHENTICATIONFAILED", "535", "Traceback", "[AUTH"):
        expect(result).not_to_contain_text(raw)
    assert_no_page_load(page)


# -- (g) field errors in place ------------------------------------------------------------


@pytest.mark.browser
def test_bad_port_error_appears_beside_the_field(ready, page) -> None:
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    set_marker(page)
    expect(page.locator("#e-in_port")).to_be_empty()
    change_field(page, "#ie-in_port", "abc")
    err = page.locator("#e-in_port")
    expect(err).to_contain_text("Enter the port as a number")
    expect(err).to_have_attribute("aria-live", "polite")
    # It sits in the port's own field, next to the input.
    expect(page.locator("#f-in_port #e-in_port")).to_have_count(1)
    # Fixing it clears the message.
    change_field(page, "#ie-in_port", "993")
    expect(err).to_be_empty()
    assert_no_page_load(page)


@pytest.mark.browser
def test_save_with_errors_redraws_in_place(ready, page) -> None:
    """Save with a missing password (htmx): errors beside fields, typed values kept."""
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    set_marker(page)
    change_field(page, "#ie-in_host", "127.0.0.1")
    change_field(page, "#ie-out_host", "127.0.0.1")
    page.get_by_role("button", name="Save mailbox").click()
    expect(page.locator("#e-in_password")).to_contain_text("Enter your email password")
    expect(page.locator("#mailbox-form [role=alert]")).to_be_visible()
    expect(page.locator("#ie-in_host")).to_have_value("127.0.0.1")
    expect(page).to_have_url(ready.url + NEW)
    assert_no_page_load(page)


# -- (h) without JavaScript ----------------------------------------------------------------


@pytest.fixture
def nojs_page(browser):
    ctx = browser.new_context(java_script_enabled=False)
    yield ctx.new_page()
    ctx.close()


@pytest.mark.browser
def test_form_works_without_javascript(ready, nojs_page, dovecot, smtp_lab) -> None:
    page = nojs_page
    user = lab_user(dovecot, "nojs")
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    page.fill("#ie-account_name", "No-JS mailbox")
    page.fill("#ie-email", f"{user.login}@example.test")
    page.fill("#ie-in_login", user.login)
    page.fill("#ie-in_password", user.password)
    page.fill("#ie-in_host", "127.0.0.1")
    page.select_option("#ie-in_security", "ssl")
    page.fill("#ie-in_port", str(dovecot.imaps))
    page.fill("#ie-out_host", "127.0.0.1")
    page.select_option("#ie-out_security", "ssl")
    page.fill("#ie-out_port", str(smtp_lab.tls_port))

    # Test connection without JavaScript posts the whole form and answers on the page.
    with page.expect_navigation():
        page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result li")).to_have_count(2)
    expect(page.locator("#test-result li.ok")).to_have_count(2)

    # The password is not rendered back, so type it again and Save by plain POST.
    page.fill("#ie-in_password", user.password)
    with page.expect_navigation():
        page.get_by_role("button", name="Save mailbox").click()
    expect(page).to_have_url(ready.url + MAILBOXES)
    card = page.locator("section.ie-card", has_text="No-JS mailbox")
    expect(card.locator(".ie-badge")).to_have_text("Active")


@pytest.mark.browser
def test_missing_field_without_javascript_rerenders_with_error(ready, nojs_page) -> None:
    page = nojs_page
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    page.fill("#ie-in_host", "127.0.0.1")
    page.fill("#ie-out_host", "127.0.0.1")
    page.fill("#ie-in_port", "abc")
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Save mailbox").click()
    assert nav.value is not None and nav.value.status == 422
    expect(page).to_have_url(ready.url + NEW)
    expect(page.locator("#f-in_password #e-in_password")).to_contain_text(
        "Enter your email password")
    expect(page.locator("#f-in_port #e-in_port")).to_contain_text("Enter the port as a number")
    expect(page.locator("#ie-in_port")).to_have_value("abc")
    expect(page.locator("#ie-in_host")).to_have_value("127.0.0.1")
    expect(page.locator("#mailbox-form [role=alert]")).to_be_visible()
