"""Issue 17 in Chromium: a recruiter types only the address, the form says "Looking up
settings for …", fills its servers in place with a line naming the source, and Test
connection passes against the lab's Dovecot and SMTP. One test per discovery path, plus
a server typed by hand while a late discovery was on its way."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import RITA, change_field, click_menu, htmx_settled
from tests.integration.oauth_helpers import point_at_lab
from tests.lab.autoconfig_web import client_config, document, late
from tests.lab.discovery_lab import GUESS_DOMAIN, PRESET_HOSTS, publish_lab_mail
from tests.lab.servers import HOST

pytestmark = pytest.mark.browser


def _lab_user(dovecot):
    return dovecot.add_user(f"d{secrets.token_hex(4)}", f"pw-{secrets.token_urlsafe(9)}")


def _open_form(live, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    live.login(page, *RITA)
    click_menu(page, "Integrated email")
    expect(page.locator("#mailbox-form")).to_be_visible()
    return ctx, page


def _type_address(page, address: str, source_line: str) -> None:
    change_field(page, "#ie-email", address)  # waits for the lookup's answer too
    expect(page.locator("#mb-discovery-line, #mb-preset").filter(has_text=source_line)
           ).to_be_visible(timeout=10_000)


def _expect_servers(page, in_host: str, in_port: int, out_host: str, out_port: int,
                    login: str) -> None:
    expect(page.locator("#ie-in_host")).to_have_value(in_host)
    expect(page.locator("#ie-in_port")).to_have_value(str(in_port))
    expect(page.locator("#ie-in_security")).to_have_value("ssl")
    expect(page.locator("#ie-out_host")).to_have_value(out_host)
    expect(page.locator("#ie-out_port")).to_have_value(str(out_port))
    expect(page.locator("#ie-in_login")).to_have_value(login)


def _test_connection_passes(page, user, name: str) -> None:
    page.fill("#ie-in_password", user.password)
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result li")
    expect(result).to_have_count(2, timeout=15_000)
    expect(result.nth(0)).to_contain_text("Signed in successfully.")
    expect(result.nth(1)).to_contain_text("Signed in successfully.")
    page.screenshot(path=f"/tmp/ie-discover-{name}.png", full_page=True)


def _published_path(live, browser, dovecot, address: str, sentence: str, host: str,
                    smtp_lab, name: str, user) -> None:
    ctx, page = _open_form(live, browser)
    _type_address(page, address, sentence)
    _expect_servers(page, host, dovecot.imaps, host, smtp_lab.tls_port, address)
    _test_connection_passes(page, user, name)
    ctx.close()


def test_discover_autoconfig_host_fills_the_form_in_the_browser(
        ready, browser, lab_dns, autoconfig_web, dovecot, smtp_lab):
    domain = "acme-corp.test"
    host = publish_lab_mail(lab_dns, autoconfig_web, domain, dovecot, smtp_lab)
    user = _lab_user(dovecot)
    _published_path(ready, browser, dovecot, f"{user.login}@{domain}",
                    f"Settings from {domain}'s published configuration.", host, smtp_lab,
                    "autoconfig", user)


def test_discover_well_known_document_fills_the_form_in_the_browser(
        ready, browser, lab_dns, autoconfig_web, dovecot, smtp_lab):
    domain = "wellknown-corp.test"
    host = publish_lab_mail(lab_dns, autoconfig_web, domain, dovecot, smtp_lab, well_known=True)
    user = _lab_user(dovecot)
    _published_path(ready, browser, dovecot, f"{user.login}@{domain}",
                    f"Settings from {domain}'s published configuration.", host, smtp_lab,
                    "well-known", user)


def test_discover_srv_records_fill_the_form_in_the_browser(ready, browser, lab_dns, dovecot,
                                                           smtp_lab):
    domain = "srv-corp.test"
    host = f"mail.{domain}"
    lab_dns.zone.add_srv(f"_imaps._tcp.{domain}", f"{host}.", dovecot.imaps)
    lab_dns.zone.add_srv(f"_submissions._tcp.{domain}", f"{host}.", smtp_lab.tls_port)
    lab_dns.zone.add_a(host, HOST)
    user = _lab_user(dovecot)
    _published_path(ready, browser, dovecot, f"{user.login}@{domain}",
                    f"Settings from {domain}'s DNS service records.", host, smtp_lab, "srv",
                    user)


def test_discover_mx_host_autoconfig_fills_the_form_in_the_browser(
        ready, browser, lab_dns, autoconfig_web, dovecot, smtp_lab):
    domain, mx_domain = "mx-corp.test", "mailhost-corp.test"
    lab_dns.zone.add_mx(domain, f"mx1.{mx_domain}.")
    host = publish_lab_mail(lab_dns, autoconfig_web, mx_domain, dovecot, smtp_lab)
    user = _lab_user(dovecot)
    _published_path(ready, browser, dovecot, f"{user.login}@{domain}",
                    f"Settings published by {mx_domain}, which receives {domain}'s mail.",
                    host, smtp_lab, "mx-autoconfig", user)


def test_discover_guess_confirmed_by_handshake_fills_the_form_in_the_browser(
        ready, browser, lab_dns, dovecot, smtp_lab):
    for name in ("imap", "smtp", "mail"):
        lab_dns.zone.add_a(f"{name}.{GUESS_DOMAIN}", HOST)
    user = _lab_user(dovecot)
    address = f"{user.login}@{GUESS_DOMAIN}"
    ctx, page = _open_form(ready, browser)
    _type_address(page, address, f"Settings guessed from common server names "
                                 f"(imap.{GUESS_DOMAIN} answered securely)")
    _expect_servers(page, f"imap.{GUESS_DOMAIN}", dovecot.imaps, f"smtp.{GUESS_DOMAIN}",
                    smtp_lab.tls_port, address)
    _test_connection_passes(page, user, "guess")
    ctx.close()


def test_discover_preset_fills_the_form_and_typed_ports_reach_the_lab(
        ready, browser, lab_dns, dovecot, smtp_lab):
    # The lab DNS answers for the preset's hosts (the lab certificate covers them); the lab
    # cannot listen on 993 and 465, so the recruiter types the lab's ports by hand.
    for name in PRESET_HOSTS:
        lab_dns.zone.add_a(name, HOST)
    user = _lab_user(dovecot)
    address = f"{user.login}@gmail.com"
    ctx, page = _open_form(ready, browser)
    _type_address(page, address, "Gmail settings were filled in for you.")
    _expect_servers(page, "imap.gmail.com", 993, "smtp.gmail.com", 465, address)
    expect(page.locator("#mb-discovery-line")).to_be_empty()  # nothing else to look up
    change_field(page, "#ie-in_port", str(dovecot.imaps))
    change_field(page, "#ie-out_port", str(smtp_lab.tls_port))
    _test_connection_passes(page, user, "preset")
    ctx.close()


def test_discover_mx_at_google_workspace_offers_sign_in_with_google(
        ready, browser, lab_dns, oauth_lab, dovecot, smtp_lab):
    clients = point_at_lab(ready.app, oauth_lab, dovecot, smtp_lab,
                           ready.url + "/integrated-email/oauth/callback")
    ready.app.config.update(IE_OAUTH_GOOGLE_CLIENT_ID=clients["google"].client_id,
                            IE_OAUTH_GOOGLE_CLIENT_SECRET=clients["google"].client_secret)
    domain = "workspace-corp.test"
    lab_dns.zone.add_mx(domain, "aspmx.l.google.com.")
    ctx, page = _open_form(ready, browser)
    expect(page.locator("#ie-in_password")).to_be_visible()
    _type_address(page, f"ann@{domain}",
                  f"{domain}'s mail is hosted by Google Workspace: settings for Google Workspace.")
    expect(page.get_by_role("button", name="Sign in with Google")).to_be_visible()
    expect(page.locator("#ie-in_password")).to_be_hidden()
    # "Use a password instead" shows the servers discovery filled in.
    page.get_by_label("Use a password instead").check()
    expect(page.locator("#ie-in_host")).to_have_value("imap.gmail.com")
    expect(page.locator("#ie-in_password")).to_be_visible()
    page.screenshot(path="/tmp/ie-discover-mx-provider.png", full_page=True)
    ctx.close()


def test_discover_typed_fields_survive_a_discovery_that_arrives_late(
        ready, browser, lab_dns, autoconfig_web, dovecot, smtp_lab):
    domain = "late-corp.test"
    ready.app.config["IE_DISCOVERY_BUDGET"] = 8
    host = f"mail.{domain}"
    lab_dns.zone.add_a(host, HOST)
    lab_dns.zone.add_a(f"autoconfig.{domain}", HOST)
    autoconfig_web.autoconfig(domain, late(document(client_config(
        imap=(host, dovecot.imaps, "SSL"), smtp=(host, smtp_lab.tls_port, "SSL"))), 2.0))
    ctx, page = _open_form(ready, browser)
    page.fill("#ie-email", f"lee@{domain}")
    page.locator("#ie-email").blur()
    expect(page.locator("#mb-discovery-line")).to_have_text(
        f"Looking up settings for {domain}…")
    page.wait_for_selector("#mb-discovery.htmx-request")  # the lookup is on its way
    page.fill("#ie-in_host", "imap.typed-by-hand.test")  # typing never waits for it
    page.fill("#ie-in_port", "10993")
    expect(page.locator("#mb-discovery-line")).to_have_text(
        f"Settings from {domain}'s published configuration.", timeout=10_000)
    htmx_settled(page)
    expect(page.locator("#ie-in_host")).to_have_value("imap.typed-by-hand.test")
    expect(page.locator("#ie-in_port")).to_have_value("10993")
    expect(page.locator("#ie-out_host")).to_have_value(host)  # the side not typed in
    expect(page.locator("#ie-out_port")).to_have_value(str(smtp_lab.tls_port))
    page.screenshot(path="/tmp/ie-discover-late.png", full_page=True)
    ctx.close()
