"""The set-up form is usable by everyone: labels, announced errors, keyboard alone.
Also takes screenshots of the set-up form and the admin page into /tmp/ie-shots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN, RITA, change_field, htmx_settled, wait_live

NEW = "/integrated-email/mailboxes/new"

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/ie-shots")

_CONTROLS = """form => [...form.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && e.offsetParent !== null)
  .map(e => ({
    id: e.id, name: e.name, type: e.type,
    forLabel: !!(e.id && document.querySelector(`label[for="${CSS.escape(e.id)}"]`)),
    labelText: [...(e.labels || [])].map(l => l.textContent.trim()).join(' '),
    describedBy: (e.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean),
  }))"""


def _controls(page, form: str) -> list[dict]:
    return page.locator(form).evaluate(_CONTROLS)


@pytest.mark.browser
def test_every_field_has_a_label(ready, page) -> None:
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    controls = _controls(page, "#mailbox-form")
    assert len(controls) >= 12, controls
    for c in controls:
        if c["type"] == "radio":
            # Radios are labelled by the <label> wrapping them, inside a labelled group.
            assert c["labelText"], c
            continue
        assert c["id"], c
        assert c["forLabel"], f"no <label for={c['id']}>"
        assert c["labelText"], c
    expect(page.locator("#f-sharing[role=radiogroup]")).to_have_attribute(
        "aria-labelledby", "l-sharing")
    expect(page.locator("#l-sharing")).not_to_be_empty()


@pytest.mark.browser
def test_described_by_points_at_existing_elements(ready, page) -> None:
    """aria-describedby must not name ids that are not on the page."""
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    wait_live(page, "#ie-same_credentials")
    page.uncheck("#ie-same_credentials")  # shows the outgoing login and password too
    expect(page.locator("#ie-out_login")).to_be_visible()
    missing = page.locator("#mailbox-form").evaluate(
        """form => [...form.querySelectorAll('[aria-describedby]')].flatMap(e =>
             e.getAttribute('aria-describedby').split(/\\s+/).filter(Boolean)
              .filter(id => !document.getElementById(id)).map(id => `${e.id} -> ${id}`))""")
    assert missing == [], missing


@pytest.mark.browser
def test_error_containers_are_announced(ready, page) -> None:
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    errors = page.locator("#mailbox-form .error")
    assert errors.count() >= 10
    for i in range(errors.count()):
        expect(errors.nth(i)).to_have_attribute("aria-live", "polite")
    expect(page.locator("#test-result")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#mb-preset")).to_have_attribute("aria-live", "polite")
    # An error that appears in place is tied to its field for screen readers.
    change_field(page, "#ie-in_port", "abc")
    expect(page.locator("#e-in_port")).to_contain_text("Enter the port as a number")
    described = page.locator("#ie-in_port").get_attribute("aria-describedby") or ""
    assert "e-in_port" in described.split()


@pytest.mark.browser
def test_form_can_be_completed_with_the_keyboard_alone(ready, page) -> None:
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    typed = {"ie-account_name": "Keyboard mailbox", "ie-in_password": "kb-secret",
             "ie-in_host": "127.0.0.1", "ie-out_host": "127.0.0.1"}
    wait_live(page, "#ie-email")
    page.focus("#ie-account_name")
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(typed["ie-account_name"])
    visited = ["ie-account_name"]
    for _ in range(40):
        page.keyboard.press("Tab")
        htmx_settled(page)
        focused = page.evaluate("""() => { const e = document.activeElement;
            return {id: e.id, tag: e.tagName, text: (e.textContent || '').trim()}; }""")
        if focused["tag"] == "BUTTON" and focused["text"] == "Save mailbox":
            break
        assert focused["tag"] in ("INPUT", "SELECT", "TEXTAREA"), focused
        visited.append(focused["id"])
        if focused["id"] in typed:
            page.keyboard.press("ControlOrMeta+A")
            page.keyboard.type(typed[focused["id"]])
    else:
        pytest.fail(f"Tab never reached Save; visited {visited}")
    for fid in typed:
        assert fid in visited, (fid, visited)
    # Tab order follows the visual order of the form.
    order = [i for i in visited if i]
    assert order.index("ie-email") < order.index("ie-in_password") < order.index("ie-in_host") \
        < order.index("ie-in_port") < order.index("ie-out_host") < order.index("ie-out_port")
    page.keyboard.press("Enter")
    # No server answers on these settings: Save says so, and saving anyway is a keyboard
    # choice too (the box is then kept, but not made active).
    expect(page.locator("#save-blocked")).to_contain_text("could not sign in")
    page.focus("#ie-save_anyway")
    page.keyboard.press("Space")
    expect(page.locator("#ie-save_anyway")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page).to_have_url(ready.url + "/integrated-email/mailboxes")
    card = page.locator("section.ie-card", has_text="Keyboard mailbox")
    expect(card.get_by_role("button", name="Make active")).to_be_visible()


# -- screenshots (looked at by a person; not part of the repo) ------------------------------


@pytest.mark.browser
def test_screenshots(active, page) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    active.login(page, *ADMIN)
    page.goto(active.url + "/integrated-email/admin/settings")
    expect(page.locator("#admin-form")).to_be_visible()
    page.screenshot(path=str(SHOTS / "admin-settings.png"), full_page=True)
    page.get_by_role("button", name="Save", exact=True).click()
    # htmx answers a save with a full page load, so the confirmation shows at once.
    expect(page.get_by_text("Integrated email settings saved")).to_be_visible()
    expect(page.locator("#admin-form")).to_be_visible()

    page.context.clear_cookies()
    active.login(page, *RITA)
    page.goto(active.url + NEW)
    expect(page.locator("#mailbox-form")).to_be_visible()
    page.screenshot(path=str(SHOTS / "setup-form.png"), full_page=True)
    change_field(page, "#ie-email", "rita.recruits@gmail.com")
    expect(page.locator("#mb-preset")).to_contain_text("Gmail")
    change_field(page, "#ie-in_port", "abc")
    expect(page.locator("#e-in_port")).not_to_be_empty()
    page.screenshot(path=str(SHOTS / "setup-form-gmail-error.png"), full_page=True)
    page.set_viewport_size({"width": 420, "height": 900})
    page.screenshot(path=str(SHOTS / "setup-form-narrow.png"), full_page=True)
    for name in ("admin-settings", "setup-form", "setup-form-gmail-error", "setup-form-narrow"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000


@pytest.mark.browser
def test_idle_form_shows_no_stray_widgets(ready, page) -> None:
    """Seen on the screenshots: nothing meant for 'busy' or 'preset found' shows when idle."""
    ready.login(page, *RITA)
    page.goto(ready.url + NEW)
    expect(page.locator("#mailbox-form")).to_be_visible()
    # rita@acme.test matches no provider: the preset notes box must not draw an empty bar.
    expect(page.locator("#mb-preset li")).to_have_count(0)
    expect(page.locator("#mb-preset")).to_be_hidden()
    # No Test connection is running: its "Testing…" indicator must not show.
    expect(page.locator("#mailbox-form .htmx-indicator")).to_be_hidden()
