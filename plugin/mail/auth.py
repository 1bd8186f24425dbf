"""SASL sign-in with an OAuth2 access token: XOAUTH2 and OAUTHBEARER (RFC 7628).

Both strings are a few bytes and written here by hand (tested byte for byte):

- XOAUTH2 (Google's, also Microsoft's): ``user=<addr>^Aauth=Bearer <token>^A^A``
- OAUTHBEARER: a GS2 header naming the account, then key/value pairs, e.g.
  ``n,a=<addr>,^Ahost=imap.example.com^Aport=993^Aauth=Bearer <token>^A^A``

A refused token is answered with a base64 JSON challenge such as
``{"status":"401","schemes":"bearer","scope":"..."}``; the client replies (empty for
XOAUTH2, a lone ^A for OAUTHBEARER) and then gets the final NO/-ERR/535. That challenge
becomes a :class:`MailError` with a fixed sentence: its text, the server's banner and
the token never reach a user, a log or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable

from plugin.mail.account import ServerSettings
from plugin.mail.errors import (
    OAUTH_REJECTED,
    OAUTH_SCOPE,
    OAUTH_TLS_REQUIRED,
    PROTOCOL,
    MailError,
)

XOAUTH2 = "XOAUTH2"
OAUTHBEARER = "OAUTHBEARER"
#: preferred first: every server that offers OAuth (Gmail, Outlook, Dovecot) has XOAUTH2
MECHANISMS: tuple[str, ...] = (XOAUTH2, OAUTHBEARER)

# RFC 6750 b64token: what a bearer token may contain. Anything else (^A, CR/LF, spaces)
# would let a token end the SASL message early or inject a protocol line.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# A SASL name or host value must not contain the ^A separator, NUL or line breaks.
_FORBIDDEN = re.compile(r"[\x00\x01\r\n]")
_STATUS = re.compile(r"[A-Za-z0-9_.\-]{1,40}")
#: longest error challenge we look at (Gmail's is ~100 bytes)
_MAX_CHALLENGE = 4096


def _check_token(token: str) -> bytes:
    if not isinstance(token, str) or not _B64TOKEN.fullmatch(token):
        raise ValueError("an access token must be a non-empty RFC 6750 b64token")
    return token.encode("ascii")


def _check_text(value: str, what: str) -> bytes:
    if not value or _FORBIDDEN.search(value):
        raise ValueError(f"{what} must be non-empty, without control separators")
    return value.encode("utf-8")


def xoauth2_initial_response(address: str, token: str) -> bytes:
    """The XOAUTH2 client message (before base64)."""
    return (b"user=" + _check_text(address, "address") + b"\x01auth=Bearer "
            + _check_token(token) + b"\x01\x01")


def _saslname(address: str) -> bytes:
    # RFC 5801 saslname: ',' and '=' are escaped as =2C and =3D.
    raw = _check_text(address, "address")
    return raw.replace(b"=", b"=3D").replace(b",", b"=2C")


def oauthbearer_initial_response(address: str, token: str, host: str | None = None,
                                 port: int | None = None) -> bytes:
    """The OAUTHBEARER client message of RFC 7628 section 3.1 (before base64)."""
    pairs = b""
    if host:
        pairs += b"host=" + _check_text(host, "host") + b"\x01"
    if port is not None:
        if not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError("port must be 1-65535")
        pairs += b"port=%d\x01" % port
    return (b"n,a=" + _saslname(address) + b",\x01" + pairs + b"auth=Bearer "
            + _check_token(token) + b"\x01\x01")


def choose_mechanism(offered: Iterable[str]) -> str | None:
    """XOAUTH2 when offered, else OAUTHBEARER, else None (case-insensitive names)."""
    names = {m.upper() for m in offered}
    return next((m for m in MECHANISMS if m in names), None)


def initial_response(mechanism: str, settings: ServerSettings) -> bytes:
    """The first client message for ``mechanism`` with the settings' login and token."""
    token = settings.access_token
    if token is None:
        raise ValueError("these settings carry no access token")
    if mechanism == XOAUTH2:
        return xoauth2_initial_response(settings.login, token)
    if mechanism == OAUTHBEARER:
        return oauthbearer_initial_response(settings.login, token, settings.host, settings.port)
    raise ValueError(f"not an OAuth mechanism: {mechanism!r}")


def error_reply(mechanism: str) -> bytes:
    """What the client answers an error challenge with, so the server sends its final NO:
    a lone ^A for OAUTHBEARER (RFC 7628 section 3.2.3), nothing for XOAUTH2 (Google)."""
    return b"\x01" if mechanism == OAUTHBEARER else b""


def require_tls(settings: ServerSettings) -> None:
    """A bearer token is as good as a password: never send one in plaintext."""
    if settings.security not in ("ssl", "starttls"):
        raise MailError(OAUTH_TLS_REQUIRED)


def decode_b64(data: bytes | str) -> bytes | None:
    """Base64 challenge text -> bytes; None when it is not base64."""
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    data = data.strip()
    if len(data) > _MAX_CHALLENGE * 2:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def challenge_status(challenge: bytes | None) -> str | None:
    """The ``status`` member of a server's JSON error challenge, or None."""
    if not challenge or len(challenge) > _MAX_CHALLENGE:
        return None
    try:
        data = json.loads(challenge.decode("utf-8"))
    except (UnicodeError, ValueError):
        return None
    status = data.get("status") if isinstance(data, dict) else None
    # Server-chosen text: only a short token of safe characters is kept (it goes to logs).
    return status if isinstance(status, str) and _STATUS.fullmatch(status) else None


def rejected(challenge: bytes | None = None, code: int | None = None) -> MailError:
    """The MailError for a refused token: a scope problem or a token to renew.

    ``challenge`` is the decoded error challenge (when the server sent one), ``code`` the
    SMTP reply code. Only the challenge's ``status`` is looked at, never kept.
    """
    status = challenge_status(challenge)
    kind = OAUTH_SCOPE if status in ("403", "insufficient_scope") else OAUTH_REJECTED
    if code is None and status is not None and status.isdigit() and len(status) == 3:
        code = int(status)
    return MailError(kind, code=code, detail=f"oauth status {status}" if status else "oauth")


class OAuthExchange:
    """The client side of one OAuth SASL exchange, for any of IMAP, POP3 and SMTP.

    ``respond`` answers each server continuation (base64 in, base64 out): with the initial
    response when it could not ride on the command (``sent_first`` False), else with the
    error reply, keeping the decoded error challenge for :func:`rejected`.
    """

    def __init__(self, mechanism: str, first: bytes, sent_first: bool) -> None:
        self.mechanism = mechanism
        #: the initial client message (before base64)
        self.first = first
        #: True when the initial response went with the command (SASL-IR, RFC 4959/5034)
        self.sent_first = sent_first
        self.rounds = 0
        #: the decoded error challenge the server sent, if any
        self.challenge: bytes | None = None

    def respond(self, data: bytes | str | None) -> bytes:
        """Answer one continuation line."""
        self.rounds += 1
        if self.rounds > 3:  # a server that never ends the exchange
            raise MailError(PROTOCOL, detail="endless sasl challenges")
        if not self.sent_first and self.rounds == 1:
            return base64.b64encode(self.first)  # answer to the empty go-ahead
        self.challenge = decode_b64(data or b"")
        return base64.b64encode(error_reply(self.mechanism))

    def error(self, code: int | None = None) -> MailError:
        """The MailError for the refusal that ended this exchange."""
        return rejected(self.challenge, code)
