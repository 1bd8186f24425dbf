"""Forward carries the original's files (attachments and inline images) through the lab
SMTP server, unless the user unticks them; only files of a message the user may see,
within the one attachment size limit."""
from __future__ import annotations

import email
import re
from email import policy

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.fetching.sync import sync_mailbox
from plugin.models import Attachment, Message
from tests.integration.send_helpers import form, lab_user, make_sender, outbound_rows
from tests.integration.webmail_helpers import mail

CV = b"%PDF-1.4\n% the candidate's CV\n" + bytes(range(256)) * 4
PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x00fake-png" * 20


@pytest.fixture
def rita(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    return make_sender(mini, dovecot, smtp_lab)


def _synced_application(sender, dovecot) -> tuple[int, dict[str, int]]:
    """An application with a CV and an inline photo, synced into Rita's mailbox."""
    raw = mail("Application: backend role", body="Please find my CV attached.",
               html='<p>Hello</p><img src="cid:photo1">', to=sender.user.email,
               attachments=[("Jane CV.pdf", "application/pdf", CV)],
               inline=[("photo1", "image/png", PHOTO)])
    dovecot.deliver(sender.user, raw)
    result = sync_mailbox(sender.addon, sender.mailbox_id)
    assert result.error_kind is None and result.stored == 1, result
    with Session(sender.addon.engine) as s:
        msg = s.scalars(select(Message).where(Message.mailbox_id == sender.mailbox_id)).one()
        files = {a.filename: a.id for a in msg.attachments}
        return msg.id, files


def _files_of(raw: bytes) -> dict[str, bytes]:
    parsed = email.message_from_bytes(raw, policy=policy.default)
    return {part.get_filename(): part.get_content() for part in parsed.iter_attachments()}


def test_forward_form_lists_the_files_and_sends_them_as_received(rita, dovecot, smtp_lab):
    mid, files = _synced_application(rita, dovecot)
    assert set(files) == {"Jane CV.pdf", "attachment.png"}
    page = rita.client.get(f"/integrated-email/compose/reply/{mid}?mode=forward")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for name, att_id in files.items():
        assert re.search(rf'name="forward" value="{att_id}" checked', html), name
        assert name in html
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="hiring.manager@example.test", subject="Fwd: Application: backend role",
        body="Worth a look.", source=str(mid), mode="forward",
        forward=[str(i) for i in files.values()]))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    got = smtp_lab.wait_for(1)[0]
    assert got.rcpt_tos == ("hiring.manager@example.test",)
    sent = _files_of(got.data)
    assert sent == {"Jane CV.pdf": CV, "attachment.png": PHOTO}
    # A forward starts its own conversation.
    assert b"\r\nIn-Reply-To:" not in got.data.split(b"\r\n\r\n")[0]


def test_an_unticked_file_is_left_out(rita, dovecot, smtp_lab):
    mid, files = _synced_application(rita, dovecot)
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="hm@example.test", subject="Fwd: CV only", body="The CV.", source=str(mid),
        mode="forward", forward=[str(files["Jane CV.pdf"])]))
    assert resp.status_code == 302
    assert _files_of(smtp_lab.wait_for(1)[0].data) == {"Jane CV.pdf": CV}
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="hm@example.test", subject="Fwd: nothing", body="Text only.", source=str(mid),
        mode="forward"))
    assert resp.status_code == 302
    assert _files_of(smtp_lab.wait_for(2)[1].data) == {}


def test_a_forward_carries_no_file_of_a_message_the_user_may_not_see(
        rita, mini, dovecot, smtp_lab):
    _app, host, addon = mini
    mid, files = _synced_application(rita, dovecot)
    # Rob, another recruiter with a mailbox of his own, holding one private message.
    rob_user = lab_user(dovecot, "rob")
    rob = host.add_person("Rob", rob_user.email)
    from tests.helpers import mailbox_form, signed_in
    rob_client = signed_in(rita.app, rob)
    assert rob_client.post("/integrated-email/mailboxes/new", data=mailbox_form(
        dovecot, smtp_lab, rob_user)).status_code == 302
    smtp_lab.clear()
    # Forwarding Rita's message: 404, nothing sent.
    resp = rob_client.post("/integrated-email/compose", data=form(
        to="leak@example.test", subject="Fwd", body="x", source=str(mid), mode="forward",
        forward=[str(i) for i in files.values()]))
    assert resp.status_code == 404
    assert rob_client.get(f"/integrated-email/compose/reply/{mid}?mode=forward"
                          ).status_code == 404
    # Rita's own forward naming an attachment id of another message: that id is ignored.
    raw = mail("Other", body="secret file", to=rita.user.email, n=5,
               attachments=[("other.pdf", "application/pdf", b"%PDF other")])
    dovecot.deliver(rita.user, raw)
    sync_mailbox(addon, rita.mailbox_id)
    with Session(addon.engine) as s:
        other_att = s.scalars(select(Attachment).where(
            Attachment.filename == "other.pdf")).one().id
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="hm@example.test", subject="Fwd", body="x", source=str(mid), mode="forward",
        forward=[str(files["Jane CV.pdf"]), str(other_att), "not-a-number"]))
    assert resp.status_code == 302
    assert set(_files_of(smtp_lab.wait_for(1)[0].data)) == {"Jane CV.pdf"}
    assert len(smtp_lab.received) == 1


def test_forwarded_files_count_toward_the_size_limit_and_nothing_is_lost(
        rita, dovecot, smtp_lab):
    import io
    mid, files = _synced_application(rita, dovecot)
    rita.app.config["IE_MAX_ATTACHMENT_MB"] = 1.2 / 1024  # ~1.2 KB: the CV alone fits
    resp = rita.client.post("/integrated-email/compose", content_type="multipart/form-data",
                            data=form(to="hm@example.test", subject="Fwd: too much",
                                      body="Keep this text.", source=str(mid), mode="forward",
                                      forward=[str(files["Jane CV.pdf"])],
                                      attachments=[(io.BytesIO(b"x" * 800), "notes.txt",
                                                    "text/plain")]))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Attachments may add up to" in html
    # The form comes back as typed: the text, and the CV still ticked.
    assert "Keep this text." in html
    assert re.search(rf'name="forward" value="{files["Jane CV.pdf"]}" checked', html)
    assert not re.search(rf'name="forward" value="{files["attachment.png"]}" checked', html)
    assert outbound_rows(rita.addon) == [] and smtp_lab.received == []
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="hm@example.test", subject="Fwd: CV", body="x", source=str(mid), mode="forward",
        forward=[str(files["Jane CV.pdf"])]))
    assert resp.status_code == 302
    assert set(_files_of(smtp_lab.wait_for(1)[0].data)) == {"Jane CV.pdf"}
