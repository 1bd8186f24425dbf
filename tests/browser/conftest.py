"""Browser fixtures: the reference host with the add-on, served for real on a free
loopback port, seeded with the demo data, and driven by headless Chromium."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import TEST_KEY
from tests.lab.discovery_lab import discovery_config
from tests.lab.servers import free_port


class LiveHost:
    def __init__(self, app, url: str):
        self.app = app
        self.url = url
        self.addon = app.extensions["integrated_email"]

    def login(self, page, email: str, password: str) -> None:
        page.goto(self.url + "/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: "/login" not in u)

    def logout(self, page) -> None:
        page.context.clear_cookies()


@pytest.fixture
def live_host(tmp_path, dovecot, smtp_lab, lab_dns, autoconfig_web):
    """The reference host ATS + add-on on SQLite, served on 127.0.0.1:<free port>; settings
    discovery (and mail host names) resolve through the lab DNS, never the Internet's."""
    from examples.host_ats import create_app
    from examples.host_ats.seed import seed_demo

    app = create_app({
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "IE_SECRET_KEYS": TEST_KEY,
        "IE_SCHEDULER": "off",
        "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535,localhost:1024-65535",
        "IE_CA_FILE": dovecot.ca_file,
        "IE_MAIL_TIMEOUT": 3.0,
        "IE_BLOB_DIR": str(tmp_path / "blobs"),
        # No provider pacing for the lab's servers unless a test sets a limit.
        "IE_SEND_PER_MINUTE_DEFAULT": 0,
        "IE_SEND_PER_DAY_DEFAULT": 0,
        **discovery_config(lab_dns, autoconfig_web, dovecot, smtp_lab),
    })
    with app.extensions["host_ats.db"].sessions() as s:
        seed_demo(s)
        s.commit()
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveHost(app, f"http://127.0.0.1:{port}")
    server.shutdown()
    thread.join(5)
    addon = app.extensions["integrated_email"]
    addon.engine.dispose()


# -- helpers shared by the browser tests ------------------------------------------

ADMIN = ("admin@acme.test", "admin123")
RITA = ("rita@acme.test", "rita123")
ROB = ("rob@acme.test", "rob123")
GATE_SENTENCE = ("Your administrator must set up integrated email before you can connect "
                 "your mailbox.")


def open_settings_menu(page):
    """Open the host's Settings menu (a <details> element) and return its list."""
    summary = page.locator("details.menu > summary")
    if page.locator("details.menu[open]").count() == 0:
        summary.click()
    menu = page.locator("details.menu .menu-list")
    menu.wait_for(state="visible")
    return menu


def click_menu(page, label: str) -> None:
    """Settings > <label>, by clicking through the menu."""
    menu = open_settings_menu(page)
    menu.get_by_role("link", name=label, exact=True).click()
    page.wait_for_load_state()


def admin_save_global_settings(live_host, page) -> None:
    """As the signed-in admin, open global settings and Save with the defaults; waits for
    the page the save reloads, which shows the confirmation."""
    from playwright.sync_api import expect

    page.goto(live_host.url + "/integrated-email/admin/settings")
    page.locator("#admin-form button.ie-primary", has_text="Save").click()
    expect(page.get_by_text("Integrated email settings saved")).to_be_visible()


def _fields_response(r) -> bool:
    return "/integrated-email/setup/fields" in r.url and r.request.method == "POST"


_SETTLED = "!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"


def htmx_settled(page) -> None:
    """Wait until htmx has no request in flight and has finished swapping/settling."""
    page.wait_for_function(_SETTLED)


def wait_live(page, selector: str) -> None:
    """Wait until htmx has wired up this (possibly just swapped-in) field."""
    htmx_settled(page)
    page.wait_for_function(
        "sel => { const e = document.querySelector(sel);"
        " return !!(e && e['htmx-internal-data'] && e['htmx-internal-data'].initHash); }",
        arg=selector)


def change_field(page, selector: str, value: str) -> None:
    """Type into a live field and leave it, waiting for the htmx answer to land."""
    wait_live(page, selector)
    with page.expect_response(_fields_response, timeout=10_000):
        page.fill(selector, value)
        page.locator(selector).blur()
    htmx_settled(page)


def change_select(page, selector: str, value: str) -> None:
    wait_live(page, selector)
    with page.expect_response(_fields_response, timeout=10_000):
        page.select_option(selector, value)
    htmx_settled(page)


@pytest.fixture
def active(live_host):
    live_host.addon.set_active(True)
    return live_host


@pytest.fixture
def ready(active, browser):
    """Active add-on whose global settings an admin has saved (in their own browser)."""
    ctx = browser.new_context()
    admin_page = ctx.new_page()
    active.login(admin_page, *ADMIN)
    admin_save_global_settings(active, admin_page)
    ctx.close()
    return active
