"""Scale-out: three worker processes on PostgreSQL share 200 mailboxes through
row leases; each mailbox is synced by exactly one worker per round, a killed
worker's leases are taken over, and nothing is stored or noted twice."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from plugin.models import Mailbox, Message, RecordLink
from tests.conftest import TEST_KEY
from tests.helpers import complete_settings, make_mailbox, raw_mail
from tests.lab.pgschema import fresh_schema_url

ROOT = Path(__file__).resolve().parents[2]
MAILBOXES = 200
SYNCED = re.compile(r"worker (\S+) synced mailbox (\d+):")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def pg_host(pg_url, tmp_path, dovecot):
    from examples.host_ats import create_app
    from examples.host_ats.seed import seed_demo

    with fresh_schema_url(pg_url) as url:
        config = {"SQLALCHEMY_DATABASE_URI": url, "IE_SECRET_KEYS": TEST_KEY,
                  "IE_SCHEDULER": "off", "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535",
                  "IE_CA_FILE": dovecot.ca_file, "IE_BLOB_DIR": str(tmp_path / "blobs"),
                  "INSTANCE_PATH": str(tmp_path / "instance"), "IE_DISPATCH_SECONDS": 1,
                  "IE_LEASE_SECONDS": 4, "IE_WORKER_THREADS": 6, "SECRET_KEY": "w"}
        app = create_app(dict(config))
        db = app.extensions["host_ats.db"]
        with db.sessions() as s:
            seed_demo(s)
            s.commit()
        yield app, config
        app.extensions["integrated_email"].engine.dispose()
        db.engine.dispose() if hasattr(db, "engine") else None


def _start_workers(config: dict, logs: Path, n: int) -> list[tuple[subprocess.Popen, Path]]:
    env = dict(os.environ, IE_TEST_CONFIG=json.dumps(config), PYTHONPATH=str(ROOT))
    procs = []
    for i in range(n):
        log = logs / f"worker{i}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "tests.integration.worker_app",
             "integrated-email", "worker"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=log.open("w"))
        procs.append((proc, log))
    return procs


def _synced(logs: list[Path]) -> list[tuple[str, int]]:
    out = []
    for log in logs:
        out += [(w, int(m)) for w, m in SYNCED.findall(log.read_text())]
    return out


def test_three_workers_share_200_mailboxes_and_take_over_a_dead_ones_leases(
        pg_host, dovecot, tmp_path):
    from examples.host_ats.models import Candidate, Note

    app, config = pg_host
    addon = app.extensions["integrated_email"]
    addon.set_active(True)
    complete_settings(addon, fetch_interval_minutes=60)
    db = app.extensions["host_ats.db"]
    with db.sessions() as s:
        emails = [c.email for c in s.scalars(select(Candidate)) if c.email]
        admin_id = "1"
    ids = []
    for i in range(MAILBOXES):
        user = dovecot.add_user(f"scale{i}x{os.getpid() % 997}", "pw")
        ids.append(make_mailbox(addon, admin_id, dovecot, user))
        dovecot.deliver(user, raw_mail(emails[i % len(emails)], user.email, f"Round one {i}"))
        dovecot.deliver(user, raw_mail("news@letters.test", user.email, "Newsletter"))
    workers = _start_workers(config, tmp_path, 3)
    try:
        def all_synced() -> bool:
            with addon.session() as s:
                return s.scalar(select(func.count()).select_from(Mailbox).where(
                    Mailbox.last_success_at.is_not(None), Mailbox.lease_owner.is_(None))) \
                    == MAILBOXES
        def logged() -> bool:  # a worker writes its "synced" line after the status commit
            return {m for _w, m in _synced([log for _p, log in workers])} >= set(ids)
        _wait(lambda: all_synced() and logged(), 120, "round one")
        round_one = _synced([log for _p, log in workers])
        per_mailbox = Counter(m for _w, m in round_one)
        assert sorted(per_mailbox) == sorted(ids)
        assert set(per_mailbox.values()) == {1}, "a mailbox was synced twice in one round"
        assert len({w for w, _m in round_one}) == 3, "every worker took a share"

        # Round two, and one worker dies in the middle of it.
        for i in range(len(ids)):
            user = dovecot.user(f"scale{i}x{os.getpid() % 997}")
            dovecot.deliver(user, raw_mail(emails[(i + 7) % len(emails)], user.email,
                                           f"Round two {i}"))
        victim, victim_log = workers[0]
        victim_name = SYNCED.findall(victim_log.read_text())[0][0]
        with addon.session() as s:
            s.execute(update(Mailbox).values(next_fetch_at=None))
            s.commit()

        def victim_holds_leases() -> bool:
            with addon.session() as s:
                return s.scalar(select(func.count()).select_from(Mailbox).where(
                    Mailbox.lease_owner == victim_name)) > 0
        _wait(victim_holds_leases, 30, "the victim to hold leases")
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)

        def all_have_three() -> bool:
            with addon.session() as s:
                n = s.scalar(select(func.count()).select_from(Message))
                held = s.scalar(select(func.count()).select_from(Mailbox).where(
                    Mailbox.lease_owner.is_not(None)))
            return n == 3 * MAILBOXES and held == 0
        _wait(all_have_three, 120, "round two to finish after the takeover")
    finally:
        for proc, _log in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _log in workers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    with addon.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 3 * MAILBOXES
        assert s.scalar(select(func.count()).select_from(RecordLink)) == 2 * MAILBOXES
        dup = s.execute(select(Message.mailbox_id, Message.message_key, func.count())
                        .group_by(Message.mailbox_id, Message.message_key)
                        .having(func.count() > 1)).all()
        assert dup == []
    with db.sessions() as s:
        notes = s.scalars(select(Note.key).where(Note.key.like("integrated_email:%"))).all()
        assert len(notes) == len(set(notes)) == 2 * MAILBOXES
    survivors = {w for w, _m in _synced([log for _p, log in workers[1:]])}
    assert victim_name not in survivors and len(survivors) == 2
