"""POP3 sync against the lab Dovecot: UIDL, the delete policies, repeated UIDLs."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from plugin.models import MessageLocation
from plugin.fetching.pop3_sync import unique_uidls
from plugin.fetching.sync import sync_mailbox
from tests.integration.sync_helpers import (
    Message,
    count,
    duplicate_keys,
    make_mailbox,
    message_keys,
    server_ids,
    set_window,
)


def test_leave_on_server_imports_once_and_keeps_the_mail(mini, dovecot, mail_user):
    _app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 12)
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3")
    assert sync_mailbox(addon, mbid).stored == 12
    assert sync_mailbox(addon, mbid).stored == 0
    assert len(dovecot.list_messages(mail_user)) == 12
    assert set(message_keys(addon, mbid)) == server_ids(dovecot, mail_user)


def test_delete_after_days_removes_only_old_committed_messages(mini, dovecot, mail_user):
    _app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 6)
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3", security="starttls",
                        delete_policy="after_days", delete_after_days=7)
    assert sync_mailbox(addon, mbid).stored == 6
    assert len(dovecot.list_messages(mail_user)) == 6  # not old enough yet
    with Session(addon.engine) as s:
        first_two = s.query(MessageLocation).filter_by(mailbox_id=mbid).order_by(
            MessageLocation.id).limit(2).all()
        s.execute(update(MessageLocation).where(MessageLocation.id.in_(
            [loc.id for loc in first_two])).values(
            stored_at=datetime.now(UTC) - timedelta(days=8)))
        s.commit()
    dovecot.fill(mail_user, 1)
    r = sync_mailbox(addon, mbid)
    assert (r.error_kind, r.stored) == (None, 1)
    assert len(dovecot.list_messages(mail_user)) == 5
    with Session(addon.engine) as s:
        assert s.query(MessageLocation).filter_by(mailbox_id=mbid,
                                                  removed_from_server=True).count() == 2
    assert count(addon, Message, mbid) == 7 and not duplicate_keys(addon, mbid)


def test_repeated_uidls_keep_every_message_apart():
    listing = [(1, "a"), (2, "b"), (3, "a"), (4, "a")]
    keys = unique_uidls(listing, lambda: {1: 100, 2: 50, 3: 200, 4: 200})
    assert [k for _n, k in keys] == ["a#100", "b", "a#200#1", "a#200#2"]
    assert unique_uidls([(1, "x"), (2, "y")]) == [(1, "x"), (2, "y")]
