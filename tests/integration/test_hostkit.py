"""Host contract 2.0 and the Flask-ecosystem fit: Flask-SQLAlchemy's URL, no WAL on a
shared file, the Alembic filter, Flask-WTF's CSRF, 255-character ids."""

from __future__ import annotations

import sqlite3
import warnings

import pytest
from flask import Flask
from sqlalchemy import MetaData, Table, Column, Integer, create_engine, select

from plugin import IntegratedEmail
from plugin.host import HostRecord, HostUser, RecordKind, RecordRef
from plugin.hosting import Host
from tests.conftest import TEST_KEY
from tests.hosts.mini_host import MiniHost


class TwoHost(MiniHost):
    """MiniHost upgraded to 2.0: a custom kind and only the batched permission."""

    host_api = "2.0"
    record_kinds = (RecordKind("candidate"), RecordKind("placement", "placement"))

    def may_view_records(self, user, refs):
        return {r for r in refs if r.id != "secret"}


def _app(tmp_path, **cfg) -> Flask:
    app = Flask("t", instance_path=str(tmp_path / "inst"))
    app.config.update(IE_SECRET_KEYS=TEST_KEY, IE_SCHEDULER="off", SECRET_KEY="x", **cfg)
    return app


def test_a_1_0_host_warns_and_gets_every_2_0_method():
    with pytest.warns(DeprecationWarning, match="may_view_records"):
        host = Host(MiniHost())
    person = host.adapter.add_person("Ann", "ann@example.test")
    rec = host.adapter.add_record("candidate", "A", "B", "a@x.test")
    user = host.get_user(person.get_id())
    assert host.may_view_records(user, [RecordRef("candidate", str(rec.num)),
                                        RecordRef("other", "1")]) == \
        {RecordRef("candidate", str(rec.num))}
    assert host.users_by_email(["ANN@example.test"])["ann@example.test"].id == person.get_id()
    assert user.sees_admin_mail is False and user.manages_addon is False


def test_a_2_0_host_declares_kinds_and_batches_permission():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        host = Host(TwoHost())
    u = HostUser("u" * 255, "U", "u@x.test", is_admin=True, sees_admin_mail=False)
    refs = [RecordRef("placement", "1"), RecordRef("placement", "secret"),
            RecordRef("contact", "1")]  # contact is not declared by this host
    assert host.may_view_records(u, refs) == {RecordRef("placement", "1")}
    assert host.parse_ref("placement:9") == RecordRef("placement", "9")
    with pytest.raises(ValueError):
        host.parse_ref("contact:9")
    assert u.manages_addon and not u.sees_admin_mail


def test_records_carry_several_addresses_with_the_primary_first():
    r = HostRecord(RecordRef("candidate", "1"), "Ann", emails=("a@x.test", "b@x.test"))
    assert r.email == "a@x.test" and r.emails == ("a@x.test", "b@x.test")
    assert HostRecord(RecordRef("candidate", "1"), "Ann", "c@x.test").emails == ("c@x.test",)


def test_flask_sqlalchemy_relative_sqlite_path_is_the_same_file_and_keeps_its_journal(tmp_path):
    from flask_sqlalchemy import SQLAlchemy

    app = _app(tmp_path, SQLALCHEMY_DATABASE_URI="sqlite:///host.db",
               SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"timeout": 7}})
    db = SQLAlchemy(app)
    with app.app_context():
        host_url = db.engine.url
    ie = IntegratedEmail(app, host=TwoHost())
    assert ie.shares_host_database and ie.database_url == str(host_url)
    assert ie.database_url.endswith(str(tmp_path / "inst" / "host.db"))
    ie.migrate()
    mode = sqlite3.connect(tmp_path / "inst" / "host.db").execute(
        "PRAGMA journal_mode").fetchone()[0]
    assert mode == "delete"  # never switched to WAL behind the host's back
    ie.engine.dispose()


def test_host_alembic_autogenerate_proposes_no_change_to_addon_tables(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from plugin import hostkit

    url = f"sqlite:///{tmp_path}/shared.db"
    ie = IntegratedEmail(_app(tmp_path, IE_DATABASE_URL=url), host=TwoHost())
    ie.migrate()
    host_meta = MetaData()
    Table("host_person", host_meta, Column("id", Integer, primary_key=True))
    engine = create_engine(url)
    with engine.connect() as conn:
        bare = compare_metadata(MigrationContext.configure(conn), host_meta)
        ctx = MigrationContext.configure(conn, opts=hostkit.alembic_options())
        diff = compare_metadata(ctx, host_meta)
    assert any(d[0] == "remove_table" and d[1].name.startswith("ie_") for d in bare)
    assert [d[0] for d in diff] == ["add_table"] and diff[0][1].name == "host_person"
    engine.dispose()
    ie.engine.dispose()


def test_flask_wtf_csrf_protects_the_addon_with_one_token(tmp_path):
    from flask_wtf.csrf import CSRFProtect

    app = _app(tmp_path, IE_DATABASE_URL=f"sqlite:///{tmp_path}/w.db")
    CSRFProtect(app)
    IntegratedEmail(app, host=TwoHost())
    with app.test_request_context("/"):
        from flask_wtf.csrf import generate_csrf

        from plugin.csrf import csrf_token
        assert csrf_token() == generate_csrf()
    assert "integrated_email" not in app.extensions["csrf"]._exempt_blueprints


def test_ids_up_to_255_characters_are_stored(db_url, tmp_path):
    from plugin.models import Mailbox
    from plugin.sharing.rule import set_share

    ie = IntegratedEmail(_app(tmp_path, IE_DATABASE_URL=db_url), host=TwoHost())
    ie.migrate()
    uid, rid = "u" * 255, "r" * 255
    with ie.session() as s, s.begin():
        set_share(s, uid, RecordRef("placement", rid), True)
    with ie.session() as s:
        from plugin.models.sharing import RecordShare
        row = s.scalar(select(RecordShare))
        assert (row.owner_user_id, row.record_kind, row.record_id) == (uid, "placement", rid)
        assert Mailbox.__table__.c.user_id.type.length == 255
    ie.session.remove()
    ie.engine.dispose()
