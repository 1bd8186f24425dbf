"""Discovery's settings and cache from the add-on's configuration (plugin/config.py).

Why a cache per configuration: a cached result is only valid for the resolver and ports
it was found with, so whoever wires discovery (the set-up routes) keeps one cache next to
the settings it builds here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugin.setup.discovery import DiscoverySettings
from plugin.setup.discovery_cache import DiscoveryCache


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
    )


def discovery_cache(config: Mapping[str, Any]) -> DiscoveryCache:
    """A DiscoveryCache with the configured lifetimes (0 turns caching off)."""
    ttl = config.get("IE_DISCOVERY_CACHE_SECONDS")
    miss = config.get("IE_DISCOVERY_MISS_CACHE_SECONDS")
    return DiscoveryCache(ttl=float(3600 if ttl is None else ttl),
                          negative_ttl=float(300 if miss is None else miss))
