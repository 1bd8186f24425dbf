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
#: domains whose discovered mail host (mail.<domain>) the set-up form tests connect to, so
#: the lab server certificate covers it; and a preset's hosts, which the lab DNS answers
LAB_MAIL_DOMAINS = ("acme-corp.test", "wellknown-corp.test", "srv-corp.test",
                    "mailhost-corp.test", "form-corp.test", "late-corp.test")
PRESET_HOSTS = ("imap.gmail.com", "smtp.gmail.com")
#: the names the lab server certificate covers besides localhost
LAB_CERT_NAMES = (f"*.{GUESS_DOMAIN}", *(f"mail.{d}" for d in LAB_MAIL_DOMAINS), *PRESET_HOSTS)
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


def discovery_config(lab_dns: LabDns, web: AutoconfigWeb, dovecot=None, smtp=None,
                     budget: float = BUDGET) -> dict:
    """IE_DISCOVERY_* pointing an app's discovery at the lab (and its guesses at the lab's
    Dovecot and SMTP ports when given)."""
    config = {"IE_DISCOVERY_NAMESERVERS": HOST, "IE_DISCOVERY_DNS_PORT": lab_dns.port,
              "IE_DISCOVERY_HTTPS_PORT": web.port, "IE_DISCOVERY_BUDGET": budget}
    if dovecot is not None and smtp is not None:
        config["IE_DISCOVERY_GUESS_PORTS"] = (
            f"imap:ssl:{dovecot.imaps},imap:starttls:{dovecot.imap},"
            f"smtp:ssl:{smtp.tls_port},smtp:starttls:{smtp.starttls_port}")
    return config


def publish_lab_mail(dns: LabDns, web: AutoconfigWeb, domain: str, dovecot, smtp, *,
                     well_known: bool = False, mail_host: str | None = None) -> str:
    """autoconfig.<domain> (or <domain>/.well-known) serves a document naming the lab's
    Dovecot and SMTP under ``mail_host`` (mail.<domain>); returns that host name."""
    mail_host = mail_host or f"mail.{domain}"
    dns.zone.add_a(mail_host, HOST)
    config = document(client_config(imap=(mail_host, dovecot.imaps, "SSL"),
                                    smtp=(mail_host, smtp.tls_port, "SSL")))
    if well_known:
        dns.zone.add_a(domain, HOST)
        web.well_known(domain, config)
    else:
        dns.zone.add_a(f"autoconfig.{domain}", HOST)
        web.autoconfig(domain, config)
    return mail_host
