"""Fault tests: SIGKILL at each step, a link cut mid-transfer, poison, races."""
from __future__ import annotations

import signal
import socket
import threading

import pytest

from plugin.fetching import store as store_module
from plugin.testing.faults import CRASHPOINTS
from plugin.fetching.sync import sync_mailbox
from tests.integration.sync_helpers import (
    Message,
    Quarantine,
    count,
    duplicate_keys,
    make_mailbox,
    message_keys,
    process_config,
    run_sync_process,
    server_ids,
    set_window,
)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_sigkill_at_every_step_then_restart_loses_and_duplicates_nothing(
        mini, dovecot, mail_user, tmp_path, protocol):
    app, _host, addon = mini
    set_window(addon)
    policy = "after_retrieval" if protocol == "pop3" else "leave"
    mbid = make_mailbox(addon, dovecot, mail_user, protocol=protocol, delete_policy=policy)
    cfg = process_config(app, tmp_path)
    expected: set[str] = set()
    for point in CRASHPOINTS:
        before = server_ids(dovecot, mail_user)
        dovecot.fill(mail_user, 8)
        expected |= server_ids(dovecot, mail_user) - before
        proc = run_sync_process(cfg, mbid, crashpoint=f"{point}:2" if point != "before_delete"
                                else point, batch=3)
        assert proc.returncode == -signal.SIGKILL, (point, proc.err.decode()[-2000:])
        result = sync_mailbox(addon, mbid)  # the restart
        assert result.error_kind is None, point
        assert set(message_keys(addon, mbid)) == expected, point
        assert not duplicate_keys(addon, mbid), point
        if protocol == "pop3":  # deleted after retrieval, and only after the commit
            assert dovecot.list_messages(mail_user) == [], point
    assert count(addon, Message, mbid) == len(expected) == 40


class CuttingProxy:
    """Loopback TCP proxy that drops both sides after ``limit`` bytes from the server."""

    def __init__(self, target_port: int, limit: int) -> None:
        self.target_port, self.limit = target_port, limit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.limit),
                             daemon=True).start()

    def _pump(self, src, dst, limit) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[:limit - sent])
                    self.cut = True
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_link_cut_mid_transfer_then_next_run_completes(mini, dovecot, mail_user, protocol,
                                                       monkeypatch):
    _app, _host, addon = mini
    set_window(addon)
    from plugin.fetching import imap_sync, pop3_sync
    monkeypatch.setattr(imap_sync, "IMAP_BATCH", 10)
    monkeypatch.setattr(pop3_sync, "POP3_BATCH", 10)
    dovecot.fill(mail_user, 60)
    target = dovecot.imaps if protocol == "imap" else dovecot.pop3s
    proxy = CuttingProxy(target, limit=16_000)
    try:
        mbid = make_mailbox(addon, dovecot, mail_user, protocol=protocol, port=proxy.port,
                            delete_policy="after_retrieval" if protocol == "pop3" else "leave")
        first = sync_mailbox(addon, mbid)
        assert proxy.cut and first.error_kind is not None
        assert 0 < first.stored < 60
    finally:
        proxy.close()
    from sqlalchemy.orm import Session

    from plugin.models import Mailbox
    with Session(addon.engine) as s:
        s.get(Mailbox, mbid).in_port = target
        s.commit()
    second = sync_mailbox(addon, mbid)
    assert second.error_kind is None
    assert count(addon, Message, mbid) == 60 and not duplicate_keys(addon, mbid)
    assert first.stored + second.stored == 60


def test_one_poison_message_among_500_is_quarantined_and_the_run_finishes(
        mini, dovecot, mail_user, monkeypatch):
    app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 500)
    poison = sorted(server_ids(dovecot, mail_user))[123]
    real_row = store_module.MessageStore.message_row

    def row(self, item, now):
        values = real_row(self, item, now)
        if item.parsed.message_id == poison:
            values["blob_sha256"] = None  # violates NOT NULL in the database itself
        return values

    monkeypatch.setattr(store_module.MessageStore, "message_row", row)
    mbid = make_mailbox(addon, dovecot, mail_user)
    result = sync_mailbox(addon, mbid)
    assert (result.stored, result.quarantined, result.error_kind) == (499, 1, None)
    assert poison not in message_keys(addon, mbid)
    from sqlalchemy.orm import Session
    with Session(addon.engine) as s:
        (q,) = s.query(Quarantine).filter_by(mailbox_id=mbid).all()
        assert "IntegrityError" in q.error or "NotNull" in q.error
        from plugin.blobs import blob_store
        assert poison.encode() in blob_store(app.config).get(q.blob_sha256)
    again = sync_mailbox(addon, mbid)  # the cursor moved past it: no endless retry
    assert (again.stored, again.quarantined) == (0, 0)
    assert count(addon, Quarantine, mbid) == 1


def test_two_syncs_at_once_in_threads_create_no_duplicates(mini, dovecot, mail_user):
    _app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 120)
    mbid = make_mailbox(addon, dovecot, mail_user)
    results = []
    barrier = threading.Barrier(2)

    def go() -> None:
        barrier.wait()
        results.append(sync_mailbox(addon, mbid))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r.error_kind is None for r in results)
    assert count(addon, Message, mbid) == 120 and not duplicate_keys(addon, mbid)
    assert sum(r.stored for r in results) == 120


def test_two_sync_processes_at_once_create_no_duplicates(
        mini, dovecot, mail_user, tmp_path):
    """Two processes (PostgreSQL: workers on many machines; SQLite: one machine)."""
    app, _host, addon = mini
    set_window(addon)
    dovecot.fill(mail_user, 150)
    mbid = make_mailbox(addon, dovecot, mail_user)
    cfg = process_config(app, tmp_path)
    procs = [run_sync_process(cfg, mbid, batch=25, wait=False) for _ in range(2)]
    for p in procs:
        p.out, p.err = p.communicate(timeout=120)
        assert p.returncode == 0, p.err.decode()[-2000:]
    assert count(addon, Message, mbid) == 150 and not duplicate_keys(addon, mbid)
