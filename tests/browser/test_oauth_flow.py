"""Issue 12 in Chromium on the reference host, clicking what people click: the admin turns
a provider on in the settings page, a recruiter types a Microsoft (or Google) address,
clicks "Sign in with …", approves at the lab provider's own page, comes back signed in,
and Test connection, Fetch now and a compose all work on that sign-in."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN, RITA, change_field, click_menu
from tests.browser.test_records_flow import Worker
from tests.helpers import raw_mail
from tests.integration.oauth_helpers import GOOGLE_DOMAIN, MICROSOFT_DOMAIN, point_at_lab

pytestmark = pytest.mark.browser

NAMES = {"microsoft": "Microsoft", "google": "Google"}


@pytest.fixture
def signed_in_lab(ready, oauth_lab, dovecot, smtp_lab):
    callback = ready.url + "/integrated-email/oauth/callback"
    clients = point_at_lab(ready.app, oauth_lab, dovecot, smtp_lab, callback)
    smtp_lab.clear()
    return ready, clients, callback


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_oauth_recruiter_signs_in_tests_fetches_and_sends(signed_in_lab, browser, provider,
                                                          oauth_lab, dovecot, smtp_lab):
    live, clients, callback = signed_in_lab
    name = NAMES[provider]
    # The admin turns the provider on, seeing the redirect URI to register.
    admin_ctx = browser.new_context()
    admin = admin_ctx.new_page()
    live.login(admin, *ADMIN)
    click_menu(admin, "Integrated email")
    admin.get_by_role("link", name="Global settings").click()
    expect(admin.locator("#ie-redirect-uri")).to_have_text(callback)
    section = admin.locator(f"#provider-{provider}")
    section.get_by_label(f"Let users sign in with {name}").check()
    section.get_by_label("Client id").fill(clients[provider].client_id)
    section.get_by_label("Client secret").fill(clients[provider].client_secret)
    admin.get_by_role("button", name="Save sign-in settings").click()
    expect(admin.locator(".flash")).to_contain_text(f"Users may sign in with {name}")
    expect(admin.locator(f"#provider-{provider}")).to_contain_text(
        "A secret is stored; leave blank to keep it.")
    assert clients[provider].client_secret not in admin.content()
    admin.locator("#sign-in-form").screenshot(path=f"/tmp/ie-oauth-{provider}-admin.png")
    admin_ctx.close()

    # The recruiter types an address whose mail is there: the button leads.
    user = dovecot.add_user(f"o{provider[0]}{abs(hash(callback)) % 10**6}", "pw-unused")
    domain = MICROSOFT_DOMAIN if provider == "microsoft" else GOOGLE_DOMAIN
    address = f"{user.login}@{domain}"
    ctx = browser.new_context(ignore_https_errors=True)  # the lab provider's CA
    page = ctx.new_page()
    live.login(page, *RITA)
    click_menu(page, "Integrated email")
    expect(page.locator("#ie-in_password")).to_be_visible()
    change_field(page, "#ie-email", address)
    button = page.get_by_role("button", name=f"Sign in with {name}")
    expect(button).to_be_visible()
    expect(page.locator("#ie-in_password")).to_be_hidden()
    expect(page.get_by_role("button", name="Save mailbox")).to_be_hidden()
    page.screenshot(path=f"/tmp/ie-oauth-{provider}-setup.png", full_page=True)
    # "Use a password instead" brings the password fields back, and unticking hides them.
    page.get_by_label("Use a password instead").check()
    expect(page.locator("#ie-in_password")).to_be_visible()
    page.get_by_label("Use a password instead").uncheck()
    expect(page.locator("#ie-in_password")).to_be_hidden()

    page.get_by_role("button", name=f"Sign in with {name}").click()
    page.wait_for_url(re.compile(re.escape(oauth_lab.authorize_url)))
    expect(page.locator("#login")).to_have_value(address)  # the login hint
    asked = oauth_lab.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and asked["login_hint"] == address
    if provider == "google":  # so Google returns a refresh token
        assert asked["access_type"] == "offline" and asked["prompt"] == "consent"
    else:
        assert "offline_access" in asked["scope"].split()
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(live.url + "/integrated-email/mailboxes")
    expect(page.locator(".flash")).to_contain_text(f"Signed in with {name} as {address}")
    expect(page.locator(".ie-facts")).to_contain_text(f"Signed in with {name} as {address}")
    page.screenshot(path=f"/tmp/ie-oauth-{provider}-signed-in.png", full_page=True)

    # Test connection on the edit page, on the token.
    page.get_by_role("link", name="Edit").click()
    expect(page.locator("#ie-in_password")).to_have_count(0)
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result li")
    expect(result).to_have_count(2, timeout=15_000)
    expect(result.nth(0)).to_contain_text("Signed in successfully.")
    expect(result.nth(1)).to_contain_text("Signed in successfully.")

    # Fetch now imports the mail waiting at the server.
    dovecot.deliver(user, raw_mail("Jane Lab <jane.lab@example.test>", address,
                                   "CV attached", "Please find my CV."))
    page.get_by_role("link", name="My mailboxes").click()
    page.get_by_role("button", name="Fetch now").click()
    with Worker(live):
        expect(page.locator(".ie-fetch")).to_contain_text("Fetched 1 new message",
                                                          timeout=15_000)

    # A compose goes out through the provider's SMTP on the token and is filed in Sent.
    click_menu(page, "New email")
    page.fill("#ie-to", "jane.lab@example.test")
    page.fill("#ie-subject", "Thanks for your CV")
    page.fill("#ie-body", "We will be in touch.")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator(".ie-compose-result")).to_contain_text("Sent.")
    (got,) = smtp_lab.wait_for(1)
    assert got.login == address and got.rcpt_tos == ("jane.lab@example.test",)
    assert any(b"Thanks for your CV" in raw for _n, _f, raw in dovecot.list_messages(user, "Sent"))
    page.screenshot(path=f"/tmp/ie-oauth-{provider}.png", full_page=True)
    html = page.content()
    assert "lab-at-" not in html and "lab-rt-" not in html
    ctx.close()
