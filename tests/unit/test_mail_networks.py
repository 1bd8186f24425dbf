"""The add-on's own table of refused networks, the allow-list syntax and the port rule.

These hold on the Python the suite runs (3.11.7 here, whose ``ipaddress`` tables let
192.0.0.192 pass) because nothing in them asks ``ipaddress.is_global``.
"""

from __future__ import annotations

import ipaddress

import pytest

from plugin.mail import networks
from plugin.mail.connect import (
    MAIL_PORTS,
    AllowEntry,
    ConnectionPolicy,
    check_host,
    is_public,
    parse_allow_entry,
)
from plugin.mail.errors import SENTENCES, MailError
from tests.unit import test_mail_host_policy as host_policy

FAKE_DNS = host_policy.FAKE_DNS
#: fake DNS and a count of sockets opened (the fixture of the host-policy tests)
opened = host_policy.opened

#: addresses that the interpreter's own tables let through on some Python version
GAPS = ["192.0.0.192", "fec0::1", "fec0:ffff::1", "3fff::1", "3fff:fff::1", "168.63.129.16",
        "100.100.100.200", "fd00:ec2::254", "fd20:ce::254", "5f00::1", "2001:db8::25",
        "64:ff9b:1::1", "100:0:0:1::1", "2001:30::1", "192.31.196.1", "192.175.48.1",
        "2620:4f:8000::1", "192.0.0.9", "192.52.193.1"]
#: IPv4 inside IPv6: judged by the IPv4 address inside
WRAPPED = ["::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "64:ff9b::a9fe:a9fe",
           "64:ff9b::10.0.0.1", "::10.0.0.1", "::ffff:192.0.0.192", "2002:a9fe:a9fe::1",
           "2001:0:4136:e378:8000:63bf:3fff:fdd2"]
PUBLIC = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111",
          "2a00:1450:4001:82b::200e", "64:ff9b::808:808", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", GAPS + WRAPPED)
def test_special_purpose_and_metadata_addresses_are_refused(address):
    assert not networks.is_public(ipaddress.ip_address(address))
    assert not is_public(ipaddress.ip_address(address))
    assert networks.refusal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert networks.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("row", networks.REFUSED, ids=lambda r: str(r.network))
def test_every_table_entry_refuses_its_first_and_last_address(row):
    net = row.network
    assert row.why and "RFC" in row.why or row in networks.CLOUD_METADATA
    for ip in (net.network_address, net.broadcast_address):
        assert networks.refusal(ip) is not None, ip


def test_the_table_is_ours_not_the_interpreters(monkeypatch):
    # Make the interpreter call every address public: the answers must not change.
    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        monkeypatch.setattr(cls, "is_global", property(lambda self: True))
        for name in ("is_private", "is_reserved", "is_loopback", "is_link_local",
                     "is_multicast", "is_unspecified", "is_site_local"):
            if hasattr(cls, name):
                monkeypatch.setattr(cls, name, property(lambda self: False))
    for address in GAPS + WRAPPED + ["127.0.0.1", "10.0.0.1", "::1", "fe80::1"]:
        assert not networks.is_public(ipaddress.ip_address(address)), address
    with pytest.raises(MailError):
        check_host("192.0.0.192", 993, ConnectionPolicy())


def test_ipv6_outside_global_unicast_is_refused():
    for address in ["4000::1", "e000::1", "1::1", "::2"]:
        assert not networks.is_public(ipaddress.ip_address(address)), address


@pytest.mark.parametrize(("text", "expected"), [
    ("mail.corp.example", AllowEntry("mail.corp.example", None, ())),
    ("Mail.Corp.Example.", AllowEntry("mail.corp.example", None, ())),
    ("10.0.0.5", AllowEntry(None, ipaddress.ip_network("10.0.0.5/32"), ())),
    ("10.0.0.0/8", AllowEntry(None, ipaddress.ip_network("10.0.0.0/8"), ())),
    ("fd00::/8", AllowEntry(None, ipaddress.ip_network("fd00::/8"), ())),
    ("::1", AllowEntry(None, ipaddress.ip_network("::1/128"), ())),
    ("127.0.0.1:10143", AllowEntry(None, ipaddress.ip_network("127.0.0.1/32"),
                                   ((10143, 10143),))),
    ("127.0.0.1:1024-65535", AllowEntry(None, ipaddress.ip_network("127.0.0.1/32"),
                                        ((1024, 65535),))),
    ("10.0.0.0/8:2526", AllowEntry(None, ipaddress.ip_network("10.0.0.0/8"), ((2526, 2526),))),
    ("[::1]:10143", AllowEntry(None, ipaddress.ip_network("::1/128"), ((10143, 10143),))),
    ("[fd00::/8]:2526", AllowEntry(None, ipaddress.ip_network("fd00::/8"), ((2526, 2526),))),
    ("localhost:1024-65535", AllowEntry("localhost", None, ((1024, 65535),))),
])
def test_allow_list_entries_parse(text, expected):
    assert parse_allow_entry(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "host:0", "host:65536", "host:99999",
                                  "host:20-10", "host:a", "[::1]x", "[::1]:",
                                  "a b", "user@host", "host/path", "mail..example",
                                  "http://host", "10.0.0.0/33"])
def test_bad_allow_list_entries_are_not_entries(text):
    assert parse_allow_entry(text) is None


def test_bracketed_address_without_port_is_an_address():
    assert parse_allow_entry("[::1]") == AllowEntry(None, ipaddress.ip_network("::1/128"), ())


def _refused(host, port, *entries):
    with pytest.raises(MailError) as info:
        check_host(host, port, ConnectionPolicy(allowed_hosts=frozenset(entries)))
    assert info.value.kind == "host_not_allowed"
    assert info.value.sentence == SENTENCES["host_not_allowed"]


def test_only_mail_ports_for_public_hosts(opened):
    for port in sorted(MAIL_PORTS):
        assert check_host("public.example.com", port, ConnectionPolicy()) == ["93.184.216.34"]
    for port in (22, 80, 443, 3306, 5432, 6379, 8080, 10143):
        _refused("public.example.com", port)
        _refused("93.184.216.34", port)
    assert opened == []


def test_allow_listed_address_without_port_gets_mail_ports_only(opened):
    assert check_host("127.0.0.1", 143, ConnectionPolicy(
        allowed_hosts=frozenset({"127.0.0.1"}))) == ["127.0.0.1"]
    _refused("127.0.0.1", 10143, "127.0.0.1")
    _refused("127.0.0.1", 6379, "127.0.0.0/8")


def test_a_named_port_is_allowed_on_that_host_only(opened):
    policy = ConnectionPolicy(allowed_hosts=frozenset({"127.0.0.1:10143", "10.0.0.0/8"}))
    assert check_host("127.0.0.1", 10143, policy) == ["127.0.0.1"]
    assert check_host("127.0.0.1", 993, policy) == ["127.0.0.1"]
    _refused("127.0.0.1", 10144, "127.0.0.1:10143", "10.0.0.0/8")
    _refused("10.0.0.5", 10143, "127.0.0.1:10143", "10.0.0.0/8")
    _refused("public.example.com", 10143, "127.0.0.1:10143")
    ranged = ConnectionPolicy(allowed_hosts=frozenset({"127.0.0.1:20000-20010"}))
    assert check_host("127.0.0.1", 20005, ranged) == ["127.0.0.1"]
    _refused("127.0.0.1", 20011, "127.0.0.1:20000-20010")


def test_name_entry_with_port_needs_its_addresses_allowed_too(opened):
    # An allowed name may add a port, but it never allows private addresses by itself.
    _refused("intranet.example.com", 2526, "intranet.example.com:2526")
    policy = ConnectionPolicy(allowed_hosts=frozenset({"intranet.example.com:2526",
                                                       "10.0.0.5"}))
    assert check_host("intranet.example.com", 2526, policy) == ["10.0.0.5"]
    _refused("intranet.example.com", 2527, "intranet.example.com:2526", "10.0.0.5")
    # A public name on a named port.
    public = ConnectionPolicy(allowed_hosts=frozenset({"public.example.com:2526"}))
    assert check_host("public.example.com", 2526, public) == ["93.184.216.34"]


def test_allow_listed_name_resolving_to_public_and_loopback_is_refused(opened, monkeypatch):
    monkeypatch.setitem(FAKE_DNS, "mail.corp.test", ["93.184.216.34", "127.0.0.1"])
    monkeypatch.setitem(FAKE_DNS, "meta.corp.test", ["169.254.169.254"])
    monkeypatch.setitem(FAKE_DNS, "good.corp.test", ["10.1.2.3"])
    _refused("mail.corp.test", 993, "mail.corp.test")
    _refused("meta.corp.test", 993, "meta.corp.test", "10.0.0.0/8")
    _refused("meta.corp.test", 993, "meta.corp.test:1-65535")
    policy = ConnectionPolicy(allowed_hosts=frozenset({"good.corp.test", "10.0.0.0/8"}))
    assert check_host("good.corp.test", 993, policy) == ["10.1.2.3"]
    assert opened == []


def test_allowed_name_lifts_the_internal_name_rule_only(opened, monkeypatch):
    monkeypatch.setitem(FAKE_DNS, "mail.internal", ["10.9.9.9"])
    _refused("mail.internal", 993)
    _refused("mail.internal", 993, "mail.internal")
    policy = ConnectionPolicy(allowed_hosts=frozenset({"mail.internal", "10.9.9.9"}))
    assert check_host("mail.internal", 993, policy) == ["10.9.9.9"]


def test_admin_form_accepts_the_entry_syntax_and_refuses_garbage():
    from werkzeug.datastructures import MultiDict

    from plugin.setup.settings import parse_settings_form

    def errors_for(hosts: str) -> str | None:
        form = MultiDict({"sharing_allowed": "private", "sharing_default": "private",
                          "allowed_mail_hosts": hosts})
        return parse_settings_form(form).errors.get("allowed_mail_hosts")

    assert errors_for("mail.corp.example\n10.0.0.0/8\n10.0.0.5:2526\n[fd00::1]:10143") is None
    for bad in ("mail.corp.example:", "a b", "user@host", "10.0.0.5:70000", "http://x"):
        assert errors_for(bad), bad


def test_a_port_the_add_on_chose_may_be_added_but_never_for_private_hosts(opened):
    # Discovery fetches autoconfig over HTTPS: 443 is its own choice, not a user's.
    _refused("public.example.com", 443)
    assert check_host("public.example.com", 443, ConnectionPolicy(),
                      extra_ports=frozenset({443})) == ["93.184.216.34"]
    assert check_host("93.184.216.34", 443, ConnectionPolicy(),
                      extra_ports=frozenset({443})) == ["93.184.216.34"]
    with pytest.raises(MailError):
        check_host("intranet.example.com", 443, ConnectionPolicy(), extra_ports=frozenset({443}))
