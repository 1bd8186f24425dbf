"""Reply, Reply all and Forward in the webmail lead to filled compose pages (they once
led to a 404: the buttons pointed at URLs no route answered and no test clicked them)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import RITA
from tests.browser.webmail_setup import rita_mailbox
from tests.integration.webmail_helpers import mail

pytestmark = pytest.mark.browser


def test_reply_all_and_forward_buttons_open_filled_compose_pages(live_host, page, dovecot):
    raw = mail("Interview slots", body="Tuesday works for me", n=3,
               to="Bob Other <bob@partner.test>")
    rita_mailbox(live_host, dovecot, [raw])
    live_host.login(page, *RITA)
    page.goto(live_host.url + "/integrated-email/mail")
    page.get_by_role("link", name="Interview slots").click()
    expect(page.locator("h1")).to_have_text("Interview slots")

    page.get_by_role("link", name="Reply all").click()
    expect(page.locator("h1")).to_have_text("Reply")
    # everyone: the sender and the other recipients of the original
    expect(page.locator("input[name=to]")).to_have_value(
        '"Cara Candidate" <cara@candidates.test>, "Bob Other" <bob@partner.test>')
    expect(page.locator("input[name=subject]")).to_have_value("Re: Interview slots")

    page.go_back()
    page.get_by_role("link", name="Forward").click()
    expect(page.locator("h1")).to_have_text("Forward")
    expect(page.locator("input[name=to]")).to_have_value("")
    expect(page.locator("input[name=subject]")).to_have_value("Fwd: Interview slots")
    expect(page.locator("textarea[name=body]")).to_contain_text("Tuesday works for me")

    page.go_back()
    page.get_by_role("link", name="Reply", exact=True).click()
    expect(page.locator("h1")).to_have_text("Reply")
    expect(page.locator("input[name=to]")).to_have_value('"Cara Candidate" <cara@candidates.test>')
