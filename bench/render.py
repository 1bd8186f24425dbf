"""Message page cost by content: the webmail message page of a 2 MB pathological HTML
mail (200,000 nested <div>), a 200 KB ordinary newsletter and a 10-part message, each
against the same page for a 1 KB text mail, in the same run.

The reference host + add-on (SQLite, migrations applied) in this process; the four
messages go through the store's own write path (parse, blob, rows, attachment slices)
and the pages are asked for through the app (Flask's test client: server time only,
no network). The first view of each message sanitizes and keeps its HTML; the median
is over the views after it, as a reader's later visits (and everyone else's) are.

Last line: ``render ratio: pathological P, newsletter N, multipart M`` (each median
over the text mail's median). Target: each <= 3.

    python bench/render.py [--views 30]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _message(subject: str, n: int, text: str, html: str | None = None,
             attachments: int = 0) -> bytes:
    m = EmailMessage()
    m["From"] = "Cara Candidate <cara@candidates.test>"
    m["To"] = "rita@acme.test"
    m["Subject"] = subject
    m["Date"] = "Tue, 01 Dec 2026 10:%02d:00 +0000" % n
    m["Message-ID"] = f"<render-{n}-{os.urandom(4).hex()}@example.test>"
    m.set_content(text)
    if html is not None:
        m.add_alternative(html, subtype="html")
    for i in range(attachments):
        m.add_attachment(os.urandom(20_000), maintype="application", subtype="pdf",
                         filename=f"document-{i}.pdf")
    return bytes(m)


def newsletter(size: int = 200_000) -> str:
    """An ordinary marketing mail: tables, styled paragraphs, links and images."""
    block = ('<tr><td style="padding:12px;font-family:Arial,sans-serif;color:#333">'
             '<h2 style="margin:0 0 8px">Open roles this week</h2>'
             '<p style="line-height:1.5">We are hiring engineers, designers and recruiters '
             'in three offices. <a href="https://jobs.example/roles?id={i}">See the role</a>'
             ' or <a href="https://jobs.example/apply?id={i}">apply now</a>.</p>'
             '<img src="https://img.example/banner-{i}.png" width="600" height="120" '
             'alt="Banner"></td></tr>')
    rows, i = [], 0
    while sum(len(r) for r in rows) < size:
        rows.append(block.format(i=i))
        i += 1
    return ('<html><body><table width="600" cellpadding="0" cellspacing="0" '
            'style="margin:auto">%s</table></body></html>' % "".join(rows))


def build(workdir: Path) -> tuple:
    from cryptography.fernet import Fernet
    from sqlalchemy import select, update
    from sqlalchemy.orm import Session

    from examples.host_ats import create_app
    from examples.host_ats.seed import seed_demo
    from plugin.blobs import blob_store
    from plugin.fetching.store import FetchedItem, MessageStore
    from plugin.models import GlobalSettings, Mailbox, Message

    cfg = {"INSTANCE_PATH": str(workdir / "instance"), "SECRET_KEY": "bench-render-key",
           "IE_SECRET_KEYS": Fernet.generate_key().decode(), "IE_SCHEDULER": "off",
           "IE_BLOB_DIR": str(workdir / "blobs"), "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1"}
    app = create_app(cfg)
    with app.extensions["host_ats.db"].sessions() as s:
        seed_demo(s)
        s.commit()
    addon = app.extensions["integrated_email"]
    addon.set_active(True)
    with app.app_context():
        rita = addon.host.users_by_email(["rita@acme.test"])["rita@acme.test"]
    with Session(addon.engine) as s:
        s.add(GlobalSettings(id=1, saved_at=datetime.now(UTC)))
        mb = Mailbox(user_id=rita.id, account_name="Bench", email="rita@acme.test",
                     is_active=True, protocol="imap", in_host="127.0.0.1", in_port=993,
                     in_security="ssl", in_login="rita", out_host="127.0.0.1", out_port=465,
                     out_security="ssl")
        s.add(mb)
        s.commit()
        mbid = mb.id
    text = ("Dear Rita,\n\nthank you for the interview yesterday. I look forward to "
            "hearing from you.\n\nKind regards,\nCara\n") * 6
    monster = "<div>" * 200_000 + "deep" + "</div>" * 200_000
    raws = {
        "text": _message("Text mail", 1, text[:1000]),
        "pathological": _message("Monster", 2, "The plain text part.", monster),
        "newsletter": _message("Newsletter", 3, "Open roles this week.", newsletter()),
        "multipart": _message("Ten parts", 4, text[:1000], "<p>%s</p>" % text[:1000], 8),
    }
    store = MessageStore(addon.engine, blob_store(app.config), mbid, "rita@acme.test")
    store.store_batch([FetchedItem(raw, "INBOX", uidvalidity=1, uid=i + 1)
                       for i, raw in enumerate(raws.values())])
    with Session(addon.engine) as s:  # read already: a view pushes no flag to a server
        s.execute(update(Message).values(seen=True))
        s.commit()
        ids = {kind: s.scalar(select(Message.id).where(Message.blob_sha256 == sha))
               for kind, sha in ((k, hashlib.sha256(r).hexdigest())
                                 for k, r in raws.items())}
    sizes = {kind: len(raw) for kind, raw in raws.items()}
    return app, rita, ids, sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--views", type=int, default=30, help="views of each page (median)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ie-bench-render-") as tmp:
        app, rita, ids, sizes = build(Path(tmp))
        client = app.test_client()
        with client.session_transaction() as sess:
            sess["_user_id"] = str(rita.id)
            sess["_fresh"] = True
        urls = {kind: f"/integrated-email/mail/messages/{mid}" for kind, mid in ids.items()}

        def view(kind: str) -> float:
            t = time.perf_counter()
            resp = client.get(urls[kind])
            elapsed = time.perf_counter() - t
            if resp.status_code != 200:
                raise SystemExit(f"{kind}: HTTP {resp.status_code}")
            return elapsed

        firsts = {kind: view(kind) for kind in urls}
        times: dict[str, list[float]] = {kind: [] for kind in urls}
        for _ in range(args.views):  # round robin: the machine's noise falls on all alike
            for kind in urls:
                times[kind].append(view(kind))
        medians = {kind: statistics.median(values) for kind, values in times.items()}
        for kind in urls:
            print(f"{kind:13s} {sizes[kind] / 1000:8.0f} KB  first view "
                  f"{firsts[kind] * 1000:7.1f} ms  median {medians[kind] * 1000:6.1f} ms",
                  flush=True)
        base = medians["text"]
        ratio = {k: medians[k] / base for k in ("pathological", "newsletter", "multipart")}
        print("render ratio: pathological %.2f, newsletter %.2f, multipart %.2f"
              % (ratio["pathological"], ratio["newsletter"], ratio["multipart"]))


if __name__ == "__main__":
    main()
