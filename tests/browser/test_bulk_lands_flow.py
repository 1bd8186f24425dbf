"""Issue 18 in Chromium on the reference host: a saved template with merge fields used in
a bulk email from the candidate list, and its one-click unsubscribe page clicked by a
recipient who is not signed in; a signature on a reply; a message scheduled for later
sent at its time (the sending clock moved) and a cancelled one never sent."""
from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from plugin.jobs import send as send_job
from plugin.testing import clock
from tests.browser.conftest import RITA
from tests.browser.test_send_flow import _admin_settings, _rita_mailbox
from tests.browser.webmail_setup import rita_mailbox
from tests.integration.send_helpers import header
from tests.integration.webmail_helpers import mail

pytestmark = pytest.mark.browser


@pytest.fixture
def ready(live_host, browser, dovecot, smtp_lab):
    smtp_lab.clear()
    live_host.addon.set_active(True)
    _admin_settings(live_host, browser)
    yield live_host, _rita_mailbox(live_host, dovecot, smtp_lab)
    clock.set_clock(0, 1)


def test_template_with_merge_fields_used_in_bulk_and_unsubscribed_in_one_click(
        ready, page, browser, smtp_lab):
    live_host, _user = ready
    live_host.login(page, *RITA)
    page.goto(live_host.url + "/integrated-email/templates")
    page.fill("#ie-name", "Backend pitch")
    page.fill("#ie-subject", "A role for you, {{ first_name }}")
    page.fill("#ie-body", "Dear {{ full_name }},\n\nA backend role might suit you.\n\n"
                          "{{ recruiter_signature }}")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator("#template-list")).to_contain_text("Backend pitch")
    page.get_by_role("link", name="Candidates").first.click()
    page.check("[data-select-all]")
    page.get_by_role("button", name="Email selected").click()
    expect(page.locator("h1")).to_have_text("Email 47 candidates")
    page.select_option("#ie-template", label="Backend pitch")
    page.get_by_role("button", name="Use template").click()
    expect(page.locator("#ie-subject")).to_have_value("A role for you, {{ first_name }}")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator(".ie-preview-subject")).to_have_text(re.compile(r"^A role for you, \w+$"))
    page.get_by_role("button", name="Send 47 messages").click()
    expect(page.locator("#bulk-bar")).to_have_attribute("value", "100", timeout=30_000)
    got = smtp_lab.wait_for(47)
    subjects = [header(r.data, "Subject") for r in got]
    assert all(re.fullmatch(r"A role for you, \w+", s) for s in subjects), subjects[:3]
    # A recipient, not signed in, opens the link from the message and clicks once.
    link = re.search(r"<(https://[^>]+)>", header(got[0].data, "List-Unsubscribe")).group(1)
    stranger = browser.new_context()
    other = stranger.new_page()
    other.goto(live_host.url + urlsplit(link).path)
    expect(other.locator("h1")).to_have_text("Unsubscribe from bulk email")
    other.get_by_role("button", name="Unsubscribe").click()
    expect(other.locator("h1")).to_have_text("You are unsubscribed")
    stranger.close()
    # Rita's next bulk to the same candidates leaves that address out, and says why.
    page.get_by_role("link", name="Candidates").first.click()
    page.check("[data-select-all]")
    page.get_by_role("button", name="Email selected").click()
    expect(page.locator("h1")).to_have_text("Email 46 candidates")
    expect(page.locator("#bulk-skipped")).to_contain_text("Does not want bulk email")


def test_signature_is_added_to_a_reply(live_host, page, dovecot):
    raw = mail("Interview slots", body="Tuesday works for me", n=7)
    rita_mailbox(live_host, dovecot, [raw])
    live_host.login(page, *RITA)
    page.goto(live_host.url + "/integrated-email/mail")
    page.get_by_role("link", name="Interview slots").click()
    page.get_by_role("link", name="Reply", exact=True).click()
    expect(page.locator("h1")).to_have_text("Reply")
    page.get_by_role("link", name="Signature").click()
    page.fill("#ie-signature", "Rita Recruiter\nAcme Talent")
    page.get_by_role("button", name="Save signature").click()
    # Back on the reply: the signature sits above the quoted message.
    expect(page.locator("h1")).to_have_text("Reply")
    body = page.locator("textarea[name=body]").input_value()
    assert "-- \nRita Recruiter\nAcme Talent" in body
    assert body.index("Rita Recruiter") < body.index("Tuesday works for me")


def test_scheduled_message_is_sent_at_its_time_and_a_cancelled_one_never(ready, page,
                                                                          smtp_lab):
    live_host, _user = ready
    live_host.login(page, *RITA)
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    local = (datetime.now(berlin) + timedelta(days=1)).replace(hour=9, minute=30)
    page.goto(live_host.url + "/integrated-email/compose")
    for to, subject in (("later@example.test", "Scheduled one"),
                        ("never@example.test", "Cancelled one")):
        page.fill("#ie-to", to)
        page.fill("#ie-subject", subject)
        page.fill("#ie-body", "See you tomorrow.")
        page.locator("#f-send-later summary").click()
        page.fill("#ie-send_at", local.strftime("%Y-%m-%dT%H:%M"))
        page.fill("#ie-time_zone", "Europe/Berlin")
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.locator(".ie-compose-result")).to_contain_text("Scheduled.")
        if subject == "Scheduled one":
            page.get_by_role("link", name="Write another").click()
    page.locator(".ie-compose-result").get_by_role("link", name="Sent from the ATS").click()
    expect(page.get_by_role("button", name="Cancel sending")).to_have_count(2)
    page.locator("tr", has_text="Cancelled one").get_by_role(
        "button", name="Cancel sending").click()
    expect(page.locator("tr", has_text="Cancelled one")).to_contain_text("Cancelled")
    with live_host.app.app_context():
        send_job.run(live_host.addon)
    assert smtp_lab.received == []
    clock.advance((local - datetime.now(berlin)).total_seconds() + 60)
    with live_host.app.app_context():
        send_job.run(live_host.addon)
    got = smtp_lab.wait_for(1)
    assert [r.rcpt_tos for r in got] == [("later@example.test",)]
    page.reload()
    expect(page.locator("tr", has_text="Scheduled one")).to_contain_text("Sent")
