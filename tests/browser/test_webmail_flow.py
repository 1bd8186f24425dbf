"""F6 in Chromium: a recruiter reads, marks unread, deletes and searches, and the lab
Dovecot shows the same state; the pages run under their strict CSP without a violation."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import RITA
from tests.browser.webmail_setup import rita_mailbox
from tests.integration.webmail_helpers import mail

pytestmark = pytest.mark.browser


def wait_for(check, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError("the server never reached the expected state")
        time.sleep(0.1)


def server_state(dovecot, user) -> dict[str, str]:
    out = {}
    for folder in ("INBOX", "Trash"):
        for _n, flags, raw in dovecot.list_messages(user, folder):
            subject = next(line for line in raw.decode().splitlines()
                           if line.startswith("Subject:"))[9:]
            out[subject] = f"{folder}:{flags}"
    return out


def test_recruiter_reads_marks_unread_deletes_and_searches(live_host, page, dovecot):
    raws = [mail(f"Application {i}", body=f"Hello number {i}", n=i) for i in range(5)]
    raws.append(mail("Travel plans", body="The zeppelin leaves at noon", n=10))
    user, _mbid = rita_mailbox(live_host, dovecot, raws)
    violations, dialogs = [], []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: violations.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    live_host.login(page, *RITA)
    page.goto(live_host.url + "/integrated-email/mail")
    rows = page.locator("tr.ie-wm-row")
    expect(rows).to_have_count(6)
    expect(page.locator("tr.ie-unread")).to_have_count(6)
    expect(rows.first).to_contain_text("Travel plans")  # newest first
    expect(page.get_by_role("link", name="Inbox")).to_contain_text("6")

    # read
    page.get_by_role("link", name="Application 3").click()
    expect(page.locator("h1")).to_have_text("Application 3")
    expect(page.locator(".ie-wm-plain")).to_contain_text("Hello number 3")
    wait_for(lambda: server_state(dovecot, user)["Application 3"] == "INBOX:S")
    assert server_state(dovecot, user)["Application 2"] == "INBOX:"

    # mark unread
    page.get_by_role("button", name="Mark unread").click()
    expect(page.locator("tr.ie-unread")).to_have_count(6)
    wait_for(lambda: server_state(dovecot, user)["Application 3"] == "INBOX:")

    # delete
    page.get_by_role("link", name="Application 1").click()
    page.get_by_role("button", name="Delete").click()
    expect(page.locator("tr.ie-wm-row")).to_have_count(5)
    expect(page.get_by_role("link", name="Application 1")).to_have_count(0)
    wait_for(lambda: server_state(dovecot, user)["Application 1"].startswith("Trash:"))

    # search by a word of the body
    page.fill("#ie-wm-q", "zeppelin")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("h1")).to_have_text("Search: zeppelin")
    expect(page.locator("tr.ie-wm-row")).to_have_count(1)
    expect(page.locator("tr.ie-wm-row")).to_contain_text("Travel plans")

    assert dialogs == [] and violations == [], violations


def test_long_inbox_loads_more_rows_as_the_user_scrolls(live_host, page, dovecot):
    rita_mailbox(live_host, dovecot, [mail(f"Note {i}", n=i) for i in range(75)])
    live_host.login(page, *RITA)
    page.goto(live_host.url + "/integrated-email/mail")
    expect(page.locator("tr.ie-wm-row")).to_have_count(50)
    page.locator("tr.ie-wm-row").last.scroll_into_view_if_needed()
    page.mouse.wheel(0, 20000)
    expect(page.locator("tr.ie-wm-row")).to_have_count(75, timeout=10_000)
    expect(page.locator("tr.ie-wm-row").last).to_contain_text("Note 0")


def test_html_and_svg_attachments_download_and_never_render(live_host, page, dovecot):
    raw = mail("Files", body="two files", n=1, attachments=[
        ("cv.html", "text/html", b"<script>alert('html')</script><h1>CV</h1>"),
        ("logo.svg", "image/svg+xml",
         b"<svg xmlns='http://www.w3.org/2000/svg' onload=\"alert('svg')\"/>")])
    rita_mailbox(live_host, dovecot, [raw])
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    live_host.login(page, *RITA)
    page.goto(live_host.url + "/integrated-email/mail")
    page.get_by_role("link", name="Files").click()
    for name, body in (("cv.html", b"<h1>CV</h1>"), ("logo.svg", b"onload")):
        with page.expect_download() as info:
            page.get_by_role("link", name=name).click()
        download = info.value
        assert download.suggested_filename == name
        assert body in Path(download.path()).read_bytes()
        # opened directly (not through the link's download attribute): still a download
        url = page.get_by_role("link", name=name).get_attribute("href")
        with page.expect_download():
            try:
                page.goto(live_host.url + url)
            except Exception:  # Chromium reports "Download is starting"
                pass
    expect(page.locator("h1")).to_have_text("Files")
    assert dialogs == []
