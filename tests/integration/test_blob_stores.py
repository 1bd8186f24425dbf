"""Blob stores: the database store on SQLite and PostgreSQL, moves between stores
(interrupted and resumed, every hash verified), power loss, garbage and retention."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from plugin.blobs.database import DatabaseBlobStore
from plugin.models.blob import BLOB
from plugin.blobs import DirectoryBlobStore, blob_store
from plugin.db import durable_commit, make_durable
from plugin.blobs.housekeeping import BlobHashMismatch, apply_retention, collect_garbage, move_blobs
from tests.conftest import make_config
from tests.lab.powerloss import PowerLossFiles


@pytest.fixture
def addon(db_url, tmp_path):
    """The add-on in the minimal host, migrated (no mail servers needed)."""
    from plugin import IntegratedEmail
    from tests.hosts.mini_host import create_mini_app
    app, host = create_mini_app(make_config(db_url, tmp_path))
    ie = IntegratedEmail(app, host=host)
    ie.migrate()
    yield ie
    ie.session.remove()
    ie.engine.dispose()


def _blobs(n: int, seed: str = "m") -> list[bytes]:
    return [f"Subject: {seed}{i}\r\n\r\nbody {i} {os.urandom(8).hex()}\r\n".encode() * (i + 1)
            for i in range(n)]


def test_blob_default_store_follows_the_database_kind(addon):
    kind = blob_store(addon.app.config).kind
    assert kind == ("database" if addon.engine.dialect.name == "postgresql" else "directory")


def test_blob_database_store_commits_and_rolls_back_with_the_callers_rows(addon):
    store = DatabaseBlobStore(addon.engine)
    kept, lost = b"kept bytes\r\n", b"rolled back bytes\r\n"
    with addon.engine.connect() as conn:
        sha = store.put(kept, conn=conn)
        conn.commit()
    with addon.engine.connect() as conn:
        gone = store.put(lost, conn=conn)
        assert store.exists(gone, conn)  # visible inside the transaction
        conn.rollback()
    assert store.get(sha) == kept and hashlib.sha256(kept).hexdigest() == sha
    assert not store.exists(gone)
    with pytest.raises(FileNotFoundError):
        store.get(gone)
    store.put(kept, sha)  # idempotent: one row
    assert store.total() == (1, len(kept))
    with pytest.raises(ValueError):
        store.get("../../etc/passwd")


def test_blob_move_directory_to_database_and_back_interrupted_and_resumed(addon, tmp_path):
    source = DirectoryBlobStore(tmp_path / "old")
    datas = _blobs(40)
    shas = [source.put(d) for d in datas]
    target = DatabaseBlobStore(addon.engine)

    class PowerCut(Exception):
        pass

    seen: list[str] = []

    def cut_after_15(sha: str) -> None:
        seen.append(sha)
        if len(seen) == 15:
            raise PowerCut

    with pytest.raises(PowerCut):
        move_blobs(source, target, on_each=cut_after_15)
    assert target.total()[0] == 15
    resumed = move_blobs(source, target)
    assert (resumed.moved, resumed.skipped) == (25, 15)
    with addon.engine.connect() as conn:
        for sha, data in conn.execute(select(BLOB.c.sha256, BLOB.c.data)):
            assert hashlib.sha256(bytes(data)).hexdigest() == sha
    assert sorted(target.names()) == sorted(shas)

    back = DirectoryBlobStore(tmp_path / "new")
    half = move_blobs(target, back, on_each=lambda s: None)
    assert half.moved == 40
    again = move_blobs(target, back, delete_source=True)
    assert (again.moved, again.skipped) == (0, 40)
    assert target.total() == (0, 0)
    assert {back.get(s) for s in shas} == set(datas)


def test_blob_move_refuses_a_damaged_blob_and_repairs_a_damaged_copy(addon, tmp_path):
    source = DirectoryBlobStore(tmp_path / "old")
    good = source.put(b"good bytes\r\n")
    target = DatabaseBlobStore(addon.engine)
    with addon.engine.begin() as conn:  # a half-written copy from an earlier run
        conn.execute(BLOB.insert().values(sha256=good, size=3, data=b"bad",
                                          created_at=datetime.now(UTC)))
    assert move_blobs(source, target).moved == 1
    assert target.get(good) == b"good bytes\r\n"
    bad = hashlib.sha256(b"original").hexdigest()
    source.path(bad).parent.mkdir(parents=True, exist_ok=True)
    source.path(bad).write_bytes(b"tampered")
    with pytest.raises(BlobHashMismatch):
        move_blobs(source, target)
    assert not target.exists(bad)


def test_power_off_loses_unsynced_blobs_and_keeps_synced_ones(tmp_path):
    files = PowerLossFiles()
    store = DirectoryBlobStore(tmp_path / "blobs", files=files)
    synced = [store.put(d) for d in _blobs(30, "a")]
    assert store.sync() == 30
    unsynced = [store.put(d) for d in _blobs(5, "b")]
    assert all(store.exists(s) for s in unsynced)  # readable from the "page cache"
    assert files.power_off() == 5
    after = DirectoryBlobStore(tmp_path / "blobs")  # the machine boots again
    assert all(after.exists(s) for s in synced)
    assert not any(after.exists(s) for s in unsynced)
    for s in synced:
        assert hashlib.sha256(after.get(s)).hexdigest() == s


def test_durable_sync_is_batched_files_then_directories(tmp_path):
    files = PowerLossFiles()
    store = DirectoryBlobStore(tmp_path / "blobs", files=files)
    for d in _blobs(300, "c"):
        store.put(d)
    del files.calls[:]
    assert store.sync() == 300
    kinds = [c[0] for c in files.calls]
    assert kinds.count("fsync") == 300
    # every file before any directory: a rename is durable only after its data
    assert max(i for i, k in enumerate(kinds) if k == "fsync") < kinds.index("fsync_dir")
    assert store.sync() == 0 and store.sync_calls == 1  # nothing new: no syscalls


def test_durable_sync_of_a_real_directory_store_reaches_the_disk(tmp_path, monkeypatch):
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    store = DirectoryBlobStore(tmp_path / "blobs")
    for d in _blobs(20, "d"):
        store.put(d)
    assert not calls  # nothing synced per write
    store.sync()
    assert len(calls) >= 21  # 20 files and their directories


def test_durable_commit_and_checkpoint_on_each_database(addon):
    with addon.engine.connect() as conn:
        conn.execute(BLOB.insert().values(sha256="a" * 64, size=1, data=b"x",
                                          created_at=datetime.now(UTC)))
        durable_commit(conn)
        if conn.dialect.name == "sqlite":  # the checkpoint moved the WAL into the file
            busy, log, done = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
            assert busy == 0 and log == done  # every WAL frame is in the synced file
    make_durable(addon.engine)
    with addon.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ie_blob")).scalar() == 1


@pytest.mark.parametrize("kind", ["database", "directory"])
def test_blob_garbage_collection_spares_rows_recent_and_reused_blobs(addon, tmp_path, kind,
                                                                     monkeypatch):
    import plugin.blobs.housekeeping as storage
    store = (DatabaseBlobStore(addon.engine) if kind == "database"
             else DirectoryBlobStore(tmp_path / "gc"))
    used, orphan, reused = (store.put(b"used"), store.put(b"orphan"), store.put(b"reused"))
    store.sync()
    later = datetime.now(UTC).timestamp() + 7200
    monkeypatch.setattr(storage, "now", lambda: later)
    if kind == "directory":  # file times come from the real clock: age the files
        for s in (used, orphan, reused):
            os.utime(store.path(s), (later - 7200, later - 7200))
    # a concurrent import reuses one blob (its row is not committed yet)
    if kind == "database":
        with addon.engine.begin() as conn:
            conn.execute(BLOB.update().where(BLOB.c.sha256 != reused).values(
                created_at=datetime.now(UTC) - timedelta(hours=3)))
        monkeypatch.setattr(storage, "now", lambda: datetime.now(UTC).timestamp())
    store.put(b"reused")
    if kind == "directory":
        os.utime(store.path(reused), (later, later))
    removed = collect_garbage(addon.engine, store, keep={used})
    assert removed == 1
    assert store.exists(used) and store.exists(reused) and not store.exists(orphan)


def test_blob_retention_drops_old_raw_bytes_without_attachments(addon):
    from plugin.models import Mailbox, Message
    store = DatabaseBlobStore(addon.engine)
    shas = {key: store.put(key.encode()) for key in ("old-text", "old-files", "new")}
    s = addon.session()
    mb = Mailbox(user_id="1", account_name="r", email="r@example.test", protocol="imap",
                 in_host="h", out_host="h", out_port=465, out_security="ssl")
    s.add(mb)
    s.flush()
    old = datetime.now(UTC) - timedelta(days=40)
    specs = [("old-text", old, False), ("old-files", old, True), ("new", datetime.now(UTC), False)]
    for key, date, files in specs:
        s.add(Message(mailbox_id=mb.id, message_key=key, subject=key, from_addr="a@b",
                      to_addrs="[]", cc_addrs="[]", date=date, snippet="", body_text=key,
                      has_attachments=files, size=3, blob_sha256=shas[key],
                      created_at=date))
    s.commit()
    with addon.engine.begin() as conn:
        conn.execute(BLOB.update().values(created_at=datetime.now(UTC) - timedelta(days=2)))
    assert apply_retention(addon.engine, store, None) == 0  # for ever
    assert apply_retention(addon.engine, store, 30) == 1
    assert not store.exists(shas["old-text"])
    assert store.exists(shas["old-files"]) and store.exists(shas["new"])


def test_blob_cli_moves_to_the_other_store_and_reports_storage(addon):
    app = addon.app
    directory = blob_store(app.config, "directory")
    shas = [directory.put(d) for d in _blobs(12, "cli")]
    runner = app.test_cli_runner()
    out = runner.invoke(args=["integrated-email", "move-blobs", "--to", "database"])
    assert out.exit_code == 0, out.output
    assert "Moved 12 blobs" in out.output
    again = runner.invoke(args=["integrated-email", "move-blobs", "--to", "database"])
    assert "Moved 0 blobs" in again.output and "12 were there already" in again.output
    database = blob_store(app.config, "database")
    assert {database.get(s) for s in shas} == {directory.get(s) for s in shas}
    report = runner.invoke(args=["integrated-email", "storage-report"])
    assert report.exit_code == 0 and "stored MB" in report.output


def test_blob_cli_collect_removes_only_unused_old_blobs(addon, monkeypatch):
    import plugin.blobs.housekeeping as storage
    from plugin.models import Mailbox, Message
    store = blob_store(addon.app.config)
    used, orphan = store.put(b"used by a message"), store.put(b"no row names me")
    store.sync()
    s = addon.session()
    mb = Mailbox(user_id="1", account_name="r", email="r@example.test", protocol="imap",
                 in_host="h", out_host="h", out_port=465, out_security="ssl")
    s.add(mb)
    s.flush()
    s.add(Message(mailbox_id=mb.id, message_key="k", subject="s", from_addr="a@b",
                  to_addrs="[]", cc_addrs="[]", date=datetime.now(UTC), snippet="",
                  body_text="t", has_attachments=False, size=3, blob_sha256=used,
                  created_at=datetime.now(UTC)))
    s.commit()
    runner = addon.app.test_cli_runner()
    young = runner.invoke(args=["integrated-email", "collect-blobs"])
    assert young.exit_code == 0 and "Removed 0 unused blobs" in young.output  # grace period
    later = datetime.now(UTC).timestamp() + storage.GRACE_SECONDS + 60
    monkeypatch.setattr(storage, "now", lambda: later)
    if store.kind == "directory":
        for sha in (used, orphan):
            os.utime(store.path(sha), (later - storage.GRACE_SECONDS - 30,) * 2)
    else:
        with addon.engine.begin() as conn:
            conn.execute(BLOB.update().values(created_at=datetime.fromtimestamp(
                later - storage.GRACE_SECONDS - 30, UTC)))
    old = runner.invoke(args=["integrated-email", "collect-blobs"])
    assert old.exit_code == 0 and "Removed 1 unused blobs" in old.output, old.output
    assert store.exists(used) and not store.exists(orphan)


def test_durable_sync_waits_for_the_round_that_took_its_files(tmp_path):
    """Thread A's round took B's new file; B's own sync must not return before that
    round has fsynced it (else B's DELE could go out ahead of the fsync)."""
    import threading
    started, release = threading.Event(), threading.Event()

    class SlowDisk(PowerLossFiles):
        def fsync_file(self, path: str) -> None:
            started.set()
            release.wait(10)
            super().fsync_file(path)

    files = SlowDisk()
    store = DirectoryBlobStore(tmp_path / "blobs", files=files)
    store.put(b"written by thread B")
    a = threading.Thread(target=store.sync)
    a.start()
    assert started.wait(10)
    b = threading.Thread(target=lambda: (store.sync(), files.calls.append(("b returned",))))
    b.start()
    b.join(0.5)  # B has every chance to return early here
    release.set()
    a.join(10)
    b.join(10)
    kinds = [c[0] for c in files.calls]
    assert kinds.index("b returned") > max(i for i, k in enumerate(kinds) if k == "fsync_dir")
    assert files.power_off() == 0
