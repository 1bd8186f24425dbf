"""Bounded views over the real store (mail delivered to the lab Dovecot and synced):
HTML is sanitized on the first view and kept (later views read the kept form), and an
attachment download reads its own slice of the raw message, not the whole message."""
from __future__ import annotations

import os
import re
from html import unescape

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.blobs import blob_store
from plugin.models import Attachment, Message
from plugin.reading.render_body import SANITIZED_VERSION
from tests.integration.webmail_helpers import Setup, mail


@pytest.fixture
def wm(mini, dovecot, mail_user):
    return Setup(mini, dovecot, mail_user)


def _frame(resp) -> str:
    return unescape(re.search(r'srcdoc="([^"]*)"', resp.get_data(as_text=True)).group(1))


def test_html_is_sanitized_once_and_kept(wm):
    wm.deliver_and_sync(mail("Newsletter", html='<p>Hello <script>x()</script>'
                             '<img src="https://img.example/a.png"></p>'))
    with Session(wm.addon.engine) as s:
        mid = s.scalar(select(Message.id).where(Message.subject == "Newsletter"))
        assert s.get(Message, mid).body_html_safe is None  # nothing paid at import
    first = wm.client.get(f"/integrated-email/mail/messages/{mid}")
    assert "Hello" in _frame(first) and "<script" not in _frame(first)
    with Session(wm.addon.engine) as s:
        kept = s.get(Message, mid).body_html_safe
        assert kept.startswith(SANITIZED_VERSION) and "<script" not in kept
        # Later views show the kept form: replace it and the page follows.
        s.execute(update(Message).where(Message.id == mid).values(
            body_html_safe=SANITIZED_VERSION + '<p>kept form <img src="https://img.example/b.png"></p>'))
        s.commit()
    again = _frame(wm.client.get(f"/integrated-email/mail/messages/{mid}"))
    assert "kept form" in again and "img.example" not in again
    shown = _frame(wm.client.get(f"/integrated-email/mail/messages/{mid}?images=1"))
    assert 'src="https://img.example/b.png"' in shown
    # A kept form from other sanitizer rules (another version mark) is made again.
    with Session(wm.addon.engine) as s:
        s.execute(update(Message).where(Message.id == mid).values(
            body_html_safe="ie-sanitized-0\n<p>stale</p>"))
        s.commit()
    assert "stale" not in _frame(wm.client.get(f"/integrated-email/mail/messages/{mid}"))


def _count_reads(store, monkeypatch) -> list[int]:
    """Bytes the real store hands out, by get (whole blob) and get_range (a slice)."""
    read: list[int] = []
    for name in ("get", "get_range"):
        real = getattr(store, name)

        def counted(*args, _real=real, **kwargs):
            data = _real(*args, **kwargs)
            read.append(len(data))
            return data
        monkeypatch.setattr(store, name, counted)
    return read


def test_a_30_mb_attachment_downloads_without_reading_the_rest(wm, monkeypatch):
    big = os.urandom(30 * 1024 * 1024)
    other = os.urandom(20 * 1024 * 1024)
    wm.deliver_and_sync(mail("Big files", attachments=[
        ("other.bin", "application/octet-stream", other),
        ("portfolio.pdf", "application/pdf", big)]))
    with Session(wm.addon.engine) as s:
        msg = s.scalars(select(Message).where(Message.subject == "Big files")).one()
        att = s.scalars(select(Attachment).where(Attachment.message_id == msg.id,
                                                 Attachment.filename == "portfolio.pdf")).one()
        size, att_id, encoded = msg.size, att.id, att.body_length
    assert encoded is not None and size > encoded + 20 * 1024 * 1024
    read = _count_reads(blob_store(wm.app.config), monkeypatch)
    resp = wm.client.get(f"/integrated-email/mail/attachments/{att_id}")
    assert resp.status_code == 200 and resp.data == big
    # Its own encoded slice (40 MB of base64), not the 68 MB message around it.
    assert read == [encoded], (read, encoded, size)
