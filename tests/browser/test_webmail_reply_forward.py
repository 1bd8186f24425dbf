"""Reply, Reply all and Forward in the webmail lead to filled compose pages (they once
led to a 404: the buttons pointed at URLs no route answered and no test clicked them)."""
from __future__ import annotations

import re

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


def test_forward_in_webmail_sends_the_cv_and_leaves_out_what_was_unticked(
        live_host, page, dovecot, smtp_lab):
    import email
    from email import policy

    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from plugin.models import Mailbox

    smtp_lab.clear()
    cv = b"%PDF-1.4\n% Cara's CV\n" + bytes(range(256))
    raw = mail("Application: designer", body="My CV is attached.", n=4,
               html='<p>Hi</p><img src="cid:sig">',
               attachments=[("Cara CV.pdf", "application/pdf", cv)],
               inline=[("sig", "image/png", b"\x89PNG\r\n\x1a\nsignature")])
    user, mbid = rita_mailbox(live_host, dovecot, [raw])
    with Session(live_host.addon.engine) as s:  # send through the lab SMTP server
        s.execute(update(Mailbox).where(Mailbox.id == mbid).values(
            out_host="127.0.0.1", out_port=smtp_lab.tls_port, out_auth=True,
            same_credentials=True))
        s.commit()
    live_host.login(page, *RITA)
    page.goto(live_host.url + "/integrated-email/mail")
    page.get_by_role("link", name="Application: designer").click()
    page.get_by_role("link", name="Forward").click()
    expect(page.locator("h1")).to_have_text("Forward")
    expect(page.get_by_role("link", name="Back to the message")).to_be_visible()
    files = page.locator("#f-forwarded")
    expect(files).to_contain_text("Cara CV.pdf")
    cv_box = page.get_by_label("Cara CV.pdf")
    image_box = page.get_by_label(re.compile(r"attachment\.png"))
    expect(cv_box).to_be_checked()
    expect(image_box).to_be_checked()
    image_box.uncheck()  # the recruiter removes the signature image
    page.fill("#ie-to", "hiring.manager@example.test")
    page.fill("#ie-body", "Cara looks right for the role.\n\n" + page.input_value("#ie-body"))
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".ie-compose-result")).to_contain_text("Sent.")
    page.get_by_role("link", name="Back to your mail").click()
    expect(page.locator("h1")).to_have_text("Inbox")
    got = smtp_lab.wait_for(1)[0]
    assert got.rcpt_tos == ("hiring.manager@example.test",)
    parsed = email.message_from_bytes(got.data, policy=policy.default)
    sent = {p.get_filename(): p.get_content() for p in parsed.iter_attachments()}
    assert sent == {"Cara CV.pdf": cv}
    assert "Cara looks right" in parsed.get_body(("plain",)).get_content()
