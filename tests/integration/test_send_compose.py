"""F5 compose through HTTP, against the lab SMTP and Dovecot, on SQLite and PostgreSQL:
delivery, the copy in Sent, the record note, replies, attachments, failures, crashes."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.host import RecordRef
from plugin.models import Message, RecordLink
from plugin.models.outbound import OutboundMessage
from plugin.sending import outbox
from plugin.sending.lease import now
from plugin.sending.messages import message_for, raw_for
from plugin.sending.sent_folder import SentFolder
from tests.integration.send_helpers import form, header, lab_user, make_sender, outbound_rows


@pytest.fixture
def rita(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    return make_sender(mini, dovecot, smtp_lab)


def _candidate(host, dovecot, first="Jane", last="Doe"):
    person = lab_user(dovecot, "cand")
    rec = host.add_record("candidate", first, last, person.email)
    return rec, person


def test_compose_from_record_sends_files_in_sent_and_notes_the_record(rita, dovecot, smtp_lab):
    rec, cand = _candidate(rita.host, dovecot)
    ref = RecordRef("candidate", str(rec.num))
    page = rita.client.get(f"/integrated-email/compose?to={cand.email}&record={ref}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'value="{cand.email}"' in html and f'value="{ref}"' in html
    resp = rita.client.post("/integrated-email/compose", headers={"HX-Request": "true"},
                            data=form(to=cand.email, subject="Interview on Monday",
                                      body="Hello Jane,\nsee you Monday.", record=str(ref)))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert "Sent." in resp.get_data(as_text=True)
    got = smtp_lab.wait_for(1)
    assert got[0].rcpt_tos == (cand.email,) and got[0].login == rita.user.login
    # Arrived in the candidate's lab mailbox.
    assert any(b"Interview on Monday" in raw for _n, _f, raw in dovecot.list_messages(cand))
    # A copy, flagged \Seen, is in the sender's own Sent folder.
    sent = dovecot.list_messages(rita.user, "Sent")
    assert len(sent) == 1 and b"Interview on Monday" in sent[0][2]
    assert "S" in sent[0][1]
    (row,) = outbound_rows(rita.addon)
    assert row.state == "filed" and row.in_sent_folder
    assert header(got[0].data, "Message-ID") == f"<{row.message_id_header}>"
    assert row.message_id_header.endswith("@example.test")
    with Session(rita.addon.engine) as s:
        msg = s.get(Message, row.stored_message_id)
        assert (msg.origin, msg.direction, msg.folder_role) == ("ats", "out", "sent")
        links = s.scalars(select(RecordLink).where(RecordLink.message_id == msg.id)).all()
        assert [(link.record_kind, link.record_id, link.how) for link in links] == [
            ("candidate", str(rec.num), "sent")]
    notes = rita.host.notes_on(ref)
    assert len(notes) == 1 and "Interview on Monday" in notes[0]


def test_reply_all_threads_and_quotes(rita, dovecot, smtp_lab):
    rec, cand = _candidate(rita.host, dovecot)
    with Session(rita.addon.engine) as s:
        original = Message(mailbox_id=rita.mailbox_id, message_key="orig-1@example.test",
                           message_id_header="orig-1@example.test",
                           references="root-0@example.test", subject="My application",
                           from_addr=cand.email, from_name="Jane Doe",
                           to_addrs=json.dumps([["Rita", rita.user.email],
                                                ["", "hr@example.test"]]),
                           cc_addrs=json.dumps([["", "boss@example.test"]]),
                           body_text="Here is my CV.\nBest, Jane", blob_sha256="0" * 64)
        s.add(original)
        s.flush()
        s.add(RecordLink(message_id=original.id, record_kind="candidate",
                         record_id=str(rec.num), how="auto"))
        s.commit()
        mid = original.id
    page = rita.client.get(f"/integrated-email/compose/reply/{mid}?mode=reply_all")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Re: My application" in html and "&gt; Here is my CV." in html
    assert cand.email in html and "hr@example.test" in html and "boss@example.test" in html
    assert rita.user.email not in re.search(r'name="to"[^>]*value="([^"]*)"', html).group(1)
    fwd = rita.client.get(f"/integrated-email/compose/reply/{mid}?mode=forward")
    assert "Fwd: My application" in fwd.get_data(as_text=True)
    resp = rita.client.post("/integrated-email/compose", data=form(
        to=cand.email, subject="Re: My application", body="Thanks!\n\n> Here is my CV.",
        source=str(mid), mode="reply", record=f"candidate:{rec.num}"))
    assert resp.status_code == 302
    raw = smtp_lab.wait_for(1)[0].data
    assert header(raw, "In-Reply-To") == "<orig-1@example.test>"
    assert header(raw, "References") == "<root-0@example.test> <orig-1@example.test>"


def test_someone_elses_message_cannot_be_replied_to(rita, mini, dovecot, smtp_lab):
    app, host, addon = mini
    other = make_other(mini, dovecot, smtp_lab)
    with Session(addon.engine) as s:
        msg = Message(mailbox_id=other, message_key="x@y", message_id_header="x@y",
                      subject="private", from_addr="a@example.test", blob_sha256="0" * 64)
        s.add(msg)
        s.commit()
        mid = msg.id
    assert rita.client.get(f"/integrated-email/compose/reply/{mid}").status_code == 404


def make_other(mini, dovecot, smtp_lab) -> int:
    from plugin.models import Mailbox
    _app, host, addon = mini
    rob = host.add_person("Rob", "rob@example.test")
    with Session(addon.engine) as s:
        mb = Mailbox(user_id=rob.get_id(), account_name="Rob", email="rob@example.test",
                     is_active=True, out_host="127.0.0.1", out_port=smtp_lab.tls_port,
                     out_security="ssl")
        s.add(mb)
        s.commit()
        return mb.id


def test_attachment_within_limit_arrives_and_past_limit_is_refused(rita, dovecot, smtp_lab):
    import io
    rita.app.config["IE_MAX_ATTACHMENT_MB"] = 0.01  # ~10 KB
    small = (io.BytesIO(b"%PDF-1.4 small cv\n" * 10), "cv.pdf", "application/pdf")
    resp = rita.client.post("/integrated-email/compose", content_type="multipart/form-data",
                            data=form(to="x@example.test", subject="CV", body="attached",
                                      attachments=[small]))
    assert resp.status_code == 302
    raw = smtp_lab.wait_for(1)[0].data
    assert b'filename="cv.pdf"' in raw
    big = (io.BytesIO(b"x" * 20_000), "big.bin", "application/octet-stream")
    resp = rita.client.post("/integrated-email/compose", content_type="multipart/form-data",
                            data=form(to="x@example.test", subject="Big", body="too big",
                                      attachments=[big]))
    assert resp.status_code == 422
    assert "Attachments may add up to 0.01 MB" in resp.get_data(as_text=True)
    assert len(smtp_lab.received) == 1


def test_a_sent_copy_keeps_its_raw_bytes_only_when_it_has_attachments(rita, smtp_lab):
    import hashlib
    import io

    from plugin.blobs import blob_store
    from plugin.models import Attachment
    from plugin.reading import messages as webmail

    cv = b"%PDF-1.4 the cv\n"
    rita.client.post("/integrated-email/compose", content_type="multipart/form-data",
                     data=form(to="x@example.test", subject="CV", body="attached",
                               attachments=[(io.BytesIO(cv), "cv.pdf", "application/pdf")]))
    rita.client.post("/integrated-email/compose", data=form(to="x@example.test",
                                                            subject="Plain", body="no files"))
    smtp_lab.wait_for(2)
    with_file, plain = outbound_rows(rita.addon)
    store = blob_store(rita.app.config)
    with Session(rita.addon.engine) as s:
        kept = s.get(Message, with_file.stored_message_id)
        att = s.scalars(select(Attachment).where(Attachment.message_id == kept.id)).one()
        assert store.exists(kept.blob_sha256)
        assert webmail.attachment_bytes(rita.app.config, att) == cv
        copy = s.get(Message, plain.stored_message_id)
        assert not store.exists(copy.blob_sha256)  # nothing ever reads it back
        assert copy.body_text.startswith("no files")
        # ... and the digest still names the bytes that went out, which the row rebuilds.
        assert hashlib.sha256(raw_for(rita.app.config, plain)).hexdigest() == copy.blob_sha256


def test_refused_recipient_fails_with_a_plain_reason(rita, smtp_lab):
    resp = rita.client.post("/integrated-email/compose", headers={"HX-Request": "true"},
                            data=form(to="reject-me@example.test", subject="Hi", body="x"))
    text = resp.get_data(as_text=True)
    assert "Not sent." in text and "refused the recipient address" in text
    (row,) = outbound_rows(rita.addon)
    assert row.state == "failed" and row.error_kind == "recipient_refused"


def test_unreachable_server_is_retried_later(rita, smtp_lab):
    from plugin.models import Mailbox
    from tests.lab.servers import closed_port
    with Session(rita.addon.engine) as s:
        s.get(Mailbox, rita.mailbox_id).out_port = closed_port()
        s.commit()
    resp = rita.client.post("/integrated-email/compose", headers={"HX-Request": "true"},
                            data=form(to="x@example.test", subject="Later", body="x"))
    assert "Not sent yet." in resp.get_data(as_text=True)
    (row,) = outbound_rows(rita.addon)
    assert row.state == "queued" and row.next_attempt_at is not None and row.attempts == 1
    with Session(rita.addon.engine) as s:  # the server is back and the back-off is over
        s.get(Mailbox, rita.mailbox_id).out_port = smtp_lab.tls_port
        s.get(OutboundMessage, row.id).next_attempt_at = now()
        s.commit()
    with rita.app.app_context():
        assert outbox.run_due(rita.addon) == 1
    (row,) = outbound_rows(rita.addon)
    assert row.state == "filed" and row.attempts == 2
    assert len(smtp_lab.wait_for(1)) == 1


def _stuck(rita, in_sent: bool) -> OutboundMessage:
    """A row left in ``sending`` by a process that died (pid 999999 is not running)."""
    from plugin.models import Mailbox
    from plugin.mail import build as compose
    from plugin.mail.build import Draft
    from plugin.setup.policy import connection_policy
    with rita.app.test_request_context():
        with Session(rita.addon.engine, expire_on_commit=False) as s:
            mb = s.get(Mailbox, rita.mailbox_id)
            user = rita.host.get_user(rita.person.get_id())
            row = outbox.queue(rita.addon, s, user, mb,
                               Draft(user.name, mb.email, [("", "c@example.test")],
                                     subject="Stuck", body_text="x"), [])
            row.state, row.date = "sending", now()
            row.lease_owner = f"{__import__('socket').gethostname()[:40]}:999999:dead"
            s.commit()
            if in_sent:
                raw = compose.flatten(message_for(rita.app.config, row))
                with SentFolder(rita.addon, mb, connection_policy(rita.addon, s)) as folder:
                    folder.append_many([raw])
            return row


@pytest.mark.parametrize("in_sent", [False, True])
def test_row_left_sending_by_a_crash_is_never_resent(rita, smtp_lab, in_sent):
    row = _stuck(rita, in_sent)
    with rita.app.app_context():
        outbox.run_due(rita.addon)
    (after,) = outbound_rows(rita.addon)
    assert after.id == row.id
    if in_sent:
        assert after.state == "filed"  # the Sent folder proves it went out
    else:
        assert after.state == "unknown" and "lost track" in after.error
    assert smtp_lab.received == []
    if not in_sent:  # the user decides to send it again
        resp = rita.client.post(f"/integrated-email/outbox/{row.id}/resend", data=form())
        assert resp.status_code == 302
        assert outbound_rows(rita.addon)[0].state == "filed"
        assert len(smtp_lab.wait_for(1)) == 1


def test_pop3_mailbox_keeps_the_copy_in_the_add_on_sent_view(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    rita = make_sender(mini, dovecot, smtp_lab, protocol="pop3")
    resp = rita.client.post("/integrated-email/compose",
                            data=form(to="x@example.test", subject="Via POP3", body="x"))
    assert resp.status_code == 302
    (row,) = outbound_rows(rita.addon)
    assert row.state == "filed" and not row.in_sent_folder
    assert dovecot.list_messages(rita.user, "Sent") == []
    with Session(rita.addon.engine) as s:
        msg = s.get(Message, row.stored_message_id)
        assert msg.folder_role == "sent" and msg.subject == "Via POP3"


def test_compose_needs_an_active_mailbox(mini, dovecot, smtp_lab):
    from tests.helpers import signed_in
    app, host, _addon = mini
    nobody = host.add_person("Nomail", "nomail@example.test")
    resp = signed_in(app, nobody).get("/integrated-email/compose?to=a@example.test")
    assert resp.status_code == 409 and "Connect your mailbox first" in resp.get_data(as_text=True)
