"""Message identity in the store, with mail delivered to the lab Dovecot and synced:
a message re-using a stored Message-ID with other content (a spoofer's) is stored and
shown beside the first, never hidden behind it; copies of one message that differ only
in transport headers (Received, Return-Path, Delivered-To) stay one message."""
from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.models import Message, MessageLocation
from tests.integration.webmail_helpers import Setup

MID = "<offer-2026@employer.example>"


def raw(subject: str, body: str, sender: str = "HR <hr@employer.example>",
        transport: str = "") -> bytes:
    return (f"{transport}From: {sender}\r\nTo: me@example.test\r\nSubject: {subject}\r\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: {MID}\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n").encode()


@pytest.fixture
def wm(mini, dovecot, mail_user):
    return Setup(mini, dovecot, mail_user)


def _messages(addon) -> list[Message]:
    with Session(addon.engine) as s:
        return list(s.scalars(select(Message).order_by(Message.id)))


def _page(wm, mid: int) -> str:
    html = wm.client.get(f"/integrated-email/mail/messages/{mid}").get_data(as_text=True)
    return unescape(html)


def test_a_spoofed_message_id_does_not_hide_the_later_message(wm):
    wm.deliver_and_sync(raw("Your offer", "The real offer letter."))
    wm.deliver_and_sync(raw("Your offer (updated)", "Wire the deposit to this account.",
                            sender="HR <hr@employer-payments.example>"))
    msgs = _messages(wm.addon)
    assert len(msgs) == 2
    assert {m.message_id_header for m in msgs} == {MID.strip("<>")}
    assert len({m.message_key for m in msgs}) == 2
    inbox = unescape(wm.client.get("/integrated-email/mail").get_data(as_text=True))
    assert "Your offer (updated)" in inbox and re.search(r"Your offer\s*<", inbox)
    first, second = msgs
    assert "The real offer letter." in _page(wm, first.id)
    later = _page(wm, second.id)
    assert "Wire the deposit" in later and "The real offer letter." not in later
    # A second sync stores nothing new: the spoof's own key is stable.
    wm.deliver_and_sync()
    assert len(_messages(wm.addon)) == 2


def test_copies_that_differ_only_in_transport_headers_are_one_message(wm):
    wm.deliver_and_sync(raw("Interview", "Thursday at ten."))
    relayed = raw("Interview", "Thursday at ten.",
                  transport="Received: from relay.example by mx.example; "
                            "Tue, 01 Dec 2026 10:00:05 +0000\r\n"
                            "Return-Path: <bounce@employer.example>\r\n"
                            "Delivered-To: me@example.test\r\n")
    wm.deliver_and_sync(relayed)
    msgs = _messages(wm.addon)
    assert len(msgs) == 1
    with Session(wm.addon.engine) as s:
        locations = s.scalars(select(MessageLocation).where(
            MessageLocation.message_id == msgs[0].id)).all()
    assert len(locations) == 2


def test_a_row_stored_before_the_digest_is_told_apart_by_its_bytes(wm):
    wm.deliver_and_sync(raw("Your offer", "The real offer letter."))
    with Session(wm.addon.engine) as s:  # as migration 0008 leaves an older row
        s.execute(update(Message).values(content_digest=None))
        s.commit()
    wm.deliver_and_sync(raw("Your offer", "A different text, same Message-ID."))
    msgs = _messages(wm.addon)
    assert len(msgs) == 2
    assert msgs[0].content_digest is not None  # filled in from the stored bytes
    assert "A different text" in _page(wm, msgs[1].id)
