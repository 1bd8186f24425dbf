"""Removing a mailbox in Chromium: the confirmation page asks whether to keep the
notes it wrote on candidates, and "Remove the notes too" takes them off the
candidate's page (issue 15 point 9, issue 14's note contract: delete_note)."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from plugin.jobs.dispatcher import dispatch
from tests.browser.conftest import RITA, click_menu
from tests.helpers import make_mailbox, raw_mail

pytestmark = pytest.mark.browser


def _candidate(live_host):
    from examples.host_ats.models import Candidate
    with live_host.app.extensions["host_ats.db"].sessions() as s:
        c = s.scalars(select(Candidate).where(Candidate.email.is_not(None),
                                              Candidate.confidential.is_(False))
                      .order_by(Candidate.id).limit(1)).one()
        return c.email, f"{c.first_name} {c.last_name}"


@pytest.mark.parametrize("choice", ["Remove the notes too", "Keep the notes"])
def test_removing_a_mailbox_removes_its_notes_when_asked(ready, page, dovecot, choice):
    live = ready
    email, name = _candidate(live)
    with live.app.app_context():
        rita_id = live.addon.host.users_by_email([RITA[0]])[RITA[0]].id
    user = dovecot.add_user(f"rm{secrets.token_hex(4)}", "pw")
    make_mailbox(live.addon, rita_id, dovecot, user, account_name="Old job", sharing="public")
    subject = f"Interview notes {secrets.token_hex(3)}"
    dovecot.deliver(user, raw_mail(f"{name} <{email}>", user.email, subject, "See you"))
    with live.app.app_context():
        dispatch(live.addon, wait=True)

    live.login(page, *RITA)
    page.get_by_role("link", name="Candidates", exact=True).click()
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.locator("#notes .note-text", has_text=subject)).to_have_count(1)

    click_menu(page, "Integrated email")
    if "/mailboxes" not in page.url:  # the set-up page links to the list
        page.get_by_role("link", name="My mailboxes").first.click()
    card = page.locator("section.ie-card", has_text="Old job")
    card.get_by_role("link", name="Remove").click()
    expect(page.get_by_role("heading", name="Remove “Old job”?")).to_be_visible()
    expect(page.get_by_text("This mailbox wrote 1 note on candidates and contacts")).to_be_visible()
    page.get_by_label(choice).check()
    page.get_by_role("button", name="Remove mailbox").click()
    expect(page.get_by_text("Mailbox 'Old job' removed.")).to_be_visible()

    page.get_by_role("link", name="Candidates", exact=True).click()
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.locator("#notes .note-text", has_text=subject)).to_have_count(
        0 if choice.startswith("Remove") else 1)
    page.screenshot(path=f"/tmp/ie-mailbox-removed-{choice.split()[0].lower()}.png",
                    full_page=True)
