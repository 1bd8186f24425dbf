"""POP3 client: one signed-in session on a policy-checked connection (stdlib ``poplib``).

Deletions (DELE) only take effect when the session ends with QUIT. The context
manager sends QUIT only when the ``with`` block finished without an exception, so a
failure half-way through an import leaves every message on the server.

Gmail's ``recent:`` prefix (``recent:alice@gmail.com``) is simply part of the login.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable
import base64
import functools
import logging
import poplib
import ssl
from typing import Self

from plugin.mail.account import ServerSettings
from plugin.mail.auth import OAuthExchange, choose_mechanism, initial_response, require_tls
from plugin.mail.connect import ConnectionPolicy, check_host, connect_addresses, ssl_context
from plugin.mail.errors import (
    NO_SERVER,
    AUTH_FAILED,
    OAUTH_UNAVAILABLE,
    PROTOCOL,
    STARTTLS_MISSING,
    TLS_REQUIRED,
    MailError,
    classify,
)

log = logging.getLogger("plugin.integrated_email.mail")

# poplib refuses lines over 2 KB, but real HTML mail often has longer lines (RFC 5322
# asks for 998 and is widely ignored). Allow much longer lines instead of failing.
_MAX_LINE = 16 * 1024 * 1024
_POP_ERRORS = (poplib.error_proto, OSError, EOFError, ValueError)
# RFC 5034 section 4: an AUTH line with its initial response must fit in 255 octets,
# else the response waits for the server's empty challenge (real tokens are ~1-2 KB).
_MAX_AUTH_LINE = 255


class _LongLines:
    """Mixin: poplib's ``_getline`` with a usable line limit."""

    def _getline(self):
        line = self.file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise poplib.error_proto("-ERR line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


class _CheckedPOP3(_LongLines, poplib.POP3):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        self._addresses = addresses
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None):
        return connect_addresses(self._addresses, self.port, timeout)


class _CheckedPOP3_SSL(_LongLines, poplib.POP3_SSL):
    def __init__(
        self, host: str, port: int, addresses: list[str], context: ssl.SSLContext, timeout: float
    ) -> None:
        self._addresses = addresses
        super().__init__(host, port, timeout=timeout, context=context)

    def _create_socket(self, timeout: float | None):
        sock = connect_addresses(self._addresses, self.port, timeout)
        try:
            return self.context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _guarded(method: Callable[..., Any]):
    @functools.wraps(method)
    def wrapper(self: Any, *args, **kwargs):
        if self._pop is None:
            raise MailError(PROTOCOL, detail="not connected")
        try:
            return method(self, *args, **kwargs)
        except MailError:
            raise
        except _POP_ERRORS as exc:
            log.debug("pop3 %s failed: %s", method.__name__, type(exc).__name__)
            raise classify(exc) from None

    return wrapper


class Pop3Session:
    """A signed-in POP3 connection; use as a context manager."""

    def __init__(self, settings: ServerSettings, policy: ConnectionPolicy) -> None:
        self.settings = settings
        self.policy = policy
        self._pop: poplib.POP3 | None = None
        self._capa: dict | None = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.quit()
        else:
            self.close()

    def open(self) -> None:
        """Connect, secure the connection as configured, and sign in."""
        s = self.settings
        if s is None or not (s.host or "").strip():  # a mailbox row without this server
            raise MailError(NO_SERVER, detail="no server")
        addresses = check_host(s.host, s.port, self.policy)
        try:
            self._connect(addresses)
            self._login()
        except MailError:
            self.close()
            raise
        except _POP_ERRORS as exc:
            self.close()
            raise classify(exc) from None
        log.info("pop3 signed in to %s:%d (%s)", s.host, s.port, s.security)

    def _connect(self, addresses: list[str]) -> None:
        s, timeout = self.settings, self.policy.timeout
        if s.security == "ssl":
            self._pop = _CheckedPOP3_SSL(
                s.host, s.port, addresses, ssl_context(self.policy), timeout
            )
            return
        self._pop = _CheckedPOP3(s.host, s.port, addresses, timeout)
        if s.security == "starttls":
            try:
                caps = self._pop.capa()
            except poplib.error_proto:
                caps = {}  # no CAPA at all: certainly no STLS
            if "STLS" not in caps:
                raise MailError(STARTTLS_MISSING)
            self._pop.stls(context=ssl_context(self.policy))

    def _login(self) -> None:
        s = self.settings
        if s.uses_oauth:
            self._oauth_login()
            return
        try:
            self._pop.user(s.login)
            self._pop.pass_(s.password)
        except poplib.error_proto as exc:
            # Only the response code is looked at; the server's text is never kept.
            text = str(exc).upper()
            kind = TLS_REQUIRED if "[PRIVACYREQUIRED]" in text else AUTH_FAILED
            raise MailError(kind, detail="login refused") from None

    def _oauth_login(self) -> None:
        """AUTH XOAUTH2 (or OAUTHBEARER, RFC 7628) with the access token (RFC 5034)."""
        s, pop = self.settings, self._pop
        require_tls(s)
        try:
            sasl = pop.capa().get("SASL", [])  # after STLS: the list may differ before it
        except poplib.error_proto:
            sasl = []
        mechanism = choose_mechanism(sasl)
        if mechanism is None:
            raise MailError(OAUTH_UNAVAILABLE)
        first = initial_response(mechanism, s)
        line = f"AUTH {mechanism} " + base64.b64encode(first).decode("ascii")
        exchange = OAuthExchange(mechanism, first, sent_first=len(line) <= _MAX_AUTH_LINE)
        try:
            resp = pop._shortcmd(line if exchange.sent_first else f"AUTH {mechanism}")
            # poplib takes any '+' line as success; "+ <base64>" is a challenge, "+OK" is not.
            while resp[:3] != b"+OK":
                resp = pop._shortcmd(exchange.respond(resp[2:]).decode("ascii"))
        except poplib.error_proto:
            raise exchange.error() from None

    def close(self) -> None:
        """Drop the connection without QUIT: the server forgets pending deletions."""
        pop, self._pop = self._pop, None
        if pop is None:
            return
        try:
            pop.close()
        except OSError as exc:  # closing must not hide the error that got us here
            log.debug("pop3 close failed: %s", type(exc).__name__)

    def quit(self) -> None:
        """End the session with QUIT, which commits deletions; then close."""
        pop = self._pop
        if pop is None:
            return
        try:
            pop.quit()
        except _POP_ERRORS as exc:
            self.close()
            raise classify(exc) from None
        self._pop = None

    @_guarded
    def stat(self) -> tuple[int, int]:
        """(message count, mailbox size in octets)."""
        return self._pop.stat()

    @_guarded
    def uidl(self) -> list[tuple[int, str]]:
        """(message number, unique id) for every message."""
        _resp, lines, _octets = self._pop.uidl()
        out: list[tuple[int, str]] = []
        for line in lines:
            number, _, uid = line.decode("ascii", "replace").partition(" ")
            out.append((int(number), uid.strip()))
        return out

    @_guarded
    def sizes(self) -> dict[int, int]:
        """Message number -> size in octets (LIST)."""
        _resp, lines, _octets = self._pop.list()
        out: dict[int, int] = {}
        for line in lines:
            number, size = line.split()[:2]
            out[int(number)] = int(size)
        return out

    @_guarded
    def retr(self, number: int) -> bytes:
        """The raw message; poplib already undid the byte-stuffing of leading dots."""
        _resp, lines, _octets = self._pop.retr(number)
        return b"\r\n".join(lines) + b"\r\n" if lines else b""

    @_guarded
    def top(self, number: int, lines: int = 0) -> bytes | None:
        """The header block (and ``lines`` body lines) of a message; None when the
        server answers -ERR (TOP is optional in RFC 1939)."""
        try:
            _resp, got, _octets = self._pop.top(number, lines)
        except poplib.error_proto as exc:
            if str(exc).startswith(("-ERR EOF", "-ERR line too long")):
                raise
            return None
        return b"\r\n".join(got) + b"\r\n" if got else b""

    @_guarded
    def dele(self, number: int) -> None:
        """Mark a message for deletion; it is removed only at :meth:`quit`."""
        self._pop.dele(number)

    @_guarded
    def rset(self) -> None:
        """Unmark every message marked for deletion in this session."""
        self._pop.rset()
