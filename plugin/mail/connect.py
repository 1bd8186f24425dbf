"""Connections to mail servers: the host policy (SSRF guard) and verified TLS.

Mail hosts are typed in by users, so a connection attempt is a request the web server
makes on a user's behalf. Before any socket is opened the host is resolved once and
refused when any of its addresses is in a range of the add-on's own table
(``plugin.mail.networks``: loopback, private, link-local, cloud metadata, shared,
multicast, documentation, reserved, ...) unless the administrator allow-listed that
address or its network, and when the port is not a mail port (or one the allow-list
names). An allow-listed host *name* only lifts the rule against internal names such
as ``*.internal``: its addresses must still be public or allow-listed themselves, so
DNS cannot turn an allowed name into a way in. The protocol clients then connect to
exactly the addresses that were checked (no second DNS lookup that could be rebound),
while TLS is still verified against the host *name* the user typed.

Every refusal reads the same (``host_not_allowed``) and is given before any socket is
opened, so the answer tells nothing about what listens behind a refused host or port.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import socket
import ssl
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.resolver

from plugin.mail import networks
from plugin.mail.errors import (
    HOST_NOT_ALLOWED,
    HOST_NOT_FOUND,
    REFUSED,
    TIMEOUT,
    MailError,
    classify,
)

log = logging.getLogger("plugin.integrated_email.mail")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that reach internal services whatever DNS says about them at check time.
_BLOCKED_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_BLOCKED_SUFFIXES = (".localhost", ".internal")

# A host is a DNS name or an IP literal: letters, digits, '-', '_', '.', ':' and an
# IPv6 zone after '%'. Anything else (spaces, CR/LF, '@', '/', '\\') is an injection try.
_HOST_CHARS = re.compile(r"^[A-Za-z0-9._:%\-]+$")


@dataclass(frozen=True)
class ConnectionPolicy:
    """What the administrator allows: extra hosts, an extra CA, and the socket timeout."""

    #: host names, IP addresses or CIDR networks allowed even when not public
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    #: PEM file of an extra CA to trust besides the system store
    ca_file: str | None = None
    #: seconds for connecting and for each read/write on the socket
    timeout: float = 15.0
    #: DNS servers that resolve mail host names (the ones discovery asks, so that a host
    #: it found can be connected to); empty: the machine's resolver
    nameservers: tuple[str, ...] = ()
    dns_port: int = 53


def _not_allowed(reason: str, host: str) -> MailError:
    # The reason goes to the log for administrators; users all get the same sentence
    # so that the answer does not help map the internal network.
    log.info("refused mail host %r: %s", host[:100], reason)
    return MailError(HOST_NOT_ALLOWED, detail=reason)


def _parse_inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """Parse the legacy IPv4 forms resolvers still accept (127.1, 0x7f000001, 0177.0.0.1).

    Returns None when the host is not numeric at all (a DNS name); raises ValueError
    when it looks numeric but is not a valid address.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        lowered = part.lower()
        if lowered.startswith("0x"):
            digits, base = lowered[2:], 16
            if digits and not all(c in "0123456789abcdef" for c in digits):
                return None
            if not digits:
                digits = "0"
        elif part.isdigit():
            digits, base = part, 8 if len(part) > 1 and part.startswith("0") else 10
            if base == 8 and not all(c in "01234567" for c in digits):
                raise ValueError("bad octal part")
        else:
            return None
        values.append(int(digits, base))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        raise ValueError("part out of range")
    number = 0
    for v in head:
        number = number * 256 + v
    number = number * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(number)


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    return _parse_inet_aton(host)


def is_public(ip: IPAddress) -> bool:
    """True when the address is in no range of the add-on's table (see ``networks``)."""
    return networks.is_public(ip)


#: the ports of SMTP, submission, POP3 and IMAP (plain, STARTTLS and implicit TLS)
MAIL_PORTS = frozenset({25, 110, 143, 465, 587, 993, 995, 2525})


@dataclass(frozen=True)
class AllowEntry:
    """One line of the allow-list: a host name or a network, and extra ports."""

    #: a lower-case host name, or None when ``network`` is set
    name: str | None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    #: (low, high) port ranges allowed besides the mail ports
    ports: tuple[tuple[int, int], ...] = ()

    def has_port(self, port: int) -> bool:
        """Whether this allow-list entry names ``port``."""
        return any(low <= port <= high for low, high in self.ports)


_PORTS = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


def parse_allow_entry(text: str) -> AllowEntry | None:
    """Read one allow-list entry; None when it is not one.

    ``mail.corp.example``, ``10.0.0.5``, ``10.0.0.0/8``, ``fd00::/8`` allow that host or
    network on the mail ports; ``HOST:PORT`` or ``HOST:LOW-HIGH`` (IPv6 in brackets:
    ``[fd00::1]:10143``) also allow those ports, on that host only.
    """
    entry = text.strip().lower()
    target, ports_text = entry, ""
    if entry.startswith("["):
        inner, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        target, ports_text = inner, rest[1:]
        if rest and not ports_text:
            return None
    elif entry.count(":") == 1:
        target, _, ports_text = entry.partition(":")
        if not ports_text:
            return None
    target = target.rstrip(".")
    if not target:
        return None
    ports: tuple[tuple[int, int], ...] = ()
    if ports_text:
        m = _PORTS.match(ports_text)
        if not m:
            return None
        low = int(m.group(1))
        high = int(m.group(2) or low)
        if not 0 < low <= high < 65536:
            return None
        ports = ((low, high),)
    try:
        return AllowEntry(None, ipaddress.ip_network(target.split("%", 1)[0], strict=False),
                          ports)
    except ValueError:
        pass
    if ":" in target or "/" in target or not _HOST_CHARS.match(target) or ".." in target:
        return None
    return AllowEntry(target, None, ports)


@functools.lru_cache(maxsize=64)
def _allow_list(entries: frozenset[str]) -> tuple[AllowEntry, ...]:
    parsed = []
    for text in entries:
        entry = parse_allow_entry(text) if text.strip() else None
        if entry is None:
            if text.strip():
                log.warning("ignored an allow-list entry that is not a host, address or network")
            continue
        parsed.append(entry)
    return tuple(parsed)


def _plain(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        plain = ipaddress.IPv6Address(int(ip))  # without a zone
        return plain.ipv4_mapped or plain
    return ip


def _covers(entry: AllowEntry, ip: IPAddress) -> bool:
    plain = _plain(ip)
    net = entry.network
    return net is not None and plain.version == net.version and plain in net


def normalise_host(host: str) -> str:
    """Lower-case, strip IPv6 brackets and one trailing dot; refuse malformed names."""
    if not isinstance(host, str):
        raise _not_allowed("not a string", repr(host))
    text = host.strip()
    if text != host or not text:
        raise _not_allowed("empty or padded", host)
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    if not text or not _HOST_CHARS.match(text) or ".." in text or len(text) > 253:
        raise _not_allowed("malformed", host)
    return text.lower()


def _port_allowed(port: int, entries: tuple[AllowEntry, ...], name: str | None,
                  ips: list[IPAddress], extra_ports: frozenset[int]) -> bool:
    if port in MAIL_PORTS or port in extra_ports:
        return True
    for entry in entries:
        if not entry.has_port(port):
            continue
        if entry.name is not None and entry.name == name:
            return True
        if entry.network is not None and ips and all(_covers(entry, ip) for ip in ips):
            return True
    return False


def _address_allowed(ip: IPAddress, entries: tuple[AllowEntry, ...]) -> bool:
    return is_public(ip) or any(_covers(entry, ip) for entry in entries)


def check_host(host: str, port: int, policy: ConnectionPolicy,
               extra_ports: frozenset[int] = frozenset()) -> list[str]:
    """Resolve ``host`` and return its addresses when all of them may be contacted.

    ``extra_ports`` are allowed besides the mail ports for a port the add-on chose
    itself, never one a user typed (discovery's HTTPS fetch of an autoconfig file).

    Raises ``MailError(kind="host_not_allowed")`` (always the same sentence) for
    refused hosts and ports, and ``host_not_found`` when the name does not resolve.
    Opens no socket to the server.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise MailError(REFUSED, detail="invalid port")
    name = normalise_host(host)
    entries = _allow_list(policy.allowed_hosts)

    try:
        literal = _ip_literal(name)
    except ValueError:
        raise _not_allowed("malformed numeric address", host) from None
    if literal is not None:
        if not _address_allowed(literal, entries):
            raise _not_allowed("non-public address", host)
        if not _port_allowed(port, entries, None, [literal], extra_ports):
            raise _not_allowed("not a mail port", host)
        return [str(literal)]

    name_allowed = any(entry.name == name for entry in entries)
    if not name_allowed and (name in _BLOCKED_NAMES or name.endswith(_BLOCKED_SUFFIXES)):
        raise _not_allowed("blocked name", host)
    if ":" in name or "%" in name:
        raise _not_allowed("malformed", host)
    if port not in MAIL_PORTS | extra_ports and not any(e.has_port(port) for e in entries):
        # Refused before DNS too: nothing in the answer depends on the name.
        raise _not_allowed("not a mail port", host)
    ips: list[IPAddress] = []
    for ip in resolve(name, port, policy):
        if not _address_allowed(ip, entries):
            # One bad address is enough: the kernel could pick it on any retry.
            raise _not_allowed("resolves to a non-public address", host)
        if ip not in ips:
            ips.append(ip)
    if not ips:
        raise MailError("host_not_found", detail="no addresses")
    if not _port_allowed(port, entries, name, ips, extra_ports):
        raise _not_allowed("not a mail port", host)
    return [str(ip) for ip in ips]


def resolve(name: str, port: int, policy: ConnectionPolicy) -> list[IPAddress]:
    """The addresses of a host name: from ``policy.nameservers`` when set, else the system
    resolver. Judging them is the caller's (``check_host``)."""
    if policy.nameservers:
        return _resolve_with(name, policy)
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise _not_allowed("malformed", name) from None
    except OSError as exc:
        raise classify(exc) from None
    return [ipaddress.ip_address(sockaddr[0]) for family, _t, _p, _c, sockaddr in infos
            if family in (socket.AF_INET, socket.AF_INET6)]


def _resolve_with(name: str, policy: ConnectionPolicy) -> list[IPAddress]:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = list(policy.nameservers)
    resolver.port = policy.dns_port
    ips: list[IPAddress] = []
    for rtype in ("A", "AAAA"):
        try:
            answer = resolver.resolve(name, rtype, lifetime=policy.timeout, search=False,
                                      raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.Timeout:
            raise MailError(TIMEOUT, detail="DNS timeout") from None
        except (dns.name.LabelTooLong, dns.name.EmptyLabel, UnicodeError):
            raise _not_allowed("malformed", name) from None
        except dns.exception.DNSException as exc:
            raise MailError(HOST_NOT_FOUND, detail=type(exc).__name__) from None
        ips += [ipaddress.ip_address(r.address) for r in (answer.rrset or ())]
    return ips


@functools.lru_cache(maxsize=16)
def ssl_context(policy: ConnectionPolicy) -> ssl.SSLContext:
    """A client TLS context: system trust store plus ``policy.ca_file``, TLS 1.2 or newer.

    Cached per policy because loading the system store costs milliseconds per
    connection, and a context is safe to share between threads.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if policy.ca_file:
        context.load_verify_locations(cafile=policy.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def connect_addresses(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    """Open a TCP connection to the first checked address that answers."""
    last: OSError | None = None
    for address in addresses:
        # The addresses are numeric, so getaddrinfo here does no DNS lookup.
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            last = exc
    assert last is not None
    raise last


def open_connection(host: str, port: int, policy: ConnectionPolicy) -> socket.socket:
    """Check ``host`` against the policy and connect to one of its checked addresses."""
    addresses = check_host(host, port, policy)
    try:
        return connect_addresses(addresses, port, policy.timeout)
    except OSError as exc:
        raise classify(exc) from None
