"""Webmail actions carried back to the lab Dovecot: read, unread, delete (IMAP) and
local-only delete (POP3); changes made in another client come back on refresh."""
from __future__ import annotations

import imaplib
import ssl

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import Message, MessageLocation
from plugin.fetching import server_flags as wm_service
from tests.helpers import form
from tests.integration.webmail_helpers import Setup, mail


@pytest.fixture
def wm(mini, dovecot, mail_user):
    return Setup(mini, dovecot, mail_user)


def only_message(addon) -> Message:
    with Session(addon.engine, expire_on_commit=False) as s:
        return s.scalars(select(Message)).one()


def flags(dovecot, user, folder: str = "INBOX") -> list[str]:
    return [f for _n, f, _r in dovecot.list_messages(user, folder)]


def test_reading_marks_seen_on_the_server_and_mark_unread_clears_it(wm):
    wm.deliver_and_sync(mail("Read me", n=1))
    msg = only_message(wm.addon)
    assert flags(wm.dovecot, wm.user) == [""]
    assert wm.client.get(f"/integrated-email/mail/messages/{msg.id}").status_code == 200
    wm_service.wait_for_server_updates(wm.addon)
    assert only_message(wm.addon).seen and flags(wm.dovecot, wm.user) == ["S"]
    r = wm.client.post(f"/integrated-email/mail/messages/{msg.id}/seen", data=form(seen="0"))
    assert r.status_code == 302
    wm_service.wait_for_server_updates(wm.addon)
    assert not only_message(wm.addon).seen and flags(wm.dovecot, wm.user) == [""]
    html = wm.client.get("/integrated-email/mail").get_data(as_text=True)
    assert 'class="ie-wm-row ie-unread"' not in html or "Read me" in html


def test_delete_moves_the_message_to_trash_on_the_server(wm):
    wm.deliver_and_sync(mail("Bin me", n=1), mail("Keep me", n=2))
    with Session(wm.addon.engine) as s:
        mid = s.scalar(select(Message.id).where(Message.subject == "Bin me"))
    r = wm.client.post(f"/integrated-email/mail/messages/{mid}/delete", data=form())
    assert r.status_code == 302
    wm_service.wait_for_server_updates(wm.addon)
    inbox = [raw for _n, _f, raw in wm.dovecot.list_messages(wm.user)]
    trash = [raw for _n, _f, raw in wm.dovecot.list_messages(wm.user, "Trash")]
    assert len(inbox) == 1 and b"Keep me" in inbox[0]
    assert len(trash) == 1 and b"Bin me" in trash[0]
    assert wm.client.get(f"/integrated-email/mail/messages/{mid}").status_code == 404
    assert "Bin me" not in wm.client.get("/integrated-email/mail").get_data(as_text=True)
    with Session(wm.addon.engine) as s:
        assert s.scalar(select(MessageLocation.removed_from_server).where(
            MessageLocation.message_id == mid))
    # the next sync neither brings it back nor duplicates anything
    from plugin.fetching.sync import sync_mailbox
    assert sync_mailbox(wm.addon, wm.mailbox_id).stored == 0
    assert "Bin me" not in wm.client.get("/integrated-email/mail").get_data(as_text=True)


def test_without_a_trash_folder_delete_flags_and_expunges(wm):
    import shutil
    shutil.rmtree(wm.dovecot.folder_path(wm.user, "Trash"), ignore_errors=True)
    wm.deliver_and_sync(mail("Gone", n=1))
    from plugin.mail.imap import ImapSession
    real = ImapSession.find_folders
    ImapSession.find_folders = lambda self: {k: v for k, v in real(self).items() if k != "trash"}
    try:
        msg = only_message(wm.addon)
        wm.client.post(f"/integrated-email/mail/messages/{msg.id}/delete", data=form())
        wm_service.wait_for_server_updates(wm.addon)
    finally:
        ImapSession.find_folders = real
    assert wm.dovecot.list_messages(wm.user) == []


def test_pop3_delete_is_local_only(mini, dovecot, mail_user):
    wm = Setup(mini, dovecot, mail_user, protocol="pop3")
    wm.deliver_and_sync(mail("Pop", n=1))
    msg = only_message(wm.addon)
    wm.client.get(f"/integrated-email/mail/messages/{msg.id}")
    wm.client.post(f"/integrated-email/mail/messages/{msg.id}/delete", data=form())
    wm_service.wait_for_server_updates(wm.addon)
    assert only_message(wm.addon).deleted
    assert len(dovecot.list_messages(mail_user)) == 1  # still on the server


def test_flags_changed_in_another_client_come_back(wm):
    wm.deliver_and_sync(mail("One", n=1), mail("Two", n=2), mail("Three", n=3))
    ctx = ssl.create_default_context(cafile=wm.dovecot.ca_file)
    other = imaplib.IMAP4_SSL("localhost", wm.dovecot.imaps, ssl_context=ctx)
    other.login(wm.user.login, wm.user.password)
    other.select("INBOX")
    other.store("1", "+FLAGS", "(\\Seen)")
    other.store("3", "+FLAGS", "(\\Deleted)")
    other.expunge()
    other.logout()
    from plugin.mail.account import ServerSettings
    from plugin.mail.imap import ImapSession
    from plugin.setup.policy import connection_policy
    with Session(wm.addon.engine) as s:
        policy = connection_policy(wm.addon, s)
    settings = ServerSettings("localhost", wm.dovecot.imaps, "ssl", wm.user.login,
                              password=wm.user.password)
    with ImapSession(settings, policy) as imap:
        imap.select("INBOX", readonly=True)
        changed = wm_service.refresh_recent_flags(wm.addon, wm.mailbox_id, imap, "INBOX")
    assert changed == 2
    with Session(wm.addon.engine) as s:
        state = {m.subject: (m.seen, m.deleted) for m in s.scalars(select(Message))}
    assert state == {"One": (True, False), "Two": (False, False), "Three": (False, True)}
