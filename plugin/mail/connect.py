"""Connections to mail servers: the host policy (SSRF guard) and verified TLS.

Mail hosts are typed in by users, so a connection attempt is a request the web server
makes on a user's behalf. Before any socket is opened the host is resolved once and
refused when any of its addresses is not globally routable (loopback, private,
link-local, cloud metadata, shared, multicast, reserved, unspecified), unless the
administrator allow-listed it. The protocol clients then connect to exactly the
addresses that were checked (no second DNS lookup that could be rebound), while TLS
is still verified against the host *name* the user typed.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

from plugin.mail.errors import HOST_NOT_ALLOWED, REFUSED, MailError, classify

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

# Shared address space (RFC 6598) is not "private" for ipaddress but is not public.
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

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


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # ::ffff:a.b.c.d, 6to4 and Teredo carry an IPv4 address that the kernel or a relay
    # may end up reaching; judge the embedded address, not the wrapper.
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    # Deprecated IPv4-compatible form ::a.b.c.d
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def is_public(ip: IPAddress) -> bool:
    """True when the address is globally routable and not special in any way."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None and not is_public(embedded):
            return False
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED)
    ):
        return False
    return ip.is_global


@functools.lru_cache(maxsize=64)
def _allow_list(entries: frozenset[str]) -> tuple[frozenset[str], tuple]:
    names: set[str] = set()
    networks = []
    for entry in entries:
        text = entry.strip().strip("[]").lower().rstrip(".")
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            names.add(text)
    return frozenset(names), tuple(networks)


def _ip_allowed(ip: IPAddress, networks: Iterable) -> bool:
    plain = ip
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            plain = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        if ip.ipv4_mapped is not None:
            plain = ip.ipv4_mapped
    return any(plain.version == net.version and plain in net for net in networks)


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


def check_host(host: str, port: int, policy: ConnectionPolicy) -> list[str]:
    """Resolve ``host`` and return its addresses when all of them may be contacted.

    Raises ``MailError(kind="host_not_allowed")`` (always the same sentence) for
    refused hosts, and ``host_not_found`` when the name does not resolve. Opens no
    socket to the server.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise MailError(REFUSED, detail="invalid port")
    name = normalise_host(host)
    allowed_names, allowed_nets = _allow_list(policy.allowed_hosts)
    name_allowed = name in allowed_names

    try:
        literal = _ip_literal(name)
    except ValueError:
        raise _not_allowed("malformed numeric address", host) from None
    if literal is not None:
        if name_allowed or _ip_allowed(literal, allowed_nets) or is_public(literal):
            return [str(literal)]
        raise _not_allowed("non-public address", host)

    if not name_allowed and (name in _BLOCKED_NAMES or name.endswith(_BLOCKED_SUFFIXES)):
        raise _not_allowed("blocked name", host)
    if ":" in name or "%" in name:
        raise _not_allowed("malformed", host)
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise _not_allowed("malformed", host) from None
    except OSError as exc:
        raise classify(exc) from None

    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(sockaddr[0])
        if not (name_allowed or _ip_allowed(ip, allowed_nets) or is_public(ip)):
            # One bad address is enough: the kernel could pick it on any retry.
            raise _not_allowed("resolves to a non-public address", host)
        if str(ip) not in addresses:
            addresses.append(str(ip))
    if not addresses:
        raise MailError("host_not_found", detail="no addresses")
    return addresses


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
