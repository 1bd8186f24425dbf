"""Scale-out: one fetch round over N lab mailboxes with 1, 2 and 3 worker processes.

1,000 mailboxes on one lab Dovecot over TLS, the store on PostgreSQL, every
mailbox synced once before (a round in the steady state), then a few new messages
delivered to each and all made due at once.  For each worker count, side by side:

- raw: the same number of processes and threads doing only the IMAP commands of
  such a poll with plain imaplib (bench/_raw_sync.py): what the protocol costs;
- ours: ``flask integrated-email worker`` processes start and warm up while the
  add-on is inactive, then the add-on is activated and the round is timed until
  every mailbox has been synced.

No shared directory: the raw bytes go to the database blob store (``IE_BLOB_STORE``
database), and every worker process gets its own ``IE_BLOB_DIR`` and instance folder
(checked empty of blobs at the end), as on machines that share only PostgreSQL.

``--first-sync`` times first syncs instead (the store emptied before each round,
every message of every mailbox new), as when a whole company connects at once.

Duplicates are rows sharing a (mailbox, Message-ID) key plus mailboxes synced
twice in a round.  Then the idle cost: one worker's CPU over 20 s while no
mailbox is due.

Where the mail server is: production servers are a network away, the lab Dovecot
is on loopback.  ``--rtt-ms`` (default 20, a provider in the same region) puts
that round trip between the fetchers and Dovecot (bench/_wan.py, for raw and
ours alike); ``--rtt-ms 0`` measures loopback, where every process shares the
two cores with Dovecot and PostgreSQL and the machine, not the worker, is the
limit.  Dovecot runs in its high-performance mode (processes reused), and every
mailbox is opened once before the first round, so each round finds the server
in the same state.  Threads per worker: the shipped default (IE_WORKER_THREADS).

    python bench/scale_out.py --mailboxes 1000 --workers 1,2,3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _raw_sync  # noqa: E402
from bench._lab import lab, machine_busy, postmaster_pid, process_cpu, tree_cpu  # noqa: E402
from tests.lab.postgres import create_database  # noqa: E402

SYNCED = re.compile(r"worker (\S+) synced mailbox (\d+):")
STARTED = re.compile(r"worker \S+ started")
#: a worker's dispatcher has ticked (APScheduler's INFO line): it is warm and polling
TICKED = re.compile(r'Job "Fetch due mailboxes.*executed successfully')


def _wait(pred, timeout: float, what: str, step: float = 0.1) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(step)
    raise SystemExit(f"timed out waiting for {what}")


class Relay:
    """bench/_wan.py in its own process: Dovecot's IMAPS port, ``rtt_ms`` away."""

    def __init__(self, port: int, rtt_ms: float) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_wan.py"),
                                      str(port), str(rtt_ms)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split()[1])

    def cpu(self) -> float:
        return process_cpu(self.proc.pid)

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def warm(dovecot, users, port: int) -> None:
    """Open every mailbox once so Dovecot's indexes exist before the first round."""
    _raw_sync.sync_all(port, dovecot.ca_file, [(u.login, u.password) for u in users], 8, 0,
                       multiprocessing.Value("i", 0))


def raw_round(port: int, ca_file: str, accounts, processes: int, threads: int, new: int,
              expected: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (of the raw processes) for one raw round."""
    ctx = multiprocessing.get_context("spawn")
    claim, start, results = ctx.Value("i", 0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_raw_sync.run, args=(port, ca_file, accounts, threads, new,
                                                     claim, start, results))
             for _ in range(processes)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # interpreters up and waiting at the start line
    cpu0 = [process_cpu(p.pid) for p in procs]
    t0 = time.monotonic()
    start.set()
    fetched = sum(results.get(timeout=1800) for _ in procs)
    elapsed = time.monotonic() - t0
    cpu = sum(process_cpu(p.pid) - c for p, c in zip(procs, cpu0, strict=True))
    for p in procs:
        p.join(30)
    if fetched != expected:
        raise SystemExit(f"raw round fetched {fetched} messages, expected {expected}")
    return elapsed, cpu


def main() -> None:
    from plugin.config import SETTINGS

    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--messages", type=int, default=3, help="new messages per mailbox")
    ap.add_argument("--threads", type=int, default=int(SETTINGS["IE_WORKER_THREADS"][0]),
                    help="threads per worker (default: the shipped IE_WORKER_THREADS)")
    ap.add_argument("--rtt-ms", type=float, default=20,
                    help="round trip between fetchers and Dovecot (0: loopback)")
    ap.add_argument("--first-sync", action="store_true",
                    help="time first syncs (store emptied each round) instead of polls")
    ap.add_argument("--idle-seconds", type=float, default=20)
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]

    from cryptography.fernet import Fernet
    from sqlalchemy import delete, func, select, update

    from examples.host_ats import create_app
    from plugin.models import FetchCursor, Mailbox, Message, MessageLocation, RecordLink
    from tests.helpers import complete_settings, raw_mail

    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    db = create_database()
    relay = None
    with lab(high_performance=True) as dovecot:
        if args.rtt_ms > 0:
            relay = Relay(dovecot.imaps, args.rtt_ms)
        port = relay.port if relay else dovecot.imaps
        config = {"SQLALCHEMY_DATABASE_URI": db.url, "SECRET_KEY": "bench",
                  "IE_SECRET_KEYS": Fernet.generate_key().decode(), "IE_SCHEDULER": "off",
                  "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535", "IE_CA_FILE": dovecot.ca_file,
                  "IE_BLOB_STORE": "database",
                  "IE_BLOB_DIR": str(tmp / "blobs"), "INSTANCE_PATH": str(tmp / "instance"),
                  "IE_DISPATCH_SECONDS": 1, "IE_LEASE_SECONDS": 60,
                  "IE_WORKER_THREADS": args.threads, "IE_MAIL_TIMEOUT": 60}
        app = create_app(dict(config))
        addon = app.extensions["integrated_email"]
        complete_settings(addon, fetch_interval_minutes=600)
        token = addon.secrets.encrypt("pw")
        users = []
        rows = []
        for i in range(args.mailboxes):
            user = dovecot.add_user(f"sc{i}", "pw")
            users.append(user)
            for k in range(args.messages):
                dovecot.deliver(user, raw_mail(f"cand{i}-{k}@example.test", user.email,
                                               f"Hello {k}"))
            rows.append(dict(user_id="1", account_name="Bench", email=user.email,
                             is_active=True, protocol="imap", in_host="127.0.0.1",
                             in_port=port, in_security="ssl", in_login=user.login,
                             in_password=token, same_credentials=True, out_host="127.0.0.1",
                             out_port=465, out_security="ssl", out_auth=True,
                             sharing="private", delete_policy="leave", paused=False,
                             fetch_requested=False, failure_count=0, auth_failures=0,
                             messages_imported=0, progress_count=0))
        with addon.engine.begin() as conn:
            conn.execute(Mailbox.__table__.insert(), rows)
        warm(dovecot, users, dovecot.imaps)
        accounts = [(u.login, u.password) for u in users]
        where = f"Dovecot {args.rtt_ms:g} ms away" if relay else "Dovecot on loopback"
        kind = "first syncs" if args.first_sync else "polls finding new mail"
        print(f"{args.mailboxes} mailboxes, {args.messages} new messages each ({kind}), "
              f"{where}, {args.threads} threads a process, store PostgreSQL", flush=True)
        env = dict(os.environ, IE_TEST_CONFIG=json.dumps(config), PYTHONPATH=str(ROOT))
        machines: list[Path] = []

        def machine_env(tag: str) -> dict:
            """A worker's environment: its own directories, nothing shared but the database."""
            own = tmp / f"machine-{tag}"
            machines.append(own)
            return dict(env, IE_TEST_CONFIG=json.dumps(dict(
                config, IE_BLOB_DIR=str(own / "blobs"), INSTANCE_PATH=str(own / "instance"))))

        def start_workers(n: int, tag: str) -> tuple[list, list[Path]]:
            addon.set_active(False)
            with addon.engine.begin() as conn:
                conn.execute(update(Mailbox).values(next_fetch_at=None, last_success_at=None,
                                                    lease_owner=None, lease_until=None))
            logs = [tmp / f"{tag}-{i}.log" for i in range(n)]
            procs = [subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "tests.integration.worker_app",
                 "integrated-email", "worker"], cwd=ROOT, env=machine_env(log.stem),
                stdout=subprocess.DEVNULL, stderr=log.open("w")) for log in logs]
            _wait(lambda: all(TICKED.search(log.read_text()) for log in logs), 60,
                  "workers to start and tick")
            return procs, logs

        def done() -> bool:
            with addon.engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(Mailbox).where(
                    Mailbox.last_success_at.is_(None))).scalar() == 0

        def stop(procs: list) -> None:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(60)

        def deliver_new(tag: str) -> None:
            for user in users:
                for k in range(args.messages):
                    dovecot.deliver(user, raw_mail(f"cand-{user.login}-{tag}{k}@example.test",
                                                   user.email, f"Hello {tag}{k}"))

        expected = args.mailboxes * args.messages
        if not args.first_sync:  # the priming round: every mailbox synced once
            procs, _logs = start_workers(max(counts), "prime")
            addon.set_active(True)
            try:
                _wait(done, 1800, "the priming round")
            finally:
                stop(procs)
        rates: dict[int, float] = {}
        raw_rates: dict[int, float] = {}
        duplicates = 0
        ms = 1000 / args.mailboxes
        for n in counts:
            if args.first_sync:
                addon.set_active(False)
                with addon.engine.begin() as conn:
                    for table in (RecordLink, MessageLocation, Message, FetchCursor):
                        conn.execute(delete(table))
            else:
                deliver_new(f"r{n}-")
                expected += args.mailboxes * args.messages
            raw_s, raw_cpu = raw_round(port, dovecot.ca_file, accounts, n, args.threads,
                                       0 if args.first_sync else args.messages,
                                       args.mailboxes * args.messages)
            raw_rates[n] = args.mailboxes / raw_s
            procs, logs = start_workers(n, f"w{n}")
            try:
                pg_pid = postmaster_pid(db)
                cpu0 = ([process_cpu(p.pid) for p in procs], tree_cpu(dovecot._proc.pid),
                        tree_cpu(pg_pid), machine_busy(), relay.cpu() if relay else 0.0)
                t0 = time.monotonic()
                addon.set_active(True)
                _wait(done, 1800, f"a round with {n} workers")
                elapsed = time.monotonic() - t0
                cpu1 = ([process_cpu(p.pid) for p in procs], tree_cpu(dovecot._proc.pid),
                        tree_cpu(pg_pid), machine_busy(), relay.cpu() if relay else 0.0)
            finally:
                stop(procs)
            synced = Counter(int(m) for log in logs for _w, m in SYNCED.findall(log.read_text()))
            twice = sum(1 for c in synced.values() if c > 1)
            with addon.engine.connect() as conn:
                dup_keys = conn.execute(select(func.count()).select_from(
                    select(Message.mailbox_id, Message.message_key)
                    .group_by(Message.mailbox_id, Message.message_key)
                    .having(func.count() > 1).subquery())).scalar()
                stored = conn.execute(select(func.count()).select_from(Message)).scalar()
            if stored != expected or len(synced) != args.mailboxes:
                raise SystemExit(f"{n} workers: {stored} messages stored (expected {expected}), "
                                 f"{len(synced)} of {args.mailboxes} mailboxes synced")
            duplicates += twice + dup_keys
            rates[n] = args.mailboxes / elapsed
            workers_cpu = sum(b - a for a, b in zip(cpu0[0], cpu1[0], strict=True))
            busy = cpu1[3][0] - cpu0[3][0]
            print(f"{n} worker(s): {elapsed:.1f} s, {rates[n]:.1f} mbox/s; raw {raw_s:.1f} s, "
                  f"{raw_rates[n]:.1f} mbox/s; ours/raw {rates[n] / raw_rates[n]:.2f}",
                  flush=True)
            print(f"  CPU ms a mailbox: workers {workers_cpu * ms:.1f} (raw {raw_cpu * ms:.1f}), "
                  f"Dovecot {(cpu1[1] - cpu0[1]) * ms:.1f}, PostgreSQL "
                  f"{(cpu1[2] - cpu0[2]) * ms:.1f}, relay {(cpu1[4] - cpu0[4]) * ms:.1f}; "
                  f"machine {busy * ms:.1f} ({busy / elapsed:.2f} of {os.cpu_count()} cores "
                  "busy)", flush=True)

        # Idle: nothing due; how much CPU does a worker's dispatcher burn?
        with addon.engine.begin() as conn:
            conn.execute(update(Mailbox).values(next_fetch_at=func.now() + func.make_interval(
                0, 0, 0, 1)))
        log = tmp / "idle.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "tests.integration.worker_app",
             "integrated-email", "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=log.open("w"))
        try:
            _wait(lambda: STARTED.search(log.read_text()), 60, "the idle worker")
            time.sleep(2)
            c0, t0 = process_cpu(proc.pid), time.monotonic()
            time.sleep(args.idle_seconds)
            idle = (process_cpu(proc.pid) - c0) / (time.monotonic() - t0) * 100
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            if relay is not None:
                relay.stop()
        addon.engine.dispose()
    db.drop()
    local = sum(1 for m in machines for f in m.rglob("*") if f.is_file()
                and len(f.name) == 64)
    print(f"blob files on the workers' own disks: {local} ({len(machines)} worker "
          "directories; raw bytes in the database)")
    raw = ", ".join(f"{n}p {raw_rates[n]:.1f}" for n in counts)
    print(f"raw baseline: {raw} mbox/s")
    if 1 in rates:
        print("scaling over 1 process: ours " + ", ".join(
            f"{n}w {rates[n] / rates[1]:.2f}" for n in counts if n != 1) + "; raw " + ", ".join(
            f"{n}p {raw_rates[n] / raw_rates[1]:.2f}" for n in counts if n != 1))
    print(f"idle dispatcher CPU: {idle:.2f}% of one core "
          f"({args.mailboxes} mailboxes not yet due)")
    parts = ", ".join(f"{n}w {rates[n]:.1f} mbox/s" for n in counts)
    print(f"scale-out: {parts}, duplicates {duplicates}")


if __name__ == "__main__":
    main()
