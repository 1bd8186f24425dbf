"""The add-on object behaves like a well-made Flask extension."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from plugin import IntegratedEmail
from plugin.config import ENVIRONMENT, SETTINGS
from tests.conftest import TEST_KEY
from tests.hosts.mini_host import MiniHost

PLUGIN = Path(__file__).resolve().parents[2] / "plugin"


def _app(tmp_path) -> Flask:
    app = Flask("t", instance_path=str(tmp_path))
    app.config.update(IE_DATABASE_URL=f"sqlite:///{tmp_path}/ie.sqlite", IE_SECRET_KEYS=TEST_KEY,
                      IE_SCHEDULER="off", SECRET_KEY="x")
    return app


def test_init_app_twice_raises(tmp_path):
    app = _app(tmp_path)
    IntegratedEmail(app, host=MiniHost())
    with pytest.raises(RuntimeError, match="already registered"):
        IntegratedEmail().init_app(app, host=MiniHost())


def test_deferred_init_stores_the_extension(tmp_path):
    app = _app(tmp_path)
    ie = IntegratedEmail()
    ie.init_app(app, host=MiniHost())
    assert app.extensions["integrated_email"] is ie


def test_host_must_implement_the_adapter(tmp_path):
    with pytest.raises(TypeError, match="HostAdapter"):
        IntegratedEmail(_app(tmp_path), host=object())


def test_defaults_are_set_without_overriding_the_host(tmp_path):
    app = _app(tmp_path)
    app.config["IE_MAIL_TIMEOUT"] = 7
    IntegratedEmail(app, host=MiniHost())
    assert app.config["IE_MAIL_TIMEOUT"] == 7
    assert app.config["IE_URL_PREFIX"] == "/integrated-email"
    for key in SETTINGS:
        assert key in app.config


def test_every_ie_setting_used_in_code_is_documented():
    used = set()
    for path in PLUGIN.rglob("*.py"):
        used |= set(re.findall(r"\bIE_[A-Z_]+\b", path.read_text()))
    undocumented = sorted(used - set(SETTINGS) - set(ENVIRONMENT))
    assert not undocumented, f"document these in plugin/config.py: {undocumented}"


def test_database_defaults_to_the_hosts_url_else_instance_sqlite(tmp_path):
    app = _app(tmp_path)
    del app.config["IE_DATABASE_URL"]
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/host.sqlite"
    assert IntegratedEmail(app, host=MiniHost()).database_url.endswith("host.sqlite")
    app2 = _app(tmp_path / "b")
    del app2.config["IE_DATABASE_URL"]
    ie = IntegratedEmail(app2, host=MiniHost())
    assert ie.database_url == f"sqlite:///{tmp_path}/b/integrated_email.sqlite"


def test_tables_are_prefixed():
    from plugin.models import Base
    assert all(name.startswith("ie_") for name in Base.metadata.tables)
