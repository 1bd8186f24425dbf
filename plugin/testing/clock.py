"""The sending clock, which tests can move and speed up.

Provider limits are per minute and per day, so their tests need a day to pass in a
second: ``set_clock(offset_seconds, speed)`` shifts ``now()`` and makes it (and
:func:`sleep`) run ``speed`` times faster. A runner in another process takes the same
from ``IE_TEST_CLOCK="offset,speed"``. Unset, ``now()`` is the wall clock and
:func:`sleep` is ``time.sleep``: one multiplication of cost.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

_offset = 0.0
_speed = 1.0
_anchor = time.monotonic()


def set_clock(offset_seconds: float = 0.0, speed: float = 1.0) -> None:
    """Shift the clock by ``offset_seconds`` from now on and run it ``speed`` times faster."""
    global _offset, _speed, _anchor
    _offset, _speed, _anchor = float(offset_seconds), float(speed), time.monotonic()


def advance(seconds: float) -> None:
    """Move the clock forward (a day: ``advance(86400)``), keeping its speed."""
    global _offset
    _offset += seconds


def now() -> datetime:
    """The sending clock's current time, aware, in UTC."""
    real = datetime.now(UTC)
    if _offset == 0.0 and _speed == 1.0:
        return real
    return real + timedelta(seconds=_offset + (_speed - 1.0) * (time.monotonic() - _anchor))


def sleep(seconds: float) -> None:
    """Sleep ``seconds`` of the sending clock."""
    if seconds > 0:
        time.sleep(seconds / _speed)


def monotonic() -> float:
    """Seconds of the sending clock for measuring intervals."""
    return _anchor + (time.monotonic() - _anchor) * _speed + _offset


def _from_environment() -> None:
    raw = os.environ.get("IE_TEST_CLOCK")
    if raw:
        offset, _, speed = raw.partition(",")
        set_clock(float(offset or 0), float(speed or 1))


_from_environment()


def scaled(real_seconds: float) -> float:
    """The clock seconds that pass in ``real_seconds`` of real time."""
    return real_seconds * _speed
