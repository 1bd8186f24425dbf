"""F7: who sees which mail, everywhere the same rule, and what the host's notes say.

The privacy matrix: sharing mode x host record ACL x viewer x mail kind x endpoint,
where one "endpoint" is the host's own notes on the record (read by whoever may
open the record).  Each parametrized run sets one mode up on real synced mail and
checks all of its cells under each ACL; ``test_matrix_is_complete`` adds up the
cells and the wrong answers.
"""

from __future__ import annotations

import itertools
import re
import uuid

import pytest
from sqlalchemy import select, update

from plugin.fetching import sync
from plugin.host import RecordRef
from plugin.jobs.dispatcher import dispatch
from plugin.linking.importer import link_pending
from plugin.models import Attachment, Mailbox, Message, RecordLink
from tests.helpers import complete_settings, form, make_mailbox, signed_in

MODES = ["private", "custom_ticked", "custom_unticked", "public", "public_excluded", "admin"]
#: the host's record ACL: everyone opens the candidate, only the owner's team, or only
#: another team (the owner then reads their own mail but not the record)
ACLS = ["open", "owner_team", "other_team"]
VIEWERS = ["owner", "recruiter", "admin"]
KINDS = ["ats", "synced"]
ENDPOINTS = ["timeline", "view", "attachment", "search", "reply", "note"]
TEAMS = {"owner": "north", "recruiter": "south", "admin": None}
RESULTS: dict[tuple[str, str], tuple[int, int]] = {}


def shared(mode: str, viewer: str, kind: str) -> bool:
    """The sharing rule alone."""
    if viewer == "owner" or kind == "ats":
        return True  # the owner sees all; ATS mail follows the record permission
    return {"private": False, "custom_ticked": True, "custom_unticked": False,
            "public": True, "public_excluded": False, "admin": viewer == "admin"}[mode]


def opens_record(acl: str, viewer: str) -> bool:
    """The host's answer: may ``viewer`` open the candidate."""
    return acl == "open" or viewer == "admin" or (acl == "owner_team" and viewer == "owner")


def expected(mode: str, acl: str, viewer: str, kind: str, endpoint: str) -> bool:
    if endpoint == "note":
        # Whoever opens the record reads its notes: they carry the subject only
        # when every such viewer may read the mail (ATS mail, Public, no exclusions).
        return opens_record(acl, viewer) and (kind == "ats" or mode == "public")
    if endpoint == "timeline":
        return opens_record(acl, viewer) and shared(mode, viewer, kind)
    if viewer == "owner":
        return True  # one's own mail, in one's own webmail
    return shared(mode, viewer, kind) and opens_record(acl, viewer)


def _mail(sender: str, to: str, subject: str, word: str) -> bytes:
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"], msg["Message-ID"] = formatdate(), make_msgid(domain="share.test")
    msg.set_content(f"Body with the word {word} inside.")
    msg.add_attachment(b"%PDF-1.4 cv", maintype="application", subtype="pdf",
                       filename="cv.pdf")
    return msg.as_bytes()


def _visible(client, host, person, endpoint: str, msg: Message, att_id: int, ref,
             word: str) -> bool:
    if endpoint == "note":
        record = RecordRef(ref.kind, str(ref.num))
        if not host.may_view_record(host._user(person), record):
            return False  # the host's record page answers 404: no notes to read
        return any(msg.subject in n for n in host.notes_on(record))
    if endpoint == "timeline":
        resp = client.get(f"/integrated-email/records/{ref.kind}/{ref.num}/timeline")
        assert resp.status_code in (200, 404)
        return resp.status_code == 200 and msg.subject in resp.get_data(as_text=True)
    if endpoint == "view":
        code = client.get(f"/integrated-email/mail/messages/{msg.id}").status_code
    elif endpoint == "attachment":
        code = client.get(f"/integrated-email/mail/attachments/{att_id}").status_code
    elif endpoint == "search":
        resp = client.get(f"/integrated-email/mail/search?q={word}")
        assert resp.status_code == 200
        return msg.subject in resp.get_data(as_text=True)
    else:
        code = client.get(f"/integrated-email/compose/reply/{msg.id}").status_code
    assert code in (200, 404), (endpoint, code)
    return code == 200


@pytest.mark.parametrize("mode", MODES)
def test_permission_matrix(mode, mini, dovecot):
    app, host, addon = mini
    complete_settings(addon)
    people = {who: host.add_person(name, f"{name.lower()}@acme.test", admin=(who == "admin"),
                                   team=TEAMS[who])
              for who, name in (("owner", "Rita"), ("recruiter", "Rob"), ("admin", "Ada"))}
    cand = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    tag = uuid.uuid4().hex[:6]
    sharing_mode = {"custom_ticked": "custom", "custom_unticked": "custom",
                    "public_excluded": "public"}.get(mode, mode)
    boxes = {}
    for who, person in people.items():
        user = dovecot.add_user(f"sh{who[:3]}{tag}", "pw")
        boxes[who] = (user, make_mailbox(addon, person.get_id(), dovecot, user,
                                         sharing=sharing_mode if who == "owner" else "private"))
    owner_user, owner_box = boxes["owner"]
    if mode == "public_excluded":
        complete_settings(addon, public_excluded_users=",".join(
            [people["recruiter"].get_id(), people["admin"].get_id()]))
    words = {"ats": f"atsword{tag}", "synced": f"syncword{tag}"}
    for kind in KINDS:
        dovecot.deliver(owner_user, _mail("ann@cand.test", owner_user.email,
                                          f"Subject {kind} {tag}", words[kind]))
    with app.app_context():
        sync.sync_mailbox(addon, owner_box)  # stored, not linked yet
    with addon.session() as s:
        # Mark one as mail the ATS itself sent (what the Sending feature records)
        # before it is linked, so its note is written as sending writes one.
        s.execute(update(Message).where(Message.subject == f"Subject ats {tag}")
                  .values(origin="ats"))
        s.commit()
    with app.app_context():
        link_pending(addon, owner_box)  # what the fetch does after each batch
    with addon.session() as s:
        msgs = {kind: s.scalars(select(Message).where(
            Message.subject == f"Subject {kind} {tag}")).one() for kind in KINDS}
        atts = {kind: s.scalars(select(Attachment.id).where(
            Attachment.message_id == msgs[kind].id)).one() for kind in KINDS}
        assert len(s.scalars(select(RecordLink).where(
            RecordLink.message_id.in_([m.id for m in msgs.values()]))).all()) == 2
    record = RecordRef("candidate", str(cand.num))
    assert len(host.notes_on(record)) == 2  # one note per message, full or brief
    owner_client = signed_in(app, people["owner"])
    if mode == "custom_ticked":
        resp = owner_client.post(f"/integrated-email/records/candidate/{cand.num}/share",
                                 data=form(shared="on"))
        assert resp.status_code == 200 and "checked" in resp.get_data(as_text=True)
    clients = {who: owner_client if who == "owner" else signed_in(app, people[who])
               for who in VIEWERS}

    cells = wrong = 0
    failures = []
    for acl in ACLS:
        cand.team = {"open": None, "owner_team": "north", "other_team": "west"}[acl]
        for viewer, kind, endpoint in itertools.product(VIEWERS, KINDS, ENDPOINTS):
            got = _visible(clients[viewer], host, people[viewer], endpoint, msgs[kind],
                           atts[kind], cand, words[kind])
            want = expected(mode, acl, viewer, kind, endpoint)
            cells += 1
            if got != want:
                wrong += 1
                failures.append((acl, viewer, kind, endpoint, "allowed" if got else "refused"))
    RESULTS[(addon.engine.dialect.name, mode)] = (cells, wrong)
    assert not failures, failures


def test_matrix_is_complete():
    """Runs after the matrix (same module): every cell answered, none wrong."""
    runs = set(RESULTS)
    assert runs == {(db, m) for db in ("sqlite", "postgresql") for m in MODES}, \
        "run the whole module to see the matrix"
    cells = sum(c for c, _w in RESULTS.values())
    wrong = sum(w for _c, w in RESULTS.values())
    print(f"\nprivacy matrix: {cells} cells, {wrong} wrong")
    assert cells == (len(MODES) * len(ACLS) * len(VIEWERS) * len(KINDS) * len(ENDPOINTS)
                     * 2)  # two databases
    assert wrong == 0


def test_expectations_never_let_a_note_say_more_than_the_panel():
    """The matrix's own expectations: wherever a note shows the subject, that viewer
    may also read the mail on the record's timeline (the note adds no reader)."""
    for mode, acl, viewer, kind in itertools.product(MODES, ACLS, VIEWERS, KINDS):
        if expected(mode, acl, viewer, kind, "note"):
            assert expected(mode, acl, viewer, kind, "timeline"), (mode, acl, viewer, kind)


def test_custom_shares_only_the_ticked_records_mail(mini, dovecot):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    rob = host.add_person("Rob", "rob@acme.test")
    ticked = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    other = host.add_record("candidate", "Bo", "Chan", "bo@cand.test")
    tag = uuid.uuid4().hex[:6]
    user = dovecot.add_user(f"ct{tag}", "pw")
    make_mailbox(addon, rita.get_id(), dovecot, user, sharing="custom")
    dovecot.deliver(user, _mail("ann@cand.test", user.email, f"Ticked {tag}", "t"))
    dovecot.deliver(user, _mail("bo@cand.test", user.email, f"Unticked {tag}", "t"))
    with app.app_context():
        dispatch(addon, wait=True)
    signed_in(app, rita).post(f"/integrated-email/records/candidate/{ticked.num}/share",
                              data=form(shared="on"))
    client = signed_in(app, rob)
    page = client.get(f"/integrated-email/records/candidate/{ticked.num}/timeline")
    assert f"Ticked {tag}" in page.get_data(as_text=True)
    page = client.get(f"/integrated-email/records/candidate/{other.num}/timeline")
    assert f"Unticked {tag}" not in page.get_data(as_text=True)
    with addon.session() as s:
        unticked_id = s.scalar(select(Message.id).where(Message.subject == f"Unticked {tag}"))
    assert client.get(f"/integrated-email/mail/messages/{unticked_id}").status_code == 404


def test_guessing_ids_gets_404_for_everything_not_yours(mini, dovecot):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    rob = host.add_person("Rob", "rob@acme.test")
    host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    tag = uuid.uuid4().hex[:6]
    rita_user = dovecot.add_user(f"gr{tag}", "pw")
    rob_user = dovecot.add_user(f"go{tag}", "pw")
    make_mailbox(addon, rita.get_id(), dovecot, rita_user)  # private
    make_mailbox(addon, rob.get_id(), dovecot, rob_user)
    for i in range(3):
        dovecot.deliver(rita_user, _mail("ann@cand.test", rita_user.email, f"Private {i}", "x"))
        dovecot.deliver(rita_user, _mail("other@else.test", rita_user.email, f"Other {i}", "x"))
    with app.app_context():
        dispatch(addon, wait=True)
    with addon.session() as s:
        rita_boxes = s.scalars(select(Mailbox.id).where(
            Mailbox.user_id == rita.get_id())).all()
        message_ids = s.scalars(select(Message.id).join(Mailbox).where(
            Mailbox.user_id == rita.get_id())).all()
        attachment_ids = s.scalars(select(Attachment.id).join(Message).join(Mailbox).where(
            Mailbox.user_id == rita.get_id())).all()
    assert len(message_ids) == 6 and len(attachment_ids) == 6
    client = signed_in(app, rob)
    urls = []
    for mid in message_ids:
        urls += [("GET", f"/integrated-email/mail/messages/{mid}"),
                 ("POST", f"/integrated-email/mail/messages/{mid}/seen"),
                 ("POST", f"/integrated-email/mail/messages/{mid}/delete"),
                 ("GET", f"/integrated-email/mail/messages/{mid}/records"),
                 ("GET", f"/integrated-email/compose/reply/{mid}"),
                 ("GET", f"/integrated-email/records/candidate/1/messages/{mid}")]
    for aid in attachment_ids:
        urls += [("GET", f"/integrated-email/mail/attachments/{aid}"),
                 ("GET", f"/integrated-email/records/candidate/1/attachments/{aid}")]
    for mbid in rita_boxes:
        urls += [("GET", f"/integrated-email/mailboxes/{mbid}"),
                 ("GET", f"/integrated-email/mailboxes/{mbid}/status"),
                 ("GET", f"/integrated-email/mailboxes/{mbid}/progress"),
                 ("POST", f"/integrated-email/mailboxes/{mbid}/fetch"),
                 ("POST", f"/integrated-email/mailboxes/{mbid}/activate"),
                 ("POST", f"/integrated-email/mailboxes/{mbid}/delete")]
    for method, url in urls:
        resp = client.open(url, method=method, data=form(seen="1"))
        assert resp.status_code == 404, (method, url, resp.status_code)
    # Nor do they leak through lists: Rob's search and shared folder show none of it.
    for url in ("/integrated-email/mail/search?q=Private", "/integrated-email/mail/folders/shared"):
        assert not re.search(r"Private \d|Other \d", client.get(url).get_data(as_text=True))


def test_public_to_private_hides_mail_from_others_at_once(mini, dovecot):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    rob = host.add_person("Rob", "rob@acme.test")
    cand = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    tag = uuid.uuid4().hex[:6]
    user = dovecot.add_user(f"pp{tag}", "pw")
    box = make_mailbox(addon, rita.get_id(), dovecot, user, sharing="public")
    dovecot.deliver(user, _mail("ann@cand.test", user.email, f"Public then private {tag}", "y"))
    with app.app_context():
        dispatch(addon, wait=True)
    client = signed_in(app, rob)
    url = f"/integrated-email/records/candidate/{cand.num}/timeline"
    assert f"Public then private {tag}" in client.get(url).get_data(as_text=True)
    with addon.session() as s:
        s.get(Mailbox, box).sharing = "private"
        s.commit()
    assert f"Public then private {tag}" not in client.get(url).get_data(as_text=True)


def test_excluded_domains_are_never_shared_publicly(mini, dovecot):
    app, host, addon = mini
    complete_settings(addon, public_excluded_domains="cand.test")
    rita = host.add_person("Rita", "rita@acme.test")
    rob = host.add_person("Rob", "rob@acme.test")
    cand = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    other = host.add_record("candidate", "Bo", "Chan", "bo@elsewhere.test")
    tag = uuid.uuid4().hex[:6]
    user = dovecot.add_user(f"dx{tag}", "pw")
    make_mailbox(addon, rita.get_id(), dovecot, user, sharing="public")
    dovecot.deliver(user, _mail("ann@cand.test", user.email, f"Excluded {tag}", "z"))
    dovecot.deliver(user, _mail("bo@elsewhere.test", user.email, f"Included {tag}", "z"))
    with app.app_context():
        dispatch(addon, wait=True)
    client = signed_in(app, rob)
    assert f"Excluded {tag}" not in client.get(
        f"/integrated-email/records/candidate/{cand.num}/timeline").get_data(as_text=True)
    assert f"Included {tag}" in client.get(
        f"/integrated-email/records/candidate/{other.num}/timeline").get_data(as_text=True)


def test_share_box_shows_only_for_custom_mailboxes(mini, dovecot):
    app, host, addon = mini
    complete_settings(addon)
    rita = host.add_person("Rita", "rita@acme.test")
    cand = host.add_record("candidate", "Ann", "Lee", "ann@cand.test")
    user = dovecot.add_user(f"sb{uuid.uuid4().hex[:6]}", "pw")
    box = make_mailbox(addon, rita.get_id(), dovecot, user, sharing="public")
    client = signed_in(app, rita)
    share_url = f"/integrated-email/records/candidate/{cand.num}/share"
    assert client.post(share_url, data=form(shared="on")).status_code == 404
    with addon.session() as s:
        s.get(Mailbox, box).sharing = "custom"
        s.commit()
    assert "Share email" in client.post(share_url, data=form(shared="on")).get_data(as_text=True)
    from plugin.models.sharing import RecordShare
    with addon.session() as s:
        assert s.scalars(select(RecordShare.owner_user_id)).all() == [rita.get_id()]
    client.post(share_url, data=form())
    with addon.session() as s:
        assert s.scalars(select(RecordShare)).all() == []
