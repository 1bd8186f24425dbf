"""The discovery cache and the hosted-provider table, without any network."""
from __future__ import annotations

import threading
import time

import pytest

from plugin.setup.discovery_cache import DiscoveryCache
from plugin.setup.hosted import base_domain, hosted_by


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_discover_cache_keeps_results_for_the_ttl_and_failures_for_less():
    clock = Clock()
    cache = DiscoveryCache(ttl=600, negative_ttl=60, clock=clock)
    calls = []

    def compute(value):
        return lambda: calls.append(value) or value

    def get(key, value):
        return cache.get_or_compute(key, compute(value), positive=bool, wait=1)

    assert get("a.test", "found") == ("found", False)
    assert get("b.test", "") == ("", False)
    clock.now += 59
    assert get("a.test", "other") == ("found", True) and get("b.test", "x") == ("", True)
    clock.now += 2
    assert get("b.test", "") == ("", False)  # the failure expired after 60 s
    clock.now += 540
    assert get("a.test", "again") == ("again", False)  # the result expired after 600 s
    assert calls == ["found", "", "", "again"] and cache.computed == 4


def test_discover_cache_computes_once_for_concurrent_callers():
    cache = DiscoveryCache(ttl=60)
    started = threading.Event()
    calls = []

    def slow():
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return "value"

    out = []
    threads = [threading.Thread(target=lambda: out.append(
        cache.get_or_compute("d.test", slow, positive=bool, wait=5))) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(calls) == 1 and len(out) == 20
    assert sorted(cached for _v, cached in out) == [False] + [True] * 19


def test_discover_cache_waiters_recover_when_the_first_lookup_raises():
    cache = DiscoveryCache(ttl=60)

    def boom():
        raise RuntimeError("lookup failed")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("e.test", boom, positive=bool, wait=1)
    started = time.monotonic()
    assert cache.get_or_compute("e.test", lambda: "ok", positive=bool, wait=1) == ("ok", False)
    assert time.monotonic() - started < 0.5


def test_discover_cache_evicts_the_least_recently_used_past_its_size():
    cache = DiscoveryCache(ttl=60, max_entries=2)
    for key in ("a", "b", "a", "c"):
        cache.get_or_compute(key, lambda k=key: k, positive=bool, wait=1)
    assert cache.get_or_compute("a", lambda: "new", positive=bool, wait=1) == ("a", True)
    assert cache.get_or_compute("b", lambda: "new", positive=bool, wait=1) == ("new", False)


@pytest.mark.parametrize("mx, name, oauth", [
    ("aspmx.l.google.com", "Google Workspace", "google"),
    ("ALT1.ASPMX.L.GOOGLE.COM.", "Google Workspace", "google"),
    ("aspmx2.googlemail.com", "Google Workspace", "google"),
    ("acme-corp-example.mail.protection.outlook.com", "Microsoft 365", "microsoft"),
    ("mx.zoho.com", "Zoho Mail", None),
    ("in1-smtp.messagingengine.com", "Fastmail", None),
    ("mx01.mail.icloud.com", "iCloud Mail", None),
])
def test_discover_hosted_provider_from_the_mx_host(mx, name, oauth):
    provider = hosted_by(mx)
    assert provider is not None and (provider.name, provider.oauth) == (name, oauth)
    assert provider.preset is not None


@pytest.mark.parametrize("mx", ["google.com.evil.test", "notgoogle.com", "mx.zoho.eu",
                                "mail.acme.test", "outlook.com.attacker.test"])
def test_discover_lookalike_mx_hosts_are_not_providers(mx):
    assert hosted_by(mx) is None


@pytest.mark.parametrize("host, base", [("mx1.mail.example.com", "example.com"),
                                        ("mx.example.co.uk", "example.co.uk"),
                                        ("example.com.", "example.com")])
def test_discover_base_domain_of_an_mx_host(host, base):
    assert base_domain(host) == base


def test_discover_settings_and_cache_from_the_ie_configuration():
    from plugin.config import SETTINGS
    from plugin.setup.discovery_config import discovery_cache, discovery_settings

    defaults = {key: default for key, (default, _m) in SETTINGS.items()}
    settings = discovery_settings(defaults)
    assert (settings.nameservers, settings.dns_port, settings.https_port, settings.budget) == (
        (), 53, 443, 4.0)
    assert (discovery_cache(defaults).ttl, discovery_cache(defaults).negative_ttl) == (3600, 300)
    custom = discovery_settings({**defaults, "IE_DISCOVERY_NAMESERVERS": "127.0.0.1, ::1",
                                 "IE_DISCOVERY_DNS_PORT": "5353", "IE_DISCOVERY_BUDGET": 2})
    assert (custom.nameservers, custom.dns_port, custom.budget) == (("127.0.0.1", "::1"), 5353, 2.0)
    off = discovery_cache({**defaults, "IE_DISCOVERY_CACHE_SECONDS": 0})
    off.get_or_compute("a.test", lambda: "x", positive=bool, wait=1)
    assert off.get_or_compute("a.test", lambda: "y", positive=bool, wait=1) == ("y", False)


def test_discover_guess_ports_setting():
    import pytest

    from plugin.setup.discovery import DEFAULT_GUESS_PORTS
    from plugin.setup.discovery_config import discovery_settings

    assert discovery_settings({}).guess_ports == DEFAULT_GUESS_PORTS
    custom = discovery_settings({"IE_DISCOVERY_GUESS_PORTS": "IMAP:ssl:10993, smtp:starttls:10587"})
    assert custom.guess_ports == (("imap", "ssl", 10993), ("smtp", "starttls", 10587))
    for bad in ("imap:none:143", "imap:ssl:0", "ftp:ssl:21", "imap:ssl"):
        with pytest.raises(ValueError, match="protocol:security:port"):
            discovery_settings({"IE_DISCOVERY_GUESS_PORTS": bad})
