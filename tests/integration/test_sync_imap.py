"""IMAP sync against the lab Dovecot, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import UTC

from plugin.fetching.sync import sync_mailbox
from tests.integration.sync_helpers import (
    Message,
    MessageLocation,
    count,
    duplicate_keys,
    mailbox,
    make_mailbox,
    message_keys,
    server_ids,
    set_window,
)


def test_first_sync_stores_inbox_and_sent_once_and_marks_nothing_read(mini, dovecot, mail_user):
    _app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 30)
    sent = (f"From: {mail_user.email}\r\nTo: cand@example.test\r\nSubject: Offer\r\n"
            "Message-ID: <sent-1@example.test>\r\n\r\nWelcome aboard\r\n").encode()
    dovecot.deliver(mail_user, sent, folder="Sent", seen=True)
    dovecot.deliver(mail_user, sent, folder="INBOX")  # the provider shows it in both
    mbid = make_mailbox(addon, dovecot, mail_user)

    r = sync_mailbox(addon, mbid)
    assert (r.error_kind, r.stored, r.quarantined) == (None, 31, 0)
    assert r.duplicates == 1
    keys = message_keys(addon, mbid)
    assert set(keys) == server_ids(dovecot, mail_user) and not duplicate_keys(addon, mbid)
    assert count(addon, MessageLocation, mbid) == 32
    assert all("S" not in flags for _n, flags, _r in dovecot.list_messages(mail_user))
    mb = mailbox(addon, mbid)
    assert mb.messages_imported == 31 and mb.last_success_at and mb.failure_count == 0

    again = sync_mailbox(addon, mbid)
    assert (again.stored, again.duplicates, again.error_kind) == (0, 0, None)

    dovecot.fill(mail_user, 5)
    third = sync_mailbox(addon, mbid)
    assert third.stored == 5 and count(addon, Message, mbid) == 36
    assert all("S" not in flags for _n, flags, _r in dovecot.list_messages(mail_user))


def test_unchanged_mailbox_costs_one_status_per_folder(mini, dovecot, mail_user, monkeypatch):
    _app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 10)
    mbid = make_mailbox(addon, dovecot, mail_user)
    assert sync_mailbox(addon, mbid).stored == 10
    from plugin.mail.imap import ImapSession
    calls = []
    for name in ("select", "fetch", "uid_list", "search_uids_since", "list_folders"):
        monkeypatch.setattr(ImapSession, name, lambda *a, _n=name, **k: calls.append(_n))
    real_status = ImapSession.status
    monkeypatch.setattr(ImapSession, "status",
                        lambda self, f: calls.append("status") or real_status(self, f))
    r = sync_mailbox(addon, mbid)
    assert r.error_kind is None and calls == ["status", "status"]  # INBOX and Sent


def test_uidvalidity_change_resyncs_without_duplicates_and_pauses_if_it_loops(
        mini, dovecot, mail_user):
    _app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 20)
    mbid = make_mailbox(addon, dovecot, mail_user)
    assert sync_mailbox(addon, mbid).stored == 20
    dovecot.change_uidvalidity(mail_user)
    dovecot.fill(mail_user, 3)
    r = sync_mailbox(addon, mbid)
    assert (r.error_kind, r.stored, r.duplicates) == (None, 3, 20)
    assert set(message_keys(addon, mbid)) == server_ids(dovecot, mail_user)
    assert not duplicate_keys(addon, mbid)
    for _ in range(2):
        dovecot.change_uidvalidity(mail_user)
        sync_mailbox(addon, mbid)
    mb = mailbox(addon, mbid)
    assert mb.paused and mb.pause_reason == "uidvalidity" and "renumbering" in mb.last_error
    assert count(addon, Message, mbid) == 23 and not duplicate_keys(addon, mbid)
    assert sync_mailbox(addon, mbid).skipped == "paused"


def test_initial_window_takes_newest_messages_only_and_never_the_older_ones(
        mini, dovecot, mail_user):
    import os
    import time
    _app, _host, addon = mini
    set_window(addon, days=30, messages=10)
    dovecot.fill(mail_user, 5)
    old = time.time() - 100 * 86400  # INTERNALDATE comes from the file's mtime
    for sub in ("cur", "new"):
        for name in os.listdir(mail_user.maildir / sub):
            os.utime(mail_user.maildir / sub / name, (old, old))
    dovecot.fill(mail_user, 25)
    newest = server_ids(dovecot, mail_user)
    mbid = make_mailbox(addon, dovecot, mail_user)
    r = sync_mailbox(addon, mbid)
    assert r.stored == 10
    keys = set(message_keys(addon, mbid))
    assert keys <= newest
    # the 10 newest by UID: lab message i says "candidate i" in its subject
    from sqlalchemy.orm import Session
    with Session(addon.engine) as s:
        subjects = sorted(int(m.subject.split("#")[1]) for m in s.query(Message).filter_by(
            mailbox_id=mbid))
    assert subjects == list(range(15, 25))
    dovecot.fill(mail_user, 2)
    assert sync_mailbox(addon, mbid).stored == 2  # later mail only, nothing older


def test_wrong_password_three_times_pauses_until_the_password_changes(
        mini, dovecot, mail_user):
    _app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 2)
    mbid = make_mailbox(addon, dovecot, mail_user, password="wrong")
    for _ in range(3):
        r = sync_mailbox(addon, mbid)
        assert r.error_kind == "auth_failed"
    mb = mailbox(addon, mbid)
    assert mb.paused and mb.needs_password and "Update your password" in mb.last_error
    assert sync_mailbox(addon, mbid).skipped == "paused"
    from sqlalchemy.orm import Session

    from plugin.models import Mailbox
    from plugin.fetching.status import password_changed
    with Session(addon.engine) as s:
        m = s.get(Mailbox, mbid)
        m.in_password = addon.secrets.encrypt(mail_user.password)
        password_changed(m)
        s.commit()
    r = sync_mailbox(addon, mbid)
    assert (r.error_kind, r.stored) == (None, 2)
    mb = mailbox(addon, mbid)
    assert not mb.paused and mb.auth_failures == 0 and mb.last_error is None


def test_network_error_backs_off_and_other_mailboxes_carry_on(mini, dovecot, mail_user):
    from datetime import datetime

    from tests.lab.servers import closed_port
    _app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 3)
    broken = make_mailbox(addon, dovecot, mail_user, port=closed_port())
    good = make_mailbox(addon, dovecot, mail_user)
    delays = []
    for _ in range(3):
        assert sync_mailbox(addon, broken).error_kind == "refused"
        mb = mailbox(addon, broken)
        delays.append((mb.next_fetch_at - datetime.now(UTC)).total_seconds())
    assert 50 < delays[0] < 61 and 110 < delays[1] < 121 and 230 < delays[2] < 241
    assert mb.failure_count == 3 and not mb.paused and "refused" in mb.last_error
    assert sync_mailbox(addon, good).stored == 3


def test_batch_hook_gets_new_message_ids_after_commit(mini, dovecot, mail_user):
    _app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 7)
    mbid = make_mailbox(addon, dovecot, mail_user)
    seen = []

    def hook(a, mailbox_id, ids):
        assert count(a, Message, mailbox_id) >= len(ids)  # committed, visible
        seen.extend(ids)

    sync_mailbox(addon, mbid, on_batch=hook)
    assert len(seen) == 7


def test_malformed_and_huge_mail_is_stored_or_quarantined(mini, dovecot, mail_user):
    from tests.unit.test_parse import FIXTURES, big_attachment, cpython_messages, deep_nesting
    _app, _host, addon = mini
    set_window(addon)
    raws = [p.read_bytes() for p in cpython_messages() + sorted(FIXTURES.glob("*.eml"))]
    raws += [big_attachment(), deep_nesting(150), deep_nesting(1200)]
    for raw in raws:
        dovecot.deliver(mail_user, raw)
    mbid = make_mailbox(addon, dovecot, mail_user)
    r = sync_mailbox(addon, mbid)
    assert r.error_kind is None
    assert r.stored + r.duplicates + r.quarantined == len(raws)
    assert r.quarantined == 0
