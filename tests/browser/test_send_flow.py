"""F5 in Chromium on the reference host: compose from a candidate page (delivery, the
copy in Sent, the note), email links following the admin setting, and a bulk email
from the candidate list with its self-updating progress bar."""
from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from examples.host_ats.models import Candidate, User
from plugin.models import Mailbox
from tests.browser.conftest import ADMIN, RITA

pytestmark = pytest.mark.browser


def _admin_settings(live_host, browser, webmail_links: str = "yes") -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    live_host.login(page, *ADMIN)
    page.goto(live_host.url + "/integrated-email/admin/settings")
    page.select_option("#ie-webmail_links", webmail_links)
    page.fill("#ie-bulk_spacing_seconds", "0")
    with page.expect_response(lambda r: r.url.endswith("/integrated-email/admin/settings")
                              and r.request.method == "POST") as resp:
        page.locator("#admin-form button.ie-primary", has_text="Save").click()
    assert resp.value.status < 400
    ctx.close()


def _rita_mailbox(live_host, dovecot, smtp_lab):
    """Rita's mailbox: a lab Dovecot user, sending through the lab SMTP over SSL."""
    user = dovecot.add_user(f"rita{secrets.token_hex(3)}", f"pw-{secrets.token_urlsafe(9)}")
    with live_host.app.extensions["host_ats.db"].sessions() as hs:
        rita_id = hs.scalar(select(User.id).where(User.email == RITA[0]))
    addon = live_host.addon
    with Session(addon.engine) as s:
        s.add(Mailbox(user_id=str(rita_id), account_name="Lab", email=user.email, is_active=True,
                      protocol="imap", in_host="127.0.0.1", in_port=dovecot.imaps,
                      in_security="ssl", in_login=user.login,
                      in_password=addon.secrets.encrypt(user.password), same_credentials=True,
                      out_host="127.0.0.1", out_port=smtp_lab.tls_port, out_security="ssl",
                      out_auth=True))
        s.commit()
    return user


def _lab_candidate(live_host, dovecot) -> tuple[int, object]:
    person = dovecot.add_user(f"jane{secrets.token_hex(3)}", "pw-jane")
    with live_host.app.extensions["host_ats.db"].sessions() as hs:
        cand = Candidate(first_name="Jane", last_name="Lab", email=person.email,
                         title="Backend Engineer")
        hs.add(cand)
        hs.commit()
        return cand.id, person


@pytest.fixture
def ready(live_host, browser, dovecot, smtp_lab):
    smtp_lab.clear()
    live_host.addon.set_active(True)
    _admin_settings(live_host, browser)
    return live_host, _rita_mailbox(live_host, dovecot, smtp_lab)


def test_compose_from_candidate_page_delivers_files_and_notes(ready, page, dovecot, smtp_lab):
    live_host, rita_user = ready
    cand_id, jane = _lab_candidate(live_host, dovecot)
    live_host.login(page, *RITA)
    page.goto(f"{live_host.url}/candidates/{cand_id}")
    link = page.get_by_role("link", name=jane.email)
    expect(link).to_have_attribute("href", re.compile(r"^/integrated-email/compose\?"))
    link.click()
    expect(page.locator("#ie-to")).to_have_value(jane.email)
    expect(page.locator("#compose")).to_contain_text("Jane Lab")  # the record is linked
    page.fill("#ie-subject", "Interview on Monday")
    page.fill("#ie-body", "Hello Jane,\n\nSee you on Monday at 10.\n\nRita")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator(".ie-compose-result")).to_contain_text("Sent.")
    # Arrived at the candidate's lab mailbox, and a copy is in Rita's Dovecot Sent.
    assert smtp_lab.wait_for(1)[0].rcpt_tos == (jane.email,)
    assert any(b"Interview on Monday" in raw for _n, _f, raw in dovecot.list_messages(jane))
    sent = dovecot.list_messages(rita_user, "Sent")
    assert len(sent) == 1 and b"Interview on Monday" in sent[0][2]
    page.get_by_role("link", name="Back to Jane Lab").click()
    expect(page.locator("#notes")).to_contain_text("Email sent by Rita Recruiter")
    expect(page.locator("#notes")).to_contain_text("Interview on Monday")


def test_email_links_follow_the_admin_setting(ready, browser, page, dovecot):
    live_host, _user = ready
    cand_id, jane = _lab_candidate(live_host, dovecot)
    live_host.login(page, *RITA)
    url = f"{live_host.url}/candidates/{cand_id}"
    page.goto(url)
    link = page.get_by_role("link", name=jane.email)
    expect(link).to_have_attribute("href", re.compile(r"^/integrated-email/compose\?to="))
    _admin_settings(live_host, browser, webmail_links="no")
    page.goto(url)
    expect(link).to_have_attribute("href", f"mailto:{jane.email}")
    _admin_settings(live_host, browser, webmail_links="yes")
    page.goto(url)
    expect(link).to_have_attribute("href", re.compile(r"^/integrated-email/compose\?to="))


def test_bulk_from_the_candidate_list_shows_progress_to_100(ready, page, smtp_lab):
    live_host, _user = ready
    live_host.login(page, *RITA)
    page.goto(live_host.url + "/candidates")
    page.check("[data-select-all]")
    page.get_by_role("button", name="Email selected").click()
    expect(page.locator("h1")).to_have_text("Email 47 candidates")
    expect(page.locator("#bulk-skipped")).to_contain_text("3 selected candidates")
    page.fill("#ie-subject", "Hello {{ first_name }}")
    page.fill("#ie-body", "Dear {{ full_name }},\n\nA new role might suit you.\n\n"
                          "{{ recruiter_signature }}")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator(".ie-preview-subject")).to_have_text(re.compile(r"^Hello \w+"))
    page.get_by_role("button", name="Send 47 messages").click()
    expect(page.locator("#bulk-bar")).to_have_attribute("value", "100", timeout=30_000)
    expect(page.locator("[data-count=sent]")).to_have_text("47")
    expect(page.locator("[data-count=remaining]")).to_have_text("0")
    got = smtp_lab.wait_for(47)
    assert len(got) == 47 and all(len(r.rcpt_tos) == 1 for r in got)
