"""The lab Dovecot and an add-on app outside pytest, for the benchmarks.

Reuses the test lab (tests/lab): same private Dovecot, same throw-away CA, TLS on.
"""
from __future__ import annotations

import email.utils
import imaplib
import os
import resource
import shutil
import ssl
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab.ca import make_certs  # noqa: E402 - after the sys.path line
from tests.lab.dovecot import Dovecot, MailUser  # noqa: E402

BODY = ("Dear recruiter,\r\n\r\nPlease find my application below. I have five years of "
        "experience in software engineering and would love to join your team.\r\n\r\n") * 4


def realistic_message(i: int, user: MailUser) -> bytes:
    """A typical application mail: Received lines, text and HTML alternatives (~3 KB)."""
    date = email.utils.formatdate(1_700_000_000 + i * 60, localtime=False)
    html = "<html><body><p>" + BODY.replace("\r\n\r\n", "</p><p>") + "</p></body></html>"
    return (
        f"Return-Path: <cand{i}@example.test>\r\n"
        f"Received: from mx.example.test (mx.example.test [192.0.2.1])\r\n"
        f"\tby mail.example.test with ESMTPS id {i:08x}\r\n\tfor <{user.email}>; {date}\r\n"
        f"From: Candidate {i} <cand{i}@example.test>\r\n"
        f"To: Recruiter <{user.email}>\r\n"
        f"Cc: hr@example.test\r\n"
        f"Subject: Application for the engineer position #{i}\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <bench-{i}-{os.urandom(5).hex()}@example.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
        "\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"{BODY}\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b1--\r\n"
    ).encode()


#: the lab OAuth provider of the running lab(oauth=True), for benchmarks that sign in
OAUTH: dict = {}


@contextmanager
def lab(high_performance: bool = False, oauth: bool = False):
    """The lab Dovecot, its mail in memory (tmpfs) where the machine has one.

    Why: it stands in for a mail server on another machine, whose disk is not ours.
    This machine's disk makes a file for 25 to 500 us of CPU depending on its state,
    and Dovecot makes one per message it stores (a Sent copy, say), on the cores the
    measured code runs on. The add-on's own store stays on the disk.
    """
    certs_dir = tempfile.mkdtemp(prefix="bench-certs-")
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    workdir = tempfile.mkdtemp(prefix="bench-dovecot-", dir=shm)
    certs = make_certs(certs_dir)
    provider = None
    if oauth:
        from tests.lab.oauth import OAuthLab
        provider = OAUTH["lab"] = OAuthLab(certs).start()
    server = Dovecot(certs, workdir=workdir, high_performance=high_performance,
                     oauth=provider).start()
    try:
        yield server
    finally:
        server.cleanup()
        if provider is not None:
            provider.stop()
            OAUTH.clear()
        shutil.rmtree(certs_dir, ignore_errors=True)


#: the store an import benchmark runs on (``--blobs``, ``--db``; see add_store_flags)
STORE = {"blobs": "directory", "db": "sqlite"}


def add_store_flags(ap) -> None:
    """``--blobs database|directory --db sqlite|postgresql`` on a benchmark's parser."""
    ap.add_argument("--blobs", choices=["database", "directory"], default="directory")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")


def use_store_flags(args) -> str:
    """Take the parsed flags into STORE; returns a label for the report."""
    STORE.update(blobs=args.blobs, db=args.db)
    return f"blobs={args.blobs} db={args.db}"


@contextmanager
def addon_app(dovecot):
    """An add-on inside the minimal test host, on a fresh database (SQLite file, or a
    PostgreSQL database of its own) and blob store, as STORE says."""
    from cryptography.fernet import Fernet

    from plugin import IntegratedEmail
    from tests.hosts.mini_host import create_mini_app

    tmp = Path(tempfile.mkdtemp(prefix="bench-app-"))
    cfg = {"IE_DATABASE_URL": f"sqlite:///{tmp}/ie.sqlite",
           "IE_SECRET_KEYS": Fernet.generate_key().decode(), "IE_SCHEDULER": "off",
           "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535,localhost:1024-65535",
           "IE_BLOB_DIR": str(tmp / "blobs"),
           "IE_MAIL_TIMEOUT": 30.0, "IE_CA_FILE": dovecot.ca_file,
           "INSTANCE_PATH": str(tmp / "instance")}
    cfg["IE_BLOB_STORE"] = STORE["blobs"]
    pg = None
    if STORE["db"] == "postgresql":
        from tests.lab.postgres import create_database
        pg = create_database()
        cfg["IE_DATABASE_URL"] = pg.url
    app, host = create_mini_app(cfg)
    addon = IntegratedEmail(app, host=host)
    addon.migrate()
    addon.set_active(True)
    from tests.integration.sync_helpers import set_window
    set_window(addon, days=36500, messages=1_000_000)
    try:
        yield addon
    finally:
        addon.engine.dispose()
        if pg is not None:
            pg.drop()
        shutil.rmtree(tmp, ignore_errors=True)


def new_mailbox(addon, dovecot, user, protocol: str = "imap", **values) -> int:
    from tests.integration.sync_helpers import make_mailbox
    return make_mailbox(addon, dovecot, user, protocol=protocol, **values)


def tls_context(dovecot) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=dovecot.ca_file)


def imap_login(dovecot, user) -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL("localhost", dovecot.imaps, ssl_context=tls_context(dovecot))
    m.login(user.login, user.password)
    return m


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


#: what the last import_once made durable: blob sync rounds, file fsyncs, checkpoints
DURABILITY = {"rounds": 0, "fsyncs": 0, "checkpoints": 0}


class ImportRun(int):
    """What :func:`import_once` stored (an int), with ``seconds``: the import alone
    (``fetch_and_link``, as a worker runs it), and ``whole``: with creating the
    empty store (app, migrations) and removing it afterwards, which are the
    benchmark's set-up, not the import's work."""

    seconds: float
    whole: float


def import_once(dovecot, user, protocol: str = "imap", delete_policy: str = "leave") -> ImportRun:
    """Our side of an import benchmark: a full sync of ``user`` into an empty store
    (``delete_policy`` "after_retrieval": POP3 deletes what it stored, durably)."""
    from sqlalchemy import event

    from plugin.blobs import blob_store
    from plugin.jobs.dispatcher import fetch_and_link as sync_mailbox
    start = time.perf_counter()
    with addon_app(dovecot) as addon:
        mbid = new_mailbox(addon, dovecot, user, protocol=protocol,
                           delete_policy=delete_policy)
        store = blob_store(addon.app.config)
        checkpoints = []
        event.listen(addon.engine, "before_cursor_execute",
                     lambda _c, _k, statement, *_a: checkpoints.append(1)
                     if "wal_checkpoint" in statement else None)
        fsyncs = [0]
        files = getattr(store, "files", None)
        if files is not None:
            real = files.fsync_file
            files.fsync_file = lambda path: (fsyncs.__setitem__(0, fsyncs[0] + 1), real(path))
        t = time.perf_counter()
        result = sync_mailbox(addon, mbid)
        seconds = time.perf_counter() - t
        assert result.error_kind is None, result
        DURABILITY.update(rounds=getattr(store, "sync_calls", 0), fsyncs=fsyncs[0],
                          checkpoints=len(checkpoints))
    run = ImportRun(result.stored)
    run.seconds, run.whole = seconds, time.perf_counter() - start
    return run


def best_of_rounds(baseline, ours, rounds: int, expected: int) -> tuple[float, float]:
    """Baseline and ours run side by side ``rounds`` times; the best seconds of each
    (ours: the import alone; the whole run with the store's set-up is printed too)."""
    best_base = best_ours = float("inf")
    for r in range(rounds):
        tb, nb = timed(baseline)
        _to, no = timed(ours)
        assert nb == no == expected, (nb, no)
        print(f"round {r + 1}: baseline {tb:.2f} s, import {no.seconds:.2f} s "
              f"({no.whole:.2f} s with creating and removing the store)", flush=True)
        best_base, best_ours = min(best_base, tb), min(best_ours, no.seconds)
    return best_base, best_ours


# ------------------------------------------------------------------ where the CPU went

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_cpu(pid: int, children: bool = True) -> float:
    """CPU seconds of ``pid``, plus of its children already reaped when ``children``."""
    f = _stat(pid)
    if f is None:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return ticks / _TICK


def tree_cpu(root: int) -> float:
    """CPU seconds of a process tree: every live process under ``root`` and everything
    they reaped (Dovecot's per-connection processes, PostgreSQL's backends)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat(int(entry))
            if f is not None:
                parents[int(entry)] = int(f[1])
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += process_cpu(pid)
        todo += [p for p, pp in parents.items() if pp == pid]
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


def postmaster_pid(db) -> int:  # a tests.lab.postgres.PgDatabase
    """The PostgreSQL server holding ``db`` (its backends are its children)."""
    import psycopg
    with psycopg.connect(host="127.0.0.1", port=db.port, user=db.user, dbname=db.name) as conn:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    return int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
