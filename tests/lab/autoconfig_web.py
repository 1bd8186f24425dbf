"""An HTTPS server with the lab CA serving Thunderbird autoconfig documents, hostile ones too.

Why one server for every test domain: the lab DNS points every ``autoconfig.<domain>``
(and ``<domain>`` for the well-known URL) at 127.0.0.1, and the discovery service's HTTPS
port setting points at this server; SNI picks a certificate minted for the asked name, and
the Host header picks the route. Requests are recorded so tests can prove what was (not)
fetched.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from .authority import LabAuthority
from .servers import HOST

Route = Callable[["_Handler"], None]

_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<clientConfig version="1.1"><emailProvider id="bomb"><incomingServer type="imap">
<hostname>&lol9;</hostname><port>993</port><socketType>SSL</socketType>
<username>%EMAILADDRESS%</username></incomingServer></emailProvider></clientConfig>
"""

_EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE clientConfig [ <!ENTITY leak SYSTEM "file:///etc/passwd"> ]>
<clientConfig version="1.1"><emailProvider id="leak"><incomingServer type="imap">
<hostname>imap.example.test</hostname><port>993</port><socketType>SSL</socketType>
<username>&leak;</username></incomingServer></emailProvider></clientConfig>
"""


def client_config(imap: tuple[str, int, str] | None = None,
                  smtp: tuple[str, int, str] | None = None,
                  pop3: tuple[str, int, str] | None = None,
                  username: str = "%EMAILADDRESS%") -> bytes:
    """A clientConfig document with the given (host, port, socketType) servers."""
    parts = []
    for kind, tag, server in (("imap", "incomingServer", imap), ("pop3", "incomingServer", pop3),
                              ("smtp", "outgoingServer", smtp)):
        if server:
            host, port, socket_type = server
            parts.append(f'<{tag} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
                         f"<socketType>{socket_type}</socketType>"
                         "<authentication>password-cleartext</authentication>"
                         f"<username>{username}</username></{tag}>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<clientConfig version="1.1">'
            '<emailProvider id="lab"><displayName>Lab mail</displayName>'
            + "".join(parts) + "</emailProvider></clientConfig>").encode()


# ---------------------------------------------------------------------------- routes
def document(body: bytes, content_type: str = "text/xml") -> Route:
    """Answer 200 with ``body``."""
    def send(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return send


def bomb() -> Route:
    """Billion laughs: a few hundred bytes that expand to gigabytes in a naive parser."""
    return document(_BOMB)


def external_entity() -> Route:
    """A document whose entity reads a local file."""
    return document(_EXTERNAL)


def huge(size: int = 50 * 1024 * 1024, declare_length: bool = False) -> Route:
    """A ``size``-byte document, streamed (with or without a Content-Length up front)."""
    def send(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/xml")
        if declare_length:
            h.send_header("Content-Length", str(size))
        h.end_headers()
        chunk = b"<clientConfig>" + b" " * 65522
        sent = 0
        try:
            while sent < size:
                h.wfile.write(chunk)
                sent += len(chunk)
                h.server.lab.huge_bytes_sent += len(chunk)
        except OSError:
            pass  # the client hung up: what a size limit should do
    return send


def redirect(location: str, status: int = 302) -> Route:
    """Answer a redirect to ``location``."""
    def send(h: _Handler) -> None:
        h.send_response(status)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return send


def silent() -> Route:
    """Complete the TLS handshake, read the request, and never answer."""
    def send(h: _Handler) -> None:
        h.server.lab.stopping.wait()
    return send


def status(code: int) -> Route:
    """Answer ``code`` with an empty body."""
    def send(h: _Handler) -> None:
        h.send_response(code)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return send


def late(route: Route, seconds: float) -> Route:
    """Answer as ``route`` does, ``seconds`` later (a discovery that arrives late)."""
    def send(h: _Handler) -> None:
        time.sleep(seconds)
        route(h)
    return send


# ---------------------------------------------------------------------------- server
class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        lab = self.server.lab
        with lab.lock:
            lab.connections += 1
        # The TLS handshake runs here, in the request's own thread: a client that stalls
        # during the handshake must not stall the accept loop.
        self.request.settimeout(10)
        self.request = lab.context.wrap_socket(self.request, server_side=True)
        super().setup()

    def do_GET(self) -> None:
        lab = self.server.lab
        host = (self.headers.get("Host") or "").lower().rsplit(":", 1)[0].strip("[]")
        path = self.path.split("?", 1)[0]
        with lab.lock:
            lab.requests.append((host, self.path))
        if lab.latency:
            time.sleep(lab.latency)
        route = lab.routes.get((host, path))
        if route is None:
            status(404)(self)
        else:
            route(self)

    def log_message(self, format, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    lab: AutoconfigWeb

    def handle_error(self, request, client_address) -> None:
        pass  # clients that hang up or fail the handshake are part of the tests


class AutoconfigWeb:
    """The HTTPS lab server: ``routes[(host, path)] = route``; ``requests`` records (host, path)."""

    host = HOST

    def __init__(self, authority: LabAuthority) -> None:
        self.authority = authority
        self.context = authority.sni_server_context()
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[tuple[str, str]] = []
        self.connections = 0
        self.huge_bytes_sent = 0
        #: seconds added before each answer
        self.latency = 0.0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def serve(self, host: str, path: str, route: Route) -> None:
        """Answer GET https://host/path (any query string) with ``route``."""
        # The certificate is minted now, as a real server has its own before any client.
        self.authority.server_context(host.lower())
        self.routes[(host.lower(), path)] = route

    def autoconfig(self, domain: str, route: Route) -> None:
        """Serve ``route`` at https://autoconfig.<domain>/mail/config-v1.1.xml."""
        self.serve(f"autoconfig.{domain}", "/mail/config-v1.1.xml", route)

    def well_known(self, domain: str, route: Route) -> None:
        """Serve ``route`` at https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml."""
        self.serve(domain, "/.well-known/autoconfig/mail/config-v1.1.xml", route)

    def requested(self, host: str, since: int = 0) -> int:
        """How many requests (from the ``since``-th on) named ``host`` in their Host header."""
        with self.lock:
            return sum(1 for h, _p in self.requests[since:] if h == host.lower())

    def start(self) -> Self:
        self._server = _Server((HOST, 0), _Handler)
        self._server.lab = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={
            "poll_interval": 0.05}, name="autoconfig-web", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

