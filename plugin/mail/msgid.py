"""Message-ids checked against the RFC 5322 ``msg-id`` grammar before they are written.

A reply copies the incoming Message-ID into ``In-Reply-To`` and ``References``, and the
incoming Message-ID is whatever an outside sender chose. Only ids of the strict form

    msg-id          = "<" id-left "@" id-right ">"
    id-left         = dot-atom-text
    id-right        = dot-atom-text / no-fold-literal
    no-fold-literal = "[" *dtext "]"                    (RFC 5322 section 3.6.4)

are kept; the obsolete forms (quoted strings, comments, folding inside) are not. Two
more rules the grammar does not make: an id holding ``=?`` is dropped, because ``=`` and
``?`` are atext and a lenient parser reads ``=?utf-8?q?=0D=0A?=`` in it as an
encoded-word; and an id longer than :data:`MAX_LENGTH` is dropped, so that it fits the
column it is kept in and never needs folding (a folded id is no longer the same id).
"""

from __future__ import annotations

import re

#: longest id kept (without angle brackets): the ie_message / ie_outbound column width
MAX_LENGTH = 250
#: most ids written in one References header (the newest are kept)
MAX_REFERENCES = 20

_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]"
_DOT_ATOM_TEXT = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_NO_FOLD_LITERAL = r"\[[!-Z^-~]*\]"
_WSP = re.compile(r"[ \t\r\n]+")
_ID = re.compile(rf"({_DOT_ATOM_TEXT})@({_DOT_ATOM_TEXT}|{_NO_FOLD_LITERAL})\Z")


def parse_msg_id(text: str | None) -> str | None:
    """``left@right`` (no brackets) when ``text`` is one valid msg-id, else None.

    ``text`` may come with or without its angle brackets.
    """
    if not text or not isinstance(text, str):
        return None
    value = text[1:-1] if text.startswith("<") and text.endswith(">") else text
    if len(value) > MAX_LENGTH or "=?" in value or not _ID.match(value):
        return None
    return value


def parse_msg_id_list(text: str | None) -> list[str]:
    """The valid ids of a whitespace-separated list, in order, without repeats."""
    if not isinstance(text, str):
        return []
    out: list[str] = []
    # Split on the whitespace of RFC 5322 only: a token holding U+2028 or a form feed
    # is one (invalid) token, not two ids.
    for token in _WSP.split(text or ""):
        value = parse_msg_id(token)
        if value is not None and value not in out:
            out.append(value)
    return out


def fold_ids(name: str, ids: list[str], linesep: str = "\r\n", width: int = 78) -> str:
    """``Name: <a> <b>`` folded between ids only (ids are never split or encoded)."""
    lines = [f"{name}:"]
    for value in ids:
        token = f"<{value}>"
        if len(lines[-1]) + 1 + len(token) > width and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + token
    return linesep.join(lines) + linesep
