"""German pages: when the host's Flask-Babel picks German (here from Accept-Language),
the set-up form, the admin page and the webmail speak German - labels, help, choices,
field errors, and the sentences the mail and domain code make (marked with N_ and
translated where shown) - while an English viewer of the same app keeps English."""

from __future__ import annotations

import pytest
from flask import request
from flask_babel import Babel

from tests.helpers import form, save_global_settings, signed_in
from tests.integration.webmail_helpers import Setup, mail

GERMAN = {"Accept-Language": "de-DE,de;q=0.9"}
ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def babel(mini):
    app, host, addon = mini
    Babel(app, locale_selector=lambda: request.accept_languages.best_match(["en", "de"]))
    return app, host, addon


def _page(client, url: str, headers: dict, **kwargs) -> str:
    resp = client.get(url, headers=headers, **kwargs)
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def test_the_admin_page_and_its_errors_in_german(babel):
    app, host, _addon = babel
    admin = signed_in(app, host.add_person("Ada Admin", "ada@example.test", admin=True))
    page = _page(admin, "/integrated-email/admin/settings", GERMAN)
    for german in ("Integrierte E-Mail: globale Einstellungen", "Systemweite Einstellungen",
                   "Nur ausgehende E-Mails (blendet die Webmail aus)", ">Ja</option>",
                   ">Nein</option>", "Privat – nur ich", "Abrufintervall (Minuten)",
                   "Anmeldung mit Google oder Microsoft", "Anmeldung mit Google erlauben",
                   "So registrieren Sie die App bei Microsoft",  # the guide's steps too:
                   "Öffnen Sie im Microsoft Entra Admin Center", "Ihr eigenes Postfach",
                   "Verbindung testen", "Posteingangsserver"):
        assert german in page, german
    for english in ("System-wide settings", "Private – only me", ">Yes</option>",
                    "Test connection", "How to register the app"):
        assert english not in page, english
    # A refused form: the checks' sentences (setup/settings.py, N_ with values) in German.
    resp = admin.post("/integrated-email/admin/settings", headers=GERMAN, data=form(
        outbound_only="no", webmail_links="yes", auto_import="yes", sharing_default="private",
        fetch_interval_minutes="often", initial_sync_days="0", initial_sync_messages="500",
        bulk_per_send="200", bulk_per_day="500", bulk_spacing_seconds="0"))
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Erlauben Sie mindestens eine Freigabeoption." in page
    assert "Geben Sie das Abrufintervall als ganze Zahl ein." in page
    assert "Geben Sie die Anzahl Tage zwischen 1 und 3650 ein." in page
    assert "Einige Felder brauchen Ihre Aufmerksamkeit" in page
    assert "Allow at least one sharing option." not in page
    page = _page(admin, "/integrated-email/admin/mailboxes", GERMAN)
    assert "<h1>Zustand der Postfächer</h1>" in page
    assert "Noch niemand hat ein Postfach eingerichtet." in page
    # the same page for an English viewer
    page = _page(admin, "/integrated-email/admin/settings", ENGLISH)
    assert "System-wide settings" in page and "Systemweite Einstellungen" not in page


def test_the_set_up_form_its_field_answers_and_a_mail_error_in_german(babel):
    app, host, _addon = babel
    save_global_settings(signed_in(app, host.add_person("Ada", "ada@example.test",
                                                         admin=True)))
    rita = signed_in(app, host.add_person("Rita", "rita@example.test"))
    page = _page(rita, "/integrated-email/mailboxes/new", GERMAN)
    for german in ("<h1>Postfach einrichten</h1>", "<legend>Konto</legend>", "Kontoname",
                   "<legend>Posteingang</legend>", "Keine (unverschlüsselt)",
                   "Protokoll für den Posteingang", "Postfach speichern",
                   "Wer sonst die E-Mails sehen darf", "Meine Postfächer"):
        assert german in page, german
    assert "Incoming mail host" not in page and "Save mailbox" not in page
    # one field answered by htmx (a validate() sentence from setup/mailbox.py)
    resp = rita.post("/integrated-email/setup/fields", headers={
        **GERMAN, "HX-Request": "true", "HX-Trigger-Name": "in_port"}, data=form(
        email="rita@example.test", protocol="imap", in_port="99999"))
    assert "Geben Sie einen Port zwischen 1 und 65535 ein." in resp.get_data(as_text=True)
    # Test connection to a server the policy refuses: plugin/mail/errors.py's sentence
    resp = rita.post("/integrated-email/setup/test", headers={**GERMAN, "HX-Request": "true"},
                     data=form(account_name="Work", email="rita@example.test", protocol="imap",
                               in_login="rita", in_password="pw", in_host="127.0.0.1",
                               in_port="25", in_security="ssl", same_credentials="on",
                               out_auth="on", out_host="127.0.0.1", out_port="26",
                               out_security="ssl", sharing="private", delete_policy="leave"))
    page = resp.get_data(as_text=True)
    assert "Dieser Mailserver ist nicht erlaubt." in page, page[:2000]
    assert "Posteingangsserver:" in page and "This mail server is not allowed" not in page


def test_the_webmail_in_german(babel, dovecot, mail_user):
    wm = Setup(babel, dovecot, mail_user)
    wm.deliver_and_sync(mail("Bewerbung"))
    page = _page(wm.client, "/integrated-email/mail", GERMAN, follow_redirects=True)
    for german in ("<h1>Posteingang</h1>", ">Von</th>", ">Betreff</th>", ">Datum</th>",
                   "(ungelesen)", "Mit mir geteilt", "Neue E-Mail"):
        assert german in page, german
    assert "<h1>Inbox</h1>" not in page and ">Subject</th>" not in page
    page = _page(wm.client, "/integrated-email/mail/search?q=nothing-like-this", GERMAN)
    assert "<h1>Suche: nothing-like-this</h1>" in page
    assert "Keine Nachrichten passen zu „nothing-like-this“." in page
    # a sentence made in plugin/mail/build.py, its field's label translated with it
    resp = wm.client.post("/integrated-email/compose", headers=GERMAN, data=form(
        to="not-an-address", subject="Hallo", body="Text"))
    page = resp.get_data(as_text=True)
    assert "„not-an-address“ im Feld An ist keine E-Mail-Adresse." in page, resp.status_code
    page = _page(wm.client, "/integrated-email/mail", ENGLISH, follow_redirects=True)
    assert "<h1>Inbox</h1>" in page and "(unread)" in page
