"""Bidirectional and invisible characters taken out of names people read and trust.

``invoice\u202efdp.exe`` displays as ``invoiceexe.pdf``: the RIGHT-TO-LEFT OVERRIDE turns
the rest around. An attachment or sender name is where such a trick pays, so every
character that reorders text or shows nothing is neutralised there: the embedding,
override and isolate controls (U+202A-202E, U+2066-2069), the marks (U+200E/F,
U+061C), zero-width and other format characters (Unicode category Cf, e.g. U+200B,
U+2060-2064, U+FEFF, U+00AD, the tag characters U+E0000-E007F) and the blank "letters"
(Hangul fillers U+115F, U+1160, U+3164, U+FFA0, and U+180E, U+2800). ZERO WIDTH
(NON-)JOINER stay: scripts such as Persian and emoji sequences need them, and they
reorder nothing.
"""

from __future__ import annotations

import unicodedata

#: format characters kept because they only join or separate letters
_KEPT = frozenset("\u200c\u200d")
#: invisible characters that are not of category Cf
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u180e\u2800\u034f")


def is_invisible(ch: str) -> bool:
    """True for a character that reorders text or shows nothing (see module docstring)."""
    if ch in _KEPT:
        return False
    return ch in _BLANK_LETTERS or unicodedata.category(ch) == "Cf"


def neutralise(text: str, replacement: str = "") -> str:
    """``text`` with every invisible or reordering character replaced."""
    if text.isascii():
        return text
    return "".join(replacement if is_invisible(ch) else ch for ch in text)


def safe_display_name(name: str | None) -> str:
    """A sender or recipient name fit to show: no reordering or invisible characters,
    control characters as spaces, runs of spaces as one."""
    if not name:
        return ""
    text = neutralise(name)
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return " ".join(text.split())
