"""Discovery's settings and cache from the add-on's configuration (plugin/config.py).

Why a cache per configuration: a cached result is only valid for the resolver and ports
it was found with, so whoever wires discovery (the set-up routes) keeps one cache next to
the settings it builds here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from plugin.context import AddonContext
from plugin.mail.connect import ConnectionPolicy
from plugin.setup.discovery import Discovery, DiscoverySettings, discover, domain_of
from plugin.setup.discovery_cache import DiscoveryCache
from plugin.setup.ratelimit import RateLimiter

_PROTOCOLS = ("imap", "pop3", "smtp")
_SECURITIES = ("ssl", "starttls")
_held_lock = threading.Lock()
#: what the form says when a user's lookups are over IE_DISCOVERY_PER_MINUTE
TOO_MANY = ("You have looked up settings for many addresses in a row. Type your mail "
            "server's settings below, or wait a minute and type the address again.")


def discovery_settings(config: Mapping[str, Any]) -> DiscoverySettings:
    """DiscoverySettings from the configuration (missing keys keep their defaults)."""
    raw = config.get("IE_DISCOVERY_NAMESERVERS") or ""
    if isinstance(raw, str):
        raw = raw.split(",")
    nameservers = tuple(str(n).strip() for n in raw if str(n).strip())
    defaults = DiscoverySettings()
    return DiscoverySettings(
        nameservers=nameservers,
        dns_port=int(config.get("IE_DISCOVERY_DNS_PORT") or defaults.dns_port),
        https_port=int(config.get("IE_DISCOVERY_HTTPS_PORT") or defaults.https_port),
        budget=float(config.get("IE_DISCOVERY_BUDGET") or defaults.budget),
        guess_ports=_guess_ports(config.get("IE_DISCOVERY_GUESS_PORTS")) or defaults.guess_ports,
    )


def _guess_ports(raw: object) -> tuple[tuple[str, str, int], ...]:
    items = raw.split(",") if isinstance(raw, str) else list(raw or ())
    ports = []
    for item in items:
        if not str(item).strip():
            continue
        protocol, _, rest = str(item).strip().lower().partition(":")
        security, _, port = rest.partition(":")
        if protocol not in _PROTOCOLS or security not in _SECURITIES or not port.isdigit() \
                or not 0 < int(port) < 65536:
            raise ValueError("IE_DISCOVERY_GUESS_PORTS entries are written protocol:security:"
                             "port, like imap:ssl:993")
        ports.append((protocol, security, int(port)))
    return tuple(ports)


def discovery_cache(config: Mapping[str, Any]) -> DiscoveryCache:
    """A DiscoveryCache with the configured lifetimes (0 turns caching off)."""
    ttl = config.get("IE_DISCOVERY_CACHE_SECONDS")
    miss = config.get("IE_DISCOVERY_MISS_CACHE_SECONDS")
    return DiscoveryCache(ttl=float(3600 if ttl is None else ttl),
                          negative_ttl=float(300 if miss is None else miss))


def discover_for(addon: AddonContext, policy: ConnectionPolicy, address: str,
                 user_id: str) -> Discovery:
    """Discovery for the set-up form: the add-on's settings, its one cache per settings,
    and a per-user limit on lookups the cache cannot answer (each costs network work)."""
    settings = discovery_settings(addon.app.config)
    with _held_lock:
        held = getattr(addon, "_discovery", None)
        if held is None or held[0] != settings:
            held = (settings, discovery_cache(addon.app.config),
                    RateLimiter(int(addon.app.config.get("IE_DISCOVERY_PER_MINUTE") or 20)))
            addon._discovery = held  # type: ignore[attr-defined]
    _settings, cache, limiter = held
    domain = domain_of(address) or ""
    if not cache.has(domain) and not limiter.allow(str(user_id)):
        return Discovery(address, domain, "", TOO_MANY)
    return discover(address, policy=policy, settings=settings, cache=cache)
