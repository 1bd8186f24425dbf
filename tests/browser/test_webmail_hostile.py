"""Hostile mail opened in Chromium: every payload of tests/fixtures/hostile/payloads.txt
is delivered to the lab Dovecot as a real message (HTML body, subject, sender name,
attachment filename; and again as a plain-text body), synced, listed, searched and
opened.  Nothing may run (no dialog, no console marker, no page error) and, with
remote images off, nothing may be fetched from any host but the app."""
from __future__ import annotations

import email.utils
import os
from email.headerregistry import Address
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import Message
from tests.browser.conftest import RITA
from tests.browser.webmail_setup import rita_mailbox
from tests.unit.test_sanitize import load_payloads

pytestmark = pytest.mark.browser
PAYLOADS = load_payloads()


def one_line(text: str) -> str:
    return " ".join(text.split())


def hostile_html_mail(i: int, payload: str) -> bytes:
    m = EmailMessage()
    m["From"] = Address(display_name=one_line(payload)[:200], username=f"evil{i}",
                        domain="attacker.test")
    m["To"] = "victim@example.test"
    m["Subject"] = f"H{i} " + one_line(payload)
    m["Date"] = email.utils.formatdate(1_700_000_000 + i * 60)
    m["Message-ID"] = f"<hostile-html-{i}-{os.urandom(4).hex()}@attacker.test>"
    m.set_content("see the HTML part")
    m.add_alternative(f"<p>payload {i}</p>{payload}<p>end {i}</p>", subtype="html")
    m.add_attachment(b"x", maintype="application", subtype="octet-stream",
                     filename=one_line(payload)[:150] or "x")
    return bytes(m)


def hostile_text_mail(i: int, payload: str) -> bytes:
    m = EmailMessage()
    m["From"] = f"Plain {i} <plain{i}@attacker.test>"
    m["To"] = "victim@example.test"
    m["Subject"] = f"T{i} plain"
    m["Date"] = email.utils.formatdate(1_700_100_000 + i * 60)
    m["Message-ID"] = f"<hostile-text-{i}-{os.urandom(4).hex()}@attacker.test>"
    m.set_content(f"payload {i}\n{payload}\nhttp://ok.example/?q=\"><script>alert(1)</script>\n")
    return bytes(m)


def test_hostile_payloads_never_run_and_fetch_nothing_remote(live_host, page, dovecot):
    assert len(PAYLOADS) >= 60
    raws = [hostile_html_mail(i, p) for i, p in enumerate(PAYLOADS)]
    raws += [hostile_text_mail(i, p) for i, p in enumerate(PAYLOADS)]
    _user, mbid = rita_mailbox(live_host, dovecot, raws)
    with Session(live_host.addon.engine) as s:
        ids = list(s.scalars(select(Message.id).where(Message.mailbox_id == mbid)))
    assert len(ids) == 2 * len(PAYLOADS)

    app_origin = urlsplit(live_host.url).netloc
    dialogs, markers, errors, foreign = [], [], [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: markers.append(m.text) if "IE-XSS" in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def on_request(req) -> None:
        parts = urlsplit(req.url)
        if parts.scheme in ("data", "about", "blob"):
            return
        if parts.netloc != app_origin:
            foreign.append(req.url)
    page.on("request", on_request)
    page.on("popup", lambda p: foreign.append("popup:" + p.url))

    live_host.login(page, *RITA)
    # the lists (subjects, sender names, snippets) and a search over them
    page.goto(live_host.url + "/integrated-email/mail")
    for _ in range(5):
        page.mouse.wheel(0, 50000)
        page.wait_for_timeout(150)
    page.goto(live_host.url + "/integrated-email/mail/search?q=alert")
    page.goto(live_host.url + "/integrated-email/mail/search?q=payload")
    # every message
    opened_frames = 0
    for mid in ids:
        page.goto(f"{live_host.url}/integrated-email/mail/messages/{mid}")
        if page.locator("iframe.ie-wm-body").count():
            frame = page.frame_locator("iframe.ie-wm-body")
            assert frame.locator("body").inner_text().strip().startswith("payload"), mid
            opened_frames += 1
        else:
            assert "payload" in page.locator(".ie-wm-plain").inner_text()
    page.wait_for_timeout(500)  # let anything delayed (animations, refresh) fire
    assert opened_frames == len(PAYLOADS)
    assert dialogs == [], dialogs
    assert markers == [], markers
    assert errors == [], errors
    assert foreign == [], foreign
