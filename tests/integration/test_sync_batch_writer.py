"""A sync stores each batch in a writer thread while it fetches the next
(plugin.fetching.batch_writer), against the lab Dovecot, on SQLite and PostgreSQL:
the two overlap, batches commit in order, and a batch whose write fails stops the
sync with nothing lost or duplicated."""
from __future__ import annotations

import threading

from sqlalchemy.exc import OperationalError

from plugin.fetching import imap_sync, pop3_sync
from plugin.fetching.store import MessageStore
from plugin.fetching.sync import sync_mailbox
from plugin.mail.imap import ImapSession
from plugin.mail.pop3 import Pop3Session
from tests.integration.sync_helpers import (
    Message,
    count,
    duplicate_keys,
    make_mailbox,
    message_keys,
    server_ids,
    set_window,
)


def _overlap_probe(monkeypatch, session_cls, fetch_name: str, second_at: int) -> dict:
    """The first batch's write waits (up to 20 s) until the sync has started fetching
    the second batch (call ``second_at`` of ``fetch_name``): it returns at once only
    when fetching and writing overlap."""
    seen = {"fetched_second": threading.Event(), "fetches": 0, "threads": [], "order": [],
            "fetched": []}
    real_fetch = getattr(session_cls, fetch_name)

    def fetch(self, *a, **k):
        seen["fetches"] += 1
        if a and isinstance(a[0], list):  # IMAP: the batch's UIDs
            seen["fetched"].append(min(a[0]))
        if seen["fetches"] == second_at:
            seen["fetched_second"].set()
        return real_fetch(self, *a, **k)

    real_store = MessageStore.store_batch

    def store_batch(self, items, *a, **k):
        seen["threads"].append(threading.current_thread().name)
        if len(seen["threads"]) == 1:
            seen["overlapped"] = seen["fetched_second"].wait(20)
        out = real_store(self, items, *a, **k)
        seen["order"].append(min(i.uid or 0 for i in items))
        return out

    monkeypatch.setattr(session_cls, fetch_name, fetch)
    monkeypatch.setattr(MessageStore, "store_batch", store_batch)
    return seen


def test_imap_fetches_the_next_batch_while_the_last_is_written(mini, dovecot, mail_user,
                                                               monkeypatch):
    _app, _host, addon = mini
    set_window(addon)
    monkeypatch.setattr(imap_sync, "IMAP_BATCH", 10)
    dovecot.fill(mail_user, 35)
    mbid = make_mailbox(addon, dovecot, mail_user)
    seen = _overlap_probe(monkeypatch, ImapSession, "fetch", second_at=2)

    r = sync_mailbox(addon, mbid)
    assert (r.error_kind, r.stored) == (None, 35)
    assert seen["overlapped"], "the first batch was written before the second was fetched"
    assert all(name.startswith("ie-batch-writer") for name in seen["threads"])
    assert seen["order"] == seen["fetched"] and len(seen["order"]) == 4  # in fetch order
    assert set(message_keys(addon, mbid)) == server_ids(dovecot, mail_user)
    assert not duplicate_keys(addon, mbid)


def test_pop3_retrieves_while_the_last_batch_is_written(mini, dovecot, mail_user,
                                                        monkeypatch):
    _app, _host, addon = mini
    set_window(addon)
    monkeypatch.setattr(pop3_sync, "POP3_BATCH", 2)
    dovecot.fill(mail_user, 7)
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3")
    seen = _overlap_probe(monkeypatch, Pop3Session, "retr", second_at=3)

    r = sync_mailbox(addon, mbid)
    assert (r.error_kind, r.stored) == (None, 7)
    assert seen["overlapped"], "the first batch was written before the next was retrieved"
    assert count(addon, Message, mbid) == 7 and not duplicate_keys(addon, mbid)


def test_a_batch_whose_write_fails_stops_the_sync_and_the_next_sync_takes_the_rest(
        mini, dovecot, mail_user, monkeypatch):
    _app, _host, addon = mini
    set_window(addon)
    monkeypatch.setattr(imap_sync, "IMAP_BATCH", 10)
    dovecot.fill(mail_user, 35)
    mbid = make_mailbox(addon, dovecot, mail_user)
    real_store = MessageStore.store_batch
    calls = []

    def failing(self, items, *a, **k):
        calls.append(len(items))
        if len(calls) == 2:  # the database went away during the second batch
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real_store(self, items, *a, **k)

    monkeypatch.setattr(MessageStore, "store_batch", failing)
    r = sync_mailbox(addon, mbid)
    assert r.error_kind is not None and r.stored == 10  # the first batch, and no more
    assert len(calls) == 2  # nothing was handed over after the failed write
    assert count(addon, Message, mbid) == 10

    monkeypatch.setattr(MessageStore, "store_batch", real_store)
    again = sync_mailbox(addon, mbid)
    assert (again.error_kind, again.stored) == (None, 25)
    assert set(message_keys(addon, mbid)) == server_ids(dovecot, mail_user)
    assert not duplicate_keys(addon, mbid)
