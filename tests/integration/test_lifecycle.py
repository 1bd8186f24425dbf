"""F1: activation is stored; inactive means 404 everywhere, no jobs, no menu; data kept."""

from __future__ import annotations

import re

from plugin.jobs.dispatcher import dispatch
from plugin.models import GlobalSettings
from tests.helpers import save_global_settings, signed_in


def _addon_urls(app) -> list[tuple[str, str]]:
    """Every add-on URL with placeholder ids, and a method it accepts."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("integrated_email."):
            continue
        url = re.sub(r"<(?:int:)?(\w+)>", "1", rule.rule)
        url = re.sub(r"<path:\w+>", "x.css", url)
        method = "GET" if "GET" in rule.methods else "POST"
        urls.append((method, url))
    return urls


def test_inactive_addon_answers_404_on_every_route(mini):
    app, host, addon = mini
    admin = host.add_person("Ada", "ada@example.test", admin=True)
    client = signed_in(app, admin)
    addon.set_active(False)
    urls = _addon_urls(app)
    assert len(urls) >= 10
    for method, url in urls:
        resp = client.open(url, method=method, data={"csrf_token": "x"})
        assert resp.status_code == 404, (method, url, resp.status_code)


def test_menu_entry_follows_activation(mini):
    app, host, addon = mini
    client = signed_in(app, host.add_person("Ada", "ada@example.test", admin=True))
    assert "Integrated email|/integrated-email/" in client.get("/_menu").get_data(as_text=True)
    addon.set_active(False)
    assert client.get("/_menu").get_data(as_text=True) == ""


def test_deactivating_keeps_data_and_reactivating_restores_it(mini):
    app, host, addon = mini
    admin = host.add_person("Ada", "ada@example.test", admin=True)
    client = signed_in(app, admin)
    save_global_settings(client, fetch_interval_minutes="37")
    addon.set_active(False)
    assert client.get("/integrated-email/admin/settings").status_code == 404
    addon.set_active(True)
    page = client.get("/integrated-email/admin/settings")
    assert page.status_code == 200
    assert 'value="37"' in page.get_data(as_text=True)
    with addon.session() as s:
        assert s.get(GlobalSettings, 1).fetch_interval_minutes == 37


def test_jobs_do_nothing_while_inactive(mini):
    _app, _host, addon = mini
    addon.set_active(False)
    with _app.app_context():
        assert dispatch(addon) == 0


def test_anonymous_users_are_sent_to_sign_in(mini):
    app, _host, _addon = mini
    resp = app.test_client().get("/integrated-email/")
    assert resp.status_code in (302, 401)
