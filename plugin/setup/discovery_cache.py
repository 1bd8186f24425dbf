"""A small per-domain cache for discovery results, safe to share between threads.

Why single-flight: when a company's recruiters open the set-up form at the same time,
the first one's lookup is awaited by the others instead of repeated, so 200 recruiters
cause one lookup per TTL.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class DiscoveryCache(Generic[V]):
    """Values by domain for ``ttl`` seconds (``negative_ttl`` for "nothing found")."""

    def __init__(self, ttl: float = 3600.0, negative_ttl: float = 300.0,
                 max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._pending: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        #: lookups actually run (the rest were answered from the cache)
        self.computed = 0

    def _fresh(self, key: str) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, value

    def get_or_compute(self, key: str, compute: Callable[[], V], *, positive: Callable[[V], bool],
                       wait: float) -> tuple[V, bool]:
        """The cached value for ``key`` or ``compute()``'s; True when it came from the cache.

        A caller that finds the same key being computed waits up to ``wait`` seconds for it.
        """
        with self._lock:
            hit, value = self._fresh(key)
            if hit:
                return value, True  # type: ignore[return-value]
            event = self._pending.get(key)
            owner = event is None
            if owner:
                event = self._pending[key] = threading.Event()
        if not owner:
            assert event is not None
            event.wait(wait)
            with self._lock:
                hit, value = self._fresh(key)
            if hit:
                return value, True  # type: ignore[return-value]
        try:
            value = compute()
            with self._lock:
                self.computed += 1
                ttl = self.ttl if positive(value) else self.negative_ttl
                if ttl > 0:
                    self._entries[key] = (self._clock() + ttl, value)
                    self._entries.move_to_end(key)
                    while len(self._entries) > self.max_entries:
                        self._entries.popitem(last=False)
        finally:
            if owner:
                with self._lock:
                    self._pending.pop(key, None)
                event.set()  # type: ignore[union-attr]
        return value, False

    def has(self, key: str) -> bool:
        """Whether ``key`` has a fresh value (or is being computed: its callers will wait)."""
        with self._lock:
            return self._fresh(key)[0] or key in self._pending

    def clear(self) -> None:
        """Forget every entry (an administrator changed the resolver, say)."""
        with self._lock:
            self._entries.clear()
