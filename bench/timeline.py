"""Timeline: the sharing filter's cost on a busy candidate.

A candidate linked to 2,000 messages across 20 mailboxes with mixed sharing
(Private, Custom with and without "Share email", Public, Admin; some mail sent from
the ATS), 50,000 messages in all.  The timeline partial's query and rendering for a
recruiter who owns none of them, median of many runs, with the sharing filter and
without it (the same query, filter removed), side by side in one run.

    python bench/timeline.py [--db sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--linked", type=int, default=2_000)
    ap.add_argument("--mailboxes", type=int, default=20)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--explain", action="store_true", help="print the query plans")
    args = ap.parse_args()

    from cryptography.fernet import Fernet
    from flask import render_template

    from plugin import IntegratedEmail
    from plugin.host import HostUser, RecordRef
    from plugin.models import Mailbox, Message, RecordLink
    from plugin.models.sharing import RecordShare
    from plugin.sharing import timeline
    from tests.helpers import complete_settings
    from tests.hosts.mini_host import create_mini_app

    tmp = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    db = None
    if args.db == "postgresql":
        from tests.lab.postgres import create_database
        db = create_database()
        url = db.url
    else:
        url = f"sqlite:///{tmp}/ie.sqlite"
    app, host = create_mini_app({
        "IE_DATABASE_URL": url, "IE_SECRET_KEYS": Fernet.generate_key().decode(),
        "IE_SCHEDULER": "off", "INSTANCE_PATH": str(tmp / "instance"),
        "IE_BLOB_DIR": str(tmp / "blobs")})
    addon = IntegratedEmail(app, host=host)
    addon.migrate()
    addon.set_active(True)
    complete_settings(addon)
    rng = random.Random(7)
    owners = [host.add_person(f"Owner {i}", f"owner{i}@acme.test") for i in range(args.mailboxes)]
    viewer_person = host.add_person("Viewer", "viewer@acme.test")
    cand = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    for i in range(200):
        host.add_record("candidate", f"C{i}", "X", f"c{i}@cand.test")
    modes = ["private", "custom", "public", "admin"]
    now = datetime.now(timezone.utc)
    mailboxes = [dict(user_id=o.get_id(), account_name=f"Box {i}", email=o.email,
                      is_active=True, protocol="imap", in_host="127.0.0.1", in_port=993,
                      in_security="ssl", same_credentials=True, out_host="127.0.0.1",
                      out_port=465, out_security="ssl", out_auth=True,
                      sharing=modes[i % len(modes)], delete_policy="leave", paused=False,
                      fetch_requested=False, failure_count=0, auth_failures=0,
                      messages_imported=0, progress_count=0)
                 for i, o in enumerate(owners)]
    with addon.engine.begin() as conn:
        conn.execute(Mailbox.__table__.insert(), mailboxes)
        box_ids = [r[0] for r in conn.execute(Mailbox.__table__.select()
                                              .with_only_columns(Mailbox.id))]
    per_box = args.messages // args.mailboxes
    linked_per_box = args.linked // args.mailboxes
    msgs, links = [], []
    mid = 0
    for b, box_id in enumerate(box_ids):
        for k in range(per_box):
            mid += 1
            origin = "ats" if k % 10 == 0 else "synced"
            msgs.append(dict(id=mid, mailbox_id=box_id, message_key=f"m{mid}@bench",
                             message_id_header=f"m{mid}@bench", subject=f"Subject {mid}",
                             from_addr=f"c{mid % 200}@cand.test", from_name="Candidate",
                             to_addrs=f'[["", "{owners[b].email}"]]', cc_addrs="[]",
                             date=now - timedelta(minutes=mid), snippet="Hello there",
                             body_text="Hello there", blob_sha256="0" * 64,
                             folder_role="inbox", direction="in", origin=origin, seen=False,
                             deleted=False, has_attachments=False, size=100,
                             import_checked=True, consolidated=False))
            rid = str(cand.num) if k < linked_per_box else str(2 + rng.randrange(200))
            links.append(dict(message_id=mid, record_kind="candidate", record_id=rid,
                              how="auto"))
    with addon.engine.begin() as conn:
        for i in range(0, len(msgs), 5000):
            conn.execute(Message.__table__.insert(), msgs[i:i + 5000])
            conn.execute(RecordLink.__table__.insert(), links[i:i + 5000])
        # Half of the Custom owners ticked "Share email" on the candidate.
        conn.execute(RecordShare.__table__.insert(), [
            dict(owner_user_id=o.get_id(), record_kind="candidate", record_id=str(cand.num))
            for i, o in enumerate(owners) if modes[i % len(modes)] == "custom" and i % 8 == 1])

    # Fresh statistics, as PostgreSQL's autovacuum (and SQLite's PRAGMA optimize) keep them.
    from sqlalchemy import text
    with addon.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    viewer = HostUser(viewer_person.get_id(), "Viewer", viewer_person.email, False)
    ref = RecordRef("candidate", str(cand.num))
    from plugin.models import GlobalSettings

    def once(filtered: bool) -> tuple[float, int]:
        with app.test_request_context():
            s = addon.session()
            t0 = time.perf_counter()
            gs = s.get(GlobalSettings, 1)
            # The filter's cost includes asking the host about the records (one call).
            access = timeline.record_access(host, viewer, ref) if filtered else None
            q = timeline.record_query(viewer, gs, ref, access, filtered=filtered)
            rows = s.execute(q.limit(timeline.PAGE)).all()
            entries = [timeline.TimelineEntry(m, acc, "Owner", how) for m, acc, _o, how in rows]
            render_template("integrated_email/_partials/record_timeline.html", entries=entries,
                            ref=ref, webmail=True)
            elapsed = time.perf_counter() - t0
            addon.session.remove()
            return elapsed, len(rows)

    if args.explain:
        from sqlalchemy import text
        with app.test_request_context(), addon.engine.connect() as conn:
            access = timeline.record_access(host, viewer, ref)
            for filtered in (True, False):
                q = timeline.record_query(viewer, None, ref, access, filtered=filtered)
                sql = str(q.limit(50).compile(addon.engine, compile_kwargs={"literal_binds": True}))
                prefix = "EXPLAIN ANALYZE " if args.db == "postgresql" else "EXPLAIN QUERY PLAN "
                for row in conn.execute(text(prefix + sql)):
                    print(" | ".join(str(c) for c in row))
                print("-" * 60)
    for _ in range(5):  # warm caches and plans
        once(True)
        once(False)
    filtered, unfiltered = [], []
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        t, n_f = once(True)
        filtered.append(t)
        t, n_u = once(False)
        unfiltered.append(t)
    with app.test_request_context(), addon.engine.connect() as conn:
        from sqlalchemy import func, select
        access = timeline.record_access(host, viewer, ref)
        visible_total = conn.execute(select(func.count()).select_from(
            timeline.record_query(viewer, None, ref, access).subquery())).scalar()
    a, b = statistics.median(filtered) * 1000, statistics.median(unfiltered) * 1000
    print(f"{args.db}: {args.messages} messages, {args.linked} linked to the candidate, "
          f"{visible_total} of them visible to the viewer; page of {timeline.PAGE}")
    addon.engine.dispose()
    if db is not None:
        db.drop()
    print(f"timeline sharing-filter ratio: {a / b:.2f} (filtered {a:.2f} ms, "
          f"unfiltered {b:.2f} ms)")


if __name__ == "__main__":
    main()
