"""Discovery behind the set-up form, through HTTP (issue 17): the address's fields answer
says "Looking up…" and asks for discovery, whose own answer fills only what the user has
not typed, names the source, offers Sign in for a domain hosted at an enabled provider,
and the filled servers pass Test connection against the lab."""

from __future__ import annotations

import re

import pytest

from tests.helpers import form, save_global_settings, signed_in
from tests.integration.oauth_helpers import GOOGLE_DOMAIN, enable_providers, point_at_lab
from tests.lab.discovery_lab import discovery_config, publish_lab_mail

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
HX = {"HX-Request": "true"}


@pytest.fixture
def recruiter(mini, lab_dns, autoconfig_web, dovecot, smtp_lab):
    app, host, _addon = mini
    app.config.update(discovery_config(lab_dns, autoconfig_web, dovecot, smtp_lab))
    admin = host.add_person("Ada Admin", "ada@example.test", admin=True)
    rita = host.add_person("Rita", "rita@example.test")
    save_global_settings(signed_in(app, admin))
    return app, signed_in(app, admin), signed_in(app, rita)


def _values(email: str, **extra) -> dict:
    return form(**{"account_name": "Work", "email": email, "protocol": "imap",
                   "in_login": email, "in_security": "ssl", "in_port": "993",
                   "out_security": "ssl", "out_port": "465", "same_credentials": "on",
                   "out_auth": "on", "sharing": "private",
                   "_previous_email": "rita@example.test", **extra})


def _value(html: str, name: str) -> str | None:
    m = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html)
    return m.group(1) if m else None


def test_discover_fields_answer_says_looking_up_and_asks_for_discovery(recruiter):
    _app, _admin, client = recruiter
    resp = client.post("/integrated-email/setup/fields", data=_values("jane@form-corp.test"),
                       headers={**HX, "HX-Trigger-Name": "email"})
    html = resp.get_data(as_text=True)
    assert resp.headers["HX-Trigger-After-Swap"] == "ie-discover"
    assert "Looking up settings for form-corp.test…" in html
    # A preset address is filled by this answer already: nothing to look up.
    html = client.post("/integrated-email/setup/fields", data=_values("jane@gmail.com"),
                       headers={**HX, "HX-Trigger-Name": "email"}).get_data(as_text=True)
    assert "Looking up" not in html and 'value="imap.gmail.com"' in html


def test_discover_autoconfig_fills_the_form_and_passes_test_connection(
        recruiter, lab_dns, autoconfig_web, dovecot, smtp_lab, mail_user):
    _app, _admin, client = recruiter
    domain = "form-corp.test"
    host = publish_lab_mail(lab_dns, autoconfig_web, domain, dovecot, smtp_lab)
    address = f"{mail_user.login}@{domain}"
    html = client.post("/integrated-email/setup/discover", data=_values(address),
                       headers=HX).get_data(as_text=True)
    assert f"Settings from {domain}&#39;s published configuration." in html
    assert (_value(html, "in_host"), _value(html, "in_port")) == (host, str(dovecot.imaps))
    assert (_value(html, "out_host"), _value(html, "out_port")) == (host, str(smtp_lab.tls_port))
    assert _value(html, "_auto_in_host") == host and _value(html, "_auto_out_host") == host
    result = client.post("/integrated-email/setup/test", headers=HX, data=_values(
        address, in_host=host, in_port=str(dovecot.imaps), out_host=host,
        out_port=str(smtp_lab.tls_port), in_password=mail_user.password)).get_data(as_text=True)
    assert result.count("Signed in successfully.") == 2, result


def test_discover_never_overwrites_a_server_typed_by_hand(recruiter, lab_dns, autoconfig_web,
                                                         dovecot, smtp_lab):
    _app, _admin, client = recruiter
    domain = "form-corp.test"
    host = publish_lab_mail(lab_dns, autoconfig_web, domain, dovecot, smtp_lab)
    html = client.post("/integrated-email/setup/discover", headers=HX, data=_values(
        f"kim@{domain}", in_host="imap.my-own.example", in_port="10993",
        in_login="kim-login")).get_data(as_text=True)
    # The incoming side and the login are not in the answer at all: nothing to overwrite.
    assert 'name="in_host"' not in html and 'name="in_login"' not in html
    assert _value(html, "out_host") == host
    assert _value(html, "_auto_in_host") == ""


def test_discover_a_new_address_replaces_what_discovery_filled_not_what_was_typed(recruiter):
    _app, _admin, client = recruiter
    # The address changes domain: the discovered incoming host is cleared, the typed
    # outgoing host stays.
    html = client.post("/integrated-email/setup/fields", headers={**HX, "HX-Trigger-Name": "email"},
                       data=_values("kim@other-corp.test", _previous_email="kim@form-corp.test",
                                    in_host="mail.form-corp.test",
                                    _auto_in_host="mail.form-corp.test",
                                    out_host="smtp.typed.example",
                                    _auto_out_host="mail.form-corp.test")).get_data(as_text=True)
    assert _value(html, "in_host") == "" and _value(html, "out_host") == "smtp.typed.example"
    assert "You typed your own servers" not in html
    # Another address at the same domain keeps the discovered servers.
    html = client.post("/integrated-email/setup/fields", headers={**HX, "HX-Trigger-Name": "email"},
                       data=_values("joe@form-corp.test", _previous_email="kim@form-corp.test",
                                    in_host="mail.form-corp.test",
                                    _auto_in_host="mail.form-corp.test")).get_data(as_text=True)
    assert _value(html, "in_host") == "mail.form-corp.test"


def test_discover_mx_at_google_offers_sign_in_when_the_admin_enabled_it(
        recruiter, lab_dns, oauth_lab, dovecot, smtp_lab):
    app, admin, client = recruiter
    domain = "workspace-form.test"
    lab_dns.zone.add_mx(domain, "aspmx.l.google.com.")
    data = _values(f"ann@{domain}")
    html = client.post("/integrated-email/setup/discover", headers=HX,
                       data=data).get_data(as_text=True)
    assert f"{domain}&#39;s mail is hosted by Google Workspace" in html
    assert "Sign in with Google" not in html  # not enabled: the password form stays
    assert _value(html, "in_host") == "imap.gmail.com"
    clients = point_at_lab(app, oauth_lab, dovecot, smtp_lab, "http://localhost/cb")
    assert enable_providers(admin, clients).status_code in (200, 302)
    html = client.post("/integrated-email/setup/discover", headers=HX,
                       data=data).get_data(as_text=True)
    assert "Sign in with Google" in html and _value(html, "_hosted") == "google"
    # Later answers of the form keep the offer (the hidden field carries it).
    html = client.post("/integrated-email/setup/fields", data={**data, "_hosted": "google"},
                       headers={**HX, "HX-Trigger-Name": "use_password"}).get_data(as_text=True)
    assert "Sign in with Google" in html
    # An address at the provider's own domain is offered Sign in with nothing to look up.
    html = client.post("/integrated-email/setup/fields", data=_values(f"ann@{GOOGLE_DOMAIN}"),
                       headers={**HX, "HX-Trigger-Name": "email"}).get_data(as_text=True)
    assert "Sign in with Google" in html and "Looking up" not in html
    html = client.post("/integrated-email/setup/discover", headers=HX,
                       data=_values(f"ann@{GOOGLE_DOMAIN}")).get_data(as_text=True)
    assert "No settings could be found" not in html


def test_discover_nothing_found_says_so_and_fills_nothing(recruiter):
    _app, _admin, client = recruiter
    html = client.post("/integrated-email/setup/discover", headers=HX,
                       data=_values("x@nothing-corp.test")).get_data(as_text=True)
    assert "No settings could be found for nothing-corp.test." in html
    assert 'name="in_host"' not in html and 'name="out_host"' not in html


def test_discover_lookups_are_limited_per_user_but_cached_domains_are_not(
        recruiter, lab_dns, autoconfig_web, dovecot, smtp_lab):
    app, admin, client = recruiter
    app.config["IE_DISCOVERY_PER_MINUTE"] = 3
    publish_lab_mail(lab_dns, autoconfig_web, "form-corp.test", dovecot, smtp_lab)
    lines = []
    for i in range(4):
        html = client.post("/integrated-email/setup/discover", headers=HX,
                           data=_values(f"x@limit{i}-corp.test")).get_data(as_text=True)
        lines.append("many addresses in a row" in html)
    assert lines == [False, False, False, True]
    # Another user's lookup is not limited by Rita's; once it is cached, Rita's is answered.
    html = admin.post("/integrated-email/setup/discover", headers=HX,
                      data=_values("ada@form-corp.test")).get_data(as_text=True)
    assert "published configuration" in html
    html = client.post("/integrated-email/setup/discover", headers=HX,
                       data=_values("kim@form-corp.test")).get_data(as_text=True)
    assert "published configuration" in html and "many addresses" not in html
