"""The reference host ATS: its pages, its permissions and its HostAdapter."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import Markup
from sqlalchemy import func, select

from examples.host_ats import create_app
from examples.host_ats.adapter import ReferenceHostAdapter
from examples.host_ats.models import Candidate, Contact, Note, User
from examples.host_ats.seed import DEMO_USERS, seed_demo
from plugin.host import HostAdapter, HostUser, RecordRef

PASSWORDS = {email: password for email, password, _role, _name in DEMO_USERS}


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    app = create_app(
        {
            "TESTING": True,
            "INTEGRATED_EMAIL": False,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'host.sqlite'}",
        }
    )
    with host_db_sessions(app)() as session:
        assert seed_demo(session) is True
    return app


def host_db_sessions(app: Flask):
    return app.extensions["host_ats.db"].sessions


@pytest.fixture
def adapter(app: Flask) -> ReferenceHostAdapter:
    return ReferenceHostAdapter(host_db_sessions(app))


def csrf_from(html: str) -> str:
    match = re.search(r'name="_host_csrf" value="([^"]+)"', html)
    assert match, "page has no host CSRF field"
    return match.group(1)


def login(client: FlaskClient, email: str) -> None:
    token = csrf_from(client.get("/login").text)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORDS[email], "_host_csrf": token}
    )
    assert response.status_code == 302, response.text


def candidate_id(app: Flask, email: str) -> int:
    with host_db_sessions(app)() as session:
        return session.scalar(select(Candidate.id).where(Candidate.email == email))


def confidential_id(app: Flask) -> int:
    with host_db_sessions(app)() as session:
        return session.scalar(select(Candidate.id).where(Candidate.confidential).limit(1))


def user(app: Flask, email: str) -> HostUser:
    with host_db_sessions(app)() as session:
        u = session.scalar(select(User).where(User.email == email))
        return HostUser(str(u.id), u.name, u.email, u.is_admin)


# -- seed --------------------------------------------------------------------------


def test_seed_creates_the_documented_demo_data_once(app: Flask) -> None:
    with host_db_sessions(app)() as session:
        assert seed_demo(session) is False
        assert session.scalar(select(func.count()).select_from(User)) == len(DEMO_USERS)
        assert session.scalar(select(func.count()).select_from(Candidate)) == 50
        no_email = select(func.count()).select_from(Candidate).where(Candidate.email.is_(None))
        assert session.scalar(no_email) == 3
        confidential = session.scalars(select(Candidate).where(Candidate.confidential)).all()
        assert len(confidential) == 2
        assert {c.owner.email for c in confidential} == {"rita@acme.test"}
        assert session.scalar(select(func.count()).select_from(Contact)) == 10


def test_secret_key_is_generated_once_and_private(tmp_path: Path) -> None:
    config = {"INTEGRATED_EMAIL": False, "INSTANCE_PATH": str(tmp_path)}
    first = create_app(config).config["SECRET_KEY"]
    assert create_app(config).config["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


# -- sign-in and pages ---------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/candidates",
        "/candidates/1",
        "/contacts",
        "/contacts/1",
        "/settings",
        "/admin/plugins",
    ],
)
def test_pages_send_anonymous_users_to_sign_in(app: Flask, path: str) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 302
    assert response.location.startswith("/login")


def test_login_and_logout(app: Flask) -> None:
    client = app.test_client()
    login(client, "rita@acme.test")
    page = client.get("/candidates")
    assert page.status_code == 200
    assert "Rita Recruiter" in page.text

    client.post("/logout", data={"_host_csrf": csrf_from(page.text)})
    assert client.get("/candidates").status_code == 302


def test_wrong_password_is_refused_with_a_message(app: Flask) -> None:
    client = app.test_client()
    token = csrf_from(client.get("/login").text)
    response = client.post(
        "/login", data={"email": "rita@acme.test", "password": "nope", "_host_csrf": token}
    )
    assert response.status_code == 200
    assert "do not match" in response.text


def test_host_post_without_csrf_token_is_refused(app: Flask) -> None:
    client = app.test_client()
    response = client.post("/login", data={"email": "rita@acme.test", "password": "rita123"})
    assert response.status_code == 400


def test_candidate_list_shows_all_fifty_to_an_admin(app: Flask) -> None:
    client = app.test_client()
    login(client, "admin@acme.test")
    page = client.get("/candidates").text
    assert page.count('name="candidate_ids"') == 50
    assert "mailto:amara.okafor@candidates.test" in page


def test_candidate_list_hides_others_confidential_candidates(app: Flask) -> None:
    client = app.test_client()
    login(client, "rob@acme.test")
    assert client.get("/candidates").text.count('name="candidate_ids"') == 48


@pytest.mark.parametrize(
    ("email", "status"), [("rob@acme.test", 404), ("rita@acme.test", 200), ("admin@acme.test", 200)]
)
def test_confidential_candidate_page_only_for_owner_and_admins(
    app: Flask, email: str, status: int
) -> None:
    client = app.test_client()
    login(client, email)
    assert client.get(f"/candidates/{confidential_id(app)}").status_code == status


def test_recruiter_gets_403_on_plugin_management(app: Flask) -> None:
    client = app.test_client()
    login(client, "rob@acme.test")
    assert client.get("/admin/plugins").status_code == 403
    assert "Manage plugins and add-ons" not in client.get("/candidates").text


def test_note_form_adds_a_note_shown_newest_first(app: Flask) -> None:
    client = app.test_client()
    login(client, "rita@acme.test")
    cid = candidate_id(app, "amara.okafor@candidates.test")
    page = client.get(f"/candidates/{cid}").text
    client.post(
        f"/candidates/{cid}/notes",
        data={"text": "Second call booked.", "_host_csrf": csrf_from(page)},
    )
    page = client.get(f"/candidates/{cid}").text
    assert page.index("Second call booked.") < page.index("Phone screen went well.")


# -- with an add-on mounted (a stand-in that speaks the add-on's API) -----------------------


class StandInAddon:
    manifest: ClassVar[dict[str, str]] = {
        "id": "integrated-email",
        "name": "Integrated email",
        "version": "0.1.0",
        "description": "Connect each recruiter's own mailbox.",
    }

    def __init__(self) -> None:
        self.active = False

    def is_active(self) -> bool:
        return self.active

    def set_active(self, active: bool) -> None:
        self.active = active

    def menu_entries(self) -> list[dict[str, str]]:
        if not self.active:
            return []
        return [{"label": "Integrated email", "url": "/integrated-email/settings"}]

    def email_link(self, address: str, record_ref: RecordRef | None = None) -> str:
        return f"/integrated-email/compose?to={address}&record={record_ref}"

    def record_panels(self, ref: RecordRef) -> list[Markup]:
        return [Markup('<section id="panel">mail for {}</section>').format(ref)]


def test_admin_activates_addon_and_host_shows_its_entries(app: Flask) -> None:
    addon = StandInAddon()
    app.extensions["integrated_email"] = addon
    app.jinja_env.globals["integrated_email"] = addon
    client = app.test_client()
    login(client, "admin@acme.test")

    page = client.get("/admin/plugins").text
    assert "Inactive" in page and "Email selected" not in client.get("/candidates").text
    response = client.post(
        "/admin/plugins/integrated-email/activate",
        data={"_host_csrf": csrf_from(page)},
        follow_redirects=True,
    )
    assert "Find it under Settings &gt; Integrated email." in response.text
    assert addon.active

    candidates = client.get("/candidates").text
    assert "Email selected" in candidates
    assert 'action="/integrated-email/bulk/new"' in candidates
    assert 'href="/integrated-email/settings"' in candidates
    assert "/integrated-email/compose?to=amara.okafor@candidates.test" in candidates
    cid = candidate_id(app, "amara.okafor@candidates.test")
    assert (
        f'<section id="panel">mail for candidate:{cid}</section>'
        in client.get(f"/candidates/{cid}").text
    )


# -- the HostAdapter --------------------------------------------------------------------


def test_adapter_satisfies_the_protocol(adapter: ReferenceHostAdapter) -> None:
    assert isinstance(adapter, HostAdapter)
    assert adapter.base_template == "host/layout.html"


def test_records_by_email_is_case_insensitive_and_batched(
    app: Flask, adapter: ReferenceHostAdapter
) -> None:
    statements: list[str] = []
    from sqlalchemy import event

    engine = app.extensions["host_ats.db"].engine
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with app.test_request_context():
        found = adapter.records_by_email(
            ["Amara.Okafor@CANDIDATES.test", "harriet.sloane@clients.test", "nobody@x.test"]
        )
    assert sorted(found) == ["amara.okafor@candidates.test", "harriet.sloane@clients.test"]
    (candidate,) = found["amara.okafor@candidates.test"]
    assert candidate.ref.kind == "candidate" and candidate.first_name == "Amara"
    assert candidate.url == f"/candidates/{candidate.ref.id}"
    assert found["harriet.sloane@clients.test"][0].ref.kind == "contact"
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


def test_records_by_email_lists_every_record_sharing_an_address(
    app: Flask, adapter: ReferenceHostAdapter
) -> None:
    with host_db_sessions(app)() as session:
        session.add(
            Contact(
                first_name="Amara",
                last_name="Okafor",
                company="Contoso Ltd",
                email="AMARA.OKAFOR@candidates.test",
            )
        )
        session.commit()
    with app.app_context():
        records = adapter.records_by_email(["amara.okafor@candidates.test"])
    kinds = sorted(r.ref.kind for r in records["amara.okafor@candidates.test"])
    assert kinds == ["candidate", "contact"]


def test_users_by_email(app: Flask, adapter: ReferenceHostAdapter) -> None:
    with app.app_context():
        found = adapter.users_by_email(["RITA@acme.test", "stranger@acme.test"])
        assert list(found) == ["rita@acme.test"]
        assert found["rita@acme.test"].name == "Rita Recruiter"
        assert not found["rita@acme.test"].is_admin
        assert adapter.get_user(found["rita@acme.test"].id) == found["rita@acme.test"]
        assert adapter.get_user("999") is None and adapter.get_user("x") is None
        assert [u.email for u in adapter.list_users() if u.is_admin] == ["admin@acme.test"]


def test_current_user_follows_flask_login(app: Flask, adapter: ReferenceHostAdapter) -> None:
    with app.test_request_context():
        assert adapter.current_user() is None
    client = app.test_client()
    login(client, "rob@acme.test")
    with client:
        client.get("/candidates")
        assert adapter.current_user() == user(app, "rob@acme.test")


def test_add_note_is_idempotent_by_key(app: Flask, adapter: ReferenceHostAdapter) -> None:
    cid = candidate_id(app, "amara.okafor@candidates.test")
    ref = RecordRef("candidate", str(cid))
    with app.app_context():
        adapter.add_note(ref, None, "Email received: Hello", key="ie:msg:1")
        adapter.add_note(ref, None, "Email received: Hello", key="ie:msg:1")
        adapter.add_note(ref, user(app, "rita@acme.test").id, "Email sent: Re", key="ie:msg:2")
    with host_db_sessions(app)() as session:
        notes = session.scalars(select(Note).where(Note.key.like("ie:%"))).all()
    assert sorted(n.key for n in notes) == ["ie:msg:1", "ie:msg:2"]
    assert {n.record_id for n in notes} == {cid}


def test_search_records_matches_names_and_addresses(
    app: Flask, adapter: ReferenceHostAdapter
) -> None:
    with app.app_context():
        assert [r.name for r in adapter.search_records("amara okafor")] == ["Amara Okafor"]
        assert [r.ref.kind for r in adapter.search_records("clients.test", limit=50)] == [
            "contact"
        ] * 10
        assert len(adapter.search_records("a", limit=5)) == 5
        assert adapter.search_records("%") == []
        assert adapter.search_records("   ") == []


def test_may_view_record_follows_confidentiality(app: Flask, adapter: ReferenceHostAdapter) -> None:
    secret = RecordRef("candidate", str(confidential_id(app)))
    public = RecordRef("candidate", str(candidate_id(app, "amara.okafor@candidates.test")))
    with app.app_context():
        rob, rita, admin = (
            user(app, e) for e in ("rob@acme.test", "rita@acme.test", "admin@acme.test")
        )
        assert not adapter.may_view_record(rob, secret)
        assert adapter.may_view_record(rita, secret)
        assert adapter.may_view_record(admin, secret)
        assert adapter.may_view_record(rob, public)
        assert adapter.may_view_record(rob, RecordRef("contact", "1"))
        assert not adapter.may_view_record(admin, RecordRef("candidate", "9999"))


def test_a_team_candidate_is_for_that_team_and_admins(app: Flask,
                                                      adapter: ReferenceHostAdapter) -> None:
    """The per-team ACL: Rita is in "north", Rob in "south"."""
    cid = candidate_id(app, "amara.okafor@candidates.test")
    with host_db_sessions(app)() as session:
        session.get(Candidate, cid).team = "north"
        session.commit()
    ref = RecordRef("candidate", str(cid))
    with app.app_context():
        rob, rita, admin = (
            user(app, e) for e in ("rob@acme.test", "rita@acme.test", "admin@acme.test")
        )
        assert adapter.may_view_records(rob, [ref]) == set()
        assert not adapter.may_view_record(rob, ref)
        assert adapter.may_view_records(rita, [ref]) == {ref}
        assert adapter.may_view_record(admin, ref)
    rob_client = app.test_client()
    login(rob_client, "rob@acme.test")
    assert rob_client.get(f"/candidates/{cid}").status_code == 404
    assert "amara.okafor@" not in rob_client.get("/candidates").text
    rita_client = app.test_client()
    login(rita_client, "rita@acme.test")
    assert rita_client.get(f"/candidates/{cid}").status_code == 200


def test_delete_note_removes_only_the_keyed_note(app: Flask, adapter: ReferenceHostAdapter) -> None:
    ref = RecordRef("candidate", str(candidate_id(app, "amara.okafor@candidates.test")))
    with app.app_context():
        adapter.add_note(ref, None, "Email received: one", key="ie:del:1")
        adapter.add_note(ref, None, "Email received: two", key="ie:del:2")
        adapter.delete_note(ref, "ie:del:1")
        adapter.delete_note(ref, "ie:del:missing")  # nothing there: no error
        adapter.add_note(ref, None, "An email was exchanged", key="ie:del:1")  # key free again
    with host_db_sessions(app)() as session:
        texts = {n.key: n.text for n in session.scalars(select(Note).where(
            Note.key.like("ie:del:%")))}
    assert texts == {"ie:del:1": "An email was exchanged", "ie:del:2": "Email received: two"}


def test_get_records_returns_known_refs_only(app: Flask, adapter: ReferenceHostAdapter) -> None:
    cid = candidate_id(app, "amara.okafor@candidates.test")
    wanted = [
        RecordRef("candidate", str(cid)),
        RecordRef("contact", "1"),
        RecordRef("candidate", "9999"),
        RecordRef("candidate", "abc"),
    ]
    with app.app_context():
        records = adapter.get_records(wanted)
    assert set(records) == set(wanted[:2])
    assert records[wanted[0]].email == "amara.okafor@candidates.test"
    assert records[wanted[1]].url == "/contacts/1"
