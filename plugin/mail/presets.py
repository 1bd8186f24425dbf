"""Provider presets keyed by e-mail domain, default ports and polling floors.

Presets are data: adding a provider means adding one ``Preset(...)`` entry below.
Custom domains hosted by these providers cannot be recognised from the address; users
of those type the servers themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from plugin.words import N_

Protocol = Literal["imap", "pop3", "smtp"]


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: Literal["ssl", "starttls", "none"]


@dataclass(frozen=True)
class Preset:
    name: str
    domains: tuple[str, ...]
    imap: Endpoint | None
    pop3: Endpoint | None
    #: first entry is the default; the others are alternatives to offer
    smtp: tuple[Endpoint, ...]
    #: the provider throttles or blocks clients that poll more often than this
    min_poll_minutes: int
    #: short sentences shown next to the form
    notes: tuple[str, ...] = ()


_APP_PASSWORD = N_(
    "If two-step verification is on, create an app-specific password in "
    "your account's security settings and use it here."
)

PRESETS: tuple[Preset, ...] = (
    Preset(
        name="Gmail",
        domains=("gmail.com", "googlemail.com"),
        imap=Endpoint("imap.gmail.com", 993, "ssl"),
        pop3=Endpoint("pop.gmail.com", 995, "ssl"),
        smtp=(Endpoint("smtp.gmail.com", 465, "ssl"), Endpoint("smtp.gmail.com", 587, "starttls")),
        min_poll_minutes=10,
        notes=(
            N_("Gmail needs 2-Step Verification and an app password for mail programs."),
            N_("Enable IMAP or POP in Gmail's settings under Forwarding and POP/IMAP."),
            N_(
                "With POP, if several programs read this mailbox, sign in as "
                'recent:you@gmail.com and choose "Leave messages on the server".'
            ),
        ),
    ),
    Preset(
        name="Microsoft 365 / Outlook.com",
        domains=(
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "hotmail.co.uk",
            "hotmail.fr",
            "hotmail.de",
            "live.co.uk",
            "outlook.de",
            "outlook.fr",
        ),
        imap=Endpoint("outlook.office365.com", 993, "ssl"),
        pop3=Endpoint("outlook.office365.com", 995, "ssl"),
        smtp=(Endpoint("smtp.office365.com", 587, "starttls"),),
        min_poll_minutes=5,
        notes=(
            N_(
                "Microsoft is phasing out password sign-in for IMAP, POP and SMTP in favour "
                "of modern authentication; if your password is rejected, ask your "
                "administrator whether app passwords or SMTP AUTH are allowed for you."
            ),
        ),
    ),
    Preset(
        name="Zoho Mail",
        domains=("zoho.com", "zohomail.com"),
        imap=Endpoint("imap.zoho.com", 993, "ssl"),
        pop3=Endpoint("pop.zoho.com", 995, "ssl"),
        smtp=(Endpoint("smtp.zoho.com", 465, "ssl"), Endpoint("smtp.zoho.com", 587, "starttls")),
        min_poll_minutes=5,
        notes=(N_("Enable IMAP or POP access in Zoho Mail's settings first."), _APP_PASSWORD),
    ),
    Preset(
        name="Yahoo Mail",
        domains=("yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de"),
        imap=Endpoint("imap.mail.yahoo.com", 993, "ssl"),
        pop3=Endpoint("pop.mail.yahoo.com", 995, "ssl"),
        smtp=(
            Endpoint("smtp.mail.yahoo.com", 465, "ssl"),
            Endpoint("smtp.mail.yahoo.com", 587, "starttls"),
        ),
        min_poll_minutes=5,
        notes=(
            N_("Yahoo needs an app password for mail programs: create one under Account security."),
        ),
    ),
    Preset(
        name="iCloud Mail",
        domains=("icloud.com", "me.com", "mac.com"),
        imap=Endpoint("imap.mail.me.com", 993, "ssl"),
        pop3=None,
        smtp=(Endpoint("smtp.mail.me.com", 587, "starttls"),),
        min_poll_minutes=5,
        notes=(
            N_("iCloud Mail has no POP access; use IMAP."),
            N_("Use an app-specific password from your Apple Account's sign-in settings."),
        ),
    ),
    Preset(
        name="Fastmail",
        domains=("fastmail.com", "fastmail.fm"),
        imap=Endpoint("imap.fastmail.com", 993, "ssl"),
        pop3=Endpoint("pop.fastmail.com", 995, "ssl"),
        smtp=(Endpoint("smtp.fastmail.com", 465, "ssl"),),
        min_poll_minutes=5,
        notes=(
            N_(
                "Fastmail needs an app password for mail programs: create one under "
                "Settings, Privacy & Security."
            ),
        ),
    ),
)

DEFAULT_PORTS: dict[tuple[str, str], int] = {
    ("imap", "ssl"): 993,
    ("imap", "starttls"): 143,
    ("imap", "none"): 143,
    ("pop3", "ssl"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "none"): 110,
    ("smtp", "ssl"): 465,
    ("smtp", "starttls"): 587,
    ("smtp", "none"): 25,
}

#: floor for servers we know nothing about: polling more than once a minute gains nothing
DEFAULT_MIN_POLL_MINUTES = 1

_BY_DOMAIN: dict[str, Preset] = {d: p for p in PRESETS for d in p.domains}
_BY_HOST: dict[str, Preset] = {
    e.host: p for p in PRESETS for e in (p.imap, p.pop3, *p.smtp) if e is not None
}


def preset_for(email: str) -> Preset | None:
    """The preset for an address's domain (``Alice@GMail.com`` -> Gmail), if known."""
    _local, at, domain = (email or "").strip().rpartition("@")
    if not at:
        return None
    return _BY_DOMAIN.get(domain.lower().rstrip("."))


def default_port(protocol: Protocol, security: str) -> int:
    """Standard port for a protocol and security setting (imap+ssl -> 993)."""
    try:
        return DEFAULT_PORTS[(protocol, security)]
    except KeyError:
        raise ValueError(f"unknown protocol/security {protocol!r}/{security!r}") from None


def min_poll_minutes(host: str) -> int:
    """Shortest polling interval for a server host (10 for Gmail's servers)."""
    preset = _BY_HOST.get((host or "").strip().lower().rstrip("."))
    return preset.min_poll_minutes if preset else DEFAULT_MIN_POLL_MINUTES
