"""Browser fixtures: the reference host with the add-on, served for real on a free
loopback port, seeded with the demo data, and driven by headless Chromium."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import TEST_KEY
from tests.lab.servers import free_port


class LiveHost:
    def __init__(self, app, url: str):  # noqa: ANN001
        self.app = app
        self.url = url
        self.addon = app.extensions["integrated_email"]

    def login(self, page, email: str, password: str) -> None:  # noqa: ANN001
        page.goto(self.url + "/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: "/login" not in u)

    def logout(self, page) -> None:  # noqa: ANN001
        page.context.clear_cookies()


@pytest.fixture
def live_host(tmp_path, dovecot):
    """The reference host ATS + add-on on SQLite, served on 127.0.0.1:<free port>."""
    from examples.host_ats import create_app
    from examples.host_ats.seed import seed_demo

    app = create_app({
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "IE_SECRET_KEYS": TEST_KEY,
        "IE_SCHEDULER": "off",
        "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1,localhost",
        "IE_CA_FILE": dovecot.ca_file,
        "IE_MAIL_TIMEOUT": 3.0,
        "IE_BLOB_DIR": str(tmp_path / "blobs"),
    })
    with app.extensions["host_ats.db"].sessions() as s:
        seed_demo(s)
        s.commit()
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveHost(app, f"http://127.0.0.1:{port}")
    server.shutdown()
    thread.join(5)
    addon = app.extensions["integrated_email"]
    addon.engine.dispose()
