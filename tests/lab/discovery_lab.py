"""What the discovery tests share: the guess domain, a budget, a connection log, publishing.

Why a connection log: hostile tests must prove that no socket was opened to a refused
address, so every TCP connect in the process is recorded while a test runs.
"""
from __future__ import annotations

import socket
import threading

import pytest

from .autoconfig_web import AutoconfigWeb, client_config, document
from .nameserver import LabDns
from .servers import HOST

#: the domain whose imap./smtp./mail. names the lab Dovecot and SMTP certificates cover
GUESS_DOMAIN = "guess.discover.test"
#: the discovery budget in tests (the product's default is 4 s)
BUDGET = 1.5
#: how late a result may come after the budget (thread wake-ups on a loaded machine)
SLACK = 0.4


class ConnectionLog:
    """Every TCP connect made in this process while installed, as (address, port)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> ConnectionLog:
        original = socket.socket.connect
        log = self

        def connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
                with log._lock:
                    log.made.append((address[0], address[1]))
            return original(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)
        return self

    def hosts(self) -> set[str]:
        """The addresses connected to."""
        with self._lock:
            return {a for a, _p in self.made}


def publish(dns: LabDns, web: AutoconfigWeb, domain: str, *, imap_host: str | None = None,
            username: str = "%EMAILADDRESS%") -> None:
    """autoconfig.<domain> serves a document naming imap./smtp.<domain>, all on 127.0.0.1."""
    imap_host = imap_host or f"imap.{domain}"
    dns.zone.add_a(f"autoconfig.{domain}", HOST)
    dns.zone.add_a(imap_host, HOST)
    dns.zone.add_a(f"smtp.{domain}", HOST)
    web.autoconfig(domain, document(client_config(
        imap=(imap_host, 993, "SSL"), smtp=(f"smtp.{domain}", 465, "SSL"), username=username)))
