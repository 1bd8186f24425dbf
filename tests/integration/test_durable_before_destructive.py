"""Durable before destructive, against the lab Dovecot: the recorded order of calls
shows every fsync (blobs, their directories) and the database's durable step before
the first DELE, COPY, MOVE or EXPUNGE, and counts the syncs a batch import pays.
Power loss: what the server no longer has is found in the store after "power off"."""

from __future__ import annotations

import hashlib
import imaplib
import poplib
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

import plugin.blobs as blobs_pkg
from plugin.blobs import DirectoryBlobStore, OsFiles, blob_store
from plugin.fetching import pop3_sync
from plugin.fetching.sync import sync_mailbox
from plugin.models import MessageLocation
from tests.conftest import make_config
from tests.integration.sync_helpers import Message, count, make_mailbox, set_window
from tests.lab.powerloss import PowerLossFiles

DESTRUCTIVE = {"DELE", "UID COPY", "UID MOVE", "UID EXPUNGE", "EXPUNGE", "UID STORE"}


class RecordingFiles(OsFiles):
    """The real file operations, each fsync recorded in the shared call list."""

    def __init__(self, calls: list) -> None:
        self.calls = calls

    def fsync_file(self, path: str) -> None:
        self.calls.append("fsync")
        super().fsync_file(path)

    def fsync_dir(self, path: str) -> None:
        self.calls.append("fsync_dir")
        super().fsync_dir(path)


def record_everything(monkeypatch, addon, store) -> list[str]:
    """One ordered list of: fsyncs of the blob store, the database's commits and
    checkpoints, and the POP3/IMAP command names sent to Dovecot (never arguments: a
    LOGIN's password stays out of the record)."""
    calls: list[str] = []
    if isinstance(store, DirectoryBlobStore):
        monkeypatch.setattr(store, "files", RecordingFiles(calls))

    def on_statement(_conn, _cursor, statement, *_a) -> None:
        if "wal_checkpoint" in statement:
            calls.append("checkpoint")

    event.listen(addon.engine, "before_cursor_execute", on_statement)
    event.listen(addon.engine, "commit", lambda _conn: calls.append("COMMIT"))
    real_pop = poplib.POP3._putcmd
    real_imap = imaplib.IMAP4._command

    def pop_cmd(self, line):
        calls.append(line.split()[0].upper())
        return real_pop(self, line)

    def imap_cmd(self, name, *args):
        calls.append(f"UID {args[0].upper()}" if name == "UID" else name)
        return real_imap(self, name, *args)

    monkeypatch.setattr(poplib.POP3, "_putcmd", pop_cmd)
    monkeypatch.setattr(imaplib.IMAP4, "_command", imap_cmd)
    return calls


def first(calls: list[str], names: set[str]) -> int:
    return next(i for i, c in enumerate(calls) if c in names)


def last(calls: list[str], name: str) -> int:
    return max(i for i, c in enumerate(calls) if c == name)


@pytest.fixture(params=["directory", "database"])
def store_kind(request, mini):
    """Each blob store on each database (the mini app's config chooses it)."""
    mini[0].config["IE_BLOB_STORE"] = request.param
    return request.param


def test_durable_pop3_delete_after_retrieval_syncs_once_before_the_first_dele(
        mini, store_kind, dovecot, mail_user, monkeypatch):
    app, _host, addon = mini
    set_window(addon)
    monkeypatch.setattr(pop3_sync, "POP3_BATCH", 100)  # 450 messages: 5 batches
    dovecot.fill(mail_user, 450)
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3",
                        delete_policy="after_retrieval")
    store = blob_store(app.config)
    calls = record_everything(monkeypatch, addon, store)
    result = sync_mailbox(addon, mbid)
    assert (result.error_kind, result.stored) == (None, 450)
    assert dovecot.list_messages(mail_user) == []  # DELE + QUIT really removed them

    dele = first(calls, {"DELE"})
    assert calls.count("DELE") == 450
    assert calls.count("COMMIT") >= 5
    # every batch was committed before the first DELE
    assert max(i for i, c in enumerate(calls[:dele]) if c == "COMMIT") > first(calls, {"RETR"})
    assert not any(c == "RETR" for c in calls[dele:])
    sqlite = addon.engine.dialect.name == "sqlite"
    assert calls.count("checkpoint") == (1 if sqlite else 0)  # one, not one per batch
    if sqlite:
        assert calls.index("checkpoint") < dele
    else:  # PostgreSQL commits are durable as long as synchronous_commit is on
        with addon.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    if store_kind == "directory":
        # one round for all five batches: each file once, then the directories
        assert store.sync_calls == 1
        assert calls[:dele].count("fsync") == 450 and "fsync" not in calls[dele:]
        assert last(calls, "fsync_dir") < dele
    else:
        assert "fsync" not in calls
    with Session(addon.engine) as s:
        assert s.query(MessageLocation).filter_by(mailbox_id=mbid,
                                                  removed_from_server=True).count() == 450


def test_durable_pop3_delete_after_days_syncs_blobs_an_earlier_process_wrote(
        mini, dovecot, mail_user, monkeypatch):
    app, _host, addon = mini
    app.config["IE_BLOB_STORE"] = "directory"
    set_window(addon)
    dovecot.fill(mail_user, 6)
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3",
                        delete_policy="after_days", delete_after_days=7)
    assert sync_mailbox(addon, mbid).stored == 6
    with Session(addon.engine) as s:
        s.execute(update(MessageLocation).where(MessageLocation.mailbox_id == mbid).values(
            stored_at=datetime.now(UTC) - timedelta(days=8)))
        s.commit()
    monkeypatch.setattr(blobs_pkg, "_stores", {})  # a new process: it synced nothing yet
    store = blob_store(app.config)
    calls = record_everything(monkeypatch, addon, store)
    r = sync_mailbox(addon, mbid)
    assert (r.error_kind, r.stored) == (None, 0)
    assert dovecot.list_messages(mail_user) == []
    dele = first(calls, {"DELE"})
    assert calls[:dele].count("fsync") == 6 and last(calls, "fsync_dir") < dele
    if addon.engine.dialect.name == "sqlite":
        assert calls.index("checkpoint") < dele


def test_durable_consolidate_copy_comes_after_the_sync(mini, dovecot, mail_user, monkeypatch):
    from plugin.jobs.dispatcher import dispatch
    from tests.helpers import complete_settings, raw_mail
    from tests.helpers import make_mailbox as make_linked_mailbox

    app, host, addon = mini
    app.config["IE_BLOB_STORE"] = "directory"
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    make_linked_mailbox(addon, rita.get_id(), dovecot, mail_user, consolidate_folder="Clients")
    for i in range(3):
        dovecot.deliver(mail_user, raw_mail("ann@cand.test", mail_user.email, f"Filed {i}"))
    store = blob_store(app.config)
    calls = record_everything(monkeypatch, addon, store)
    # the consolidate step only (the sync's own rounds are the POP3 tests' business)
    from plugin.linking import importer
    real = importer.consolidate
    marks: list[int] = []
    monkeypatch.setattr(importer, "consolidate",
                        lambda a, m: (marks.append(len(calls)), real(a, m))[1])
    with app.app_context():
        dispatch(addon, wait=True)
    assert len(dovecot.list_messages(mail_user, "Clients")) == 3
    step = calls[marks[0]:]
    copy = first(step, {"UID COPY"})
    assert step[:copy].count("fsync") == 3 and "fsync_dir" in step[:copy]
    if addon.engine.dialect.name == "sqlite":
        assert step.index("checkpoint") < copy


def test_durable_webmail_delete_moves_to_trash_after_the_sync(mini, dovecot, mail_user,
                                                              monkeypatch):
    from plugin.fetching.server_flags import wait_for_server_updates
    from plugin.models import Message as MessageRow
    from plugin.reading.messages import delete_message

    app, _host, addon = mini
    app.config["IE_BLOB_STORE"] = "directory"
    set_window(addon)
    dovecot.fill(mail_user, 2)
    mbid = make_mailbox(addon, dovecot, mail_user)
    sync_mailbox(addon, mbid)
    monkeypatch.setattr(blobs_pkg, "_stores", {})  # the web process: it synced nothing yet
    store = blob_store(app.config)
    calls = record_everything(monkeypatch, addon, store)
    with app.app_context():
        s = addon.session()
        msg = s.scalars(select(MessageRow).where(MessageRow.mailbox_id == mbid)).first()
        delete_message(addon, msg)
        s.commit()
        wait_for_server_updates(addon)
    assert len(dovecot.list_messages(mail_user, "INBOX")) == 1
    gone = first(calls, DESTRUCTIVE)
    assert calls[gone] in ("UID MOVE", "UID COPY")
    assert calls[:gone].count("fsync") == 1 and last(calls, "fsync_dir") < gone
    if addon.engine.dialect.name == "sqlite":
        assert calls.index("checkpoint") < gone


# ---------------------------------------------------------------- power loss


@pytest.fixture
def sqlite_addon(tmp_path, dovecot, migrated_sqlite_template):
    """The add-on on a SQLite file (its WAL is what a power cut loses) and a directory
    store whose unsynced writes a power cut loses too."""
    from plugin import IntegratedEmail
    from tests.hosts.mini_host import create_mini_app

    db = tmp_path / "ie.sqlite"
    shutil.copyfile(migrated_sqlite_template, db)
    app, host = create_mini_app(make_config(f"sqlite:///{db}", tmp_path,
                                            IE_CA_FILE=dovecot.ca_file,
                                            IE_BLOB_STORE="directory"))
    addon = IntegratedEmail(app, host=host)
    addon.migrate()
    addon.set_active(True)
    yield app, addon, db
    addon.session.remove()
    addon.engine.dispose()


def power_cut(files: PowerLossFiles, db: Path, tmp_path: Path) -> str:
    """What the disk holds after the power goes off: the blobs that were fsynced, and
    the SQLite file without its WAL (synchronous=NORMAL does not sync the WAL before
    a checkpoint: the worst case keeps none of it). Returns the surviving database URL."""
    files.power_off()
    after = tmp_path / "after-power-cut.sqlite"
    shutil.copyfile(db, after)
    return f"sqlite:///{after}"


def survivors(url: str, root: Path, mbid: int) -> tuple[set[str], int]:
    """(UIDLs with a row, how many of their blobs are readable with the right hash)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(MessageLocation.uidl, Message.blob_sha256).join(
            Message, Message.id == MessageLocation.message_id).where(
            MessageLocation.mailbox_id == mbid)).all()
    engine.dispose()
    store = DirectoryBlobStore(root)
    good = sum(1 for _u, sha in rows if store.exists(sha)
               and hashlib.sha256(store.get(sha)).hexdigest() == sha)
    return {u for u, _s in rows}, good


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "control-without-sync"])
def test_power_loss_right_after_pop3_delete_loses_nothing(sqlite_addon, dovecot, mail_user,
                                                          tmp_path, monkeypatch, durable):
    app, addon, db = sqlite_addon
    set_window(addon)
    dovecot.fill(mail_user, 40)
    uidls = _server_uidls(dovecot, mail_user)
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3",
                        delete_policy="after_retrieval")
    files = PowerLossFiles()
    store = blob_store(app.config)
    monkeypatch.setattr(store, "files", files)
    if not durable:  # the control: without the step, the same cut loses mail
        monkeypatch.setattr(pop3_sync, "durable_before_server_change", lambda *a: None)
    assert sync_mailbox(addon, mbid).stored == 40
    assert dovecot.list_messages(mail_user) == []  # the server has none of them now
    url = power_cut(files, db, tmp_path)
    rows, good = survivors(url, Path(app.config["IE_BLOB_DIR"]), mbid)
    if durable:
        assert rows == uidls and good == 40  # every deleted message: row and bytes
    else:
        assert rows != uidls or good < 40  # the test can tell a loss


def _server_uidls(dovecot, user) -> set[str]:
    import ssl
    p = poplib.POP3_SSL("localhost", dovecot.pop3s,
                        context=ssl.create_default_context(cafile=dovecot.ca_file))
    p.user(user.login)
    p.pass_(user.password)
    out = {line.split()[1].decode() for line in p.uidl()[1]}
    p.quit()
    return out


def test_power_loss_then_the_next_sync_finds_every_deleted_message(sqlite_addon, dovecot,
                                                                   mail_user, tmp_path,
                                                                   monkeypatch):
    """After the cut the add-on starts on what the disk kept, syncs again, and every
    message the server deleted is readable; nothing is fetched twice."""
    from plugin import IntegratedEmail
    from tests.hosts.mini_host import create_mini_app

    app, addon, db = sqlite_addon
    set_window(addon)
    dovecot.fill(mail_user, 25)
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3",
                        delete_policy="after_retrieval")
    files = PowerLossFiles()
    monkeypatch.setattr(blob_store(app.config), "files", files)
    assert sync_mailbox(addon, mbid).stored == 25
    dovecot.fill(mail_user, 5)  # new mail arrives while the machine is off
    url = power_cut(files, db, tmp_path)
    monkeypatch.setattr(blobs_pkg, "_stores", {})
    app2, host2 = create_mini_app(make_config(url, tmp_path, IE_CA_FILE=dovecot.ca_file,
                                              IE_BLOB_STORE="directory"))
    again = IntegratedEmail(app2, host=host2)
    try:
        r = sync_mailbox(again, mbid)
        assert (r.error_kind, r.stored, r.duplicates) == (None, 5, 0)
        assert count(again, Message, mbid) == 30 and dovecot.list_messages(mail_user) == []
        store = blob_store(app2.config)
        with Session(again.engine) as s:
            shas = s.scalars(select(Message.blob_sha256).where(Message.mailbox_id == mbid))
            assert all(hashlib.sha256(store.get(sha)).hexdigest() == sha for sha in shas)
    finally:
        again.engine.dispose()


def test_durable_blob_fsync_setting_syncs_each_batch_before_its_commit(
        mini, dovecot, mail_user, monkeypatch):
    """IE_BLOB_FSYNC on: every batch's files and directories are fsynced before the
    batch's rows commit (a row never points at bytes a power cut could take)."""
    app, _host, addon = mini
    app.config.update(IE_BLOB_STORE="directory", IE_BLOB_FSYNC=True)
    set_window(addon)
    monkeypatch.setattr(pop3_sync, "POP3_BATCH", 10)
    dovecot.fill(mail_user, 30)
    mbid = make_mailbox(addon, dovecot, mail_user, protocol="pop3")
    store = blob_store(app.config)
    calls = record_everything(monkeypatch, addon, store)
    assert sync_mailbox(addon, mbid).stored == 30
    assert store.sync_calls == 3 and calls.count("fsync") == 30
    batches = "".join("f" if c == "fsync" else "C" if c == "COMMIT" else "" for c in calls)
    # ten files, then the commit of their rows; three times
    assert re.search(r"^C*(f{10}C)(f{10}C)(f{10}C)C*$", batches), batches
    assert "DELE" not in calls and len(dovecot.list_messages(mail_user)) == 30
