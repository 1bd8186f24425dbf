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
from functools import partial
from types import SimpleNamespace

from plugin.context import AddonContext
from plugin.mail import build as compose
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import (
    AUTH_FAILED,
    AUTH_UNAVAILABLE,
    HOST_NOT_ALLOWED,
    MESSAGE_REJECTED,
    MESSAGE_UNSAFE,
    OAUTH_DISABLED,
    OAUTH_REJECTED,
    OAUTH_SCOPE,
    OAUTH_SIGN_IN_AGAIN,
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
from plugin.setup.credentials import outgoing_for, outgoing_settings
from plugin.setup.oauth_signin import forget_access_token

#: failures no retry can fix: the row fails at once with the error's sentence
PERMANENT_KINDS = frozenset({AUTH_FAILED, AUTH_UNAVAILABLE, HOST_NOT_ALLOWED, TLS_CERTIFICATE,
                             STARTTLS_MISSING, TLS_REQUIRED, SENDER_REFUSED, RECIPIENT_REFUSED,
                             MESSAGE_REJECTED, TOO_LARGE, MESSAGE_UNSAFE,
                             OAUTH_SIGN_IN_AGAIN, OAUTH_DISABLED, OAUTH_SCOPE})
#: waits before the 2nd, 3rd, ... attempt after a temporary failure
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15),
           timedelta(hours=1))
MAX_ATTEMPTS = len(BACKOFF) + 1
UNKNOWN_SENTENCE = ("We lost track of this message while it was being sent (the sending "
                    "process stopped). Check your Sent folder or ask the recipient; send it "
                    "again only if it did not arrive.")


class _SignedInSmtp(SmtpSession):
    """An SMTP session of a mailbox signed in with Google or Microsoft: the access token
    is read (and renewed when due) at each connect; a token the server refuses although
    the provider has not expired it (the grant was withdrawn) is renewed once, and a
    dead grant then says "Sign in again"."""

    def __init__(self, addon: AddonContext, mb: Mailbox, policy: ConnectionPolicy,
                 local_hostname: str | None) -> None:
        super().__init__(outgoing_settings(mb, addon.secrets), policy, use_auth=True,
                         local_hostname=local_hostname,
                         fresh_settings=partial(outgoing_for, addon, mb))
        self._addon, self._mb = addon, mb

    def open(self) -> None:
        """Connect and sign in with the current token; renew it once if refused."""
        try:
            super().open()
        except MailError as exc:
            if exc.kind != OAUTH_REJECTED:
                raise
            forget_access_token(self._addon, self._mb)
            super().open()


def smtp_session(addon: AddonContext, mb: Mailbox, policy: ConnectionPolicy) -> SmtpSession:
    """An (unopened) SMTP session through the mailbox's outgoing server (signing in with
    its access token when it has one: MailError when the owner must sign in again)."""
    domain = mb.email.rpartition("@")[2] or None
    if mb.oauth_provider:
        return _SignedInSmtp(addon, mb, policy, domain)
    return SmtpSession(outgoing_settings(mb, addon.secrets), policy, use_auth=mb.out_auth,
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
