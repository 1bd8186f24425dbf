"""manifest.json is data the host's plugin manager trusts: it must match the code."""

from __future__ import annotations

import importlib
import json
import tomllib
from pathlib import Path

import pytest
from flask import Flask

import plugin
from plugin.host import HOST_API_VERSION

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "manifest.json").read_text())


def _resolve(dotted: str):
    module, _, attr = dotted.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def test_manifest_names_the_addon_and_its_versions():
    assert MANIFEST["id"] == "integrated_email"
    assert MANIFEST["version"] == plugin.__version__
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == plugin.__version__
    assert MANIFEST["host_api"] == HOST_API_VERSION
    for key in ("name", "description", "entry_point", "settings_pages", "pages", "partials",
                "jobs"):
        assert MANIFEST[key], key


def test_entry_point_is_the_addon_class():
    assert _resolve(MANIFEST["entry_point"]) is plugin.IntegratedEmail


@pytest.fixture
def app(mini):
    return mini[0]


def test_every_page_and_partial_exists(app: Flask):
    endpoints = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    listed = MANIFEST["settings_pages"] + MANIFEST["pages"] + MANIFEST["partials"]
    for entry in listed:
        assert entry["endpoint"] in endpoints, entry
        assert endpoints[entry["endpoint"]].rule.startswith(MANIFEST["url_prefix"])


def test_every_job_exists_and_is_scheduled(mini):
    from apscheduler.schedulers.background import BackgroundScheduler

    from plugin.jobs import build_scheduler

    _app, _host, addon = mini
    sched = build_scheduler(addon, BackgroundScheduler)
    scheduled = {job.id for job in sched.get_jobs()}
    for job in MANIFEST["jobs"]:
        assert callable(_resolve(job["callable"])), job
        assert job["id"] in scheduled, job
        assert job["setting"] in plugin.config.SETTINGS
