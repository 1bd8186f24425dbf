"""IMAP session against the lab Dovecot: folders, status, fetch, flags, append, move."""

from __future__ import annotations

import datetime as dt

import pytest

from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import MailError
from plugin.mail.imap import ImapSession
from tests.lab.dovecot import default_message
from tests.lab.servers import HOST, LAB_ALLOWED


@pytest.fixture
def imap(dovecot, mail_user):
    policy = ConnectionPolicy(allowed_hosts=frozenset({LAB_ALLOWED}), ca_file=dovecot.ca_file,
                              timeout=5)
    settings = ServerSettings(HOST, dovecot.imaps, "ssl", mail_user.email, mail_user.password)
    with ImapSession(settings, policy) as session:
        yield session


def test_find_folders_uses_special_use_roles(imap):
    assert "SPECIAL-USE" in imap.capabilities
    roles = imap.find_folders()
    assert roles["inbox"] == "INBOX"
    assert roles["sent"] == "Sent" and roles["trash"] == "Trash"
    assert roles["drafts"] == "Drafts" and roles["junk"] == "Junk"


def test_status_and_select_report_the_same_folder_state(dovecot, mail_user, imap):
    dovecot.fill(mail_user, 3)
    status = imap.status("INBOX")
    assert status.messages == 3 and status.uidnext == 4
    assert status.uidvalidity == dovecot.uidvalidity(mail_user)
    selected = imap.select("INBOX")
    assert (selected.uidvalidity, selected.exists, selected.uidnext) == (status.uidvalidity, 3, 4)


def test_fetch_returns_exact_bytes_and_never_marks_read(dovecot, mail_user, imap):
    tricky = b"Subject: tricky\r\n\r\n.\r\n)\r\nBODY[] {3}\r\n" + b"x" * 5000 + b"\r\n"
    dovecot.fill(mail_user, 2)
    dovecot.deliver(mail_user, tricky, seen=False)
    imap.select("INBOX")
    uids = imap.uid_list()
    assert uids == [1, 2, 3]
    messages = list(imap.fetch(uids, batch=2))
    assert [m.uid for m in messages] == [1, 2, 3]
    assert messages[2].raw == tricky
    assert messages[0].raw.startswith(b"From: Candidate 0")
    assert all(isinstance(m.internaldate, dt.datetime) for m in messages)
    assert all("\\Seen" not in m.flags for m in messages)
    assert all("\\Seen" not in f for f in imap.fetch_flags(uids).values())


def test_search_since_returns_only_newer_uids(dovecot, mail_user, imap):
    dovecot.fill(mail_user, 5)
    imap.select("INBOX")
    assert imap.search_uids_since(3) == [4, 5]
    assert imap.search_uids_since(5) == []  # "6:*" would match UID 5 on the wire
    assert imap.search_uids_since(0) == [1, 2, 3, 4, 5]


def test_flags_are_added_and_removed(dovecot, mail_user, imap):
    dovecot.fill(mail_user, 2)
    imap.select("INBOX", readonly=False)
    imap.store_flags([1, 2], add=["\\Seen", "\\Flagged"])
    imap.store_flags([2], remove=["\\Flagged"])
    flags = imap.fetch_flags([1, 2])
    assert set(flags[1]) >= {"\\Seen", "\\Flagged"}
    assert "\\Seen" in flags[2] and "\\Flagged" not in flags[2]


def test_append_to_sent_returns_uid_and_keeps_flags_and_date(mail_user, imap):
    raw = default_message(1, mail_user)
    when = dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.UTC)
    uid = imap.append("Sent", raw, flags=["\\Seen"], date=when)
    assert uid == 1
    imap.select("Sent")
    [message] = imap.fetch([uid])
    assert message.raw == raw and "\\Seen" in message.flags
    assert message.internaldate == when


def test_non_ascii_folder_is_created_listed_and_used(mail_user, imap):
    assert imap.create_folder("Bewerbungen/Entwürfe") is True
    assert imap.create_folder("Bewerbungen/Entwürfe") is False
    names = {f.name for f in imap.list_folders()}
    assert "Bewerbungen/Entwürfe" in names
    assert imap.append("Bewerbungen/Entwürfe", default_message(2, mail_user)) == 1
    assert imap.status("Bewerbungen/Entwürfe").messages == 1


def test_move_and_copy_report_new_uids(dovecot, mail_user, imap):
    dovecot.fill(mail_user, 3)
    imap.create_folder("Candidates")
    imap.select("INBOX", readonly=False)
    assert imap.copy([1], "Candidates") == {1: 1}
    assert imap.move([2, 3], "Candidates") == {2: 2, 3: 3}
    assert imap.uid_list() == [1]
    assert imap.status("Candidates").messages == 3


def test_delete_moves_to_trash_then_removes_for_good(dovecot, mail_user, imap):
    dovecot.fill(mail_user, 2)
    imap.select("INBOX", readonly=False)
    imap.delete([1], trash_folder="Trash")
    assert imap.uid_list() == [2]
    imap.select("Trash", readonly=False)
    imap.delete(imap.uid_list(), trash_folder="Trash")
    assert imap.uid_list() == []
    imap.select("INBOX", readonly=False)
    imap.delete([2], trash_folder=None)
    assert imap.uid_list() == []
    assert imap.status("Trash").messages == 0


def test_missing_folder_is_a_clear_error(imap):
    with pytest.raises(MailError) as info:
        imap.select("No Such Folder")
    assert info.value.kind == "folder_missing"


def test_thousand_messages_fetch_in_batches(dovecot, mail_user, imap):
    dovecot.fill(mail_user, 1200)
    imap.select("INBOX")
    uids = imap.uid_list()
    assert len(uids) == 1200
    seen = [m.uid for m in imap.fetch(uids, batch=500)]
    assert seen == uids


def test_search_since_date_uses_the_arrival_date(mail_user, imap):
    old = dt.datetime(2020, 1, 15, 9, 0, tzinfo=dt.UTC)
    new = dt.datetime(2024, 6, 1, 9, 0, tzinfo=dt.UTC)
    imap.append("INBOX", default_message(1, mail_user), date=old)
    imap.append("INBOX", default_message(2, mail_user), date=new)
    imap.select("INBOX")
    assert imap.search_uids_since_date(dt.date(2024, 5, 31)) == [2]
    assert imap.search_uids_since_date(dt.date(2019, 12, 31)) == [1, 2]


def _dated(i: int, user, when: str | None) -> bytes:
    raw = default_message(i, user)
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = [ln for ln in head.split(b"\r\n") if not ln.startswith(b"Date:")]
    if when is not None:
        lines.append(b"Date: " + when.encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.mark.parametrize("with_sort", [True, False], ids=["SORT", "no-SORT"])
def test_newest_uids_order_by_sent_date_not_by_delivery(mail_user, imap, with_sort):
    """Delivery order (UIDs) and date order differ: the newest by Date come first, and a
    message without a Date header counts by its arrival (INTERNALDATE)."""
    arrived = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    dates = ["Mon, 30 Nov 2026 09:00:00 +0000",   # uid 1: today, early
             "Mon, 30 Nov 2026 11:30:00 +0100",   # uid 2: today, 10:30 UTC
             "Sat, 28 Nov 2026 08:00:00 +0000",   # uid 3: a 2-day-old newsletter
             None,                                 # uid 4: no Date: arrived 12:00
             "Sun, 29 Nov 2026 23:00:00 -0500"]   # uid 5: 04:00 UTC today
    for i, when in enumerate(dates):
        imap.append("INBOX", _dated(i, mail_user, when), date=arrived)
    old = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    imap.append("INBOX", _dated(9, mail_user, "Mon, 30 Nov 2026 12:30:00 +0000"), date=old)
    if not with_sort:
        assert "SORT" in imap.capabilities  # Dovecot offers it; take the other path
        imap.capabilities = imap.capabilities - {"SORT"}
    imap.select("INBOX")
    assert imap.newest_uids(None, 5) == [6, 4, 2, 1, 5]
    # uid 6 arrived in October: outside a window starting in November.
    assert imap.newest_uids(dt.date(2026, 11, 1), 3) == [4, 2, 1]
    # Room for all of them: all of November's (without SORT, no dates need reading).
    assert sorted(imap.newest_uids(dt.date(2026, 11, 1), 10)) == [1, 2, 3, 4, 5]
