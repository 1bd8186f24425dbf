"""Three machines that share nothing but PostgreSQL, in Chromium.

Three processes, each with its own local directories (IE_BLOB_DIR, instance folder)
and no shared filesystem, on one PostgreSQL database: worker 1 fetches Rita's mailbox
A, worker 2 her mailbox B (each only its own: the logs say which synced what), and a
web process that fetched nothing serves every message, attachment, inline image
("Show images"), forward and Sent copy of both, in Chromium. The raw bytes travel
through the database blob store (PostgreSQL's default): no process's directory holds
a single blob at the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.browser.conftest import RITA, click_menu
from tests.conftest import TEST_KEY
from tests.integration.sync_helpers import set_window
from tests.integration.webmail_helpers import mail
from tests.lab.servers import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SYNCED = re.compile(r"worker (\S+) synced mailbox (\d+): (\d+) new, ok")
PNG = bytes.fromhex(  # a 1x1 PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e0a3d6"
    "1e0000000049454e44ae426082")


class Machine:
    """One process of its own: a worker or the web server, with its own directories."""

    def __init__(self, name: str, tmp: Path, config: dict, args: list[str]) -> None:
        self.name = name
        self.dir = tmp / f"machine-{name}"
        self.config = dict(config, IE_BLOB_DIR=str(self.dir / "blobs"),
                           INSTANCE_PATH=str(self.dir / "instance"))
        self.log = self.dir / "process.log"
        self.dir.mkdir(parents=True)
        env = dict(os.environ, IE_TEST_CONFIG=json.dumps(self.config), PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "tests.integration.worker_app", *args],
            cwd=self.dir, env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("w"))

    def text(self) -> str:
        return self.log.read_text()

    def synced(self) -> dict[int, int]:
        """mailbox id -> messages stored, as this worker's log says."""
        return {int(m): int(n) for _w, m, n in SYNCED.findall(self.text())}

    def blob_files(self) -> list[Path]:
        return [p for p in self.dir.rglob("*") if p.is_file() and len(p.name) == 64]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def wait_until(check, timeout: float, what: str, machine: Machine | None = None) -> None:
    end = time.monotonic() + timeout
    while not check():
        if machine is not None and machine.proc.poll() is not None:
            raise AssertionError(f"{machine.name} exited: {machine.text()[-3000:]}")
        if time.monotonic() > end:
            tail = machine.text()[-3000:] if machine else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.2)


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def pg_database():
    from tests.lab.postgres import create_database
    db = create_database()
    yield db
    db.drop()


def test_three_machines_share_only_postgresql(tmp_path, dovecot, pg_database, browser):
    from examples.host_ats import create_app
    from examples.host_ats.seed import seed_demo
    from plugin.models import Mailbox
    from plugin.models.blob import BLOB
    from tests.helpers import complete_settings, make_mailbox

    config = {"SQLALCHEMY_DATABASE_URI": pg_database.url, "SECRET_KEY": "three-machines",
              "IE_SECRET_KEYS": TEST_KEY, "IE_SCHEDULER": "off",
              "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535,localhost:1024-65535",
              "IE_CA_FILE": dovecot.ca_file, "IE_MAIL_TIMEOUT": 5.0,
              "IE_DISPATCH_SECONDS": 1}
    # the set-up (an admin's doing) from this test's process, with directories of its own
    setup_dir = tmp_path / "setup"
    app = create_app(dict(config, IE_BLOB_DIR=str(setup_dir / "blobs"),
                          INSTANCE_PATH=str(setup_dir / "instance")))
    addon = app.extensions["integrated_email"]
    with app.extensions["host_ats.db"].sessions() as s:
        seed_demo(s)
        s.commit()
    addon.set_active(True)
    complete_settings(addon, fetch_interval_minutes=600)
    set_window(addon)
    with app.app_context():
        rita = addon.host.users_by_email(["rita@acme.test"])["rita@acme.test"]

    pdf = b"%PDF-1.4\n% offer letter " + os.urandom(16).hex().encode() + b"\n%%EOF\n"
    schedule = b"Tuesday 10:00 with the panel " + os.urandom(8).hex().encode()
    notes = b"notes for the panel " + os.urandom(8).hex().encode()
    user_a = dovecot.add_user("machine-a", "pw-machine-a")
    user_b = dovecot.add_user("machine-b", "pw-machine-b")
    dovecot.deliver(user_a, mail(
        "Offer letter", body="Please sign the offer", to=user_a.email, n=1,
        html='<p>Please sign the offer</p><img src="cid:logo@lab" alt="logo">'
             '<img src="https://images.example.test/track.png" alt="tracker">',
        inline=[("logo@lab", "image/png", PNG)],
        attachments=[("offer.pdf", "application/pdf", pdf)]))
    dovecot.deliver(user_b, mail("Interview schedule", body="See the schedule", n=2,
                                 to=user_b.email,
                                 attachments=[("schedule.txt", "text/plain", schedule)]))
    dovecot.deliver(user_b, mail("Panel notes", body="Notes I sent the panel", n=3,
                                 sender=f"Rita <{user_b.email}>", to="panel@acme.test",
                                 attachments=[("notes.txt", "text/plain", notes)]),
                    folder="Sent", seen=True)

    machines: list[Machine] = []
    try:
        # worker 1 alone fetches mailbox A
        w1 = Machine("worker-1", tmp_path, config, ["integrated-email", "worker"])
        machines.append(w1)
        mb_a = make_mailbox(addon, rita.id, dovecot, user_a, account_name="Lab A")
        wait_until(lambda: mb_a in w1.synced(), 90, "worker 1 to sync mailbox A", w1)
        w1.stop()
        # then worker 2, on another "machine", fetches mailbox B
        w2 = Machine("worker-2", tmp_path, config, ["integrated-email", "worker"])
        machines.append(w2)
        mb_b = make_mailbox(addon, rita.id, dovecot, user_b, account_name="Lab B")
        wait_until(lambda: mb_b in w2.synced(), 90, "worker 2 to sync mailbox B", w2)
        assert w1.synced() == {mb_a: 1} and w2.synced() == {mb_b: 2}
        # the web process fetches nothing (no worker runs in it) and serves it all
        port = free_port()
        web = Machine("web", tmp_path, config, ["run", "--host", "127.0.0.1", "--port",
                                                str(port), "--no-reload", "--no-debugger"])
        machines.append(web)
        wait_until(lambda: listening(port), 60, "the web process", web)
        _read_everything_in_chromium(browser, f"http://127.0.0.1:{port}", pdf, schedule, notes)
        assert not web.synced()

        with addon.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(BLOB)).scalar() == 3
            owners = dict(conn.execute(select(Mailbox.id, Mailbox.account_name)).all())
        assert owners == {mb_a: "Lab A", mb_b: "Lab B"}
        for m in machines:  # nothing on any local disk: no shared filesystem needed
            assert m.blob_files() == [], m.name
        assert not [p for p in setup_dir.rglob("*") if p.is_file() and len(p.name) == 64]
    finally:
        for m in machines:
            m.stop()
        addon.engine.dispose()


def _read_everything_in_chromium(browser, url: str, pdf: bytes, schedule: bytes,
                                 notes: bytes) -> None:
    ctx = browser.new_context(accept_downloads=True)
    page = ctx.new_page()
    page.goto(url + "/login")
    page.fill("input[name=email]", RITA[0])
    page.fill("input[name=password]", RITA[1])
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)
    click_menu(page, "Mail")

    # mailbox A, fetched by worker 1: the message, its inline image, its attachment
    page.get_by_role("link", name="Lab A").click()
    page.get_by_role("link", name="Offer letter").click()
    expect(page.locator("h1")).to_have_text("Offer letter")
    frame = page.locator("iframe.ie-wm-body")
    # the inline image comes out of the raw bytes, which only the database holds here
    assert "data:image/png;base64," in frame.get_attribute("srcdoc")
    expect(page.locator(".ie-wm-images")).to_contain_text("Remote images are blocked")
    page.get_by_role("link", name="Show images").click()
    expect(page.locator(".ie-wm-images")).to_have_count(0)
    assert "data:image/png;base64," in page.locator("iframe.ie-wm-body").get_attribute("srcdoc")
    assert "images.example.test/track.png" in page.locator(
        "iframe.ie-wm-body").get_attribute("srcdoc")
    _download(page, "offer.pdf", pdf)
    page.get_by_role("link", name="Forward").click()
    expect(page.locator("h1")).to_have_text("Forward")
    expect(page.locator("input[name=subject]")).to_have_value("Fwd: Offer letter")
    expect(page.locator("textarea[name=body]")).to_contain_text("Please sign the offer")
    page.go_back()

    # mailbox B, fetched by worker 2: a message and the Sent copy, with their files
    page.get_by_role("link", name="Lab B").click()
    page.get_by_role("link", name="Interview schedule").click()
    expect(page.locator("h1")).to_have_text("Interview schedule")
    expect(page.locator(".ie-wm-plain")).to_contain_text("See the schedule")
    _download(page, "schedule.txt", schedule)
    page.locator("ul.ie-wm-folders").first.get_by_role("link", name=re.compile(r"^Sent\b")).click()
    page.get_by_role("link", name="Panel notes").click()
    expect(page.locator("h1")).to_have_text("Panel notes")
    expect(page.locator(".ie-wm-plain")).to_contain_text("Notes I sent the panel")
    _download(page, "notes.txt", notes)
    ctx.close()


def _download(page, name: str, expected: bytes) -> None:
    with page.expect_download() as info:
        page.get_by_role("link", name=name).click()
    assert info.value.suggested_filename == name
    assert Path(info.value.path()).read_bytes() == expected
