"""Changes made in another mail client reach our rows on the next sync (CONDSTORE),
while an untouched folder still costs one STATUS."""

from __future__ import annotations

import imaplib
import ssl

from sqlalchemy import select

from plugin.models import Message
from plugin.fetching.sync import sync_mailbox
from tests.helpers import raw_mail
from tests.integration.sync_helpers import make_mailbox, set_window


def _other_client(dovecot, user) -> imaplib.IMAP4_SSL:
    ctx = ssl.create_default_context(cafile=dovecot.ca_file)
    imap = imaplib.IMAP4_SSL("localhost", dovecot.imaps, ssl_context=ctx)
    imap.login(user.login, user.password)
    imap.select("INBOX")
    return imap


def _seen(addon) -> dict[str, bool]:
    with addon.session() as s:
        return {m.subject: m.seen for m in s.scalars(select(Message))}


def _synced(mini, dovecot, user, subjects: list[str]) -> tuple:
    """The add-on and a mailbox holding one message per subject, synced once."""
    _app, _host, addon = mini
    set_window(addon)
    for subject in subjects:
        dovecot.deliver(user, raw_mail("a@cand.test", user.email, subject))
    mbid = make_mailbox(addon, dovecot, user)
    assert sync_mailbox(addon, mbid).stored == len(subjects)
    return addon, mbid


def _store_elsewhere(dovecot, user, uid: str, change: str, flag: str) -> None:
    """Another mail client changes a flag (``change`` is "+FLAGS" or "-FLAGS")."""
    other = _other_client(dovecot, user)
    other.uid("STORE", uid, change, f"({flag})")
    other.logout()


def test_read_and_delete_in_another_client_reach_our_rows(mini, dovecot, mail_user):
    addon, mbid = _synced(mini, dovecot, mail_user, [f"Note {i}" for i in range(3)])
    assert _seen(addon) == {"Note 0": False, "Note 1": False, "Note 2": False}

    other = _other_client(dovecot, mail_user)
    other.uid("STORE", "1", "+FLAGS", "(\\Seen)")
    other.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
    other.expunge()
    other.logout()
    assert sync_mailbox(addon, mbid).error_kind is None
    assert _seen(addon)["Note 0"] is True and _seen(addon)["Note 1"] is False
    with addon.session() as s:
        gone = s.scalar(select(Message).where(Message.subject == "Note 2"))
        assert gone.deleted  # expunged elsewhere: gone from the webmail too

    _store_elsewhere(dovecot, mail_user, "1", "-FLAGS", "\\Seen")
    sync_mailbox(addon, mbid)
    assert _seen(addon)["Note 0"] is False


def test_a_read_elsewhere_beside_new_mail_is_taken_over(mini, dovecot, mail_user):
    addon, mbid = _synced(mini, dovecot, mail_user, ["Old 0", "Old 1"])
    # New mail raises HIGHESTMODSEQ as well: the read must not hide behind it.
    _store_elsewhere(dovecot, mail_user, "1", "+FLAGS", "\\Seen")
    dovecot.deliver(mail_user, raw_mail("b@cand.test", mail_user.email, "New 0"))
    assert sync_mailbox(addon, mbid).stored == 1
    assert _seen(addon) == {"Old 0": True, "Old 1": False, "New 0": False}
