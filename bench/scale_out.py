"""Scale-out: one fetch round over N lab mailboxes with 1, 2 and 3 worker processes.

1,000 mailboxes (a few new messages each) on one lab Dovecot over TLS, the store
on PostgreSQL, all due at once.  For each worker count the store is emptied, the
workers are started and warmed up while the add-on is inactive, then the add-on is
activated and the round is timed until every mailbox has been synced.  Duplicates
are rows sharing a (mailbox, Message-ID) key plus mailboxes synced twice in a round.
Then the idle cost: one worker's CPU over 20 s while no mailbox is due.

    python bench/scale_out.py --mailboxes 1000 --workers 1,2,3
"""

from __future__ import annotations

import argparse
import json
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

from bench._lab import lab  # noqa: E402
from tests.lab.postgres import create_database  # noqa: E402

SYNCED = re.compile(r"worker (\S+) synced mailbox (\d+):")
STARTED = re.compile(r"worker \S+ started")


def _wait(pred, timeout: float, what: str, step: float = 0.1) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(step)
    raise SystemExit(f"timed out waiting for {what}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--messages", type=int, default=3, help="new messages per mailbox")
    ap.add_argument("--threads", type=int, default=16, help="threads per worker")
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
    with lab() as dovecot:
        config = {"SQLALCHEMY_DATABASE_URI": db.url, "SECRET_KEY": "bench",
                  "IE_SECRET_KEYS": Fernet.generate_key().decode(), "IE_SCHEDULER": "off",
                  "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1", "IE_CA_FILE": dovecot.ca_file,
                  "IE_BLOB_DIR": str(tmp / "blobs"), "INSTANCE_PATH": str(tmp / "instance"),
                  "IE_DISPATCH_SECONDS": 1, "IE_LEASE_SECONDS": 60,
                  "IE_WORKER_THREADS": args.threads, "IE_MAIL_TIMEOUT": 60}
        app = create_app(dict(config))
        addon = app.extensions["integrated_email"]
        complete_settings(addon, fetch_interval_minutes=600)
        token = None
        users = []
        rows = []
        for i in range(args.mailboxes):
            user = dovecot.add_user(f"sc{i}", "pw")
            users.append(user)
            for k in range(args.messages):
                dovecot.deliver(user, raw_mail(f"cand{i}-{k}@example.test", user.email,
                                               f"Hello {k}"))
            token = token or addon.secrets.encrypt("pw")
            rows.append(dict(user_id="1", account_name="Bench", email=user.email,
                             is_active=True, protocol="imap", in_host="127.0.0.1",
                             in_port=dovecot.imaps, in_security="ssl", in_login=user.login,
                             in_password=token, same_credentials=True, out_host="127.0.0.1",
                             out_port=465, out_security="ssl", out_auth=True,
                             sharing="private", delete_policy="leave", paused=False,
                             fetch_requested=False, failure_count=0, auth_failures=0,
                             messages_imported=0, progress_count=0))
        with addon.engine.begin() as conn:
            conn.execute(Mailbox.__table__.insert(), rows)
        env = dict(os.environ, IE_TEST_CONFIG=json.dumps(config), PYTHONPATH=str(ROOT))
        rates: dict[int, float] = {}
        duplicates = 0
        for n in counts:
            addon.set_active(False)
            with addon.engine.begin() as conn:
                for table in (RecordLink, MessageLocation, Message, FetchCursor):
                    conn.execute(delete(table))
                conn.execute(update(Mailbox).values(next_fetch_at=None, last_success_at=None,
                                                    lease_owner=None, lease_until=None))
            logs = [tmp / f"w{n}-{i}.log" for i in range(n)]
            procs = [subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "tests.integration.worker_app",
                 "integrated-email", "worker"], cwd=ROOT, env=env,
                stdout=subprocess.DEVNULL, stderr=log.open("w")) for log in logs]
            try:
                _wait(lambda: all(STARTED.search(log.read_text()) for log in logs), 60,
                      "workers to start")
                t0 = time.monotonic()
                addon.set_active(True)

                def done() -> bool:
                    with addon.engine.connect() as conn:
                        return conn.execute(select(func.count()).select_from(Mailbox).where(
                            Mailbox.last_success_at.is_(None))).scalar() == 0
                _wait(done, 1800, f"a round with {n} workers")
                elapsed = time.monotonic() - t0
            finally:
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                for p in procs:
                    p.wait(60)
            synced = Counter(int(m) for log in logs for _w, m in SYNCED.findall(log.read_text()))
            twice = sum(1 for c in synced.values() if c > 1)
            with addon.engine.connect() as conn:
                dup_keys = conn.execute(select(func.count()).select_from(
                    select(Message.mailbox_id, Message.message_key)
                    .group_by(Message.mailbox_id, Message.message_key)
                    .having(func.count() > 1).subquery())).scalar()
                stored = conn.execute(select(func.count()).select_from(Message)).scalar()
            if stored != args.mailboxes * args.messages:
                raise SystemExit(f"{n} workers stored {stored} messages, expected "
                                 f"{args.mailboxes * args.messages}")
            duplicates += twice + dup_keys
            rates[n] = args.mailboxes / elapsed
            print(f"{n} worker(s): {elapsed:.1f} s for {args.mailboxes} mailboxes, "
                  f"{rates[n]:.1f} mbox/s, {stored} messages", flush=True)

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
            c0, t0 = _cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.idle_seconds)
            idle = (_cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0) * 100
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        addon.engine.dispose()
        app.extensions["host_ats.db"].engine.dispose() if hasattr(
            app.extensions["host_ats.db"], "engine") else None
    db.drop()
    print(f"idle dispatcher CPU: {idle:.2f}% of one core "
          f"({args.mailboxes} mailboxes not yet due)")
    parts = ", ".join(f"{n}w {rates[n]:.1f} mbox/s" for n in counts)
    print(f"scale-out: {parts}, duplicates {duplicates}")


if __name__ == "__main__":
    main()
