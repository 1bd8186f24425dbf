"""F1 in a real browser: an admin activates and deactivates Integrated Email from the
host's plugin manager; while inactive its menu entry is hidden and its pages answer
404; reactivating keeps saved data; recruiters cannot reach plugin management."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN, RITA, click_menu, open_settings_menu

pytestmark = pytest.mark.browser

ADDON_PAGES = ("/integrated-email/", "/integrated-email/admin/settings",
               "/integrated-email/mailboxes", "/integrated-email/mailboxes/new")


def _plugin_card(page):
    return page.locator("#plugin-integrated_email")


@pytest.mark.browser
def test_admin_activates_and_deactivates_the_addon(live_host, page) -> None:
    live_host.login(page, *ADMIN)
    assert not live_host.addon.is_active()

    # Inactive to begin with: no menu entry, pages are 404.
    menu = open_settings_menu(page)
    expect(menu.get_by_role("link", name="Integrated email")).to_have_count(0)
    for path in ADDON_PAGES:
        assert page.request.get(live_host.url + path).status == 404, path

    # Settings > Manage plugins and add-ons, by clicking.
    click_menu(page, "Manage plugins and add-ons")
    expect(page).to_have_url(live_host.url + "/admin/plugins")
    card = _plugin_card(page)
    expect(card).to_contain_text("Inactive")
    card.get_by_role("button", name="Activate").click()
    expect(page.locator(".flash")).to_contain_text("Integrated email is active")
    expect(_plugin_card(page)).to_contain_text("Active")
    expect(_plugin_card(page).get_by_role("button", name="Deactivate")).to_be_visible()
    assert live_host.addon.is_active()

    # The menu now has the entry; it lands on the global settings page.
    click_menu(page, "Integrated email")
    expect(page).to_have_url(live_host.url + "/integrated-email/admin/settings")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Integrated email: global settings")

    # Save a non-default value while active; a saved form reloads the page itself.
    page.fill("#ie-fetch_interval_minutes", "42")
    page.locator("#admin-form button.ie-primary").click()
    expect(page.get_by_text("Integrated email settings saved")).to_be_visible()
    expect(page.locator("#ie-fetch_interval_minutes")).to_have_value("42")

    # Deactivate: entry disappears, pages answer 404 (in the browser too).
    click_menu(page, "Manage plugins and add-ons")
    _plugin_card(page).get_by_role("button", name="Deactivate").click()
    expect(page.locator(".flash")).to_contain_text("Integrated email is inactive")
    expect(_plugin_card(page)).to_contain_text("Inactive")
    assert not live_host.addon.is_active()
    menu = open_settings_menu(page)
    expect(menu.get_by_role("link", name="Integrated email")).to_have_count(0)
    expect(menu.get_by_role("link", name="Manage plugins and add-ons")).to_be_visible()
    for path in ADDON_PAGES:
        assert page.request.get(live_host.url + path).status == 404, path
    resp = page.goto(live_host.url + "/integrated-email/admin/settings")
    assert resp is not None and resp.status == 404
    # A state-changing request is refused too, before any CSRF check can answer.
    assert page.request.post(live_host.url + "/integrated-email/admin/settings",
                             form={"fetch_interval_minutes": "7"}).status == 404

    # Reactivate: the entry is back and the saved value survived.
    page.goto(live_host.url + "/")
    click_menu(page, "Manage plugins and add-ons")
    _plugin_card(page).get_by_role("button", name="Activate").click()
    expect(_plugin_card(page).get_by_role("button", name="Deactivate")).to_be_visible()
    click_menu(page, "Integrated email")
    # Settings were saved, so the admin now lands on My mailboxes (or the set-up form);
    # either way global settings are one click away and still hold 42.
    page.goto(live_host.url + "/integrated-email/admin/settings")
    expect(page.locator("#ie-fetch_interval_minutes")).to_have_value("42")
    expect(page.locator(".ie-alert-info")).to_have_count(0)  # "complete and save" banner gone


@pytest.mark.browser
def test_recruiter_cannot_reach_plugin_management(live_host, page) -> None:
    live_host.login(page, *RITA)
    menu = open_settings_menu(page)
    expect(menu.get_by_role("link", name="Company settings")).to_be_visible()
    expect(menu.get_by_role("link", name="Manage plugins and add-ons")).to_have_count(0)
    expect(page.locator("a[href*='/admin/plugins']")).to_have_count(0)

    resp = page.goto(live_host.url + "/admin/plugins")
    assert resp is not None and resp.status == 403
    expect(page.locator("#plugin-integrated_email")).to_have_count(0)

    # Nor can a recruiter flip the switch by posting directly, even with a valid token.
    page.goto(live_host.url + "/candidates")
    token = page.locator("input[name=_host_csrf]").first.input_value()
    assert token
    assert page.request.post(live_host.url + "/admin/plugins/integrated_email/activate",
                             form={"_host_csrf": token}).status == 403
    assert not live_host.addon.is_active()


@pytest.mark.browser
def test_recruiter_menu_entry_follows_activation(live_host, page) -> None:
    """The recruiter's Settings menu shows the entry only while the add-on is active."""
    live_host.login(page, *RITA)
    expect(open_settings_menu(page).get_by_role("link", name="Integrated email")).to_have_count(0)
    live_host.addon.set_active(True)
    page.reload()
    expect(open_settings_menu(page).get_by_role("link", name="Integrated email")).to_be_visible()
    live_host.addon.set_active(False)
    page.reload()
    expect(open_settings_menu(page).get_by_role("link", name="Integrated email")).to_have_count(0)
