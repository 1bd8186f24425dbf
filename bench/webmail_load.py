"""Webmail under load: a mailbox of 100,000 stored messages, 16 concurrent clients.

The reference host + add-on (SQLite, migrations applied, FTS5 triggers on) is served by
waitress in a separate process.  The messages are bulk-inserted straight into the
store tables (the FTS triggers index them as any writer's rows); going through IMAP
would only measure the sync.  Each client loops for the duration over: the inbox
list, a search, a message view, and a trivial page of the reference host (its login
form) as the baseline, so both are measured in the same run under the same load.

Last line: ``webmail p95 ratio: list A, search B, view C (p95 ms: a, b, c)``, each
ratio being that request's p95 over the baseline's p95.  Target: each <= 3.

    python bench/webmail_load.py [--messages 100000] [--clients 16] [--seconds 20]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECRET_KEY = "bench-secret-key-not-for-production"
WORDS = ("application interview offer contract salary engineer designer manager team "
         "project schedule meeting candidate position remote office relocation benefits "
         "reference portfolio feedback availability notice agreement").split()
#: rarer words, each in ~1% of the messages, searched for by the clients
RARE = [f"zork{i:02d}" for i in range(100)]


def config(workdir: Path) -> dict:
    from cryptography.fernet import Fernet
    key_file = workdir / "fernet.key"
    if not key_file.exists():
        key_file.write_text(Fernet.generate_key().decode())
    return {"INSTANCE_PATH": str(workdir / "instance"), "SECRET_KEY": SECRET_KEY,
            "IE_SECRET_KEYS": key_file.read_text(), "IE_SCHEDULER": "off",
            "IE_BLOB_DIR": str(workdir / "blobs"), "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535"}


def build(workdir: Path, n: int) -> tuple[str, list[int]]:
    """The app's database with ``n`` messages in Rita's inbox; returns (cookie, ids)."""
    from sqlalchemy import insert, select
    from sqlalchemy.orm import Session

    from examples.host_ats import create_app
    from examples.host_ats.seed import seed_demo
    from plugin.models import GlobalSettings, Mailbox, Message, RecordLink

    app = create_app(config(workdir))
    with app.extensions["host_ats.db"].sessions() as s:
        seed_demo(s)
        s.commit()
    addon = app.extensions["integrated_email"]
    addon.set_active(True)
    with app.app_context():
        rita = addon.host.users_by_email(["rita@acme.test"])["rita@acme.test"]
        candidates = addon.host.search_records("candidates.test", 40)
    with Session(addon.engine) as s:
        s.add(GlobalSettings(id=1, saved_at=datetime.now(timezone.utc)))
        mb = Mailbox(user_id=rita.id, account_name="Bench", email="rita@acme.test",
                     is_active=True, protocol="imap", in_host="127.0.0.1", in_port=1,
                     in_security="ssl", in_login="rita", out_host="127.0.0.1", out_port=1,
                     out_security="ssl")
        s.add(mb)
        s.commit()
        mbid = mb.id
    rng = random.Random(7)
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    t0 = time.monotonic()
    table = Message.__table__
    with addon.engine.begin() as conn:
        batch = []
        for i in range(n):
            words = rng.choices(WORDS, k=60) + [rng.choice(RARE)]
            rng.shuffle(words)
            text = " ".join(words)
            html = f"<div><p>{text[:200]}</p><p style=\"color:#333\">{text[200:]}</p>" \
                   f"<img src=\"https://img.example/{i}.png\"></div>" if i % 2 else None
            batch.append({
                "mailbox_id": mbid, "message_key": f"<bench-{i}@example.test>",
                "message_id_header": f"bench-{i}@example.test", "subject":
                f"Re: {rng.choice(WORDS)} {rng.choice(WORDS)} #{i}",
                "from_addr": f"cand{i % 5000}@candidates.test",
                "from_name": f"Candidate {i % 5000}",
                "to_addrs": json.dumps([["Rita Recruiter", "rita@acme.test"]]),
                "cc_addrs": "[]", "date": start + timedelta(minutes=i),
                "snippet": text[:200], "body_text": text, "body_html": html,
                "has_attachments": i % 10 == 0, "size": 3000, "blob_sha256": "0" * 64,
                "folder_role": "sent" if i % 20 == 0 else "inbox",
                "direction": "in", "origin": "synced", "seen": i < n - 2000,
                "deleted": False, "created_at": start})
            if len(batch) == 5000:
                conn.execute(insert(table), batch)
                batch = []
        if batch:
            conn.execute(insert(table), batch)
        ids = list(conn.execute(select(table.c.id).where(table.c.mailbox_id == mbid)).scalars())
        links = [{"message_id": mid, "record_kind": c.ref.kind, "record_id": c.ref.id,
                  "how": "auto", "created_at": start}
                 for mid, c in zip(ids[::20], (candidates * 10000)[: len(ids[::20])], strict=True)]
        conn.execute(insert(RecordLink.__table__), links)
    with addon.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    print(f"stored {n} messages in {time.monotonic() - t0:.1f} s", flush=True)
    cookie = app.session_interface.get_signing_serializer(app).dumps(
        {"_user_id": str(rita.id), "_fresh": True})
    addon.engine.dispose()
    return cookie, ids


def serve(workdir: Path, port: int, threads: int) -> None:
    """Child process: the app under waitress."""
    import logging

    import waitress

    from examples.host_ats import create_app
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    cfg = config(workdir)
    app = create_app(dict(cfg, INTEGRATED_EMAIL_MIGRATE=False))
    waitress.serve(app, host="127.0.0.1", port=port, threads=threads, ident=None,
                   _quiet=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(0.95 * len(values)))] if values else float("nan")


def run_clients(port: int, cookie: str, ids: list[int], clients: int, seconds: float) -> dict:
    kinds = ("list", "search", "view", "baseline")
    results: dict[str, list[float]] = {k: [] for k in kinds}
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        rng = random.Random(n)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        auth = {"Cookie": f"session={cookie}"}
        step = n % len(kinds)
        local: dict[str, list[float]] = {k: [] for k in kinds}
        while time.monotonic() < deadline:
            kind = kinds[step % len(kinds)]
            step += 1
            if kind == "list":
                path, headers = "/integrated-email/mail", auth
            elif kind == "search":
                path, headers = f"/integrated-email/mail/search?q={rng.choice(RARE)}", auth
            elif kind == "view":
                path, headers = f"/integrated-email/mail/messages/{rng.choice(ids)}", auth
            else:
                path, headers = "/login", {}
            t = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"{kind}: {type(exc).__name__}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            elapsed = (time.perf_counter() - t) * 1000
            if resp.status != 200:
                failures.append(f"{kind} {path}: HTTP {resp.status}")
                continue
            local[kind].append(elapsed)
        conn.close()
        with lock:
            for k in kinds:
                results[k].extend(local[k])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        print(f"{len(failures)} failed requests, e.g. {failures[:3]}", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(Path(args.serve), args.port, args.threads)
        return

    with tempfile.TemporaryDirectory(prefix="ie-webmail-bench-") as tmp:
        workdir = Path(tmp)
        cookie, ids = build(workdir, args.messages)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(workdir), "--port", str(port),
             "--threads", str(args.threads)], cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            wait_ready(port)
            run_clients(port, cookie, ids, args.clients, 2.0)  # warm-up
            results = run_clients(port, cookie, ids, args.clients, args.seconds)
        finally:
            server.terminate()
            server.wait(15)
    base = p95(results["baseline"])
    figures = {k: p95(results[k]) for k in ("list", "search", "view")}
    for kind, values in results.items():
        p50 = sorted(values)[len(values) // 2] if values else float("nan")
        print(f"{kind:9s} n={len(values):6d} p50={p50:8.1f} ms p95={p95(values):8.1f} ms",
              flush=True)
    print("webmail p95 ratio: list %.2f, search %.2f, view %.2f (p95 ms: %.1f, %.1f, %.1f)" % (
        figures["list"] / base, figures["search"] / base, figures["view"] / base,
        figures["list"], figures["search"], figures["view"]))


if __name__ == "__main__":
    main()
