"""The host policy refuses every non-public mail host before any socket is opened."""

from __future__ import annotations

import socket

import pytest

from plugin.mail.connect import ConnectionPolicy, check_host, open_connection
from plugin.mail.errors import SENTENCES, MailError

# Simulated DNS: names that look harmless but resolve to places we must not reach.
FAKE_DNS: dict[str, list[str]] = {
    "localtest.me": ["127.0.0.1"],
    "lvh.me": ["127.0.0.1", "::1"],
    "intranet.example.com": ["10.0.0.5"],
    "router.example.com": ["192.168.1.1"],
    "corp172.example.com": ["172.16.5.4"],
    "cgnat.example.com": ["100.100.1.1"],
    "meta.example.com": ["169.254.169.254"],
    "v6loop.example.com": ["::1"],
    "mapped.example.com": ["::ffff:10.0.0.1"],
    "ula.example.com": ["fd12:3456::1"],
    "half-public.example.com": ["93.184.216.34", "192.168.0.10"],
    "zero.example.com": ["0.0.0.0"],
    "public.example.com": ["93.184.216.34"],
    "public6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
}


def fake_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    if host not in FAKE_DNS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    out = []
    for ip in FAKE_DNS[host]:
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        addr = (ip, port, 0, 0) if fam == socket.AF_INET6 else (ip, port)
        out.append((fam, socket.SOCK_STREAM, 6, "", addr))
    return out


@pytest.fixture
def opened(monkeypatch):
    """Fake DNS, and count every socket the code under test tries to open."""
    calls: list[tuple] = []

    class CountingSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            calls.append(("socket", args))
            super().__init__(*args, **kwargs)

    def counting_create_connection(address, *args, **kwargs):
        calls.append(("create_connection", address))
        raise AssertionError("must not connect in these tests")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket, "socket", CountingSocket)
    monkeypatch.setattr(socket, "create_connection", counting_create_connection)
    return calls


REFUSED_HOSTS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0x7F.0.0.1",
    "0177.0.0.1",
    "017700000001",
    "[::ffff:127.0.0.1]",
    "::ffff:7f00:1",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "foo.localhost",
    "0",
    "0.0.0.0",
    "::",
    "[::]",
    "[::1]",
    "::1",
    "169.254.169.254",
    "metadata.google.internal",
    "METADATA.google.internal.",
    "100.64.0.1",
    "10.1.2.3",
    "192.168.0.1",
    "172.31.255.255",
    "fd00::1",
    "fe80::1%eth0",
    "[fe80::1%25eth0]",
    "224.0.0.1",
    "255.255.255.255",
    "240.0.0.1",
    "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
    "",
    " ",
    "mail.example.com ",
    "mail example.com",
    "mail.example.com\r\nRCPT TO:<x>",
    "user@mail.example.com",
    "mail.example.com/path",
    "http://mail.example.com",
    "mail..example.com",
    "999.1.1.1",
    "08.0.0.1",
    "localtest.me",
    "LVH.ME.",
    "intranet.example.com",
    "router.example.com",
    "corp172.example.com",
    "cgnat.example.com",
    "meta.example.com",
    "v6loop.example.com",
    "mapped.example.com",
    "ula.example.com",
    "half-public.example.com",
    "zero.example.com",
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_non_public_host_is_refused_with_one_sentence_and_no_socket(host, opened):
    with pytest.raises(MailError) as info:
        check_host(host, 993, ConnectionPolicy())
    assert info.value.kind == "host_not_allowed"
    assert str(info.value) == info.value.sentence == SENTENCES["host_not_allowed"]
    assert opened == []


@pytest.mark.parametrize("host", REFUSED_HOSTS[:10] + ["localtest.me", "intranet.example.com"])
def test_open_connection_refuses_without_opening_a_socket(host, opened):
    with pytest.raises(MailError) as info:
        open_connection(host, 993, ConnectionPolicy())
    assert info.value.kind == "host_not_allowed"
    assert opened == []


def test_refused_sentence_does_not_echo_the_host(opened):
    with pytest.raises(MailError) as info:
        check_host("intranet.example.com", 993, ConnectionPolicy())
    assert "intranet" not in info.value.sentence
    assert "10.0.0.5" not in info.value.sentence


def test_allow_listed_loopback_address_is_accepted(opened):
    policy = ConnectionPolicy(allowed_hosts=frozenset({"127.0.0.1"}))
    assert check_host("127.0.0.1", 993, policy) == ["127.0.0.1"]
    assert opened == []


def test_allow_listed_name_alone_does_not_open_its_private_addresses(opened):
    policy = ConnectionPolicy(allowed_hosts=frozenset({"Intranet.Example.com"}))
    with pytest.raises(MailError) as info:
        check_host("intranet.example.com.", 993, policy)
    assert info.value.kind == "host_not_allowed"
    both = ConnectionPolicy(allowed_hosts=frozenset({"Intranet.Example.com", "10.0.0.5"}))
    assert check_host("intranet.example.com.", 993, both) == ["10.0.0.5"]


def test_allow_listed_network_covers_resolved_addresses(opened):
    policy = ConnectionPolicy(allowed_hosts=frozenset({"10.0.0.0/8"}))
    assert check_host("intranet.example.com", 993, policy) == ["10.0.0.5"]
    with pytest.raises(MailError):
        check_host("router.example.com", 993, policy)


def test_allow_list_for_one_address_does_not_open_others(opened):
    policy = ConnectionPolicy(allowed_hosts=frozenset({"127.0.0.1"}))
    with pytest.raises(MailError):
        check_host("169.254.169.254", 993, policy)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("public.example.com", ["93.184.216.34"]),
        ("PUBLIC.example.com.", ["93.184.216.34"]),
        ("public6.example.com", ["2606:2800:220:1:248:1893:25c8:1946"]),
        ("93.184.216.34", ["93.184.216.34"]),
        ("[2606:4700:4700::1111]", ["2606:4700:4700::1111"]),
    ],
)
def test_public_host_is_accepted(host, expected, opened):
    assert check_host(host, 993, ConnectionPolicy()) == expected
    assert opened == []


def test_unknown_name_is_host_not_found(opened):
    with pytest.raises(MailError) as info:
        check_host("no-such-host.example.com", 993, ConnectionPolicy())
    assert info.value.kind == "host_not_found"


@pytest.mark.parametrize("port", [0, -1, 65536, "993", True])
def test_invalid_port_is_refused_before_dns(port, opened):
    with pytest.raises(MailError):
        check_host("public.example.com", port, ConnectionPolicy())
    assert opened == []
