"""Parsing of imaplib's raw IMAP responses: FETCH items, LIST lines, UID sets, dates.

imaplib hands back response lines and ``(text, literal)`` tuples as they came off the
wire; these helpers turn them into values without a general response lexer, which
keeps fetching fast (message literals are never scanned).
"""

from __future__ import annotations

from typing import Any
import datetime as dt
import email.utils
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from plugin.mail.utf7 import decode_folder

FALLBACK_NAMES: dict[str, tuple[str, ...]] = {
    "sent": ("Sent", "Sent Items", "Sent Messages", "[Gmail]/Sent Mail", "INBOX.Sent", "Sent Mail"),
    "trash": (
        "Trash",
        "Deleted Items",
        "Deleted Messages",
        "[Gmail]/Trash",
        "[Gmail]/Bin",
        "INBOX.Trash",
    ),
    "drafts": ("Drafts", "[Gmail]/Drafts", "INBOX.Drafts"),
    "junk": (
        "Junk",
        "Spam",
        "Junk E-mail",
        "Junk Email",
        "[Gmail]/Spam",
        "INBOX.Junk",
        "INBOX.Spam",
    ),
}
SPECIAL_USE: dict[str, str] = {
    "\\SENT": "sent",
    "\\TRASH": "trash",
    "\\DRAFTS": "drafts",
    "\\JUNK": "junk",
    "\\ARCHIVE": "archive",
}


class Folder(NamedTuple):
    name: str  #: Unicode name, as passed back to the other methods
    delimiter: str | None
    attributes: frozenset[str]  #: upper-cased, e.g. {"\\HASNOCHILDREN", "\\SENT"}


UID_RE = re.compile(rb"\bUID (\d+)")
_FLAGS_RE = re.compile(rb"\bFLAGS \(([^)]*)\)")
DATE_RE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_BODY_LITERAL_RE = re.compile(rb"BODY\[(?:HEADER\.FIELDS \([^)]*\))?\](?:<\d+>)? \{\d+\}$")
_LIST_RE = re.compile(rb'^\((?P<attrs>[^)]*)\) (?P<delim>"(?:\\.|[^"\\])*"|NIL) ?(?P<name>.*)$')
CODE_RE = re.compile(rb"\[(APPENDUID|COPYUID) ([^\]]*)\]")
CAPS_RE = re.compile(rb"\[CAPABILITY ([^\]]*)\]")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
        start=1,
    )
}


def uid_set(uids: Iterable[int]) -> str:
    """Compact IMAP sequence set: [1, 2, 3, 7] -> "1:3,7"."""
    ordered = sorted({int(u) for u in uids})
    if not ordered:
        raise ValueError("empty UID set")
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:] + [None]:
        if uid is not None and uid == prev + 1:
            prev = uid
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        if uid is not None:
            start = prev = uid
    return ",".join(parts)


def parse_uid_set(text: str | bytes) -> list[int]:
    """Expand a sequence set without "*": "1:3,7" -> [1, 2, 3, 7]."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        a, b = int(lo), int(hi or lo)
        out.extend(range(min(a, b), max(a, b) + 1))
    return out


def parse_internaldate(text: bytes | str) -> dt.datetime | None:
    """'17-Jul-1996 02:44:25 -0700' -> aware datetime (locale-independent)."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    try:
        day_part, time_part, zone = text.strip().split()
        day, month, year = day_part.split("-")
        hour, minute, second = (int(x) for x in time_part.split(":"))
        sign = -1 if zone[0] == "-" else 1
        offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
        return dt.datetime(
            int(year),
            _MONTHS[month.upper()],
            int(day),
            hour,
            minute,
            second,
            tzinfo=dt.timezone(offset),
        )
    except (ValueError, KeyError, IndexError):
        return None


def _unquote(raw: bytes) -> bytes:
    if raw.startswith(b'"') and raw.endswith(b'"') and len(raw) >= 2:
        return re.sub(rb"\\(.)", rb"\1", raw[1:-1])
    return raw


def group_fetch_items(items: list) -> Iterator[tuple[bytes, bytes | None]]:
    """Group imaplib's FETCH data into (metadata text, BODY[] literal or None) per message.

    imaplib gives a message with literals as one or more ``(text, literal)`` tuples
    followed by a bytes trailer (``b")"`` or ``b" FLAGS (...))"``); a message without a
    literal (e.g. an unsolicited flag update) is a lone bytes item.
    """
    meta: list[bytes] = []
    body: bytes | None = None
    open_message = False
    for item in items:
        if item is None:
            continue
        if isinstance(item, tuple):
            head, literal = item[0], item[1]
            meta.append(head)
            if _BODY_LITERAL_RE.search(head):
                body = literal
            open_message = True
            continue
        meta.append(item)
        yield b" ".join(meta), body
        meta, body, open_message = [], None, False
    if open_message:
        yield b" ".join(meta), body


def parse_flags(meta: bytes) -> tuple[str, ...]:
    """The FLAGS of a FETCH response's metadata."""
    match = _FLAGS_RE.search(meta)
    if not match:
        return ()
    return tuple(f.decode("utf-8", "replace") for f in match.group(1).split())


def parse_list_item(item: Any) -> Folder | None:
    """One LIST response line as a Folder (None when it cannot be read)."""
    if isinstance(item, tuple):  # name sent as a literal
        head, literal = item[0], item[1]
        match = _LIST_RE.match(head.rstrip())
        raw_name = literal
    else:
        match = _LIST_RE.match(item or b"")
        raw_name = match.group("name") if match else b""
        raw_name = _unquote(raw_name.strip())
    if not match:
        return None
    delim = match.group("delim")
    delimiter = None if delim == b"NIL" else _unquote(delim).decode("ascii", "replace")
    attrs = frozenset(a.decode("ascii", "replace").upper() for a in match.group("attrs").split())
    return Folder(decode_folder(raw_name), delimiter, attrs)


def tagged_text(dat: Any) -> bytes:
    """The text of a command's tagged answer, as bytes."""
    last = dat[-1] if dat else b""
    if isinstance(last, tuple):
        last = last[0]
    return last or b""


def folder_roles(folders: Iterable[Folder]) -> dict[str, str]:
    """Map roles ("inbox", "sent", "trash", "drafts", "junk", "archive") to folder names.

    Special-use attributes (RFC 6154) win; otherwise well-known names are matched
    case-insensitively, in the order of ``FALLBACK_NAMES``.
    """
    folders = [f for f in folders if "\\NOSELECT" not in f.attributes]
    roles: dict[str, str] = {}
    for folder in folders:
        if folder.name.upper() == "INBOX":
            roles.setdefault("inbox", folder.name)
        for attr in folder.attributes:
            if attr in SPECIAL_USE:
                roles.setdefault(SPECIAL_USE[attr], folder.name)
    by_lower = {f.name.lower(): f.name for f in folders}
    for role, names in FALLBACK_NAMES.items():
        if role in roles:
            continue
        for candidate in names:
            if candidate.lower() in by_lower:
                roles[role] = by_lower[candidate.lower()]
                break
    roles.setdefault("inbox", "INBOX")
    return roles


def sent_date(header_block: bytes | None) -> dt.datetime | None:
    """The Date of a fetched ``HEADER.FIELDS (DATE)`` block, aware; None if unreadable."""
    if not header_block:
        return None
    match = re.search(rb"^Date:[ \t]*(.*(?:\r?\n[ \t].*)*)", header_block,
                      re.IGNORECASE | re.MULTILINE)
    if not match:
        return None
    text = re.sub(r"\s+", " ", match.group(1).decode("ascii", "replace")).strip()
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
