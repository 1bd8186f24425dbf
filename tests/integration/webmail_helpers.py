"""Shared set-up of the webmail tests: a recruiter with a lab mailbox, mail built here."""
from __future__ import annotations

import email.utils
import os
from email.message import EmailMessage

from sqlalchemy import update
from sqlalchemy.orm import Session

from plugin.models import GlobalSettings, Mailbox
from plugin.fetching.sync import sync_mailbox
from tests.helpers import signed_in
from tests.integration.sync_helpers import set_window


def mail(subject: str = "Hello", body: str = "Plain body", html: str | None = None,
         sender: str = "Cara Candidate <cara@candidates.test>", to: str = "me@example.test",
         n: int = 0, attachments: list[tuple[str, str, bytes]] = (),
         inline: list[tuple[str, str, bytes]] = ()) -> bytes:
    """A real RFC 5322 message (EmailMessage builds and encodes it)."""
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(1_700_000_000 + n * 60)
    m["Message-ID"] = f"<wm-{n}-{os.urandom(5).hex()}@example.test>"
    m.set_content(body)
    if html is not None:
        m.add_alternative(html, subtype="html")
        if inline:
            related = m.get_payload()[1]
            for cid, ctype, data in inline:
                maintype, subtype = ctype.split("/")
                related.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{cid}>")
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(m)


def mailbox_for(addon, person, user, dovecot, protocol: str = "imap") -> int:
    port = dovecot.imaps if protocol == "imap" else dovecot.pop3s
    with Session(addon.engine) as s:
        mb = Mailbox(user_id=person.get_id(), account_name="Work", email=user.email,
                     is_active=True, protocol=protocol, in_host="localhost", in_port=port,
                     in_security="ssl", in_login=user.login,
                     in_password=addon.secrets.encrypt(user.password),
                     out_host="localhost", out_port=465, out_security="ssl")
        s.add(mb)
        s.commit()
        return mb.id


def set_outbound_only(addon, value: bool) -> None:
    with Session(addon.engine) as s:
        s.execute(update(GlobalSettings).where(GlobalSettings.id == 1).values(
            outbound_only=value))
        s.commit()


class Setup:
    """A recruiter (rita) with a synced lab mailbox, and a second recruiter (rob)."""

    def __init__(self, mini, dovecot, mail_user, protocol: str = "imap") -> None:
        self.app, self.host, self.addon = mini
        self.dovecot, self.user = dovecot, mail_user
        set_window(self.addon)
        self.rita = self.host.add_person("Rita", "rita@example.test")
        self.rob = self.host.add_person("Rob", "rob@example.test")
        self.mailbox_id = mailbox_for(self.addon, self.rita, mail_user, dovecot, protocol)
        self.client = signed_in(self.app, self.rita)

    def deliver_and_sync(self, *raws: bytes, folder: str = "INBOX") -> None:
        for raw in raws:
            self.dovecot.deliver(self.user, raw, folder=folder)
        r = sync_mailbox(self.addon, self.mailbox_id)
        assert r.error_kind is None, r
