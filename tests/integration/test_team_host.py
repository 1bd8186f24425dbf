"""The third host (tests/hosts/team_host: Flask-SQLAlchemy, Flask-WTF, roles, UUID records
with several addresses, a kind of its own, a per-team ACL, its own layout and URL prefix)
runs every flow through HTTP: activate, settings, set-up, fetch from the real Dovecot,
notes, compose through the SMTP lab, timeline, bulk, deactivate."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from sqlalchemy import select

from plugin import api
from plugin.jobs.dispatcher import fetch_and_link
from plugin.host import RecordRef
from plugin.models import Mailbox
from tests.helpers import mailbox_form
from tests.hosts.team_host import create_team_app
from tests.hosts.team_host.app import add_record, seed
from tests.hosts.team_host.models import Note, db
from tests.hosts.team_host.testing import PREFIX, Client, team_config
from tests.integration.send_helpers import wait_until
from tests.integration.sync_helpers import set_window

ADAPTER = Path(__file__).resolve().parents[1] / "hosts" / "team_host" / "adapter.py"
ROOT = Path(__file__).resolve().parents[2]


def code_lines(path: Path, cls: str | None = None) -> int:
    """Lines of code: neither blank nor only a comment (``cls``: that class's lines only)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if cls is not None:
        start = next(i for i, line in enumerate(lines) if line.startswith(f"class {cls}"))
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i] and not lines[i][0].isspace() and not lines[i].startswith(")")),
                   len(lines))
        lines = lines[start:end]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def test_the_team_adapter_is_60_lines_or_fewer():
    team = code_lines(ADAPTER)
    reference = code_lines(ROOT / "examples" / "host_ats" / "adapter.py")
    mini = code_lines(ROOT / "tests" / "hosts" / "mini_host.py", "MiniHost")
    print(f"adapter lines of code: team host {team}, reference host {reference}, "
          f"mini host {mini}")
    assert team <= 60


@pytest.fixture
def team(db_url, tmp_path, dovecot):
    app = create_team_app(team_config(db_url, tmp_path, dovecot.ca_file))
    addon = app.extensions["integrated_email"]
    addon.migrate()
    with app.app_context():
        world = seed()
        north, south = world["north"], world["south"]
        jane = dovecot.add_user(f"jane{secrets.token_hex(3)}", "pw-" + secrets.token_hex(6))
        refs = {
            "jane": add_record("applicant", "Jane Lab", ["jane.old@example.test", jane.email],
                               north, given="Jane"),
            "kim": add_record("applicant", "Kim South", ["kim@example.test"], south),
            "acme": add_record("agency", "Acme Staffing", ["desk@acme-staff.test"], None,
                               rid="acme-staffing"),
            "carl": add_record("contact", "Carl Client", ["carl@client.test"], north),
        }
        people = {k: (u.email, f"{k}-pw", u.id) for k, u in world["people"].items()}
    yield app, addon, people, refs, jane
    addon.session.remove()
    addon.engine.dispose()
    with app.app_context():
        db.engine.dispose()


def _notes(app, ref: RecordRef) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Note.body).where(
            Note.kind == ref.kind, Note.record_id == ref.id).order_by(Note.id)))


def test_every_flow_on_the_team_host(team, dovecot, smtp_lab, mail_user):
    app, addon, people, refs, jane = team
    smtp_lab.clear()
    assert addon.shares_host_database
    owner = Client(app, *people["owner"][:2])
    nina = Client(app, *people["nina"][:2])
    sam = Client(app, *people["sam"][:2])
    # activate: the host's own add-on switch (Flask-WTF checks its form, nothing exempted)
    assert nina.get(PREFIX + "/").status_code == 404
    assert owner.post("/t/addons", {"active": "yes"}).status_code == 302
    assert "Integrated email" in nina.get("/t/").get_data(as_text=True)
    # settings: the owner role manages the add-on; a recruiter may not
    settings = dict(outbound_only="no", webmail_links="yes", auto_import="yes",
                    sharing_allowed=["private", "custom", "public", "admin"],
                    sharing_default="private", fetch_interval_minutes="10",
                    initial_sync_days="30", initial_sync_messages="500", bulk_per_send="200",
                    bulk_per_day="500", bulk_spacing_seconds="0", allowed_mail_hosts="",
                    account_name="Admin mail", email="admin@team.test")
    assert nina.get(PREFIX + "/admin/settings").status_code == 403
    assert owner.post(PREFIX + "/admin/settings", settings).status_code == 302
    # no token, or Flask-WTF's token of another session: refused
    assert nina.http.post(PREFIX + "/admin/settings", data=settings).status_code == 400
    # set-up: Nina's lab mailbox (string user id of 80+ characters), shared Public
    form = mailbox_form(dovecot, smtp_lab, mail_user, sharing="public")
    form.pop("csrf_token")
    resp = nina.post(PREFIX + "/mailboxes/new", form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]
    with addon.session() as s:
        mb = s.scalars(select(Mailbox)).one()
        assert mb.user_id == people["nina"][2] and len(mb.user_id) > 64
        mb_id = mb.id
    # fetch: mail from Jane's *second* address and from the agency reaches their records
    set_window(addon)
    dovecot.deliver(mail_user, (f"From: Jane Lab <{jane.email}>\r\nTo: {mail_user.email}\r\n"
                                "Subject: My portfolio\r\nMessage-ID: <p1@jane.test>\r\n"
                                "Date: Mon, 01 Jun 2026 09:00:00 +0000\r\n\r\nHello!\r\n"
                                ).encode())
    dovecot.deliver(mail_user, (f"From: desk@acme-staff.test\r\nTo: {mail_user.email}\r\n"
                                "Subject: Two engineers\r\nMessage-ID: <a1@acme.test>\r\n"
                                "Date: Mon, 01 Jun 2026 10:00:00 +0000\r\n\r\nSee CVs.\r\n"
                                ).encode())
    assert nina.post(f"{PREFIX}/mailboxes/{mb_id}/fetch").status_code == 302
    with app.app_context():  # as the scheduler and the worker run it after Fetch now
        result = fetch_and_link(addon, mb_id)
    assert result.error_kind is None and result.stored == 2, result
    # notes: written on the host's records (its own table), without a request
    assert len(_notes(app, refs["jane"])) == 1 and len(_notes(app, refs["acme"])) == 1
    # timeline: on Jane's page for Nina (team North); Sam (South) gets 404 everywhere
    page = nina.get(f"/t/applicants/{refs['jane'].id}").get_data(as_text=True)
    assert "My portfolio" in page and "ie-record-panel" in page
    assert "Two engineers" in nina.get("/t/agencies/acme-staffing").get_data(as_text=True)
    assert sam.get(f"/t/applicants/{refs['jane'].id}").status_code == 404
    timeline = f"{PREFIX}/records/applicant/{refs['jane'].id}/timeline"
    assert nina.get(timeline).status_code == 200 and sam.get(timeline).status_code == 404
    # compose: to Jane's second address, recorded on her (an applicant, not a "candidate")
    resp = nina.post(PREFIX + "/compose", {"to": jane.email, "subject": "Interview Monday",
                                           "body": "See you at 10.",
                                           "record": str(refs["jane"])})
    assert resp.status_code in (200, 302), resp.get_data(as_text=True)[:2000]
    got = smtp_lab.wait_for(1)
    assert got[0].rcpt_tos == (jane.email,)
    wait_until(lambda: any("Interview Monday" in n for n in _notes(app, refs["jane"])))
    assert "Interview Monday" in nina.get(timeline).get_data(as_text=True)
    # bulk: applicants and the host's own kind; contacts are not a bulk kind
    picked = {"records": [str(refs["jane"]), str(refs["acme"]), str(refs["carl"]),
                          str(refs["kim"])]}
    page = nina.post(PREFIX + "/bulk/new", picked).get_data(as_text=True)
    assert "Email 2 recipients" in page  # Kim is South's: left out; Carl: not a bulk kind
    assert "candidate" not in page.lower()
    resp = nina.post(PREFIX + "/bulk/send", {**picked, "subject": "Hi {{ first_name }}",
                                              "body": "Hello {{ full_name }}",
                                              "signature": "Nina"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    got = smtp_lab.wait_for(3)
    assert sorted(r.rcpt_tos[0] for r in got[1:]) == sorted(
        ["desk@acme-staff.test", "jane.old@example.test"])
    # the public read API: what each viewer may see, no ORM rows
    with app.test_request_context():
        nina_u = addon.host.get_user(people["nina"][2])
        sam_u = addon.host.get_user(people["sam"][2])
        seen = api.messages_for_record(refs["jane"], nina_u, addon=addon)
        assert {"My portfolio", "Interview Monday"} <= {m.subject for m in seen}
        assert api.messages_for_record(refs["jane"], sam_u, addon=addon) == []
    # deactivate: everything answers 404 again, the menu entries go, the data stays
    assert owner.post("/t/addons", {"active": "no"}).status_code == 302
    assert nina.get(timeline).status_code == 404
    assert "Integrated email" not in nina.get("/t/").get_data(as_text=True)
    with addon.session() as s:
        assert s.scalars(select(Mailbox)).one().id == mb_id


def _nina_with_mail(app, addon, dovecot, people, sharing: str = "private") -> int:
    """Nina's lab mailbox holding one message from the agency's desk, fetched and linked."""
    from plugin.setup import settings as settings_service

    from tests.helpers import complete_settings

    complete_settings(addon)
    addon.set_active(True)
    set_window(addon)
    user = dovecot.add_user(f"nina{secrets.token_hex(3)}", "pw-" + secrets.token_hex(6))
    dovecot.deliver(user, (f"From: desk@acme-staff.test\r\nTo: {user.email}\r\n"
                           "Subject: Rates for 2027\r\nMessage-ID: <r1@acme.test>\r\n"
                           "Date: Mon, 01 Jun 2026 10:00:00 +0000\r\n\r\nAttached.\r\n"
                           ).encode())
    with addon.session() as s:
        settings_service.load(s)
        mb = Mailbox(user_id=people["nina"][2], account_name="Lab", email=user.email,
                     is_active=True, protocol="imap", in_host="localhost",
                     in_port=dovecot.imaps, in_security="ssl", in_login=user.login,
                     in_password=addon.secrets.encrypt(user.password), sharing=sharing,
                     out_host="localhost", out_port=465, out_security="ssl")
        s.add(mb)
        s.commit()
        mb_id = mb.id
    with app.app_context():
        assert fetch_and_link(addon, mb_id).stored == 1
    with addon.session() as s:
        from plugin.models import Message
        return s.scalars(select(Message.id)).one()


def test_the_read_api_links_without_a_note_and_obeys_the_acl(team, dovecot):
    app, addon, people, refs, _jane = team
    msg_id = _nina_with_mail(app, addon, dovecot, people)
    page = Client(app, *people["nina"][:2]).get(f"{PREFIX}/mail/messages/{msg_id}")
    assert "Add to applicant, client contact or agency" in page.get_data(as_text=True)
    with app.test_request_context():
        nina = addon.host.get_user(people["nina"][2])
        sam = addon.host.get_user(people["sam"][2])
        notes_before = len(_notes(app, refs["jane"]))
        assert api.messages_for_record(refs["jane"], nina, addon=addon) == []
        assert api.link_message(msg_id, refs["jane"], nina, addon=addon) is True
        assert api.link_message(msg_id, refs["jane"], nina, addon=addon) is True  # no twin
        assert len(_notes(app, refs["jane"])) == notes_before  # no note written
        (seen,) = api.messages_for_record(refs["jane"], nina, addon=addon)
        assert seen.subject == "Rates for 2027" and seen.how == "manual"
        assert seen.url.startswith(f"{PREFIX}/records/applicant/{refs['jane'].id}/messages/")
        # Sam: not Nina's private message, and Kim's team is not Nina's
        assert api.link_message(msg_id, refs["kim"], sam, addon=addon) is False
        assert api.link_message(msg_id, refs["kim"], nina, addon=addon) is False
        assert api.messages_for_record(refs["jane"], sam, addon=addon) == []
        # hostile references: undeclared kind, unknown record, a missing message
        assert api.link_message(msg_id, RecordRef("candidate", "1"), nina, addon=addon) is False
        assert api.link_message(msg_id, RecordRef("applicant", "x" * 300), nina,
                                addon=addon) is False
        assert api.link_message(10**9, refs["jane"], nina, addon=addon) is False
    with app.app_context():  # outside a request: record URLs still build (background code)
        (seen,) = api.messages_for_record(refs["jane"], nina, addon=addon)
        assert seen.url.startswith(PREFIX + "/records/")


@pytest.mark.parametrize("field", [
    {"records": ["applicant:not-a-uuid", "robot:1", "applicant:" + "9" * 300, "agency:",
                 "agency:acme-staffing\r\nBcc: x@evil.test", ":", "contact:1"]},
    {"kind": "contact", "ids": ["1"]},
    {"kind": "robot", "ids": ["1", "2"]},
    {"candidate_ids": ["1", "2"]},
])
def test_bulk_refuses_what_the_host_did_not_declare_in_plain_words(team, dovecot, field):
    app, addon, people, _refs, _jane = team
    _nina_with_mail(app, addon, dovecot, people)
    nina = Client(app, *people["nina"][:2])
    resp = nina.post(PREFIX + "/bulk/new", field, headers={"Referer": "/t/"})
    if resp.status_code == 400:  # nothing declared for bulk was named: said on the page
        page = resp.get_data(as_text=True)
        assert "Select at least one applicant or agency in the list" in page
        assert 'name="records"' not in page
        return
    page = resp.get_data(as_text=True)
    # only the well-formed reference of a bulk kind is left; the host finds no such record
    assert resp.status_code == 200 and "<h1>Email 0 applicants</h1>" in page
    # (not just "evil": the send-later time zones include Africa/Libreville)
    assert "Not found, or not shared with you." in page and "evil.test" not in page


def test_switching_the_hosts_locale_changes_the_addons_words(team):
    app, addon, people, refs, _jane = team
    addon.set_active(True)
    nina = Client(app, *people["nina"][:2])
    page = nina.get(f"/t/applicants/{refs['jane'].id}").get_data(as_text=True)
    assert "No email with this record yet." in page and ">Email</h2>" in page
    assert ">Integrated email</a>" in page  # the menu entry the add-on gives the host
    assert nina.post("/t/language", {"lang": "de"}).status_code == 302
    page = nina.get(f"/t/applicants/{refs['jane'].id}").get_data(as_text=True)
    assert "Noch keine E-Mail zu diesem Eintrag." in page and ">E-Mail</h2>" in page
    assert ">Integrierte E-Mail</a>" in page and "No email with this record" not in page
    missing = nina.get(f"{PREFIX}/records/applicant/{refs['kim'].id}/timeline")
    assert missing.status_code == 404
    assert "Kein solcher Eintrag (applicant)" in missing.get_data(as_text=True)
    compose = nina.get(PREFIX + "/compose").get_data(as_text=True)  # no mailbox yet
    assert "Verbinden Sie zuerst Ihr Postfach" in compose


def test_managing_the_addon_and_seeing_admin_mail_are_separate_answers(team, dovecot):
    from tests.hosts.team_host.models import Role

    app, addon, people, refs, _jane = team
    _nina_with_mail(app, addon, dovecot, people, sharing="admin")  # linked to the agency
    with app.app_context():  # the owner manages the add-on but may not read Admin mail;
        roles = {r.name: r for r in db.session.query(Role)}  # recruiters may
        roles["owner"].reads_admin_mail = False
        roles["recruiter"].reads_admin_mail = True
        db.session.commit()
    with app.test_request_context():
        owner = addon.host.get_user(people["owner"][2])
        sam = addon.host.get_user(people["sam"][2])
        assert owner.manages_addon and not owner.sees_admin_mail
        assert sam.sees_admin_mail and not sam.manages_addon
        assert api.messages_for_record(refs["acme"], owner, addon=addon) == []
        assert [m.subject for m in api.messages_for_record(refs["acme"], sam, addon=addon)] \
            == ["Rates for 2027"]
    assert Client(app, *people["sam"][:2]).get(PREFIX + "/admin/settings").status_code == 403
    assert Client(app, *people["owner"][:2]).get(PREFIX + "/admin/settings").status_code == 200
