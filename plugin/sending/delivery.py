"""SMTP delivery through the user's own server, and what a failure means for a row.

The life of one outbox row once it is in ``sending``: SMTP through the mailbox's
outgoing settings (:func:`smtp_session`, one connection reused per batch); ``sent``
committed; the copy recorded in the add-on's store (:mod:`plugin.sending.sent_copy`);
the copy saved in the IMAP Sent folder (:mod:`plugin.sending.sent_folder`); ``filed``.
A failure is judged here: retried after a back-off, or failed with its sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

from plugin.crypto import SecretBox
from plugin.mail import build as compose
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import (
    AUTH_FAILED,
    AUTH_UNAVAILABLE,
    HOST_NOT_ALLOWED,
    MESSAGE_REJECTED,
    RECIPIENT_REFUSED,
    SENDER_REFUSED,
    STARTTLS_MISSING,
    TLS_CERTIFICATE,
    TLS_REQUIRED,
    TOO_LARGE,
    MailError,
)
from plugin.mail.smtp import SmtpSession
from plugin.models import Mailbox
from plugin.models.outbound import OutboundMessage
from plugin.setup.credentials import outgoing_settings

#: failures no retry can fix: the row fails at once with the error's sentence
PERMANENT_KINDS = frozenset({AUTH_FAILED, AUTH_UNAVAILABLE, HOST_NOT_ALLOWED, TLS_CERTIFICATE,
                             STARTTLS_MISSING, TLS_REQUIRED, SENDER_REFUSED, RECIPIENT_REFUSED,
                             MESSAGE_REJECTED, TOO_LARGE})
#: waits before the 2nd, 3rd, ... attempt after a temporary failure
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15),
           timedelta(hours=1))
MAX_ATTEMPTS = len(BACKOFF) + 1
UNKNOWN_SENTENCE = ("We lost track of this message while it was being sent (the sending "
                    "process stopped). Check your Sent folder or ask the recipient; send it "
                    "again only if it did not arrive.")


def smtp_session(secrets: SecretBox, mb: Mailbox, policy: ConnectionPolicy) -> SmtpSession:
    """An (unopened) SMTP session through the mailbox's outgoing server."""
    domain = mb.email.rpartition("@")[2] or None
    return SmtpSession(outgoing_settings(mb, secrets), policy, use_auth=mb.out_auth,
                       local_hostname=domain)


def envelope_recipients(row: OutboundMessage | SimpleNamespace) -> list[str]:
    """Every To, Cc and Bcc address of the row once, in order (the RCPT TO list)."""
    seen: dict[str, None] = {}
    for col in (row.to_addrs, row.cc_addrs, row.bcc_addrs):
        for _name, addr in compose.addresses_from_json(col):
            seen.setdefault(addr, None)
    return list(seen)


@dataclass
class Failure:
    """What a MailError means for a row: retry later, or fail with a sentence."""

    kind: str
    sentence: str
    retry: bool


def judge(exc: MailError, attempts: int) -> Failure:
    """Retry a temporary failure (up to :data:`MAX_ATTEMPTS`), fail a permanent one."""
    temporary = exc.code is not None and 400 <= exc.code < 500
    if exc.kind in PERMANENT_KINDS and not temporary:
        return Failure(exc.kind, exc.sentence, retry=False)
    if attempts >= MAX_ATTEMPTS:
        return Failure(exc.kind, exc.sentence + " We tried several times and gave up; "
                       "send it again when the server works.", retry=False)
    return Failure(exc.kind, exc.sentence, retry=True)


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt after ``attempts`` tries."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]
