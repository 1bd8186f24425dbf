"""Every reading of the RFC 2047 encoded-words in a header value, as leniently as any
parser might make it.

Why lenient: the danger is not what the RFC allows but what some decoder does. The
stdlib's header parser decodes ``=?utf-8?q?a=0D=0AX: 1 ?=`` (whitespace inside) and,
without the CVE-2024-6923 fix, writes the decoded CR LF out raw; mail clients decode
before they split headers, too. So a value is judged by every text its encoded-words
could decode to: any ``=?`` up to any later ``?=``, any charset (known or not), ``q``
or ``b`` in either case, with whitespace or padding errors, decoded as declared and
as UTF-8, and again inside what came out (an encoded-word inside an encoded-word).
"""

from __future__ import annotations

import binascii
import codecs
import re

#: encoded-word spans tried per start (the stdlib may run past the first ``?=``)
_MAX_ENDS = 4
_MAX_DEPTH = 2
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")


def _spans(text: str) -> list[tuple[str, str, str]]:
    """(charset, encoding, encoded text) of every ``=?cs?e?...?=`` reading of ``text``."""
    out = []
    start = text.find("=?")
    while start != -1:
        end = text.find("?=", start + 2)
        for _ in range(_MAX_ENDS):
            if end == -1:
                break
            parts = text[start + 2:end].split("?", 2)
            if len(parts) == 3 and parts[1].strip().lower() in ("q", "b"):
                out.append((parts[0], parts[1].strip().lower(), parts[2]))
            end = text.find("?=", end + 1)
        start = text.find("=?", start + 1)
    return out


def _q_bytes(encoded: str) -> list[bytes]:
    # Raw non-ASCII in the encoded text is invalid; decoders take it as UTF-8 or Latin-1.
    text = encoded.replace("_", " ")
    forms = [text.encode("utf-8", "surrogateescape")]
    if not text.isascii() and all(ord(c) < 256 for c in text):
        forms.append(text.encode("latin-1"))
    return [_Q_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw) for raw in forms]


def _b_bytes(encoded: str) -> list[bytes]:
    out = []
    cleaned = _NOT_BASE64.sub("", encoded)
    for candidate in (cleaned, cleaned[:len(cleaned) - len(cleaned) % 4]):
        if len(candidate) % 4 == 1:
            candidate = candidate[:-1]
        try:
            out.append(binascii.a2b_base64(candidate + "=" * (-len(candidate) % 4)))
        except (binascii.Error, ValueError):
            continue
    # Decoders that stop at the first padding character see only what comes before it.
    head = encoded.split("=", 1)[0]
    if head != encoded:
        out.extend(_b_bytes(head))
    return out


def _codec(charset: str) -> str | None:
    name = charset.strip().split("*", 1)[0].strip()
    try:
        return codecs.lookup(name).name if name else None
    except (LookupError, ValueError):
        return None


def decoded_words(text: str) -> tuple[list[bytes], list[str]]:
    """The bytes and the texts the encoded-words in ``text`` can decode to."""
    raws: list[bytes] = []
    texts: list[str] = []
    _collect(text, raws, texts, 0)
    return raws, texts


def _collect(text: str, raws: list[bytes], texts: list[str], depth: int) -> None:
    for charset, encoding, encoded in _spans(text):
        chunks = _q_bytes(encoded) if encoding == "q" else _b_bytes(encoded)
        codec = _codec(charset)
        for chunk in chunks:
            raws.append(chunk)
            decodings = {chunk.decode("utf-8", "replace")}
            if codec is None:
                # An unknown charset: a client may well fall back to Latin-1 (NEL, 0x85).
                decodings.add(chunk.decode("latin-1"))
            else:
                try:
                    decodings.add(chunk.decode(codec, "replace"))
                except (LookupError, ValueError, TypeError):
                    pass
            for decoded in decodings:
                texts.append(decoded)
                if depth < _MAX_DEPTH and "=?" in decoded:
                    _collect(decoded, raws, texts, depth + 1)
