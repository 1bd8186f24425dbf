"""Privacy beyond the matrix: the host's record access inside the one sharing rule
(hostile, on the reference host's per-team ACL), what the add-on's notes say and
how they are made brief later, notes of links made by hand, and a removed
mailbox's notes."""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import func, insert, select

from plugin.host import RecordRef
from plugin.jobs.dispatcher import dispatch
from plugin.models import Attachment, Mailbox, Message, RecordLink
from plugin.models.notes import BRIEF, FULL, HostNote
from plugin.sharing import rule
from tests.conftest import TEST_KEY
from tests.helpers import CSRF, complete_settings, form, make_mailbox, signed_in


def _mail(sender: str, to: str, subject: str, word: str = "", cc: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    if cc:
        msg["Cc"] = cc
    msg["Date"], msg["Message-ID"] = formatdate(), make_msgid(domain="privacy.test")
    msg.set_content(f"Private body {word or subject}.")
    msg.add_attachment(b"%PDF-1.4 cv", maintype="application", subtype="pdf",
                       filename="cv.pdf")
    return msg.as_bytes()


def _fetch(app, addon) -> None:
    with app.app_context():
        dispatch(addon, wait=True)


def _due(addon) -> None:
    with addon.session() as s:
        for mb in s.scalars(select(Mailbox)):
            mb.next_fetch_at = None
        s.commit()


def _message_id(addon, subject: str) -> int:
    with addon.session() as s:
        return s.scalar(select(Message.id).where(Message.subject == subject))


# ----------------------------------------------------- record access in the rule


def test_custom_mail_reaches_only_viewers_who_may_open_the_ticked_record(mini, dovecot):
    """Linked to a ticked candidate of another team and to two open contacts: the
    other team's recruiter does not see it (the share is through the ticked record);
    the record access is bound as the denied list here (1 denied, 2 open)."""
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test", team="north")
    rob = host.add_person("Rob", "rob@acme.test", team="south")
    ann = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    ann.team = "north"
    host.add_record("contact", "Cy", "Dunn", "cy@client.test")
    host.add_record("contact", "Di", "Eve", "di@client.test")
    tag = uuid.uuid4().hex[:6]
    user = dovecot.add_user(f"cu{tag}", "pw")
    rob_user = dovecot.add_user(f"cr{tag}", "pw")
    make_mailbox(addon, rita.get_id(), dovecot, user, sharing="custom")
    make_mailbox(addon, rob.get_id(), dovecot, rob_user)
    subject = f"Panel {tag}"
    dovecot.deliver(user, _mail("ann@cand.test", user.email, subject,
                                cc="cy@client.test, di@client.test"))
    _fetch(app, addon)
    signed_in(app, rita).post(f"/integrated-email/records/candidate/{ann.num}/share",
                              data=form(shared="on"))
    mid = _message_id(addon, subject)
    with app.app_context(), addon.session() as s:
        access = rule.record_access(s, addon.host, addon.host.get_user(rob.get_id()),
                                    [Message.id == mid])
    assert access.denied == {("candidate", str(ann.num))} and len(access.allowed) == 2
    client = signed_in(app, rob)
    assert client.get(f"/integrated-email/mail/messages/{mid}").status_code == 404
    assert subject not in client.get(f"/integrated-email/mail/search?q={tag}").get_data(
        as_text=True)
    assert subject not in client.get("/integrated-email/records/contact/2/timeline").get_data(
        as_text=True)
    # Ann opened to every team: now the share reaches Rob, through her record (on her
    # timeline; a record's timeline shows what is shared through that record).
    ann.team = None
    assert client.get(f"/integrated-email/mail/messages/{mid}").status_code == 200
    assert subject in client.get(f"/integrated-email/mail/search?q={tag}").get_data(
        as_text=True)
    assert subject in client.get(f"/integrated-email/records/candidate/{ann.num}/timeline"
                                 ).get_data(as_text=True)


def test_a_link_made_after_the_host_was_asked_stays_closed(mini, dovecot):
    """The denied form binds the highest link id asked about: a link made between the
    question and the query (another worker linking new mail) opens nothing."""
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    rob = host.add_person("Rob", "rob@acme.test")
    ann = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    tag = uuid.uuid4().hex[:6]
    user = dovecot.add_user(f"lk{tag}", "pw")
    make_mailbox(addon, rita.get_id(), dovecot, user, sharing="public")
    dovecot.deliver(user, _mail("ann@cand.test", user.email, f"First {tag}"))
    dovecot.deliver(user, _mail("nobody@else.test", user.email, f"Later {tag}"))
    _fetch(app, addon)
    first, later = _message_id(addon, f"First {tag}"), _message_id(addon, f"Later {tag}")
    viewer = addon.host.get_user(rob.get_id())
    with app.app_context(), addon.session() as s:
        scope = [Message.id.in_([first, later])]
        access = rule.record_access(s, addon.host, viewer, scope)
        assert access.denied == frozenset()  # the denied form, nothing denied
        s.execute(insert(RecordLink).values(message_id=later, record_kind="candidate",
                                            record_id=str(ann.num), how="manual"))
        s.commit()
        seen = set(s.scalars(select(Message.id).where(
            *scope, rule.visible(viewer, None, access))))
        assert seen == {first}
        fresh = rule.record_access(s, addon.host, viewer, scope)
        assert set(s.scalars(select(Message.id).where(
            *scope, rule.visible(viewer, None, fresh)))) == {first, later}


def _reference_host(tmp_path, dovecot, db_url=None):
    """The reference host with the add-on (db_url None: in the host's own SQLite file)."""
    from examples.host_ats import create_app
    from examples.host_ats.seed import seed_demo

    app = create_app({
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'host.sqlite'}",
        **({"IE_DATABASE_URL": db_url} if db_url else {}),
        "IE_SECRET_KEYS": TEST_KEY, "IE_SCHEDULER": "off",
        "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535,localhost:1024-65535",
        "IE_CA_FILE": dovecot.ca_file, "IE_MAIL_TIMEOUT": 3.0,
        "IE_BLOB_DIR": str(tmp_path / "blobs"),
    })
    with app.extensions["host_ats.db"].sessions() as s:
        seed_demo(s)
        s.commit()
    addon = app.extensions["integrated_email"]
    addon.migrate()
    addon.set_active(True)
    return app, addon


def _host_login(app, email: str, password: str):
    client = app.test_client()
    token = re.search(r'name="_host_csrf" value="([^"]+)"',
                      client.get("/login").get_data(as_text=True)).group(1)
    resp = client.post("/login", data={"email": email, "password": password,
                                       "_host_csrf": token})
    assert resp.status_code == 302
    with client.session_transaction() as sess:
        from plugin.csrf import SESSION_KEY
        sess[SESSION_KEY] = CSRF
    return client


def test_hostile_a_recruiter_of_another_team_finds_nothing_of_that_candidate(
        tmp_path, dovecot, db_url):
    """Reference host, per-team ACL: Rob (south) gets 404 on a north candidate's page;
    Rita's Custom-shared mail with that candidate is nowhere for him: not in webmail
    search, not in "Shared with me", not by id, attachment, reply or timeline."""
    from examples.host_ats.models import Candidate, User

    app, addon = _reference_host(tmp_path, dovecot, db_url)
    try:
        complete_settings(addon)
        with app.extensions["host_ats.db"].sessions() as s:
            cand = s.scalar(select(Candidate).where(Candidate.email.is_not(None),
                                                    Candidate.confidential.is_(False))
                            .order_by(Candidate.id).limit(1))
            cand.team = "north"
            cid, email = cand.id, cand.email
            ids = {u.email: str(u.id) for u in s.scalars(select(User))}
            s.commit()
        tag = uuid.uuid4().hex[:6]
        rita_box, rob_box = dovecot.add_user(f"hr{tag}", "pw"), dovecot.add_user(f"ho{tag}", "pw")
        make_mailbox(addon, ids["rita@acme.test"], dovecot, rita_box, sharing="custom")
        make_mailbox(addon, ids["rob@acme.test"], dovecot, rob_box)
        subject = f"Offer letter {tag}"
        dovecot.deliver(rita_box, _mail(email, rita_box.email, subject, f"secret{tag}"))
        _fetch(app, addon)
        rita = _host_login(app, "rita@acme.test", "rita123")
        resp = rita.post(f"/integrated-email/records/candidate/{cid}/share",
                         data=form(shared="on"))
        assert resp.status_code == 200
        mid = _message_id(addon, subject)
        with addon.session() as s:
            att = s.scalar(select(Attachment.id).where(Attachment.message_id == mid))

        def rob_sees() -> dict[str, bool]:
            rob = _host_login(app, "rob@acme.test", "rob123")
            return {
                "page": rob.get(f"/candidates/{cid}").status_code == 200,
                "search": subject in rob.get(
                    f"/integrated-email/mail/search?q=secret{tag}").get_data(as_text=True),
                "shared": subject in rob.get(
                    "/integrated-email/mail/folders/shared").get_data(as_text=True),
                "view": rob.get(f"/integrated-email/mail/messages/{mid}").status_code == 200,
                "attachment": rob.get(
                    f"/integrated-email/mail/attachments/{att}").status_code == 200,
                "reply": rob.get(f"/integrated-email/compose/reply/{mid}").status_code == 200,
                "timeline": rob.get(f"/integrated-email/records/candidate/{cid}/timeline")
                .status_code == 200,
                "record view": rob.get(f"/integrated-email/records/candidate/{cid}/messages/"
                                       f"{mid}").status_code == 200,
            }

        assert rob_sees() == dict.fromkeys(rob_sees(), False)
        # The same mail once the candidate is open to every team: Rob sees all of it,
        # so every refusal above was the record access.
        with app.extensions["host_ats.db"].sessions() as s:
            s.get(Candidate, cid).team = None
            s.commit()
        assert rob_sees() == dict.fromkeys(rob_sees(), True)
    finally:
        addon.session.remove()
        addon.engine.dispose()


# ------------------------------------------------------------------------- notes


def test_a_private_mailbox_writes_a_brief_note_whose_link_applies_the_rule(mini, dovecot):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    rob = host.add_person("Rob", "rob@acme.test")
    ann = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    tag = uuid.uuid4().hex[:6]
    user = dovecot.add_user(f"pn{tag}", "pw")
    make_mailbox(addon, rita.get_id(), dovecot, user)  # private
    subject = f"Salary expectations {tag}"
    dovecot.deliver(user, _mail("Ann Lee <ann@cand.test>", user.email, subject, "ninety"))
    _fetch(app, addon)
    (note,) = host.notes_on(RecordRef("candidate", str(ann.num)))
    assert subject not in note and "ninety" not in note and "Ann" not in note
    assert note.startswith("An email was exchanged")
    url = re.search(r"(/integrated-email/records/candidate/\d+/messages/\d+)", note).group(1)
    assert subject in signed_in(app, rita).get(url).get_data(as_text=True)
    assert signed_in(app, rob).get(url).status_code == 404
    with addon.session() as s:
        assert s.scalars(select(HostNote.detail)).all() == [BRIEF]


def test_public_mail_writes_a_full_note_unless_exclusions_apply(mini, dovecot):
    app, host, addon = mini
    complete_settings(addon, public_excluded_domains="secret.test")
    rita = host.add_person("Rita", "rita@acme.test")
    ann = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    bo = host.add_record("candidate", "Bo", "Chan", "bo@secret.test")
    tag = uuid.uuid4().hex[:6]
    user = dovecot.add_user(f"pf{tag}", "pw")
    make_mailbox(addon, rita.get_id(), dovecot, user, sharing="public")
    dovecot.deliver(user, _mail("ann@cand.test", user.email, f"Open {tag}"))
    dovecot.deliver(user, _mail("bo@secret.test", user.email, f"Excluded {tag}"))
    _fetch(app, addon)
    assert f"Open {tag}" in host.notes_on(RecordRef("candidate", str(ann.num)))[0]
    (excluded,) = host.notes_on(RecordRef("candidate", str(bo.num)))
    assert f"Excluded {tag}" not in excluded and "bo@secret.test" not in excluded
    # An admin excludes a user from public mail: that user may open Ann's record, so
    # her note is made brief at the mailbox's next fetch.
    rob = host.add_person("Rob", "rob@acme.test")
    complete_settings(addon, public_excluded_users=rob.get_id())
    _due(addon)
    _fetch(app, addon)
    (now,) = host.notes_on(RecordRef("candidate", str(ann.num)))
    assert f"Open {tag}" not in now and now.startswith("An email was exchanged")


def test_a_mailbox_leaving_public_has_its_notes_made_brief_at_the_next_fetch(mini, dovecot):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    ann = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    tag = uuid.uuid4().hex[:6]
    user = dovecot.add_user(f"pb{tag}", "pw")
    box = make_mailbox(addon, rita.get_id(), dovecot, user, sharing="public")
    dovecot.deliver(user, _mail("ann@cand.test", user.email, f"Was public {tag}"))
    _fetch(app, addon)
    ref = RecordRef("candidate", str(ann.num))
    assert f"Was public {tag}" in host.notes_on(ref)[0]
    with addon.session() as s:
        s.get(Mailbox, box).sharing = "private"
        s.commit()
    _due(addon)
    _fetch(app, addon)
    (note,) = host.notes_on(ref)
    assert f"Was public {tag}" not in note and note.startswith("An email was exchanged")
    with addon.session() as s:
        assert s.scalars(select(HostNote.detail)).all() == [BRIEF]


def _earlier_full_notes(app, host, addon, dovecot, tag):
    """Notes as the add-on wrote them before 0009: full, whatever the sharing."""
    from plugin.linking.notes import full_text

    rita = host.add_person("Rita", "rita@acme.test")
    ann = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    user = dovecot.add_user(f"cl{tag}", "pw")
    make_mailbox(addon, rita.get_id(), dovecot, user)  # private
    dovecot.deliver(user, _mail("ann@cand.test", user.email, f"Old note {tag}"))
    _fetch(app, addon)
    ref = RecordRef("candidate", str(ann.num))
    with addon.session() as s:
        note = s.scalars(select(HostNote)).one()
        msg = s.get(Message, note.message_id)
        host.notes[note.note_key] = (ref, rita.get_id(), full_text(msg, user.email))
        note.detail = FULL
        s.commit()
    assert f"Old note {tag}" in host.notes_on(ref)[0]
    return ref


def test_cli_redact_notes_makes_earlier_full_notes_brief(mini, dovecot):
    from plugin.cli import cli_group

    app, host, addon = mini
    complete_settings(addon)
    tag = uuid.uuid4().hex[:6]
    ref = _earlier_full_notes(app, host, addon, dovecot, tag)
    runner = app.test_cli_runner()
    result = runner.invoke(cli_group, ["redact-notes"])
    assert result.exit_code == 0, result.output
    assert "Made 1 host notes brief" in result.output
    (note,) = host.notes_on(ref)
    assert f"Old note {tag}" not in note and note.startswith("An email was exchanged")
    again = runner.invoke(cli_group, ["redact-notes"])
    assert "Made 0 host notes brief" in again.output and host.notes_on(ref) == [note]


def test_cli_redact_notes_says_plainly_when_the_host_cannot_delete_notes(mini, dovecot):
    from plugin.cli import cli_group

    app, host, addon = mini
    complete_settings(addon)
    tag = uuid.uuid4().hex[:6]
    ref = _earlier_full_notes(app, host, addon, dovecot, tag)
    host.delete_note = None  # a 1.0 host: no delete_note
    result = app.test_cli_runner().invoke(cli_group, ["redact-notes"])
    assert result.exit_code != 0
    assert "1 notes still carry a subject" in result.output and "delete_note" in result.output
    assert f"Old note {tag}" in host.notes_on(ref)[0]  # nothing lost, nothing pretended


def test_migration_0009_records_the_notes_written_before_it(db_url):
    """Links made before 0009 wrote full notes: the upgrade records them as such, under
    the keys they were written with (importer and sending), so they can be made brief."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from plugin.migrations import upgrade
    from plugin.sending.sent_copy import note_key as sent_key

    engine = create_engine(db_url)
    try:
        upgrade(engine, "0012")
        with Session(engine) as s:
            mb = Mailbox(user_id="u1", account_name="W", email="w@x.test", is_active=True,
                         sharing="private", delete_policy="leave", out_host="smtp.x.test",
                         out_port=465, out_security="ssl")
            s.add(mb)
            s.flush()
            for key, origin, how in (("k-synced", "synced", "auto"), ("k-ats", "ats", "sent"),
                                     ("k-manual", "synced", "manual")):
                m = Message(mailbox_id=mb.id, message_key=key, message_id_header=key,
                            blob_sha256="0" * 64, origin=origin, folder_role="inbox")
                s.add(m)
                s.flush()
                s.add(RecordLink(message_id=m.id, record_kind="candidate", record_id="7",
                                 how=how))
            s.commit()
        upgrade(engine)
        with Session(engine) as s:
            rows = {(n.note_key, n.detail) for n in s.scalars(select(HostNote))}
        ref = RecordRef("candidate", "7")
        # A link made by hand wrote no note before 0009: none is recorded for it.
        assert rows == {("integrated_email:k-synced:candidate:7", FULL),
                        (sent_key("k-ats", ref), FULL)}
    finally:
        engine.dispose()


# ------------------------------------------------------------ links made by hand


def test_a_link_made_by_hand_writes_a_note_by_the_same_rule(mini, dovecot):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    ann = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    ref = RecordRef("candidate", str(ann.num))
    tag = uuid.uuid4().hex[:6]
    private, public = dovecot.add_user(f"mp{tag}", "pw"), dovecot.add_user(f"mq{tag}", "pw")
    make_mailbox(addon, rita.get_id(), dovecot, private)
    make_mailbox(addon, rita.get_id(), dovecot, public, sharing="public")
    # From Ann's home address: nothing links it automatically.
    dovecot.deliver(private, _mail("ann@home.test", private.email, f"Hidden {tag}"))
    dovecot.deliver(public, _mail("ann@home.test", public.email, f"Shown {tag}"))
    _fetch(app, addon)
    assert host.notes_on(ref) == []
    client = signed_in(app, rita)
    for subject in (f"Hidden {tag}", f"Shown {tag}"):
        mid = _message_id(addon, subject)
        for _ in range(2):  # twice: still one note
            resp = client.post(f"/integrated-email/mail/messages/{mid}/records",
                               data=form(ref=str(ref)))
            assert resp.status_code == 302
    notes = sorted(host.notes_on(ref))
    assert len(notes) == 2
    brief, full = sorted(notes, key=lambda n: n.startswith("An email"), reverse=True)
    assert brief.startswith("An email was exchanged") and f"Hidden {tag}" not in brief
    assert f"Shown {tag}" in full and "ann@home.test" in full
    # Unlinking by hand takes the link's note away again.
    with addon.session() as s:
        link_id = s.scalar(select(RecordLink.id).where(
            RecordLink.message_id == _message_id(addon, f"Shown {tag}")))
    resp = client.post(f"/integrated-email/mail/messages/{_message_id(addon, f'Shown {tag}')}"
                       f"/records/{link_id}/delete", data=form())
    assert resp.status_code == 302
    assert host.notes_on(ref) == [brief]


# ------------------------------------------------------------- removing a mailbox


def _delete_page(client, box: int) -> str:
    resp = client.get(f"/integrated-email/mailboxes/{box}/delete")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_removing_a_mailbox_removes_or_keeps_its_notes_as_chosen(mini, dovecot):
    """Issue 15 point 9: the same account added twice shares one note per email;
    removing one of the two (notes removed) keeps the note the other still holds."""
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    ann = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    bo = host.add_record("candidate", "Bo", "Chan", "bo@cand.test")
    tag = uuid.uuid4().hex[:6]
    shared_account, other = dovecot.add_user(f"ra{tag}", "pw"), dovecot.add_user(f"rb{tag}", "pw")
    twin_a = make_mailbox(addon, rita.get_id(), dovecot, shared_account)
    twin_b = make_mailbox(addon, rita.get_id(), dovecot, shared_account, account_name="Again")
    alone = make_mailbox(addon, rita.get_id(), dovecot, other, account_name="Other")
    dovecot.deliver(shared_account, _mail("ann@cand.test", shared_account.email, f"Twice {tag}"))
    dovecot.deliver(other, _mail("bo@cand.test", other.email, f"Once {tag}"))
    _fetch(app, addon)
    ann_ref, bo_ref = RecordRef("candidate", str(ann.num)), RecordRef("candidate", str(bo.num))
    assert len(host.notes_on(ann_ref)) == 1 and len(host.notes_on(bo_ref)) == 1
    client = signed_in(app, rita)

    page = _delete_page(client, alone)
    assert "wrote 1 note on candidates and contacts" in page
    assert 'value="keep" checked' in page and 'value="remove"' in page
    assert client.post(f"/integrated-email/mailboxes/{alone}/delete",
                       data=form(notes="remove")).status_code == 302
    assert host.notes_on(bo_ref) == []

    # Its twin holds the same note: removing this one (notes removed) leaves it.
    assert "note" not in _delete_page(client, twin_b).split("<form", 1)[1].split("<button")[0]
    client.post(f"/integrated-email/mailboxes/{twin_b}/delete", data=form(notes="remove"))
    assert len(host.notes_on(ann_ref)) == 1
    # The last one, notes kept.
    assert "wrote 1 note" in _delete_page(client, twin_a)
    client.post(f"/integrated-email/mailboxes/{twin_a}/delete", data=form(notes="keep"))
    assert len(host.notes_on(ann_ref)) == 1
    with addon.session() as s:
        assert s.scalar(select(func.count()).select_from(Mailbox)) == 0
        assert s.scalar(select(func.count()).select_from(HostNote)) == 0


def test_a_host_that_cannot_delete_notes_is_told_on_the_delete_page(mini, dovecot):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    ann = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    tag = uuid.uuid4().hex[:6]
    user = dovecot.add_user(f"nd{tag}", "pw")
    box = make_mailbox(addon, rita.get_id(), dovecot, user)
    dovecot.deliver(user, _mail("ann@cand.test", user.email, f"Stays {tag}"))
    _fetch(app, addon)
    host.delete_note = None  # contract 1.0 without the optional method
    client = signed_in(app, rita)
    page = _delete_page(client, box)
    assert "They stay on the records" in page and 'value="remove"' not in page
    client.post(f"/integrated-email/mailboxes/{box}/delete", data=form(notes="remove"))
    assert len(host.notes_on(RecordRef("candidate", str(ann.num)))) == 1


def test_notes_when_the_add_on_shares_the_hosts_sqlite_file(tmp_path, dovecot):
    """One SQLite file for host and add-on (the reference host's default): the add-on
    never holds the write lock while the host writes or deletes a note, so a batch of
    several notes, making them brief and unlinking all go through."""
    from examples.host_ats.models import Candidate, Note, User

    app, addon = _reference_host(tmp_path, dovecot)
    try:
        complete_settings(addon)
        sessions = app.extensions["host_ats.db"].sessions
        with sessions() as s:
            cands = s.scalars(select(Candidate).where(Candidate.email.is_not(None))
                              .order_by(Candidate.id).limit(3)).all()
            rita_id = s.scalar(select(User.id).where(User.email == "rita@acme.test"))
        tag = uuid.uuid4().hex[:6]
        user = dovecot.add_user(f"sf{tag}", "pw")
        box = make_mailbox(addon, str(rita_id), dovecot, user, sharing="public")
        for c in cands:
            dovecot.deliver(user, _mail(c.email, user.email, f"Hello {c.id} {tag}"))
        _fetch(app, addon)

        def texts() -> list[str]:
            with sessions() as s:
                return list(s.scalars(select(Note.text).where(Note.key.is_not(None))))

        assert len(texts()) == 3 and all(tag in t for t in texts())  # Public: full
        with addon.session() as s:
            s.get(Mailbox, box).sharing = "private"
            s.commit()
        _due(addon)
        _fetch(app, addon)
        assert len(texts()) == 3 and not any(tag in t for t in texts())
        rita = _host_login(app, "rita@acme.test", "rita123")
        with addon.session() as s:
            links = s.execute(select(RecordLink.id, RecordLink.message_id)).all()
        for link_id, mid in links:
            resp = rita.post(f"/integrated-email/mail/messages/{mid}/records/{link_id}/delete",
                             data=form())
            assert resp.status_code == 302
        assert texts() == []
    finally:
        addon.session.remove()
        addon.engine.dispose()
