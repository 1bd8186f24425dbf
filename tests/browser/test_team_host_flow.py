"""The third host (tests/hosts/team_host) in Chromium: its owner turns the add-on on and
saves the settings, a recruiter sets up her mailbox and sends from an applicant's page
by clicking, and two applicants' panels share one page (ids from the record, htmx once)."""

from __future__ import annotations

import secrets
import threading

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from tests.browser.conftest import htmx_settled
from tests.hosts.team_host import create_team_app
from tests.hosts.team_host.app import add_record, seed
from tests.hosts.team_host.models import Note, db
from tests.hosts.team_host.testing import team_config
from tests.lab.servers import free_port


@pytest.fixture
def team_live(tmp_path, dovecot):
    app = create_team_app(team_config(f"sqlite:///{tmp_path}/team.db", tmp_path,
                                      dovecot.ca_file))
    addon = app.extensions["integrated_email"]
    addon.migrate()
    with app.app_context():
        world = seed()
        jane = dovecot.add_user(f"jane{secrets.token_hex(3)}", "pw-" + secrets.token_hex(6))
        refs = [add_record("applicant", "Jane Lab", ["jane.old@example.test", jane.email],
                           world["north"], given="Jane"),
                add_record("applicant", "Joe North", ["joe@example.test"], world["north"])]
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{port}", refs, jane
    server.shutdown()
    thread.join(5)
    addon.engine.dispose()


def _login(page, url: str, who: str) -> None:
    page.goto(url + "/t/login")
    page.fill("input[name=email]", f"{who}@team.test")
    page.fill("input[name=password]", f"{who}-pw")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Applicants")).to_be_visible()


def _tool(page, label: str) -> None:
    page.get_by_role("button", name="Tools").click()
    page.locator("#th-menu").get_by_role("link", name=label, exact=True).click()
    page.wait_for_load_state()


def _field(page, selector: str, value: str) -> None:
    """Type into a set-up field and leave it; wait for the add-on's htmx answer."""
    htmx_settled(page)
    with page.expect_response(lambda r: r.url.endswith("/team/mail/setup/fields")):
        page.fill(selector, value)
        page.locator(selector).blur()
    htmx_settled(page)


def test_set_up_compose_and_two_panels_by_clicking(team_live, browser, page, dovecot,
                                                   smtp_lab, mail_user):
    app, url, refs, jane = team_live
    smtp_lab.clear()
    owner = browser.new_context().new_page()
    _login(owner, url, "owner")
    _tool(owner, "Add-ons")
    owner.get_by_role("button", name="Turn on Integrated email").click()
    expect(owner.locator("#th-ie-state")).to_have_text("on")
    _tool(owner, "Integrated email")  # the owner role manages it: the settings come first
    owner.locator("#admin-form button.ie-primary", has_text="Save").click()
    expect(owner.get_by_text("Integrated email settings saved")).to_be_visible()
    owner.context.close()

    # Nina sets up her mailbox in the add-on's form, under the host's /team/mail prefix
    _login(page, url, "nina")
    _tool(page, "Integrated email")
    _field(page, "#ie-email", mail_user.email)
    _field(page, "#ie-in_login", mail_user.login)
    _field(page, "#ie-in_host", "127.0.0.1")
    _field(page, "#ie-in_port", str(dovecot.imaps))
    _field(page, "#ie-out_host", "127.0.0.1")
    _field(page, "#ie-out_port", str(smtp_lab.tls_port))
    page.fill("#ie-in_password", mail_user.password)
    page.check("input[name=sharing][value=custom]")
    page.get_by_role("button", name="Save mailbox").click()
    expect(page.locator("main")).to_contain_text("Active")
    assert "/team/mail/" in page.url

    # compose from Jane's page, to her second address (the host's Tools menu kept working
    # on the add-on's pages: its inline script carries the add-on's CSP nonce)
    page.get_by_role("link", name="Applicants").click()
    page.get_by_role("link", name="Jane Lab").click()
    page.get_by_role("link", name=jane.email).click()
    expect(page.locator("#ie-to")).to_have_value(jane.email)
    page.fill("#ie-subject", "Interview on Monday")
    page.fill("#ie-body", "Hello Jane,\n\nSee you on Monday.\n\nNina")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator(".ie-compose-result")).to_contain_text("Sent.")
    assert smtp_lab.wait_for(1)[0].rcpt_tos == (jane.email,)
    with app.app_context():
        assert any("Interview on Monday" in n.body for n in db.session.query(Note))

    # two applicants' panels on one page: distinct ids, one htmx, each box its own
    page.get_by_role("link", name="Applicants").click()
    page.get_by_label("Select Jane Lab").check()
    page.get_by_label("Select Joe North").check()
    page.get_by_role("button", name="Compare selected").click()
    panels = page.locator("section.ie-record-panel")
    expect(panels).to_have_count(2)
    ids = panels.evaluate_all("els => els.map(e => e.id)")
    assert len(set(ids)) == 2 and all(ids)
    dupes = page.evaluate("""() => { const seen = {}, d = [];
        document.querySelectorAll('[id]').forEach(e => { if (seen[e.id]) d.push(e.id);
        seen[e.id] = 1; }); return d; }""")
    assert dupes == []
    assert page.locator("script[src$='htmx.min.js']").count() == 1  # the host's own
    expect(panels.nth(0)).to_contain_text("Interview on Monday")
    expect(panels.nth(1)).not_to_contain_text("Interview on Monday")
    panels.nth(1).get_by_label("Share email").check()
    expect(panels.nth(1)).to_contain_text("Your mail with this record is shared")
    expect(panels.nth(0)).to_contain_text("Your mail with this record is private")
