"""The initial-sync window takes the newest messages by date, not the last delivered,
over IMAP (SEARCH SINCE + SORT) and POP3 (Date headers by TOP), against the lab
Dovecot with delivery order and date order apart; later syncs take only what came
after, exactly once, and never the old mail the window left out."""
from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.fetching.sync import sync_mailbox
from plugin.models import Message
from tests.integration.sync_helpers import (
    duplicate_keys,
    make_mailbox,
    process_config,
    run_sync_process,
    set_window,
)


def _mail(subject: str, age: timedelta | None, sender: str = "cand@candidates.test") -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = "rita@example.test"
    m["Subject"] = subject
    if age is not None:
        m["Date"] = format_datetime(datetime.now(UTC) - age)
    m["Message-ID"] = f"<win-{os.urandom(6).hex()}@example.test>"
    m.set_content(f"{subject}.")
    return bytes(m)


def _subjects(addon, mbid: int) -> set[str]:
    with Session(addon.engine) as s:
        return set(s.scalars(select(Message.subject).where(Message.mailbox_id == mbid)))


def _demo_inbox(dovecot, user) -> None:
    """Today's candidate mail delivered first, a two-day-old newsletter last."""
    for hours in (1, 3, 5):
        dovecot.deliver(user, _mail(f"Application {hours}h ago", timedelta(hours=hours)))
    dovecot.deliver(user, _mail("This week in hiring", timedelta(days=2),
                                sender="newsletter@example.test"))


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_late_delivered_old_newsletter_does_not_push_out_todays_mail(
        mini, dovecot, mail_user, protocol):
    _app, _host, addon = mini
    set_window(addon, days=30, messages=3)
    _demo_inbox(dovecot, mail_user)
    mbid = make_mailbox(addon, dovecot, mail_user, protocol=protocol)
    result = sync_mailbox(addon, mbid)
    assert result.error_kind is None and result.stored == 3, result
    assert _subjects(addon, mbid) == {"Application 1h ago", "Application 3h ago",
                                      "Application 5h ago"}
    # Later syncs: what is delivered next, and never the newsletter left out.
    assert sync_mailbox(addon, mbid).stored == 0
    dovecot.deliver(mail_user, _mail("Re: Interview", timedelta(minutes=1)))
    dovecot.deliver(mail_user, _mail("Delayed reply", timedelta(days=3)))  # sent long ago
    result = sync_mailbox(addon, mbid)
    assert result.stored == 2, result
    assert "This week in hiring" not in _subjects(addon, mbid)
    assert {"Re: Interview", "Delayed reply"} <= _subjects(addon, mbid)
    assert sync_mailbox(addon, mbid).stored == 0 and not duplicate_keys(addon, mbid)


def test_pop3_window_of_days_leaves_old_mail_even_when_all_fit(mini, dovecot, mail_user):
    """Fewer messages than the window's size: no TOP needed, and the day limit still
    holds (checked on the retrieved bytes); the old ones stay left out afterwards."""
    _app, _host, addon = mini
    set_window(addon, days=7, messages=100)
    dovecot.deliver(mail_user, _mail("Today", timedelta(hours=2)))
    dovecot.deliver(mail_user, _mail("Last month", timedelta(days=30)))
    dovecot.deliver(mail_user, _mail("Last year", timedelta(days=365)))
    dovecot.deliver(mail_user, _mail("No date at all", None))
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3")
    assert sync_mailbox(addon, mbid).stored == 2
    assert _subjects(addon, mbid) == {"Today", "No date at all"}
    dovecot.deliver(mail_user, _mail("Tomorrow's interview", timedelta(minutes=5)))
    assert sync_mailbox(addon, mbid).stored == 1
    assert _subjects(addon, mbid) == {"Today", "No date at all", "Tomorrow's interview"}


def test_pop3_window_survives_another_client_deleting_the_old_mail(mini, dovecot, mail_user):
    """The markers of what the window left out are gone (another client deleted those
    messages): new mail still arrives once, and old mail is not swept in."""
    _app, _host, addon = mini
    set_window(addon, days=3650, messages=2)
    for days in (40, 30, 20, 10, 9):  # five old ones, delivered oldest first
        dovecot.deliver(mail_user, _mail(f"{days} days old", timedelta(days=days)))
    dovecot.deliver(mail_user, _mail("Newest", timedelta(hours=1)))
    dovecot.deliver(mail_user, _mail("Yesterday", timedelta(days=1)))
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3")
    assert sync_mailbox(addon, mbid).stored == 2
    assert _subjects(addon, mbid) == {"Newest", "Yesterday"}
    for sub in ("new", "cur"):  # another client removes the three newest left out
        for name in os.listdir(mail_user.maildir / sub):
            raw = (mail_user.maildir / sub / name).read_bytes()
            if any(f"Subject: {d} days old".encode() in raw for d in (9, 10, 20)):
                os.remove(mail_user.maildir / sub / name)
    dovecot.deliver(mail_user, _mail("After the clean-up", timedelta(minutes=2)))
    assert sync_mailbox(addon, mbid).stored == 1
    assert _subjects(addon, mbid) == {"Newest", "Yesterday", "After the clean-up"}
    dovecot.deliver(mail_user, _mail("And one more", timedelta(minutes=1)))
    assert sync_mailbox(addon, mbid).stored == 1
    assert not duplicate_keys(addon, mbid)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_crash_during_the_window_restarts_it_without_loss_or_duplicates(
        mini, dovecot, mail_user, tmp_path, protocol):
    app, _host, addon = mini
    set_window(addon, days=30, messages=6)
    for i in range(8):  # delivered oldest-dated last: the window is the first six
        dovecot.deliver(mail_user, _mail(f"Mail {i}", timedelta(hours=1 + i * 24)))
    mbid = make_mailbox(addon, dovecot, mail_user, protocol=protocol)
    proc = run_sync_process(process_config(app, tmp_path), mbid,
                            crashpoint="after_commit:1", batch=2)
    assert proc.returncode == -signal.SIGKILL, proc.err.decode()[-2000:]
    assert 0 < len(_subjects(addon, mbid)) < 6
    assert sync_mailbox(addon, mbid).error_kind is None  # the restart
    assert _subjects(addon, mbid) == {f"Mail {i}" for i in range(6)}
    assert not duplicate_keys(addon, mbid)
    dovecot.deliver(mail_user, _mail("Fresh", timedelta(minutes=1)))
    assert sync_mailbox(addon, mbid).stored == 1
    assert _subjects(addon, mbid) == {f"Mail {i}" for i in range(6)} | {"Fresh"}


def test_a_pop3_mailbox_switched_to_imap_syncs_its_inbox(mini, dovecot, mail_user):
    """The POP3 window's cursor row is no IMAP folder: after the switch, IMAP finds
    INBOX as on any first sync (its own window, no duplicates)."""
    from sqlalchemy import update

    from plugin.models import Mailbox
    _app, _host, addon = mini
    set_window(addon, days=30, messages=3)
    _demo_inbox(dovecot, mail_user)
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3")
    assert sync_mailbox(addon, mbid).stored == 3
    with Session(addon.engine) as s:
        s.execute(update(Mailbox).where(Mailbox.id == mbid).values(
            protocol="imap", in_port=dovecot.imaps))
        s.commit()
    dovecot.deliver(mail_user, _mail("After the switch", timedelta(minutes=1)))
    result = sync_mailbox(addon, mbid)
    assert result.error_kind is None, result
    assert "After the switch" in _subjects(addon, mbid)
    assert "This week in hiring" not in _subjects(addon, mbid)
    assert not duplicate_keys(addon, mbid)
