"""Who holds an outbox row or a bulk job: this process's identity, how long a lease
lasts, whether a holder is gone; the clock leases are measured with; and the lock
this process takes around its own writes on the outbox.

The identity is the sender's own (``host:pid:token``), not the fetch dispatcher's:
sending runs in web processes too (Send now, a bulk job's thread), so it cannot
take the identity from ``plugin.jobs``, which sits above the domain packages.
"""

from __future__ import annotations

import os
import secrets as pysecrets
import socket
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from plugin.testing import clock

#: taken around this process's own write transactions on the outbox, so a bulk
#: runner and its filer thread queue for SQLite's write lock without its busy sleeps
write_lock = threading.RLock()

_worker: tuple[int, str] | None = None


def now() -> datetime:
    """The current time, aware, in UTC (the sending clock tests can move)."""
    return clock.now()


def aware(value: datetime) -> datetime:
    """``value`` as an aware datetime (SQLite gives naive UTC back)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def worker_id() -> str:
    """``host:pid:token`` of this process (a new token after fork)."""
    global _worker
    pid = os.getpid()
    if _worker is None or _worker[0] != pid:
        _worker = (pid, f"{socket.gethostname()[:40]}:{pid}:{pysecrets.token_hex(4)}")
    return _worker[1]


def owner_gone(owner: str | None) -> bool:
    """True when ``owner`` is a process on this machine that no longer runs (it crashed)."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != socket.gethostname()[:40] or not pid_text.isdigit():
        return False  # another machine: only its lease expiry tells
    if owner == worker_id():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # our pid, another token: an earlier process that had this pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lease_length(config: Mapping[str, Any]) -> timedelta:
    """How long a send lease lasts: long enough for several mail timeouts."""
    return timedelta(seconds=max(120.0, 6 * float(config["IE_MAIL_TIMEOUT"])))
