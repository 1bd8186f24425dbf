"""SMTP client: one authenticated connection reused for many messages (stdlib ``smtplib``).

Whatever is sent, an ``EmailMessage`` or bytes, the bytes of DATA are made here
(:func:`wire_data`): every line end CRLF, no NUL (refused with a sentence), every
leading dot doubled, one CRLF before the final dot. smtplib would send bytes as they
are apart from dot-stuffing, and a bare LF or CR before a dot is the raw material of
SMTP smuggling (``<LF>.<CR><LF>`` ends the message for lenient servers).

Why one module of ~450 lines: one SMTP session class plus the wire encoding and the
pipelined envelope it sends; they share the session's state.
"""

from __future__ import annotations

from typing import Any
import base64
import email.message
import functools
import logging
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from typing import Self

from plugin.mail.account import ServerSettings
from plugin.mail.auth import OAuthExchange, choose_mechanism, initial_response, require_tls
from plugin.mail.connect import ConnectionPolicy, check_host, connect_addresses, ssl_context
from plugin.mail.errors import (
    NO_SERVER,
    AUTH_FAILED,
    AUTH_UNAVAILABLE,
    MESSAGE_UNSAFE,
    OAUTH_UNAVAILABLE,
    PROTOCOL,
    STARTTLS_MISSING,
    MailError,
    classify,
)

log = logging.getLogger("plugin.integrated_email.mail")

_SMTP_ERRORS = (smtplib.SMTPException, OSError, EOFError, ValueError)
# Servers drop idle clients after a few minutes; check with NOOP after this long.
_IDLE_CHECK_SECONDS = 30.0
_BARE_LINE_END = re.compile(rb"\r\n|\r|\n")


class _CheckedSMTP(smtplib.SMTP):
    def __init__(self, addresses: list[str], timeout: float, local_hostname: str | None) -> None:
        self._addresses = addresses
        super().__init__(local_hostname=local_hostname, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float | None):
        # smtplib only sets _host (the name STARTTLS verifies) when given a host at
        # construction; we connect later, so record it here.
        self._host = host
        return connect_addresses(self._addresses, port, timeout)


class _CheckedSMTP_SSL(smtplib.SMTP_SSL):
    def __init__(
        self,
        addresses: list[str],
        context: ssl.SSLContext,
        timeout: float,
        local_hostname: str | None,
    ) -> None:
        self._addresses = addresses
        super().__init__(local_hostname=local_hostname, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float | None):
        self._host = host
        sock = connect_addresses(self._addresses, port, timeout)
        try:
            # The certificate must match the name the user typed, not the checked address.
            return self.context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise


def normalise_line_endings(raw: bytes) -> bytes:
    """Turn bare CR and bare LF into CRLF."""
    return _BARE_LINE_END.sub(b"\r\n", raw)


_LEADING_DOT = re.compile(rb"(?m)^\.")


def wire_data(raw: bytes) -> bytes:
    """The DATA payload for ``raw``: CRLF only, dot-stuffed, ending CRLF (the final
    ``.`` line not included). Raises ``MailError(message_unsafe)`` for a NUL byte,
    which no SMTP server must be handed (RFC 5321 section 4.5.2 allows none)."""
    if b"\x00" in raw:
        raise MailError(MESSAGE_UNSAFE, detail="NUL in message data")
    data = _LEADING_DOT.sub(b"..", normalise_line_endings(raw))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


#: an address smtplib.quoteaddr would return as ``<address>`` unchanged (dot-atoms only)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_ADDR = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def quote_address(addr: str) -> str:
    """``smtplib.quoteaddr`` without parsing the common simple address (same result)."""
    if _SIMPLE_ADDR.fullmatch(addr):
        return f"<{addr}>"
    return smtplib.quoteaddr(addr)


def _line(smtp: smtplib.SMTP, cmd: str, args: str) -> bytes:
    """One command line as ``smtplib.putcmd`` makes it (and refuses CR or LF in it)."""
    text = f"{cmd} {args}"
    if "\r" in text or "\n" in text:
        raise ValueError("command and arguments contain prohibited newline characters")
    return (text + "\r\n").encode(smtp.command_encoding)


def _sendmail(smtp: smtplib.SMTP, from_addr: str, rcpts: list[str], msg: bytes,
              while_waiting: Callable[[], None] | None,
              on_envelope: Callable[[], None] | None = None,
              mail_options: tuple[str, ...] = ()) -> dict:
    """``smtplib.SMTP.sendmail`` (same answers and exceptions) with a hook between
    writing the data and reading the server's verdict on it, and another
    (``on_envelope``) between writing the envelope and reading its answers.

    Where the server offers PIPELINING (RFC 2920; Postfix, Exchange and Gmail do) the
    envelope (MAIL FROM, every RCPT TO, DATA) goes out in one write and its answers
    are read together: two round trips a message instead of three or more.
    """
    smtp.ehlo_or_helo_if_needed()
    data = wire_data(msg)
    options = list(mail_options)
    if "SMTPUTF8" in options:
        if not smtp.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError("the server does not offer SMTPUTF8")
        smtp.command_encoding = "utf-8"
    if smtp.does_esmtp and smtp.has_extn("size"):
        options.append("size=%d" % len(data))
    mail = _line(smtp, "mail", "FROM:%s%s" % (quote_address(from_addr),
                                        " " + " ".join(options) if options else ""))
    # Every line is made (and checked for CR/LF) before anything is written.
    rcpt_lines = [_line(smtp, "rcpt", "TO:%s" % quote_address(r)) for r in rcpts]
    pipelined = smtp.does_esmtp and smtp.has_extn("pipelining")
    envelope = [mail, *rcpt_lines, b"data\r\n"] if pipelined else [mail]
    smtp.send(b"".join(envelope))
    if on_envelope is not None:
        try:
            on_envelope()
        except BaseException:
            # Nothing of the message was sent: end the transaction, keep the connection.
            try:
                codes = [smtp.getreply()[0] for _ in envelope]
                _reset(smtp, data_open=pipelined and codes[-1] == 354)
            except _SMTP_ERRORS:
                smtp.close()
            raise
    code, resp = smtp.getreply()
    if code != 250:
        # Pipelined, the RCPT and DATA answers are on their way: read them first.
        data_open = pipelined and _drain(smtp, len(rcpts) + 1)
        _reset(smtp, data_open, code)
        raise smtplib.SMTPSenderRefused(code, resp, from_addr)
    refused = {}
    for rcpt, line in zip(rcpts, rcpt_lines, strict=True):
        if not pipelined:
            smtp.send(line)  # what smtplib's rcpt() writes
        code, resp = smtp.getreply()
        if code not in (250, 251):
            refused[rcpt] = (code, resp)
        if code == 421:
            smtp.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if not pipelined:
        if len(refused) == len(rcpts):
            smtp._rset()
            raise smtplib.SMTPRecipientsRefused(refused)
        smtp.putcmd("data")
    code, resp = smtp.getreply()
    if pipelined and len(refused) == len(rcpts):
        # Nobody we count as a recipient; a server that still took DATA (it counted a
        # reply such as 252 as accepted) must not get a final dot: that would deliver.
        _reset(smtp, data_open=code == 354, code=code)
        raise smtplib.SMTPRecipientsRefused(refused)
    if code != 354:
        _reset(smtp, data_open=False, code=code)  # sendmail's RSET after SMTPDataError
        raise smtplib.SMTPDataError(code, resp)
    smtp.send(data + b".\r\n")
    if while_waiting is not None:
        try:
            while_waiting()
        except Exception:  # the answer to this message must still be read
            log.exception("work done while waiting for the smtp server failed")
    code, resp = smtp.getreply()
    if code != 250:
        if code == 421:
            smtp.close()
        else:
            smtp._rset()
        raise smtplib.SMTPDataError(code, resp)
    return refused


def _drain(smtp: smtplib.SMTP, answers: int) -> bool:
    """Read the answers still owed to pipelined commands (a server that hung up owes
    none); True when the last one (DATA's) was 354: the server now waits for data."""
    code = None
    for _ in range(answers):
        try:
            code, _resp = smtp.getreply()
        except smtplib.SMTPServerDisconnected:
            return False
    return code == 354


def _reset(smtp: smtplib.SMTP, data_open: bool, code: int | None = None) -> None:
    """End a transaction that must deliver nothing: RSET, or close the connection when
    the server hung up (421) or waits for message data, which only a final dot would
    end (and deliver). The next send reconnects."""
    if data_open or code == 421:
        smtp.close()
    else:
        smtp._rset()


def _guarded(method: Callable[..., Any]):
    @functools.wraps(method)
    def wrapper(self: Any, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except MailError:
            raise
        except _SMTP_ERRORS as exc:
            log.debug("smtp %s failed: %s", method.__name__, type(exc).__name__)
            raise classify(exc) from None

    return wrapper


class SmtpSession:
    """An SMTP connection, authenticated when ``use_auth``; use as a context manager."""

    def __init__(
        self,
        settings: ServerSettings,
        policy: ConnectionPolicy,
        use_auth: bool = True,
        local_hostname: str | None = None,
        fresh_settings: Callable[[], ServerSettings] | None = None,
    ) -> None:
        self.settings = settings
        #: called before each (re)connect: an OAuth access token may have been renewed
        #: since the session was made (a bulk job outlives a token)
        self.fresh_settings = fresh_settings
        self.policy = policy
        self.use_auth = use_auth
        #: name sent in EHLO; None lets smtplib use this machine's FQDN
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self._last_used = 0.0

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(polite=exc_type is None)

    @_guarded
    def open(self) -> None:
        """Connect, secure the connection as configured, and authenticate."""
        if self.fresh_settings is not None:
            self.settings = self.fresh_settings()
        s = self.settings
        if s is None or not (s.host or "").strip():  # a mailbox row without this server
            raise MailError(NO_SERVER, detail="no server")
        addresses = check_host(s.host, s.port, self.policy)
        try:
            self._connect(addresses)
            if self.use_auth:
                self._authenticate()
        except BaseException:
            self.close(polite=False)
            raise
        self._last_used = time.monotonic()
        log.info("smtp connected to %s:%d (%s, auth=%s)", s.host, s.port, s.security, self.use_auth)

    def _connect(self, addresses: list[str]) -> None:
        s, timeout = self.settings, self.policy.timeout
        if s.security == "ssl":
            smtp: smtplib.SMTP = _CheckedSMTP_SSL(
                addresses, ssl_context(self.policy), timeout, self.local_hostname
            )
        else:
            smtp = _CheckedSMTP(addresses, timeout, self.local_hostname)
        self._smtp = smtp
        smtp.connect(s.host, s.port)
        smtp.ehlo()
        if s.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise MailError(STARTTLS_MISSING)
            smtp.starttls(context=ssl_context(self.policy))
            smtp.ehlo()

    def _authenticate(self) -> None:
        smtp, s = self._smtp, self.settings
        if s.uses_oauth:
            self._auth_oauth()
            return
        if not smtp.has_extn("auth"):
            raise MailError(AUTH_UNAVAILABLE)
        try:
            if (s.login + s.password).isascii():
                smtp.login(s.login, s.password)
            else:
                self._auth_plain_utf8()
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(AUTH_FAILED, code=exc.smtp_code) from None
        except smtplib.SMTPException as exc:
            if isinstance(exc, (smtplib.SMTPServerDisconnected,)):
                raise
            # "No suitable authentication method found" and friends.
            raise MailError(AUTH_UNAVAILABLE, detail=type(exc).__name__) from None

    def _auth_oauth(self) -> None:
        """AUTH XOAUTH2 (or OAUTHBEARER) with the access token, initial response inline.

        Not smtplib's ``auth()``: it encodes the message as ASCII (an address may be UTF-8)
        and raises an exception carrying the server's reply text.
        """
        s = self.settings
        require_tls(s)
        mechanism = choose_mechanism(self._smtp.esmtp_features.get("auth", "").split())
        if mechanism is None:
            raise MailError(OAUTH_UNAVAILABLE)
        first = initial_response(mechanism, s)
        exchange = OAuthExchange(mechanism, first, sent_first=True)
        code, resp = self._smtp.docmd("AUTH", f"{mechanism} {base64.b64encode(first).decode()}")
        while code == 334:
            code, resp = self._smtp.docmd(exchange.respond(resp).decode("ascii"))
        if code == 235:
            return
        if 400 <= code < 500:  # e.g. 454: try later, the token may be fine
            raise MailError(PROTOCOL, code=code, detail="oauth temporary failure")
        raise exchange.error(code)

    def _auth_plain_utf8(self) -> None:
        # smtplib encodes credentials as ASCII; AUTH PLAIN (RFC 4616) is UTF-8.
        s = self.settings
        if "PLAIN" not in self._smtp.esmtp_features.get("auth", "").upper().split():
            raise MailError(AUTH_UNAVAILABLE, detail="no AUTH PLAIN for UTF-8 credentials")
        token = base64.b64encode(b"\0" + s.login.encode() + b"\0" + s.password.encode())
        code, _text = self._smtp.docmd("AUTH", "PLAIN " + token.decode("ascii"))
        if code != 235:
            raise MailError(AUTH_FAILED, code=code)

    def close(self, polite: bool = True) -> None:
        """QUIT (when ``polite``) and close; never raises."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if polite and smtp.sock is not None:
                smtp.quit()
            else:
                smtp.close()
        except (smtplib.SMTPException, OSError) as exc:
            # Closing must not hide the error that got us here.
            log.debug("smtp close failed: %s", type(exc).__name__)
            try:
                smtp.close()
            except OSError:
                log.debug("smtp socket close failed")

    def _ensure_open(self) -> None:
        if self._smtp is not None and time.monotonic() - self._last_used > _IDLE_CHECK_SECONDS:
            try:
                code, _ = self._smtp.noop()
                if code != 250:
                    raise smtplib.SMTPServerDisconnected("noop")
            except (smtplib.SMTPServerDisconnected, OSError):
                self.close(polite=False)
        if self._smtp is None or self._smtp.sock is None:
            self._smtp = None
            self.open()

    @_guarded
    def send(
        self,
        from_addr: str,
        rcpts: list[str],
        message: email.message.EmailMessage | bytes,
    ) -> dict[str, int]:
        """Send one message; returns refused recipient -> SMTP code (the others got it).

        Raises ``MailError`` (``recipient_refused`` when all were refused,
        ``too_large``, ``sender_refused``, ...) when nothing was sent.
        """
        if not rcpts:
            raise ValueError("no recipients")
        options: tuple[str, ...] = ()
        if isinstance(message, email.message.Message):
            # Flattened here, not by smtplib.send_message, so the bytes go through
            # wire_data like every other message. As send_message does, addresses
            # that are not ASCII need SMTPUTF8 and the message is written in UTF-8.
            policy = message.policy
            if not "".join([from_addr, *rcpts]).isascii():
                options, policy = ("SMTPUTF8", "BODY=8BITMIME"), policy.clone(utf8=True)
            raw = message.as_bytes(policy=policy.clone(linesep="\r\n"))
        else:
            raw = message
        return self._deliver(rcpts, lambda smtp: _sendmail(smtp, from_addr, rcpts, raw, None,
                                                           mail_options=options))

    def _deliver(self, rcpts: list[str], transaction: Any) -> dict[str, int]:
        """Run one SMTP transaction on the reused connection; refused recipients' codes."""
        self._ensure_open()
        try:
            refused = transaction(self._smtp)
        except smtplib.SMTPServerDisconnected:
            self.close(polite=False)
            raise
        self._last_used = time.monotonic()
        if refused:
            log.info("smtp server refused %d of %d recipients", len(refused), len(rcpts))
        # Keep only the codes: the reply texts are server-controlled.
        return {rcpt: code for rcpt, (code, _text) in refused.items()}

    @_guarded
    def send_bytes(
        self,
        from_addr: str,
        rcpts: list[str],
        raw: bytes,
        while_waiting: Callable[[], None] | None = None,
        on_envelope: Callable[[], None] | None = None,
    ) -> dict[str, int]:
        """:meth:`send` for a message already flattened; same answers and errors.

        ``raw`` is made CRLF-only and dot-stuffed by :func:`wire_data`. ``while_waiting``
        runs once the message data is written and before the server's answer is
        read: the caller's own work then overlaps the server's (it must not depend
        on whether this message goes through). ``on_envelope`` runs once the envelope
        (MAIL FROM; with PIPELINING also RCPT TO and DATA) is written and before its
        answers are read, so before any byte of the message: when it raises, nothing
        is sent (the transaction is reset, or the connection dropped when a pipelined
        DATA was already accepted) and the exception propagates unchanged.
        """
        if not rcpts:
            raise ValueError("no recipients")
        return self._deliver(rcpts, lambda smtp: _sendmail(
            smtp, from_addr, rcpts, raw, while_waiting, on_envelope))

    @_guarded
    def noop(self) -> None:
        """Check the connection is alive."""
        if self._smtp is None:
            raise MailError(PROTOCOL, detail="not connected")
        self._smtp.noop()
