"""IMAP folder names: modified UTF-7 (RFC 3501 section 5.1.3) and quoting."""

from __future__ import annotations

import base64


def _b64(chunk: str) -> str:
    data = chunk.encode("utf-16-be")
    return base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")


def encode_folder(name: str) -> str:
    """Encode a Unicode folder name for the wire (``Entwürfe`` -> ``Entw&APw-rfe``)."""
    out: list[str] = []
    pending: list[str] = []
    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            if pending:
                out.append("&" + _b64("".join(pending)) + "-")
                pending = []
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    if pending:
        out.append("&" + _b64("".join(pending)) + "-")
    return "".join(out)


def decode_folder(raw: str | bytes) -> str:
    """Decode a wire folder name to Unicode; malformed shifts are kept as they are."""
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        end = text.find("-", i) if char == "&" else -1
        if char != "&" or end < 0:
            out.append(char)
            i += 1
            continue
        chunk = text[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            try:
                out.append(base64.b64decode(b64, validate=True).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError):
                out.append(text[i : end + 1])
        i = end + 1
    return "".join(out)


def quote(text: str) -> str:
    """An IMAP quoted string. imaplib sends arguments as they are, so we quote."""
    if "\r" in text or "\n" in text or "\0" in text:
        raise ValueError("CR, LF and NUL cannot be sent in an IMAP string")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_folder(name: str) -> str:
    """Encode and quote a Unicode folder name as a command argument."""
    return quote(encode_folder(name))
