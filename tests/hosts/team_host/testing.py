"""Test helpers for the team host: a running app with its people, and signed-in clients
that pass Flask-WTF's CSRF check the way a browser does (the token from the page)."""

from __future__ import annotations

import re

from tests.conftest import TEST_KEY

PREFIX = "/team/mail"


def team_config(db_url: str, tmp_path, ca_file: str) -> dict:
    """The host's own database holds the add-on's tables too (no IE_DATABASE_URL)."""
    return {"SQLALCHEMY_DATABASE_URI": db_url, "IE_SECRET_KEYS": TEST_KEY,
            "IE_SCHEDULER": "off", "IE_CA_FILE": ca_file, "IE_MAIL_TIMEOUT": 3.0,
            "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535,localhost:1024-65535",
            "IE_BLOB_DIR": str(tmp_path / "blobs"), "INSTANCE_PATH": str(tmp_path / "inst")}


class Client:
    """A test client signed in through the host's login form, with its CSRF token."""

    def __init__(self, app, email: str, password: str):
        self.http = app.test_client()
        self.token = self.token_of(self.http.get("/t/login").get_data(as_text=True))
        resp = self.http.post("/t/login", data={"csrf_token": self.token, "email": email,
                                                 "password": password})
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]

    @staticmethod
    def token_of(html: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    def get(self, path: str, **kw):
        return self.http.get(path, **kw)

    def post(self, path: str, data: dict | None = None, **kw):
        return self.http.post(path, data={"csrf_token": self.token, **(data or {})}, **kw)
