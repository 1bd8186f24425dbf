"""Automatic import into candidate and contact records, through the dispatcher,
against the lab Dovecot, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from plugin.host import RecordRef
from plugin.jobs.dispatcher import dispatch
from plugin.models import Mailbox, Message, RecordLink
from tests.helpers import complete_settings, make_mailbox, raw_mail


def _fetch(app, addon) -> None:
    with app.app_context():
        dispatch(addon, wait=True)


def _make_due(addon, mailbox_id: int) -> None:
    with addon.session() as s:
        s.get(Mailbox, mailbox_id).next_fetch_at = None
        s.commit()


def test_mail_from_a_candidate_is_recorded_once(mini, dovecot, mail_user):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    cand = host.add_record("candidate", "Ann", "Lee", "ann.lee@cand.test")
    mb = make_mailbox(addon, rita.get_id(), dovecot, mail_user, sharing="public")
    dovecot.deliver(mail_user, raw_mail("Ann Lee <Ann.Lee@cand.test>", mail_user.email,
                                        "My application", "Please find my CV"))
    dovecot.deliver(mail_user, raw_mail("news@letters.test", mail_user.email, "Weekly"))
    _fetch(app, addon)
    ref = RecordRef("candidate", str(cand.num))
    notes = host.notes_on(ref)
    assert len(notes) == 1 and "My application" in notes[0] and "Ann Lee" in notes[0]
    # Fetching again, however often, adds nothing.
    for _ in range(2):
        _make_due(addon, mb)
        _fetch(app, addon)
    assert len(host.notes_on(ref)) == 1
    with addon.session() as s:
        assert s.scalar(select(func.count()).select_from(RecordLink)) == 1
        assert s.scalar(select(func.count()).select_from(Message)) == 2


def test_one_message_to_two_candidates_and_a_contact_is_on_all_three(mini, dovecot, mail_user):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    rob = host.add_person("Rob", "rob@acme.test")
    a = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    b = host.add_record("candidate", "Bo", "Chan", "bo@cand.test")
    c = host.add_record("contact", "Cy", "Dunn", "cy@client.test")
    make_mailbox(addon, rita.get_id(), dovecot, mail_user, sharing="public")
    dovecot.deliver(mail_user, raw_mail(mail_user.email, "ann@cand.test, Bo <bo@cand.test>",
                                        "Interview panel", cc="cy@client.test"))
    # Mail from another ATS user is not taken for a candidate's, even if a candidate
    # record carries the same address.
    host.add_record("candidate", "Rob", "Also", "rob@acme.test")
    dovecot.deliver(mail_user, raw_mail("rob@acme.test", mail_user.email, "Lunch?"))
    _fetch(app, addon)
    for rec in (a, b, c):
        notes = host.notes_on(RecordRef(rec.kind, str(rec.num)))
        assert len(notes) == 1 and "Interview panel" in notes[0]
        assert notes[0].startswith("Email sent to")
    assert not any("Lunch?" in n for _r, _a, n in host.notes.values())
    assert rob.email  # the ATS user exists


def test_a_reply_from_another_address_follows_the_thread(mini, dovecot, mail_user):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    cand = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    mb = make_mailbox(addon, rita.get_id(), dovecot, mail_user, sharing="public")
    # A message the ATS sent to the candidate, as the Sending feature records it.
    with addon.session() as s:
        sent = Message(mailbox_id=mb, message_key="ats-1@acme.test",
                       message_id_header="ats-1@acme.test", subject="Your interview",
                       from_addr=mail_user.email, blob_sha256="0" * 64, origin="ats",
                       direction="out", folder_role="sent", import_checked=True)
        s.add(sent)
        s.flush()
        s.add(RecordLink(message_id=sent.id, record_kind="candidate", record_id=str(cand.num),
                         how="sent"))
        s.commit()
    dovecot.deliver(mail_user, raw_mail("Ann at home <ann.private@home.test>", mail_user.email,
                                        "Re: Your interview", "Thursday works",
                                        in_reply_to="<ats-1@acme.test>"))
    _fetch(app, addon)
    notes = host.notes_on(RecordRef("candidate", str(cand.num)))
    assert len(notes) == 1 and "Re: Your interview" in notes[0]
    with addon.session() as s:
        how = s.scalars(select(RecordLink.how).join(Message).where(
            Message.subject == "Re: Your interview")).all()
        assert how == ["reply"]


def test_with_automatic_import_off_nothing_is_linked(mini, dovecot, mail_user):
    app, host, addon = mini
    complete_settings(addon, auto_import=False)
    rita = host.add_person("Rita", "rita@acme.test")
    cand = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    make_mailbox(addon, rita.get_id(), dovecot, mail_user)
    dovecot.deliver(mail_user, raw_mail("ann@cand.test", mail_user.email, "Hello"))
    _fetch(app, addon)
    assert host.notes_on(RecordRef("candidate", str(cand.num))) == []
    with addon.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 1
        assert s.scalar(select(func.count()).select_from(RecordLink)) == 0


def test_an_interrupted_import_is_swept_up_on_the_next_run(mini, dovecot, mail_user):
    """Messages stored but not yet linked (a crash between the two) get linked later."""
    from plugin.fetching import sync

    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    cand = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    mb = make_mailbox(addon, rita.get_id(), dovecot, mail_user)
    dovecot.deliver(mail_user, raw_mail("ann@cand.test", mail_user.email, "Hello"))
    with app.app_context():
        sync.sync_mailbox(addon, mb)  # stored, no linking ran: as after a crash
    assert host.notes_on(RecordRef("candidate", str(cand.num))) == []
    _make_due(addon, mb)
    _fetch(app, addon)
    assert len(host.notes_on(RecordRef("candidate", str(cand.num)))) == 1


def test_consolidate_copies_matched_mail_into_one_folder(mini, dovecot, mail_user):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    make_mailbox(addon, rita.get_id(), dovecot, mail_user, consolidate_folder="Clients")
    dovecot.deliver(mail_user, raw_mail("ann@cand.test", mail_user.email, "For the folder"))
    dovecot.deliver(mail_user, raw_mail("news@letters.test", mail_user.email, "Not for it"))
    _fetch(app, addon)
    filed = dovecot.list_messages(mail_user, "Clients")
    assert len(filed) == 1 and b"For the folder" in filed[0][2]
    assert len(dovecot.list_messages(mail_user, "INBOX")) == 2  # nothing moved
    _fetch(app, addon)
    assert len(dovecot.list_messages(mail_user, "Clients")) == 1
