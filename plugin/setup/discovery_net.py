"""The network steps of discovery: DNS, HTTPS fetches and TLS handshakes, all policed.

Every host that discovery would contact (autoconfig web servers, redirect targets, SRV
targets, guessed names, the servers a document names) is resolved once through the
configured resolver and each address is passed through the host policy
(:func:`plugin.mail.connect.check_host`, given the IP literal so it does no second
lookup); only checked addresses are connected to, and TLS is verified for the name.
Every operation is bounded by the discovery's deadline and stops early once a result
is known.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar
from urllib.parse import SplitResult, urljoin, urlsplit

import dns.exception
import dns.resolver

from plugin.mail.connect import (
    ConnectionPolicy,
    check_host,
    connect_addresses,
    normalise_host,
    ssl_context,
)
from plugin.mail.errors import MailError

log = logging.getLogger("plugin.integrated_email.discovery")

T = TypeVar("T")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_GREETINGS = {"imap": b"* OK", "pop3": b"+OK", "smtp": b"220"}


class StepFailed(Exception):
    """A step found nothing usable; the reason is for the log, never for users."""


class Deadline:
    """The discovery's budget, shared by every step, plus a stop flag once a result is in."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.stopped = threading.Event()

    def left(self) -> float:
        """Seconds left; raises :class:`StepFailed` when none are or the result is known."""
        if self.stopped.is_set():
            raise StepFailed("a result is already known")
        left = self.end - time.monotonic()
        if left <= 0:
            raise StepFailed("out of time")
        return left


def parallel(calls: list[Callable[[], T]], deadline: Deadline) -> list[T | BaseException]:
    """Run ``calls`` side by side (threads); each result or exception in order."""
    results: list[T | BaseException] = [StepFailed("out of time")] * len(calls)

    def run(i: int, call: Callable[[], T]) -> None:
        try:
            results[i] = call()
        except Exception as exc:  # reported to the caller as a value
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c), daemon=True)
               for i, c in enumerate(calls[1:], 1)]
    for t in threads:
        t.start()
    if calls:
        run(0, calls[0])
    for t in threads:
        t.join(max(0.0, deadline.end - time.monotonic()) + 0.05)
    return results


class Lookup:
    """DNS through dnspython (nameservers and port are settings), with a per-run memo."""

    def __init__(self, nameservers: tuple[str, ...], port: int, deadline: Deadline) -> None:
        self.deadline = deadline
        self._resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            self._resolver.nameservers = list(nameservers)
            self._resolver.port = port
        self._resolver.cache = None  # the discovery cache is the cache
        self._memo: dict[str, Future] = {}
        self._lock = threading.Lock()

    def query(self, name: str, rtype: str) -> list:
        """Records of ``rtype`` for ``name``; [] when there are none."""
        try:
            answer = self._resolver.resolve(name, rtype, lifetime=self.deadline.left(),
                                            search=False, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            return []
        except dns.exception.Timeout:
            raise StepFailed(f"DNS {rtype} {name}: timeout") from None
        except dns.exception.DNSException as exc:
            raise StepFailed(f"DNS {rtype} {name}: {type(exc).__name__}") from None
        return list(answer.rrset) if answer.rrset is not None else []

    def _resolve(self, name: str) -> list[str]:
        a, aaaa = parallel([lambda: self.query(name, "A"), lambda: self.query(name, "AAAA")],
                           self.deadline)
        for result in (a, aaaa):
            if isinstance(result, BaseException):
                raise result
        return [r.address for r in a] + [r.address for r in aaaa]  # type: ignore[union-attr]

    def ips(self, name: str) -> list[str]:
        """A and AAAA of ``name`` (looked up once per run however many steps ask)."""
        with self._lock:
            future = self._memo.get(name)
            owner = future is None
            if owner:
                future = self._memo[name] = Future()
        assert future is not None
        if owner:
            try:
                future.set_result(self._resolve(name))
            except BaseException as exc:
                future.set_exception(exc)
        try:
            return future.result(timeout=self.deadline.left())
        except TimeoutError:
            raise StepFailed(f"DNS {name}: timeout") from None


def checked_addresses(lookup: Lookup, host: str, port: int, policy: ConnectionPolicy) -> list[str]:
    """Resolve ``host`` and return its addresses when the host policy allows every one."""
    try:
        name = normalise_host(host)
        try:
            ipaddress.ip_address(name)
            return check_host(name, port, policy)
        except ValueError:
            pass
        ips = lookup.ips(name)
        if not ips:
            raise StepFailed(f"{name}: no address")
        allowed: list[str] = []
        for ip in ips:
            # One refused address refuses the host: the OS could pick any of them.
            allowed += [a for a in check_host(ip, port, policy) if a not in allowed]
        return allowed
    except MailError as exc:
        raise StepFailed(f"{host[:100]}: {exc.kind}") from None


def _connect(lookup: Lookup, host: str, port: int, policy: ConnectionPolicy) -> socket.socket:
    addresses = checked_addresses(lookup, host, port, policy)
    try:
        return connect_addresses(addresses, port, lookup.deadline.left())
    except OSError as exc:
        raise StepFailed(f"{host}: connect failed ({type(exc).__name__})") from None


def _same_domain(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def fetch(url: str, *, lookup: Lookup, policy: ConnectionPolicy, https_port: int,
          domain: str, max_bytes: int) -> bytes:
    """GET an https URL: verified TLS, ≤ 1 redirect within ``domain``, ≤ ``max_bytes``."""
    for hop in range(2):
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not host or parts.username or parts.password:
            raise StepFailed("not a plain https URL")
        if parts.port not in (None, https_port):
            raise StepFailed("URL names another port")
        if hop and not _same_domain(host, domain):
            raise StepFailed("redirect to another domain")
        raw = _connect(lookup, host, https_port, policy)
        try:
            sock = ssl_context(policy).wrap_socket(raw, server_hostname=host)
        except (ssl.SSLError, OSError) as exc:
            raw.close()
            raise StepFailed(f"{host}: TLS failed ({type(exc).__name__})") from None
        try:
            status, location, body = _get(sock, host, https_port, parts, lookup.deadline,
                                          max_bytes)
        finally:
            sock.close()
        if status == 200:
            return body
        if status in _REDIRECTS and location and hop == 0:
            url = urljoin(url, location)
            continue
        raise StepFailed(f"{host}: HTTP {status}")
    raise StepFailed("more than one redirect")


def _get(sock: ssl.SSLSocket, host: str, port: int, parts: SplitResult, deadline: Deadline,
         max_bytes: int) -> tuple[int, str, bytes]:
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = host if port == 443 else f"{host}:{port}"
    request = (f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\n"
               "User-Agent: IntegratedEmail-autoconfig/1\r\nAccept: text/xml, application/xml\r\n"
               "Connection: close\r\n\r\n")
    try:
        sock.settimeout(deadline.left())
        sock.sendall(request.encode("ascii"))
        response = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
        response.begin()
        if response.status != 200:
            return response.status, response.getheader("Location") or "", b""
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise StepFailed(f"{host}: document too large")
        body = bytearray()
        while True:
            sock.settimeout(deadline.left())
            chunk = response.read(min(65536, max_bytes + 1 - len(body)))
            if not chunk:
                return 200, "", bytes(body)
            body += chunk
            if len(body) > max_bytes:
                raise StepFailed(f"{host}: document too large")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise StepFailed(f"{host}: HTTP failed ({type(exc).__name__})") from None


def _line(sock: socket.socket, deadline: Deadline) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        sock.settimeout(deadline.left())
        chunk = sock.recv(1)
        if not chunk or len(data) > 1024:
            raise StepFailed("connection closed")
        data += chunk
    return data


def _reply(sock: socket.socket, deadline: Deadline, code: bytes) -> list[bytes]:
    # SMTP replies span lines "250-..." until "250 ...".
    lines = []
    while True:
        line = _line(sock, deadline)
        if not line.startswith(code):
            raise StepFailed("unexpected SMTP reply")
        lines.append(line)
        if line[3:4] != b"-" or len(lines) > 64:
            return lines


def _starttls(sock: socket.socket, protocol: str, deadline: Deadline) -> None:
    if protocol == "smtp":
        _reply(sock, deadline, b"220")
        sock.sendall(b"EHLO discovery.invalid\r\n")
        if not any(line[4:].upper().startswith(b"STARTTLS") for line in
                   _reply(sock, deadline, b"250")):
            raise StepFailed("STARTTLS not offered")
        sock.sendall(b"STARTTLS\r\n")
        _reply(sock, deadline, b"220")
    elif protocol == "imap":
        if not _line(sock, deadline).startswith(b"* OK"):
            raise StepFailed("not an IMAP greeting")
        sock.sendall(b"d1 STARTTLS\r\n")
        while not (line := _line(sock, deadline)).startswith(b"d1 "):
            pass
        if not line.startswith(b"d1 OK"):
            raise StepFailed("STARTTLS refused")
    else:
        if not _line(sock, deadline).startswith(b"+OK"):
            raise StepFailed("not a POP3 greeting")
        sock.sendall(b"STLS\r\n")
        if not _line(sock, deadline).startswith(b"+OK"):
            raise StepFailed("STLS refused")


def confirm_tls(lookup: Lookup, policy: ConnectionPolicy, protocol: str, host: str,
                port: int, security: str) -> bool:
    """True when ``host:port`` completes a verified TLS handshake speaking ``protocol``."""
    sock = _connect(lookup, host, port, policy)
    try:
        if security == "starttls":
            _starttls(sock, protocol, lookup.deadline)
        sock.settimeout(lookup.deadline.left())
        tls = ssl_context(policy).wrap_socket(sock, server_hostname=host)
        sock = tls
        if security == "ssl" and not _line(tls, lookup.deadline).startswith(_GREETINGS[protocol]):
            raise StepFailed(f"{host}:{port}: not a {protocol} server")
        return True
    except (ssl.SSLError, OSError) as exc:
        raise StepFailed(f"{host}:{port}: TLS failed ({type(exc).__name__})") from None
    finally:
        sock.close()


def first_success(calls: list[Callable[[], T | None]], deadline: Deadline) -> tuple[int, T] | None:
    """Run ``calls`` side by side; the first in list order that returns a value.

    Answers as soon as every call before the winner has come back empty, so the result
    is the one a sequential run would give, in the time of the slowest call it had to
    wait for. At the deadline the best finished value wins, or None.
    """
    pending = object()
    results: list[object] = [pending] * len(calls)
    done = threading.Condition()

    def run(i: int, call: Callable[[], T | None]) -> None:
        try:
            value: object = call()
        except StepFailed as exc:
            log.debug("discovery: %s", exc)
            value = None
        except Exception:  # a bug in one step must not sink the others
            log.exception("discovery step failed")
            value = None
        with done:
            results[i] = value
            done.notify_all()

    for i, call in enumerate(calls):
        threading.Thread(target=run, args=(i, call), daemon=True).start()
    with done:
        while True:
            for i, value in enumerate(results):
                if value is pending:
                    break
                if value is not None:
                    return i, value  # type: ignore[return-value]
            else:
                return None
            left = deadline.end - time.monotonic()
            if left <= 0 or deadline.stopped.is_set():
                finished = [(i, v) for i, v in enumerate(results) if v not in (pending, None)]
                return finished[0] if finished else None  # type: ignore[return-value]
            done.wait(left)
