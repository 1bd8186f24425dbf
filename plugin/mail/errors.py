"""Mail errors users can act on.

Every failure of the protocol layer ends up as a :class:`MailError` with a short
``kind`` and one plain ``sentence`` that says what to do next. The sentence is fixed
per kind on purpose: server banners and raw exception text can carry internal host
names, software versions or attacker-controlled text, so they are never shown or
logged. ``code`` keeps a numeric SMTP reply code where there is one (safe to log).
"""

from __future__ import annotations

import imaplib
import poplib
import re
import smtplib
import socket
import ssl

from plugin.words import N_

HOST_NOT_FOUND = "host_not_found"
REFUSED = "refused"
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
TLS_CERTIFICATE = "tls_certificate"
TLS_FAILED = "tls_failed"
STARTTLS_MISSING = "starttls_missing"
TLS_REQUIRED = "tls_required"
AUTH_FAILED = "auth_failed"
AUTH_UNAVAILABLE = "auth_unavailable"
HOST_NOT_ALLOWED = "host_not_allowed"
PROTOCOL = "protocol"
FOLDER_MISSING = "folder_missing"
SENDER_REFUSED = "sender_refused"
RECIPIENT_REFUSED = "recipient_refused"
MESSAGE_REJECTED = "message_rejected"
TOO_LARGE = "too_large"
MESSAGE_UNSAFE = "message_unsafe"
OAUTH_REJECTED = "oauth_rejected"
OAUTH_SCOPE = "oauth_scope"
OAUTH_UNAVAILABLE = "oauth_unavailable"
OAUTH_TLS_REQUIRED = "oauth_tls_required"
#: the provider refused the refresh token (revoked, expired, password changed)
OAUTH_SIGN_IN_AGAIN = "oauth_sign_in_again"
#: the provider's token endpoint failed or was slow (nothing changed; try later)
OAUTH_PROVIDER = "oauth_provider"
#: the administrator turned the provider's sign-in off or removed its client
OAUTH_DISABLED = "oauth_disabled"
NO_SERVER = "no_server"
THROTTLED = "throttled"

SENTENCES: dict[str, str] = {
    HOST_NOT_FOUND: N_("The server name could not be found. Check the host name."),
    REFUSED: N_("The server refused the connection. Check the host and port."),
    UNREACHABLE: N_("The server could not be reached. Check the host and port, "
    "or ask your administrator about the network."),
    TIMEOUT: N_("The server did not answer in time. Check the host, port and security setting."),
    TLS_CERTIFICATE: N_("The server's security certificate is not trusted or is for another "
    "host name. Check the host name, or ask your administrator to trust the certificate."),
    TLS_FAILED: N_("A secure connection could not be set up. Check the port and security setting."),
    STARTTLS_MISSING: N_("The server does not offer STARTTLS, so we did not send your password. "
    "Choose SSL/TLS or check the port."),
    TLS_REQUIRED: N_("The server only accepts passwords over a secure connection. "
    "Choose SSL/TLS or STARTTLS."),
    AUTH_FAILED: N_("The server rejected the username or password. Check them, or use an "
    "app-specific password if two-factor sign-in is on."),
    AUTH_UNAVAILABLE: N_("The server does not offer sign-in on this connection. Choose SSL/TLS "
    "or STARTTLS, or turn off authentication if the server does not need it."),
    HOST_NOT_ALLOWED: N_("This mail server is not allowed. Ask your administrator to allow it."),
    PROTOCOL: N_("The server answered in a way we did not expect. Check the host, port, "
    "protocol and security setting."),
    FOLDER_MISSING: N_("The folder could not be found on the server. Check the folder settings."),
    SENDER_REFUSED: N_("The server refused the sender address. Check that the From address "
    "belongs to this account."),
    RECIPIENT_REFUSED: N_("The server refused the recipient address. Check the address and "
                          "try again."),
    MESSAGE_REJECTED: N_("The server rejected the message. Check its content and recipients, "
    "then try again."),
    TOO_LARGE: N_("The message is too large for the server. Remove or shrink attachments "
    "and try again."),
    MESSAGE_UNSAFE: N_("The message holds a character mail cannot carry (a NUL byte), so it "
    "was not sent. Remove it and try again."),
    OAUTH_REJECTED: N_("The mail server did not accept your sign-in with your email provider "
    "(it has expired or was withdrawn). Sign in again."),
    OAUTH_SCOPE: N_("Your sign-in does not allow access to this mail server. Sign in again and "
    "allow access to your mail."),
    OAUTH_UNAVAILABLE: N_("The server does not offer sign-in with your email provider on this "
    "connection. Check the server settings, or use a password instead."),
    OAUTH_TLS_REQUIRED: N_("Signing in with your email provider needs a secure connection. "
    "Choose SSL/TLS or STARTTLS."),
    OAUTH_SIGN_IN_AGAIN: N_("Your sign-in with your email provider has expired or was "
    "withdrawn. Sign in again to resume fetching and sending."),
    OAUTH_PROVIDER: N_("Your email provider's sign-in service did not answer properly. "
    "It will be tried again in a few minutes."),
    OAUTH_DISABLED: N_("Sign-in with your email provider is turned off in the integrated "
    "email settings. Ask your administrator to turn it back on."),
    NO_SERVER: N_("No mail server is set for this mailbox. Add the server in the mailbox's "
    "settings."),
    THROTTLED: N_("Your mail server asked us to send more slowly. The message waits and is "
    "sent by itself a little later; nothing needs doing."),
}

KINDS: frozenset[str] = frozenset(SENTENCES)

# Enhanced status 5.3.4 / reply 552 both mean "message too big for system".
_TOO_LARGE_CODES = frozenset({552})


class MailError(Exception):
    """A mail failure with a stable ``kind`` and a user-facing ``sentence``."""

    def __init__(self, kind: str, *, code: int | None = None, detail: str = "") -> None:
        if kind not in SENTENCES:
            raise ValueError(f"unknown mail error kind {kind!r}")
        self.kind = kind
        self.sentence = SENTENCES[kind]
        #: numeric SMTP reply code when one applies; safe to log, unlike reply text
        self.code = code
        #: the class name of the underlying exception, for logs (never its text)
        self.detail = detail
        super().__init__(self.sentence)

    def __repr__(self) -> str:
        return f"MailError(kind={self.kind!r}, code={self.code!r}, detail={self.detail!r})"

    def __reduce__(self) -> tuple:  # keep pickling (e.g. across worker processes) working
        return (_rebuild, (self.kind, self.code, self.detail))


def _rebuild(kind: str, code: int | None, detail: str) -> MailError:
    return MailError(kind, code=code, detail=detail)


def _chain(exc: BaseException):
    """Yield exc and the exceptions it was raised from / during.

    imaplib and smtplib re-raise socket errors as their own ``abort`` /
    ``SMTPServerDisconnected`` inside an ``except`` block, so the real cause
    (a timeout, a reset) sits in ``__context__``.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _classify_os(exc: BaseException) -> str | None:
    # Order matters: SSL and timeout errors are OSError subclasses too.
    if isinstance(exc, MailError):
        return exc.kind
    if isinstance(exc, smtplib.SMTPException):
        return None  # an OSError subclass, but a protocol answer, not a socket failure
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLS_CERTIFICATE
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return TIMEOUT
    if isinstance(exc, socket.gaierror):
        return HOST_NOT_FOUND
    if isinstance(exc, ssl.SSLError):
        return TLS_FAILED
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return PROTOCOL
    if isinstance(exc, OSError):
        return UNREACHABLE
    return None


#: reply texts that mean "too much, too fast" (Exchange, Gmail, Yahoo, Postfix policies)
_RATE_TEXT = re.compile(rb"rate|too many|throttl|limit|quota|slow down|try (?:again )?later",
                        re.IGNORECASE)
_ENHANCED = re.compile(rb"^\s*([245])\.(\d{1,3})\.(\d{1,3})")


def is_throttling(code: int | None, text: bytes | str | None) -> bool:
    """Whether an SMTP answer means "slow down": 421, a 4.7.x status, or a rate text with
    a temporary code, 5.4.5 or 5.7.x. Only the verdict is kept, never the text."""
    if code is None:
        return False
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else (text or b"")
    if code == 421:
        return True
    status = _ENHANCED.match(raw)
    klass, subject = (status.group(1), status.group(2)) if status else (b"", b"")
    if klass == b"4" and subject == b"7":
        return True
    if status and (klass, subject, status.group(3)) == (b"5", b"4", b"5"):
        return True
    rate = _RATE_TEXT.search(raw) is not None
    return rate and (400 <= code < 500 or (klass == b"5" and subject == b"7"))


def _throttled(exc: smtplib.SMTPException) -> int | None:
    """The code of a throttling answer inside ``exc``, else None."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        answers = list(exc.recipients.values())
        if answers and all(is_throttling(c, t) for c, t in answers):
            return answers[0][0]
        return None
    if isinstance(exc, smtplib.SMTPResponseException) and \
            is_throttling(exc.smtp_code, exc.smtp_error):
        return exc.smtp_code
    return None


def _classify_smtp(exc: smtplib.SMTPException) -> MailError:
    name = type(exc).__name__
    throttled = _throttled(exc)
    if throttled is not None:
        return MailError(THROTTLED, code=throttled, detail=name)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return MailError(AUTH_FAILED, code=exc.smtp_code, detail=name)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return MailError(AUTH_UNAVAILABLE, detail=name)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in exc.recipients.values()]
        if codes and all(c in _TOO_LARGE_CODES for c in codes):
            return MailError(TOO_LARGE, code=codes[0], detail=name)
        return MailError(RECIPIENT_REFUSED, code=codes[0] if codes else None, detail=name)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        kind = TOO_LARGE if exc.smtp_code in _TOO_LARGE_CODES else SENDER_REFUSED
        return MailError(kind, code=exc.smtp_code, detail=name)
    if isinstance(exc, smtplib.SMTPDataError):
        kind = TOO_LARGE if exc.smtp_code in _TOO_LARGE_CODES else MESSAGE_REJECTED
        return MailError(kind, code=exc.smtp_code, detail=name)
    if isinstance(exc, smtplib.SMTPConnectError):
        return MailError(REFUSED, code=exc.smtp_code, detail=name)
    if isinstance(exc, smtplib.SMTPResponseException):
        return MailError(PROTOCOL, code=exc.smtp_code, detail=name)
    return MailError(PROTOCOL, detail=name)


def classify(exc: BaseException) -> MailError:
    """Map any exception raised while talking to a mail server to a :class:`MailError`."""
    if isinstance(exc, MailError):
        return exc
    name = type(exc).__name__
    # A low-level cause (timeout, refused, TLS) is the most useful thing to tell users,
    # even when a protocol library wrapped it in its own exception type.
    for link in _chain(exc):
        kind = _classify_os(link)
        if kind is not None:
            return MailError(kind, detail=type(link).__name__)
    if isinstance(exc, smtplib.SMTPException):
        return _classify_smtp(exc)
    if isinstance(exc, imaplib.IMAP4.abort):
        return MailError(PROTOCOL, detail=name)
    if isinstance(exc, imaplib.IMAP4.error):
        # imaplib has one error type for everything; only the server's response code
        # tells a bad login apart. Look at the code only, never keep the text.
        text = str(exc).upper()
        if "AUTHENTICATIONFAILED" in text or "AUTHORIZATIONFAILED" in text:
            return MailError(AUTH_FAILED, detail=name)
        if "NONEXISTENT" in text:
            return MailError(FOLDER_MISSING, detail=name)
        return MailError(PROTOCOL, detail=name)
    if isinstance(exc, poplib.error_proto):
        return MailError(PROTOCOL, detail=name)
    if isinstance(exc, (UnicodeError, ValueError, EOFError)):
        return MailError(PROTOCOL, detail=name)
    return MailError(PROTOCOL, detail=name)
