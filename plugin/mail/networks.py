"""The networks a mail connection must never reach, written out here.

Why not ``ipaddress.is_global``/``is_private``: their tables change between Python
patch levels (3.11.7 lets ``192.0.0.192``, a cloud-metadata address, pass; no version
refuses ``fec0::/10`` or ``3fff::/20``), so the same add-on would protect differently
on different machines. This table is the add-on's own and the same on every Python.

Sources: the IANA "IPv4 Special-Purpose Address Registry" and "IPv6 Special-Purpose
Address Registry" (iana-ipv4-special-registry, iana-ipv6-special-registry, as of
2025), each entry with the RFC that defines it, plus multicast, the IPv6 space IANA
has not allocated for global unicast, and the metadata services of the large clouds.
Every registry entry is refused, including the few the registry marks "globally
reachable" (PCP/TURN anycast, AS112, AMT): no mail server lives there.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RefusedNetwork(NamedTuple):
    """One refused network and where it comes from."""

    network: IPNetwork
    #: registry entry name (or the cloud's service) and the RFC, for logs and reviews
    why: str


def _table(rows: list[tuple[str, str]]) -> tuple[RefusedNetwork, ...]:
    return tuple(RefusedNetwork(ipaddress.ip_network(net), why) for net, why in rows)


#: IANA IPv4 Special-Purpose Address Registry, then multicast (not in that registry).
IPV4_SPECIAL = _table([
    ("0.0.0.0/8", '"This network", RFC 791 section 3.2'),
    ("0.0.0.0/32", '"This host on this network", RFC 1122 section 3.2.1.3'),
    ("10.0.0.0/8", "Private-Use, RFC 1918"),
    ("100.64.0.0/10", "Shared Address Space, RFC 6598"),
    ("127.0.0.0/8", "Loopback, RFC 1122 section 3.2.1.3"),
    ("169.254.0.0/16", "Link Local, RFC 3927"),
    ("172.16.0.0/12", "Private-Use, RFC 1918"),
    ("192.0.0.0/24", "IETF Protocol Assignments, RFC 6890 section 2.1"),
    ("192.0.0.0/29", "IPv4 Service Continuity Prefix, RFC 7335"),
    ("192.0.0.8/32", "IPv4 dummy address, RFC 7600"),
    ("192.0.0.9/32", "Port Control Protocol Anycast, RFC 7723"),
    ("192.0.0.10/32", "Traversal Using Relays around NAT Anycast, RFC 8155"),
    ("192.0.0.170/32", "NAT64/DNS64 Discovery, RFC 8880 and RFC 7050 section 2.2"),
    ("192.0.0.171/32", "NAT64/DNS64 Discovery, RFC 8880 and RFC 7050 section 2.2"),
    ("192.0.2.0/24", "Documentation (TEST-NET-1), RFC 5737"),
    ("192.31.196.0/24", "AS112-v4, RFC 7535"),
    ("192.52.193.0/24", "AMT, RFC 7450"),
    ("192.88.99.0/24", "Deprecated (6to4 Relay Anycast), RFC 7526"),
    ("192.168.0.0/16", "Private-Use, RFC 1918"),
    ("192.175.48.0/24", "Direct Delegation AS112 Service, RFC 7534"),
    ("198.18.0.0/15", "Benchmarking, RFC 2544"),
    ("198.51.100.0/24", "Documentation (TEST-NET-2), RFC 5737"),
    ("203.0.113.0/24", "Documentation (TEST-NET-3), RFC 5737"),
    ("240.0.0.0/4", "Reserved, RFC 1112 section 4"),
    ("255.255.255.255/32", "Limited Broadcast, RFC 8190 and RFC 919 section 7"),
    ("224.0.0.0/4", "Multicast, RFC 5771 (IANA IPv4 Multicast Address Space Registry)"),
])

#: IANA IPv6 Special-Purpose Address Registry, then the ranges outside it that are
#: not global unicast either. The IPv4-embedding prefixes (::ffff:0:0/96, ::/96,
#: 64:ff9b::/96) are judged by the IPv4 address inside them: see ``embedded_ipv4``.
IPV6_SPECIAL = _table([
    ("::1/128", "Loopback Address, RFC 4291"),
    ("::/128", "Unspecified Address, RFC 4291"),
    ("64:ff9b:1::/48", "Local-Use IPv4/IPv6 Translation, RFC 8215"),
    ("100::/64", "Discard-Only Address Block, RFC 6666"),
    ("100:0:0:1::/64", "Dummy IPv6 Prefix, RFC 9780"),
    ("2001::/23", "IETF Protocol Assignments, RFC 2928"),
    ("2001::/32", "TEREDO, RFC 4380 and RFC 8190"),
    ("2001:1::1/128", "Port Control Protocol Anycast, RFC 7723"),
    ("2001:1::2/128", "Traversal Using Relays around NAT Anycast, RFC 8155"),
    ("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast, RFC 9665"),
    ("2001:2::/48", "Benchmarking, RFC 5180 and RFC Errata 1752"),
    ("2001:3::/32", "AMT, RFC 7450"),
    ("2001:4:112::/48", "AS112-v6, RFC 7535"),
    ("2001:10::/28", "Deprecated (previously ORCHID), RFC 4843"),
    ("2001:20::/28", "ORCHIDv2, RFC 7343"),
    ("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix, RFC 9374"),
    ("2001:db8::/32", "Documentation, RFC 3849"),
    ("2002::/16", "6to4, RFC 3056"),
    ("2620:4f:8000::/48", "Direct Delegation AS112 Service, RFC 7534"),
    ("3fff::/20", "Documentation, RFC 9637"),
    ("5f00::/16", "Segment Routing (SRv6) SIDs, RFC 9602"),
    ("fc00::/7", "Unique-Local, RFC 4193 and RFC 8190"),
    ("fe80::/10", "Link-Local Unicast, RFC 4291"),
    ("fec0::/10", "Site-Local (deprecated), RFC 3879"),
    ("ff00::/8", "Multicast, RFC 4291"),
])

#: Metadata and platform services of cloud hosts: the first thing an SSRF goes for.
#: Most lie inside a range above; they are listed so that the table says so, and
#: Azure's wire server is a public address that no range covers.
CLOUD_METADATA = _table([
    ("169.254.169.254/32", "instance metadata: AWS, GCP, Azure, OpenStack, DigitalOcean, ..."),
    ("169.254.170.2/32", "AWS ECS task metadata and credentials"),
    ("169.254.169.123/32", "AWS time sync service"),
    ("fd00:ec2::254/128", "AWS instance metadata over IPv6"),
    ("fd00:ec2::23/128", "AWS time sync over IPv6"),
    ("fd20:ce::254/128", "GCP metadata server over IPv6"),
    ("192.0.0.192/32", "Oracle Cloud Infrastructure metadata"),
    ("168.63.129.16/32", "Azure wire server (platform agent, DNS, health probes)"),
    ("100.100.100.200/32", "Alibaba Cloud instance metadata"),
    ("169.254.0.23/32", "Tencent Cloud metadata"),
])

#: IANA IPv6 Address Space Registry: only 2000::/3 is allocated for global unicast.
IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated, RFC 4291 section 2.5.5.1
_NAT64 = ipaddress.ip_network("64:ff9b::/96")      # IPv4-IPv6 Translat., RFC 6052

REFUSED: tuple[RefusedNetwork, ...] = IPV4_SPECIAL + IPV6_SPECIAL + CLOUD_METADATA
_V4 = tuple(r for r in REFUSED if r.network.version == 4)
_V6 = tuple(r for r in REFUSED if r.network.version == 6)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, IPv4-compatible or NAT64 address stands for."""
    if ip in _IPV4_MAPPED or ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be contacted (the table entry), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped IPv6 address"
        plain = ipaddress.IPv6Address(int(ip))
        inner = embedded_ipv4(plain)
        if inner is not None:
            why = refusal(inner)
            if why is not None:
                return why
            # A NAT64 gateway reaches the public IPv4 address; the other two forms
            # are IPv4 addresses in IPv6 dress and the kernel treats them as such.
            return None
        for row in _V6:
            if plain in row.network:
                return row.why
        if plain not in IPV6_GLOBAL_UNICAST:
            return "not in 2000::/3, the IPv6 global unicast space (IANA)"
        return None
    for row in _V4:
        if ip in row.network:
            return row.why
    return None


def is_public(ip: IPAddress) -> bool:
    """True when no entry of the table covers ``ip``: a mail host may live there."""
    return refusal(ip) is None
