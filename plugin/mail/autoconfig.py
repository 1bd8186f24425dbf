"""Thunderbird's clientConfig documents (config-v1.1.xml), parsed safely.

The document comes from a web server that anyone can run, so it is hostile input: its
size is checked before parsing, and defusedxml refuses DTDs, entities and external
references (billion laughs, file:// entities). Only the fields the set-up form needs
are read, each validated; unknown elements are ignored as Thunderbird does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

Security = Literal["ssl", "starttls", "none"]

#: documents are a few kilobytes; anything much larger is not a mail configuration
MAX_DOCUMENT_BYTES = 128 * 1024
# Past this many servers a document is abuse, not a configuration.
_MAX_SERVERS = 32

_SOCKET_TYPES: dict[str, Security] = {"ssl": "ssl", "tls": "ssl", "starttls": "starttls",
                                      "plain": "none"}
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_%](?:[A-Za-z0-9_.%\-]*[A-Za-z0-9%])?$")
_PLACEHOLDER = re.compile(r"%[A-Z]+%")
_KNOWN_PLACEHOLDERS = frozenset({"%EMAILADDRESS%", "%EMAILLOCALPART%", "%EMAILDOMAIN%"})


class AutoconfigError(ValueError):
    """The document is not a usable clientConfig (too large, unsafe, malformed, empty)."""


@dataclass(frozen=True)
class ServerEntry:
    """One incomingServer or outgoingServer of a clientConfig document."""

    protocol: Literal["imap", "pop3", "smtp"]
    #: may contain %EMAILDOMAIN%; see :func:`expand`
    hostname: str
    port: int
    security: Security
    #: Thunderbird's names, e.g. "password-cleartext", "OAuth2", in document order
    authentication: tuple[str, ...]
    #: e.g. "%EMAILADDRESS%" or "%EMAILLOCALPART%"
    username: str


@dataclass(frozen=True)
class ClientConfig:
    """The servers of a document, best first (IMAP before POP3, TLS before plain)."""

    display_name: str
    incoming: tuple[ServerEntry, ...]
    outgoing: tuple[ServerEntry, ...]


def expand(template: str, address: str) -> str:
    """Fill Thunderbird's placeholders from ``address`` (``%EMAILLOCALPART%`` -> "jane")."""
    local, _at, domain = address.rpartition("@")
    return (template.replace("%EMAILADDRESS%", address)
            .replace("%EMAILLOCALPART%", local)
            .replace("%EMAILDOMAIN%", domain))


def _text(element: Element, tag: str) -> str:
    child = element.find(tag)
    return (child.text or "").strip() if child is not None else ""


def _clean(value: str, limit: int = 255) -> str:
    # Control characters (CR/LF above all) would end up in protocol commands and headers.
    if len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return ""
    return value


def _server(element: Element, protocol: str) -> ServerEntry | None:
    hostname = _clean(_text(element, "hostname"))
    if not hostname or not _HOSTNAME.match(hostname):
        return None
    if not set(_PLACEHOLDER.findall(hostname)) <= {"%EMAILDOMAIN%"}:
        return None
    try:
        port = int(_text(element, "port"))
    except ValueError:
        return None
    if not 0 < port < 65536:
        return None
    security = _SOCKET_TYPES.get(_text(element, "socketType").lower())
    if security is None:
        return None
    raw_username = _text(element, "username")
    username = _clean(raw_username) if raw_username else "%EMAILADDRESS%"
    if not username or not set(_PLACEHOLDER.findall(username)) <= _KNOWN_PLACEHOLDERS:
        return None
    auth = tuple(a for a in (_clean((e.text or "").strip(), 64)
                             for e in element.findall("authentication")[:8]) if a)
    # Not lower-cased here: placeholders are upper-case; callers lower-case after expand().
    return ServerEntry(protocol, hostname, port, security,  # type: ignore[arg-type]
                       auth or ("password-cleartext",), username)


def _rank(entry: ServerEntry, order: int) -> tuple[int, int, int]:
    # IMAP before POP3; any TLS (implicit or STARTTLS, in the provider's order) before plain.
    return (0 if entry.protocol in ("imap", "smtp") else 1,
            1 if entry.security == "none" else 0, order)


def _sorted(entries: list[ServerEntry]) -> tuple[ServerEntry, ...]:
    return tuple(e for _r, e in sorted(((_rank(e, i), e) for i, e in enumerate(entries)),
                                       key=lambda pair: pair[0]))


def parse_client_config(data: bytes, max_bytes: int = MAX_DOCUMENT_BYTES) -> ClientConfig:
    """Parse a config-v1.1.xml document; raises :class:`AutoconfigError` when unusable."""
    if len(data) > max_bytes:
        raise AutoconfigError("document too large")
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException as exc:
        raise AutoconfigError(f"unsafe XML refused ({type(exc).__name__})") from None
    except SafeET.ParseError:
        raise AutoconfigError("not well-formed XML") from None
    if root.tag != "clientConfig":
        raise AutoconfigError("not a clientConfig document")
    provider = root.find("emailProvider")
    if provider is None:
        raise AutoconfigError("no emailProvider")
    incoming: list[ServerEntry] = []
    outgoing: list[ServerEntry] = []
    for element in provider.findall("incomingServer")[:_MAX_SERVERS]:
        kind = (element.get("type") or "").lower()
        if kind in ("imap", "pop3") and (entry := _server(element, kind)):
            incoming.append(entry)
    for element in provider.findall("outgoingServer")[:_MAX_SERVERS]:
        if (element.get("type") or "").lower() == "smtp" and (entry := _server(element, "smtp")):
            outgoing.append(entry)
    if not incoming:
        raise AutoconfigError("no usable incoming server")
    name = _clean(_text(provider, "displayName"), 100)
    return ClientConfig(name, _sorted(incoming), _sorted(outgoing))
