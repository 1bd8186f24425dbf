"""Crash points for the fault tests: ``IE_CRASHPOINT=after_commit`` kills the
process with SIGKILL when the sync reaches that step (``after_commit:2``: the second
time), so a test can check that a restart loses and duplicates nothing. Costs one
dict lookup when unset."""

from __future__ import annotations

import os
import signal

#: the steps of one batch, in order (see plugin.fetching.sync)
CRASHPOINTS = ("after_fetch", "after_store", "before_commit", "after_commit", "before_delete")
_seen: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """Die at once (no cleanup, no QUIT, no rollback) when IE_CRASHPOINT names this step."""
    wanted = os.environ.get("IE_CRASHPOINT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
