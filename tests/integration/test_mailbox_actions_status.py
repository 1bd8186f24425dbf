"""Server actions besides fetching, against the lab Dovecot and SMTP: a failed Sent
copy, consolidation or webmail flag push shows on the mailbox's status panel in plain
words (and goes away when the action next works); a fetching mailbox without a server
cannot be stored, and every connection path turns a missing server into a sentence."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.fetching import server_flags
from plugin.linking.consolidate import consolidate
from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import NO_SERVER, MailError
from plugin.mail.imap import ImapSession
from plugin.mail.pop3 import Pop3Session
from plugin.mail.smtp import SmtpSession
from plugin.models import Mailbox, Message, RecordLink
from tests.integration.send_helpers import form, make_sender, outbound_rows, wait_until
from tests.integration.webmail_helpers import Setup, mail
from tests.lab.servers import closed_port


def _status(client, mailbox_id: int) -> str:
    resp = client.get(f"/integrated-email/mailboxes/{mailbox_id}/status")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def _set(addon, mailbox_id: int, **values) -> None:
    with Session(addon.engine) as s:
        s.execute(update(Mailbox).where(Mailbox.id == mailbox_id).values(**values))
        s.commit()


def test_a_failed_sent_copy_shows_on_the_status_panel(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    rita = make_sender(mini, dovecot, smtp_lab)
    with Session(rita.addon.engine) as s:
        port = s.get(Mailbox, rita.mailbox_id).in_port
    _set(rita.addon, rita.mailbox_id, in_port=closed_port())  # the IMAP side is down
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="ok@example.test", subject="Hello", body="x"))
    assert resp.status_code == 302
    assert len(smtp_lab.wait_for(1)) == 1  # the message itself went out
    wait_until(lambda: outbound_rows(rita.addon)[0].state == "sent")
    panel = _status(rita.client, rita.mailbox_id)
    assert "Saving sent mail in your Sent folder failed: The server refused the connection" \
        in panel
    _set(rita.addon, rita.mailbox_id, in_port=port)
    rita.client.post("/integrated-email/compose", data=form(
        to="ok@example.test", subject="Again", body="y"))
    wait_until(lambda: all(r.state == "filed" for r in outbound_rows(rita.addon)[1:]))
    assert "Sent folder failed" not in _status(rita.client, rita.mailbox_id)


@pytest.fixture
def wm(mini, dovecot, mail_user):
    return Setup(mini, dovecot, mail_user)


def test_a_failed_flag_push_and_consolidation_show_on_the_status_panel(wm):
    wm.deliver_and_sync(mail("Read me", n=1))
    rec = wm.host.add_record("candidate", "Cara", "C", "cara@candidates.test")
    with Session(wm.addon.engine) as s:
        mid = s.scalar(select(Message.id))
        s.add(RecordLink(message_id=mid, record_kind="candidate", record_id=str(rec.num)))
        s.commit()
    _set(wm.addon, wm.mailbox_id, in_port=closed_port(), consolidate_folder="Clients")
    assert wm.client.get(f"/integrated-email/mail/messages/{mid}").status_code == 200
    server_flags.wait_for_server_updates(wm.addon)
    panel = _status(wm.client, wm.mailbox_id)
    assert "Carrying a webmail change (read or deleted) to the mail server failed: " \
           "The server refused the connection" in panel
    assert consolidate(wm.addon, wm.mailbox_id) == 0
    assert "Filing client mail into your chosen folder failed: The server refused" \
        in _status(wm.client, wm.mailbox_id)


def test_a_fetching_mailbox_without_a_server_cannot_be_stored(mini):
    _app, _host, addon = mini
    for host in (None, ""):
        with Session(addon.engine) as s:
            s.add(Mailbox(user_id="u1", account_name="No host", email="a@example.test",
                          protocol="imap", in_host=host, in_port=993, in_security="ssl",
                          out_host="smtp.example.test", out_port=465, out_security="ssl"))
            with pytest.raises(IntegrityError):
                s.commit()
    with Session(addon.engine) as s:  # outgoing-only stays possible
        s.add(Mailbox(user_id="u1", account_name="Send only", email="a@example.test",
                      out_host="smtp.example.test", out_port=465, out_security="ssl"))
        s.commit()


def test_every_connection_says_a_missing_server_in_words():
    policy = ConnectionPolicy()
    blank = ServerSettings("", 465, "ssl", "login", "pw")
    for session in (ImapSession(None, policy), Pop3Session(None, policy),
                    SmtpSession(None, policy), SmtpSession(blank, policy),
                    ImapSession(blank, policy)):
        with pytest.raises(MailError) as caught:
            session.open()
        assert caught.value.kind == NO_SERVER
        assert "No mail server is set for this mailbox" in caught.value.sentence
