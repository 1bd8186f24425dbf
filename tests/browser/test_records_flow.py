"""Mail on candidate pages, in Chromium: Fetch now records a candidate's email on
their notes once, and its viewer replies and forwards; Custom sharing with "Share
email" shows it to a colleague on that candidate's timeline only."""

from __future__ import annotations

import secrets
import threading

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from plugin.jobs.dispatcher import dispatch
from tests.browser.conftest import RITA, ROB
from tests.helpers import make_mailbox, raw_mail

pytestmark = pytest.mark.browser


class Worker:
    """A worker process's loop, in a thread: dispatch until stopped."""

    def __init__(self, live_host):
        self.live_host = live_host
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.live_host.app.app_context():
                dispatch(self.live_host.addon, wait=True)
            self.stop.wait(0.3)

    def __enter__(self) -> Worker:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


def _host_user_id(live_host, email: str) -> str:
    with live_host.app.app_context():
        return live_host.addon.host.users_by_email([email])[email].id


def _candidates(live_host, n: int):
    from examples.host_ats.models import Candidate
    with live_host.app.extensions["host_ats.db"].sessions() as s:
        rows = s.scalars(select(Candidate).where(Candidate.email.is_not(None),
                                                 Candidate.confidential.is_(False))
                         .order_by(Candidate.id).limit(n)).all()
        return [(c.id, c.email, f"{c.first_name} {c.last_name}") for c in rows]


def test_fetch_now_records_a_candidates_mail_on_their_notes_once(ready, page, dovecot):
    live = ready
    (cid, email, name), = _candidates(live, 1)
    user = dovecot.add_user(f"fn{secrets.token_hex(4)}", "pw")
    # Public: the note may carry the subject (every viewer of the record may read it).
    make_mailbox(live.addon, _host_user_id(live, RITA[0]), dovecot, user, sharing="public")
    subject = f"Application {secrets.token_hex(3)}"
    dovecot.deliver(user, raw_mail(f"{name} <{email}>", user.email, subject, "My CV"))

    live.login(page, *RITA)
    page.goto(live.url + "/integrated-email/mailboxes")
    # The worker starts after the click: a new mailbox is due at once, and a worker
    # already running could fetch it before Fetch now does.
    page.get_by_role("button", name="Fetch now").click()
    with Worker(live):
        expect(page.locator(".ie-fetch")).to_contain_text("Fetched 1 new message",
                                                          timeout=15_000)
        page.goto(f"{live.url}/candidates/{cid}")
        notes = page.locator("#notes .note-text", has_text=subject)
        expect(notes).to_have_count(1)
        expect(page.locator(".ie-timeline")).to_contain_text(subject)
        # Fetching again adds nothing.
        page.goto(live.url + "/integrated-email/mailboxes")
        page.get_by_role("button", name="Fetch now").click()
        expect(page.locator(".ie-fetch")).to_contain_text("Fetched 0 new messages",
                                                          timeout=15_000)
    page.goto(f"{live.url}/candidates/{cid}")
    expect(page.locator("#notes .note-text", has_text=subject)).to_have_count(1)
    page.screenshot(path="/tmp/ie-candidate-notes.png", full_page=True)
    # Reply and Forward from the record's message viewer open the composer.
    page.locator(".ie-timeline a", has_text=subject).click()
    page.get_by_role("link", name="Reply", exact=True).click()
    expect(page.locator("h1")).to_have_text("Reply")
    expect(page.locator("#ie-to")).to_have_value(f'"{name}" <{email}>')
    expect(page.locator("#compose")).to_contain_text(f"recorded on {name}")
    page.go_back()
    page.get_by_role("link", name="Forward").click()
    expect(page.locator("h1")).to_have_text("Forward")
    expect(page.locator("#ie-subject")).to_have_value(f"Fwd: {subject}")


def test_custom_sharing_shows_a_ticked_candidates_mail_to_a_colleague(ready, browser, dovecot):
    live = ready
    (c1, e1, n1), (c2, e2, n2) = _candidates(live, 2)
    user = dovecot.add_user(f"cs{secrets.token_hex(4)}", "pw")
    make_mailbox(live.addon, _host_user_id(live, RITA[0]), dovecot, user, sharing="custom")
    s1, s2 = f"To share {secrets.token_hex(3)}", f"Not shared {secrets.token_hex(3)}"
    dovecot.deliver(user, raw_mail(f"{n1} <{e1}>", user.email, s1))
    dovecot.deliver(user, raw_mail(f"{n2} <{e2}>", user.email, s2))
    with live.app.app_context():
        dispatch(live.addon, wait=True)

    rita = browser.new_context().new_page()
    live.login(rita, *RITA)
    rita.goto(f"{live.url}/candidates/{c1}")
    expect(rita.locator(".ie-timeline")).to_contain_text(s1)  # the owner sees it
    box = rita.get_by_label("Share email")
    with rita.expect_response(lambda r: r.url.endswith("/share")):
        box.check()
    expect(rita.get_by_label("Share email")).to_be_checked()

    rob = browser.new_context().new_page()
    live.login(rob, *ROB)
    rob.goto(f"{live.url}/candidates/{c1}")
    expect(rob.locator(".ie-timeline")).to_contain_text(s1)
    rob.locator(".ie-timeline a", has_text=s1).click()
    expect(rob.locator("iframe.ie-wm-body, .ie-wm-plain")).to_have_count(1)
    rob.goto(f"{live.url}/candidates/{c2}")
    expect(rob.locator(".ie-timeline")).not_to_contain_text(s2)
    rob.goto(f"{live.url}/candidates/{c1}")
    rob.screenshot(path="/tmp/ie-shared-timeline.png", full_page=True)
