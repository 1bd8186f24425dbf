"""The copy in the user's IMAP Sent folder, and what Sent proves.

A sent copy is saved in Sent with ``\\Seen`` (APPEND; MULTIAPPEND for a batch),
unless the provider files sent mail itself (Gmail) or it is already there; then its
row is ``filed``. POP3 and outbound-only mailboxes keep the add-on's copy as their
Sent view and are ``filed`` at once. After a crash, a ``sending`` row whose
Message-ID is in Sent is proven sent (:func:`prove_sent`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from types import TracebackType

from sqlalchemy import update
from sqlalchemy.orm import Session

from plugin.context import AddonContext
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import MailError
from plugin.mail.imap import ImapSession
from plugin.models import Mailbox
from plugin.models.outbound import OutboundMessage
from plugin.sending.lease import now
from plugin.sending.messages import raw_for
from plugin.sending.sent_copy import record_sent, sender_name
from plugin.fetching.status import record_action
from plugin.setup.credentials import incoming_for

log = logging.getLogger("plugin.integrated_email.send")

#: hosts whose providers put mail sent through SMTP into Sent themselves
SELF_FILING_HOSTS = ("gmail.com", "googlemail.com")
APPEND_BATCH = 50


def provider_files_sent(mb: Mailbox) -> bool:
    """Whether the provider saves SMTP-sent mail in Sent by itself (then we must not)."""
    hosts = [(mb.out_host or "").lower(), (mb.in_host or "").lower(), mb.email.lower()]
    return any(h == d or h.endswith("." + d) or h.endswith("@" + d)
               for h in hosts for d in SELF_FILING_HOSTS)


class SentFolder:
    """The IMAP Sent folder of a mailbox, on one connection (use as a context manager)."""

    def __init__(self, addon: AddonContext, mb: Mailbox, policy: ConnectionPolicy) -> None:
        # The Sent folder is an IMAP folder; POP3 mailboxes keep sent copies here only.
        self.settings = incoming_for(addon, mb) if mb.protocol == "imap" else None
        self.policy = policy
        self.imap: ImapSession | None = None
        self.name: str | None = None

    def __enter__(self) -> SentFolder:
        self.imap = ImapSession(self.settings, self.policy)
        self.imap.open()
        roles = self.imap.find_folders()
        self.name = roles.get("sent")
        if self.name is None:
            self.name = "Sent"
            self.imap.create_folder(self.name)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.imap is not None:
            self.imap.close(polite=exc_type is None)

    def contains(self, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` are in Sent (``UID SEARCH HEADER Message-ID``)."""
        self.imap.select(self.name, readonly=True)
        return self.imap.search_message_ids(message_ids)

    def append_many(self, raws: Sequence[bytes]) -> None:
        """APPEND each message with \\Seen; one MULTIAPPEND command per batch when offered."""
        for start in range(0, len(raws), APPEND_BATCH):
            self.imap.append_many(self.name, raws[start:start + APPEND_BATCH], flags=("\\Seen",))

    def append_start(self, raws: Sequence[bytes]) -> bytes | None:
        """Start saving ``raws`` (MULTIAPPEND, answer read by :meth:`append_finish`);
        None when the server cannot, after saving them one by one."""
        if len(raws) > 1 and self.imap.can_multiappend():
            return self.imap.multiappend_start(self.name, raws, flags=("\\Seen",))
        self.append_many(raws)
        return None

    def append_finish(self, tag: bytes | None) -> None:
        """Read the answer of the MULTIAPPEND that :meth:`append_start` began."""
        if tag is not None:
            self.imap.multiappend_finish(tag)


def file_rows(addon: AddonContext, session: Session, mb: Mailbox,
              rows: Sequence[OutboundMessage], policy: ConnectionPolicy,
              raws: dict[int, bytes] | None = None, check_first: bool = True) -> None:
    """Record ``sent`` rows and put their copies in Sent; mark them ``filed``.

    When IMAP fails the rows stay ``sent`` (recorded) and the send job tries again."""
    raws = dict(raws or {})
    rows = [r for r in rows if r.state == "sent"]
    if not rows:
        return
    for r in rows:
        if r.id not in raws:
            raws[r.id] = raw_for(addon.app.config, r)
    record_sent(addon, [r for r in rows if r.stored_message_id is None], raws,
                sender_name(addon.host, rows[0].user_id, mb.account_name))
    in_sent = True
    if mb.protocol == "imap" and not provider_files_sent(mb):
        try:
            with SentFolder(addon, mb, policy) as sent:
                todo = rows
                if check_first:
                    there = sent.contains([r.message_id_header for r in rows])
                    todo = [r for r in rows if r.message_id_header not in there]
                sent.append_many([raws[r.id] for r in todo])
            record_action(addon.engine, mb.id, "sent_copy", None)
        except MailError as exc:
            log.warning("saving %d sent messages of mailbox %s failed: %s", len(rows), mb.id,
                        exc.kind)
            record_action(addon.engine, mb.id, "sent_copy", exc.sentence)
            in_sent = False
    elif mb.protocol == "imap":
        in_sent = True  # the provider files it
    if not in_sent:
        return
    stamp = now()
    ids = [r.id for r in rows]
    session.execute(update(OutboundMessage).where(
        OutboundMessage.id.in_(ids), OutboundMessage.state == "sent").values(
        state="filed", filed_at=stamp, in_sent_folder=mb.protocol == "imap"),
        execution_options={"synchronize_session": False})
    session.commit()
    for r in rows:
        r.state, r.filed_at = "filed", stamp


def prove_sent(addon: AddonContext, mb: Mailbox, policy: ConnectionPolicy,
               message_ids: Iterable[str]) -> set[str]:
    """Which Message-IDs the Sent folder proves went out (empty without IMAP)."""
    ids = [m for m in message_ids if m]
    if not ids or mb.protocol != "imap":
        return set()
    try:
        with SentFolder(addon, mb, policy) as sent:
            return sent.contains(ids)
    except MailError as exc:
        log.warning("checking Sent of mailbox %s failed: %s", mb.id, exc.kind)
        return set()
