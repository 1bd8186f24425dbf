"""A bulk job to N recipients through the lab SMTP server versus raw smtplib.

Baseline: smtplib over one SMTPS connection sending N prebuilt messages (built and
flattened before the clock starts). Ours: ``plugin.sending.bulk.run_job`` on a job
of N recipients (made beforehand, like the composer's Send does), spacing off: per
recipient the outbox row committed before and after SMTP (one commit between two
messages: "i sent" and "i+1 sending" together), the message built, sent,
recorded (store, record link, host note) and saved in the sender's Dovecot Sent
folder; the clock stops when every row is ``filed``. The two are interleaved
``--rounds`` times (3) and the best of each compared, as in the other benchmarks.
The SMTP server runs in its own process (bench/_smtp_proc.py) and offers PIPELINING,
as real submission servers do: our sender uses it (the envelope in one write),
smtplib does not; ``--no-pipelining`` takes it away, so both wait for every answer.
The store is SQLite on the disk (or PostgreSQL with --db postgresql); the lab
Dovecot's mail is in memory (bench/_lab.py).

``--paced``: the provider limit of the lab's server set to 600 a minute (the admin's
"Other mail servers" row) and the lab server itself refusing (421 4.7.0) past 600 in
any minute; one round of the bulk job against its ideal schedule, N / 600 minutes.
Last line: ``paced bulk ratio: R (actual s, ideal s)``.
"""
from __future__ import annotations

import argparse
import logging
import os
import smtplib
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from _lab import lab, peak_rss_mb, tls_context

HERE = Path(__file__).resolve().parent


class SmtpProcess:
    def __init__(self, dovecot, user, pipelining: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_smtp_proc.py"), str(dovecot.certs.cert),
             str(dovecot.certs.key), user.login, user.password,
             "pipelining" if pipelining else "no-pipelining"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "PORTS", line
        self.starttls_port, self.tls_port = int(line[1]), int(line[2])

    def ask(self, cmd: str) -> str:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        self.proc.wait(10)


def recipients(n: int) -> list[tuple[str, str, str]]:
    return [(f"First{i}", f"Last{i}", f"cand{i}@candidates.test") for i in range(n)]


def baseline(dovecot, user, smtp: SmtpProcess, n: int) -> float:
    from plugin.mail import build as compose
    msgs = []
    for first, last, addr in recipients(n):
        msg = compose.build_message(
            from_name="Rita Recruiter", from_addr=user.email, to=[(f"{first} {last}", addr)],
            cc=[], subject=f"Hello {first}", body_text=BODY.replace("{{ full_name }}",
                                                                    f"{first} {last}"),
            body_html=None, message_id=compose.new_message_id(user.email),
            date=datetime.now(UTC))
        msgs.append((addr, compose.flatten(msg)))
    t = time.perf_counter()
    s = smtplib.SMTP_SSL("localhost", smtp.tls_port, context=tls_context(dovecot))
    s.login(user.login, user.password)
    for addr, raw in msgs:
        s.sendmail(user.email, [addr], raw)
    s.quit()
    return time.perf_counter() - t


BODY = ("Dear {{ full_name }},\n\nA new Backend Engineer role at one of our clients might "
        "suit you. Would you have fifteen minutes this week for a call?\n\n"
        "{{ recruiter_signature }}\n")


#: messages a minute of the paced run (the provider limit and the lab server's own)
PACED_PER_MINUTE = 600


def ours(dovecot, user, smtp: SmtpProcess, n: int, db: str,
         paced: bool = False) -> tuple[float, float, int]:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from plugin.models import GlobalSettings, Mailbox
    from plugin.models.outbound import OutboundMessage
    from plugin.sending import limits
    from plugin.sending import bulk

    with addon_app(dovecot, _db_url(db)) as addon:
        app, host = addon.app, addon.host
        person = host.add_person("Rita Recruiter", user.email)
        recs = [host.add_record("candidate", first, last, addr)
                for first, last, addr in recipients(n)]
        with Session(addon.engine, expire_on_commit=False) as s:
            gs = s.get(GlobalSettings, 1)
            gs.bulk_per_send, gs.bulk_per_day, gs.bulk_spacing_seconds = n, 10 * n, 0
            if paced:
                limits.save_limit(s, limits.OTHER, PACED_PER_MINUTE, 0)
            mb = Mailbox(user_id=person.get_id(), account_name="Bench", email=user.email,
                         is_active=True, protocol="imap", in_host="localhost",
                         in_port=dovecot.imaps, in_security="ssl", in_login=user.login,
                         in_password=addon.secrets.encrypt(user.password),
                         same_credentials=True, out_host="localhost", out_port=smtp.tls_port,
                         out_security="ssl", out_auth=True)
            s.add(mb)
            s.commit()
            with app.test_request_context():
                hu = host.get_user(person.get_id())
                t = time.perf_counter()
                sel = bulk.select_recipients(addon, hu, [str(r.num) for r in recs])
                job = bulk.create_job(addon, s, hu, mb, "Hello {{ first_name }}", BODY, sel,
                                      signature="Rita Recruiter, Acme")
                made = time.perf_counter() - t
        with app.app_context():
            profiler = None
            if PROFILE:
                import cProfile
                profiler = cProfile.Profile(time.thread_time)
                profiler.enable()
            t = time.perf_counter()
            cpu = os.times()
            state = bulk.run_job(addon, job.id)
            took = time.perf_counter() - t
            cpu_after = os.times()
            global JOB_CPU
            JOB_CPU = (cpu_after.user - cpu.user) + (cpu_after.system - cpu.system)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(PROFILE)
        assert state == "done", state
        with Session(addon.engine) as s:
            filed = s.scalar(select(func.count()).select_from(OutboundMessage).where(
                OutboundMessage.bulk_job_id == job.id, OutboundMessage.state == "filed"))
        return took, made, filed


#: PostgreSQL databases made for the rounds (dropped at the end)
_pgs: list = []
#: CPU seconds (user + system, all threads) of this process during the bulk job
JOB_CPU = 0.0
#: a file to write cProfile stats of the bulk job to (--profile), for finding hot spots
PROFILE: str | None = None


@contextmanager
def addon_app(dovecot, db_url: str | None):
    """The add-on inside the minimal test host, on a fresh SQLite file or PostgreSQL."""
    import shutil
    import tempfile

    from cryptography.fernet import Fernet
    from sqlalchemy.orm import Session

    from plugin import IntegratedEmail
    from plugin.models import GlobalSettings
    from tests.hosts.mini_host import create_mini_app

    tmp = Path(tempfile.mkdtemp(prefix="bench-send-"))
    cfg = {"IE_DATABASE_URL": db_url or f"sqlite:///{tmp}/ie.sqlite",
           "IE_SECRET_KEYS": Fernet.generate_key().decode(), "IE_SCHEDULER": "off",
           "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535,localhost:1024-65535",
           "IE_BLOB_DIR": str(tmp / "blobs"),
           "IE_MAIL_TIMEOUT": 30.0, "IE_CA_FILE": dovecot.ca_file,
           # Unpaced unless --paced sets the "other servers" limit.
           "IE_SEND_PER_MINUTE_DEFAULT": 0, "IE_SEND_PER_DAY_DEFAULT": 0,
           "INSTANCE_PATH": str(tmp / "instance")}
    app, host = create_mini_app(cfg)
    addon = IntegratedEmail(app, host=host)
    addon.migrate()
    addon.set_active(True)
    with Session(addon.engine) as s:
        s.add(GlobalSettings(id=1, saved_at=datetime.now(UTC)))
        s.commit()
    try:
        yield addon
    finally:
        addon.engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def _db_url(db: str) -> str | None:
    if db == "sqlite":
        return None
    from tests.lab.postgres import create_database
    _pgs.append(create_database())
    return _pgs[-1].url


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipients", type=int, default=1000)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--rounds", type=int, default=3,
                    help="baseline and bulk job interleaved this many times; the best of each")
    ap.add_argument("--no-pipelining", action="store_true",
                    help="the SMTP server does not offer PIPELINING (both sides then wait "
                         "for every command's answer)")
    ap.add_argument("--profile", metavar="FILE", help="write cProfile stats of the bulk "
                    "job to FILE (slows it down; the ratio is then not meaningful)")
    ap.add_argument("--paced", action="store_true",
                    help=f"provider limit and lab server limit {PACED_PER_MINUTE} a minute; "
                         "the job's time against its ideal schedule")
    args = ap.parse_args()
    if args.paced:
        paced_main(args)
        return
    global PROFILE
    PROFILE = args.profile
    logging.basicConfig(level=logging.WARNING)
    n = args.recipients
    best_base = best_ours = float("inf")
    job_cpu = float("inf")
    with lab() as dovecot:
        user = dovecot.add_user("benchsender", "bench-pass")
        smtp = SmtpProcess(dovecot, user, pipelining=not args.no_pipelining)
        try:
            for r in range(args.rounds):
                tb = baseline(dovecot, user, smtp, n)
                assert int(smtp.ask("count")) == n
                smtp.ask("clear")
                to, made, filed = ours(dovecot, user, smtp, n, args.db)
                assert int(smtp.ask("count")) == n, "each recipient exactly once"
                smtp.ask("clear")
                assert filed == n, filed
                in_sent = len(dovecot.list_messages(user, "Sent"))
                assert in_sent == n * (r + 1), in_sent
                print(f"round {r + 1}: baseline {tb:.2f} s, bulk job {to:.2f} s (made in "
                      f"{made:.2f} s beforehand; {filed} filed, {n} more in Sent)", flush=True)
                best_base, best_ours = min(best_base, tb), min(best_ours, to)
                job_cpu = min(job_cpu, JOB_CPU)
        finally:
            smtp.stop()
            for db in _pgs:
                db.drop()
    base_rate, our_rate = n / best_base, n / best_ours
    offered = "not offered" if args.no_pipelining else "offered (smtplib does not use it)"
    print(f"best of {args.rounds}: baseline {best_base:.2f} s; bulk job {best_ours:.2f} s "
          f"(store {args.db}; PIPELINING {offered})", flush=True)
    print(f"bulk job CPU in this process: {job_cpu:.2f} s ({1000 * job_cpu / n:.2f} ms a "
          f"message; the rest of {best_ours:.2f} s is waiting for the servers or the machine)",
          flush=True)
    print(f"bulk/baseline ratio: {our_rate / base_rate:.2f} (bulk {our_rate:.0f} msg/s, "
          f"baseline {base_rate:.0f} msg/s, peak RSS {peak_rss_mb():.0f} MB)")


def paced_main(args: argparse.Namespace) -> None:
    """One paced bulk job of N against the ideal N / cap minutes."""
    logging.basicConfig(level=logging.WARNING)
    n = args.recipients
    with lab() as dovecot:
        user = dovecot.add_user("benchsender", "bench-pass")
        smtp = SmtpProcess(dovecot, user, pipelining=not args.no_pipelining)
        try:
            smtp.ask(f"throttle {PACED_PER_MINUTE}")
            took, _made, filed = ours(dovecot, user, smtp, n, args.db, paced=True)
            got, refused = int(smtp.ask("count")), int(smtp.ask("throttled"))
            busiest = int(smtp.ask("busiest"))
        finally:
            smtp.stop()
            for db in _pgs:
                db.drop()
    assert got == n and filed == n, (got, filed)
    ideal = n / PACED_PER_MINUTE * 60
    print(f"paced bulk of {n} at {PACED_PER_MINUTE} a minute (store {args.db}): {got} "
          f"received, {refused} refused by the server as too fast, at most {busiest} in "
          "any minute", flush=True)
    print(f"paced bulk ratio: {took / ideal:.3f} ({took:.1f} s, {ideal:.1f} s)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
