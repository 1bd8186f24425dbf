"""aiosmtpd-based submission servers for the lab (STARTTLS, implicit TLS, and no TLS).

Why aiosmtpd instead of a real MTA: we need to see exactly what the add-on sent
(envelope + raw bytes) and to deliver it into the lab Dovecot without running Postfix.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from aiosmtpd.controller import Controller
import requests
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

from . import bounces
from .dovecot import Dovecot
from .servers import HOST, free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes              # exactly as received (CRLF, after dot-unstuffing)
    login: str | None        # AUTH identity, None if unauthenticated
    port: int
    at: float = 0.0          # when it was accepted, on the lab's clock (SmtpLab.clock)


def default_refuse(address: str) -> bool:
    """Recipients whose local part starts with 'reject' get 550 (for partial-failure tests),
    such senders 553."""
    return address.split("@", 1)[0].lower().startswith("reject")


class _Handler:
    def __init__(self, lab: SmtpLab) -> None:
        self.lab = lab

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # aiosmtpd reads commands one line at a time, so pipelined clients just work;
        # it only does not say so. Real submission servers (Postfix, Exchange, Gmail) do.
        session.host_name = hostname
        if self.lab.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        lab = self.lab
        if lab.throttle_per_minute is not None:
            # An Exchange-like submission limit: N accepted in any minute, then 421.
            with lab._cond:
                stamp = lab.clock()
                lab.attempts_at.append(stamp)
                recent = [t for t in lab._accepted_at if t > stamp - 60.0]
                if len(recent) >= lab.throttle_per_minute:
                    lab.throttled += 1
                    return lab.throttle_reply
        if self.lab.refuse(address):
            return "553 5.7.1 Sender refused by lab policy"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.lab.refuse(address):
            return "550 5.1.1 Recipient refused by lab policy"
        if address.split("@", 1)[0].lower().startswith("maybe"):
            # Taken, with a 252 that clients (smtplib included) count as not accepted.
            envelope.rcpt_tos.append(address)
            return "252 2.1.5 Cannot verify the user, will attempt delivery"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        rec = Received(envelope.mail_from, tuple(envelope.rcpt_tos), raw, login,
                       server.transport.get_extra_info("sockname")[1], self.lab.clock())
        # Deliver before recording so wait_for() implies "already in the INBOX".
        for rcpt in rec.rcpt_tos:
            user = self.lab.dovecot.user(rcpt) if rcpt.lower().endswith("@example.test") else None
            if user is not None:
                self.lab.dovecot.deliver(user, raw)
            outcome = bounces.outcome_for(rcpt)
            sender = self.lab.dovecot.user(envelope.mail_from or "")
            if outcome is not None and sender is not None and self.lab.bounces:
                # Playing the recipient's server: it took the message, then reports back.
                self.lab.dovecot.deliver(sender, bounces.dsn(raw, envelope.mail_from, rcpt,
                                                             *outcome))
        with self.lab._cond:
            self.lab._accepted_at.append(rec.at)
            self.lab.received.append(rec)
            self.lab._cond.notify_all()
        return "250 Message accepted for delivery"


#: what Gmail answers a bad token with (a base64 JSON challenge, then 535 after the reply)
OAUTH_CHALLENGE = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
OAUTH_REFUSED = "535 5.7.8 Username and Password not accepted"


def parse_xoauth2(blob: bytes) -> tuple[str, str] | None:
    """``user=<addr>^Aauth=Bearer <token>^A^A`` -> (addr, token); None when malformed."""
    fields = dict(part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01")
                  if "=" in part)
    user, auth = fields.get("user", ""), fields.get("auth", "")
    if not user or not auth.startswith("Bearer ") or not blob.endswith(b"\x01\x01"):
        return None
    return user, auth[len("Bearer "):]


class _OAuthHandler(_Handler):
    """Also offers AUTH XOAUTH2, each token checked at the lab provider's RFC 7662
    introspection endpoint (over TLS, with the mail servers' client credentials)."""

    def _introspect(self, token: str) -> dict:
        oauth = self.lab.oauth
        with requests.Session() as http:
            http.trust_env = False  # the CA below, not REQUESTS_CA_BUNDLE
            r = http.post(oauth.introspect_url, data={"token": token}, timeout=5,
                          auth=(oauth.mail_servers_client, oauth.mail_servers_secret),
                          verify=str(oauth.certs.ca_cert))
        return r.json() if r.status_code == 200 else {"active": False}

    async def auth_XOAUTH2(self, server, args):
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parsed = parse_xoauth2(blob)
        info = {"active": False}
        if parsed is not None:
            info = await asyncio.get_running_loop().run_in_executor(
                None, self._introspect, parsed[1])
        if (parsed is not None and info.get("active") is True
                and str(info.get("username", "")).lower() == parsed[0].lower()):
            return AuthResult(success=True, auth_data=LoginPassword(parsed[0].encode(), b""))
        self.lab.oauth_failures += 1
        reply = await server.challenge_auth(json.dumps(OAUTH_CHALLENGE))
        if reply is MISSING:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=OAUTH_REFUSED)


class _ImplicitTlsSMTP(SMTP):
    """aiosmtpd 1.4 only counts STARTTLS as TLS; mark implicit-TLS sessions as secure too,
    otherwise auth_require_tls hides AUTH on the SMTPS port."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        ssl_obj = transport.get_extra_info("ssl_object")
        if ssl_obj is not None and self._original_transport is None:
            self._tls_protocol = ssl_obj  # only used as a truth value on this path
            self.session.ssl = {"ssl_object": ssl_obj}


class _ImplicitTlsController(Controller):
    def factory(self):
        return _ImplicitTlsSMTP(self.handler, **self.SMTP_kwargs)


class SmtpLab:
    host = HOST

    def __init__(self, dovecot: Dovecot, refuse: Callable[[str], bool] = default_refuse,
                 with_plain: bool = True, pipelining: bool = True) -> None:
        self.dovecot = dovecot
        #: the OAuth provider validating AUTH XOAUTH2 (Dovecot's); None = password AUTH only
        self.oauth = dovecot.oauth
        #: XOAUTH2 attempts refused so far
        self.oauth_failures = 0
        self.refuse = refuse
        self.with_plain = with_plain
        #: advertise PIPELINING (RFC 2920) in the EHLO answer
        self.pipelining = pipelining
        self.received: list[Received] = []
        #: accept at most this many messages in any minute of ``clock``, then answer
        #: ``throttle_reply`` at MAIL FROM (None: no limit)
        self.throttle_per_minute: int | None = None
        self.throttle_reply = "421 4.7.0 Try again later: message rate limit exceeded"
        #: seconds for the throttle's window and Received.at (tests pass a faster clock)
        self.clock: Callable[[], float] = time.monotonic
        #: MAIL FROM times while throttling, and how many were refused
        self.attempts_at: list[float] = []
        self.throttled = 0
        #: answer mail to "bounce*" addresses with a DSN into the sender's mailbox
        self.bounces = True
        self._accepted_at: list[float] = []
        self._cond = threading.Condition()
        self._controllers: list[Controller] = []
        self.starttls_port = self.tls_port = self.plain_port = 0

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        user = self.dovecot.user(login)  # same rule as Dovecot's %Ln
        if user is not None and user.password == password:
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False makes aiosmtpd answer 535; handled=True would leave the client hanging.
        return AuthResult(success=False, handled=False)

    def _server_ctx(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.dovecot.certs.cert, self.dovecot.certs.key)
        return ctx

    def start(self, ports: tuple[int, int] | None = None) -> SmtpLab:
        """Start; ``ports`` (starttls, implicit TLS) fixes the ports (the demo does)."""
        handler = (_OAuthHandler if self.oauth is not None else _Handler)(self)
        common = {"handler": handler, "hostname": HOST, "authenticator": self._authenticate,
                      "auth_required": True, "auth_require_tls": True, "ident": "lab-smtp"}
        self.starttls_port, self.tls_port = ports or (free_port(), free_port())
        starttls = Controller(port=self.starttls_port, tls_context=self._server_ctx(),
                              require_starttls=True, **common)
        implicit = _ImplicitTlsController(port=self.tls_port, ssl_context=self._server_ctx(),
                                          **common)
        ctrls = [starttls, implicit]
        if self.with_plain:
            # No TLS at all and STARTTLS never offered: for "STARTTLS not offered" tests.
            self.plain_port = free_port()
            ctrls.append(Controller(_Handler(self), hostname=HOST, port=self.plain_port,
                                    ident="lab-smtp-plain"))
        for c in ctrls:
            c.start()
            self._controllers.append(c)
        return self

    def stop(self) -> None:
        while self._controllers:
            self._controllers.pop().stop()

    def clear(self) -> None:
        with self._cond:
            self.received.clear()
            self.throttle_per_minute, self.clock = None, time.monotonic
            self.attempts_at.clear()
            self._accepted_at.clear()
            self.throttled = 0

    def wait_for(self, count: int = 1, timeout: float = 5) -> list[Received]:
        """Block until at least `count` messages were received; returns a copy of the list."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"expected {count} messages, got {len(self.received)}")
            return list(self.received)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# aiosmtpd 1.4 logs "Session.login_data is deprecated" (logger mail.log) on every AUTH,
# from its own code path; drop just that record so test logs stay readable.
logging.getLogger("mail.log").addFilter(lambda r: "login_data is deprecated" not in r.getMessage())
