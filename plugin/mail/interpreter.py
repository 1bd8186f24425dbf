"""Which Python runs the add-on, as far as header safety is concerned.

CVE-2024-6923 (gh-121650): the stdlib's email generator wrote a CR or LF decoded from
an encoded-word out raw, so a header value could add header lines. Fixed in 3.11.10,
3.12.5 and 3.13.0 (and hardened again later for CVE-2026-1299). The add-on does not
rely on the fix: its own checks (``plugin.mail.encoded_words``, ``compose.check_flattened``,
``smtp.wire_data``) hold on 3.11.7, and the tests run there. The floor is declared
here and warned about at start, not enforced in ``requires-python``, because the
machines this is built on pick a 3.11.7 ``python3`` and ``make install`` must work.
"""

from __future__ import annotations

import logging
import sys

#: the first release of each line that has the CVE-2024-6923 fix
HEADER_FIX_FLOOR: dict[tuple[int, int], tuple[int, int, int]] = {
    (3, 11): (3, 11, 10),
    (3, 12): (3, 12, 5),
}
#: the floor in PEP 440 form, for documentation and the start-up warning
RECOMMENDED_PYTHON = ">=3.11.10,!=3.12.0,!=3.12.1,!=3.12.2,!=3.12.3,!=3.12.4"


def has_header_fix(version: tuple[int, ...] | None = None) -> bool:
    """True when ``version`` (default: this interpreter) has the CVE-2024-6923 fix."""
    v = tuple(version or sys.version_info[:3])
    floor = HEADER_FIX_FLOOR.get(v[:2])
    if floor is not None:
        return v[:3] >= floor
    return v[:2] >= (3, 13)


def warn_if_unpatched(log: logging.Logger) -> bool:
    """Log one warning when this Python lacks the fix; True when it does."""
    if has_header_fix():
        return False
    log.warning("Python %d.%d.%d lacks the CVE-2024-6923 email header fix; Integrated "
                "Email's own header checks cover it, but use Python %s where you can",
                *sys.version_info[:3], RECOMMENDED_PYTHON)
    return True
