"""Mail errors: one actionable sentence per kind, never the server's words."""

from __future__ import annotations

import imaplib
import pickle
import poplib
import smtplib
import socket
import ssl

import pytest

from plugin.mail.errors import KINDS, SENTENCES, MailError, classify

BANNER = "mx7.internal.corp ESMTP Postfix 3.4.1 secret-build"


def _wrapped(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except type(inner):
            raise outer  # noqa: B904 - the implicit __context__ is what classify must follow
    except type(outer) as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (socket.gaierror(-2, BANNER), "host_not_found"),
        (ConnectionRefusedError(111, BANNER), "refused"),
        (TimeoutError(BANNER), "timeout"),
        (ssl.SSLCertVerificationError(1, BANNER), "tls_certificate"),
        (ssl.SSLError(1, BANNER), "tls_failed"),
        (OSError(101, BANNER), "unreachable"),
        (imaplib.IMAP4.error("[AUTHENTICATIONFAILED] " + BANNER), "auth_failed"),
        (imaplib.IMAP4.error("[NONEXISTENT] " + BANNER), "folder_missing"),
        (imaplib.IMAP4.abort(BANNER), "protocol"),
        (_wrapped(imaplib.IMAP4.abort(BANNER), TimeoutError()), "timeout"),
        (_wrapped(smtplib.SMTPServerDisconnected(BANNER), TimeoutError()), "timeout"),
        (poplib.error_proto("-ERR " + BANNER), "protocol"),
        (smtplib.SMTPAuthenticationError(535, BANNER), "auth_failed"),
        (smtplib.SMTPRecipientsRefused({"a@b": (550, BANNER.encode())}), "recipient_refused"),
        (smtplib.SMTPSenderRefused(552, BANNER, "a@b"), "too_large"),
        (smtplib.SMTPSenderRefused(553, BANNER, "a@b"), "sender_refused"),
        (smtplib.SMTPDataError(552, BANNER), "too_large"),
        (smtplib.SMTPDataError(554, BANNER), "message_rejected"),
        (smtplib.SMTPConnectError(554, BANNER), "refused"),
        (smtplib.SMTPNotSupportedError(BANNER), "auth_unavailable"),
        (ValueError(BANNER), "protocol"),
    ],
)
def test_classify_maps_exception_to_kind_without_server_text(exc, kind):
    error = classify(exc)
    assert error.kind == kind
    assert error.sentence == SENTENCES[kind] == str(error)
    assert "mx7" not in repr(error) and "Postfix" not in repr(error)


def test_every_kind_has_one_sentence_ending_with_a_full_stop():
    for kind in KINDS:
        sentence = MailError(kind).sentence
        assert sentence.endswith(".") and "\n" not in sentence


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        MailError("oops")


def test_mail_error_survives_pickling():
    error = pickle.loads(pickle.dumps(MailError("too_large", code=552, detail="SMTPDataError")))
    assert (error.kind, error.code, error.detail) == ("too_large", 552, "SMTPDataError")
