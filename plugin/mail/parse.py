"""Raw message bytes -> :class:`ParsedMessage`: the fields the store keeps.

Pure and total: no Flask, no ORM, and ``parse_message`` never raises on any input
(malformed MIME, unknown charsets, broken encoded-words, 8-bit headers, absurd
nesting). It returns what it could read and notes what it could not in ``defects``.

Why ``compat32`` and not ``email.policy.default``: the modern policy builds a rich
header object for every header and costs ~5x more per message; we need a dozen
headers and one or two text parts, so we parse with the legacy policy (which keeps
header values as raw strings) and decode exactly those ourselves. Attachments are
never decoded at import time: their size is computed from the encoded length.

Why one module of ~470 lines: parsing is one pass over a message (headers, text
parts, attachment metadata); the helpers only make sense in that pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import email.utils
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import decode_header
from email.message import Message as _Msg
from email.parser import BytesParser
from email.policy import compat32

from plugin.mail.invisible import neutralise, safe_display_name

__all__ = [
    "ParsedAttachment",
    "ParsedMessage",
    "content_digest",
    "decode_slice",
    "find_part",
    "message_key_for",
    "parse_message",
    "variant_key",
    "walk_parts",
]

#: column widths of the store; every string is cut to fit (PostgreSQL enforces them)
MAX_ID = 255
MAX_ADDR = 320
MAX_NAME = 255
SNIPPET_CHARS = 200
#: parts deeper than this are not looked into (a message is not a data structure)
MAX_DEPTH = 64

_FOLD = re.compile(r"\r?\n[ \t]*")
_SPACES = re.compile(r"\s+")
_MSGID = re.compile(r"<([^<>\s]+)>")
_TAGS = re.compile(r"<[^>]*>")
_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


@dataclass(slots=True)
class ParsedAttachment:
    #: index of the part in ``walk_parts`` order (same order as ``Message.walk``)
    part_index: int
    filename: str
    content_type: str
    #: decoded size in bytes (computed from the transfer encoding, not by decoding)
    size: int
    content_id: str | None
    inline: bool
    #: where the part's encoded body sits in the raw bytes (None: not found; find_part)
    offset: int | None = None
    length: int | None = None
    #: its Content-Transfer-Encoding, to decode that slice alone
    encoding: str | None = None


@dataclass(slots=True)
class ParsedMessage:
    message_key: str
    message_id: str | None
    in_reply_to: str | None
    references: str | None
    subject: str
    from_name: str
    from_addr: str
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]]
    date: datetime | None
    body_text: str
    body_html: str | None
    snippet: str
    attachments: list[ParsedAttachment]
    size: int
    sha256: str
    defects: list[str] = field(default_factory=list)
    #: sha256 of what the reader sees (see :func:`content_digest`): two copies of one
    #: message agree; a different message re-using its Message-ID does not
    content_digest: str = ""


# --------------------------------------------------------------------- helpers


def _clean(text: str, limit: int | None = None) -> str:
    """No NULs (PostgreSQL refuses them), no lone surrogates, cut to the column width."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace") \
            if _only_escapes(text) else text.encode("utf-8", "replace").decode("utf-8")
    if limit is not None and len(text) > limit:
        text = text[:limit]
    return text


def _only_escapes(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
        return True
    except UnicodeEncodeError:
        return False


def _eight_bit(value: str) -> str:
    """compat32 keeps undecodable header bytes as surrogate escapes: read them as
    UTF-8 when they are, else as Windows-1252 (what such senders almost always mean)."""
    raw = value.encode("ascii", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _codec(charset: str | None) -> str:
    cs = (charset or "").strip().strip('"').lower()
    if cs in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "default"):
        return "utf-8"
    return cs


def _decode_bytes(raw: bytes, charset: str | None) -> str:
    codec = _codec(charset)
    try:
        return raw.decode(codec, "replace")
    except (LookupError, TypeError, ValueError):
        return raw.decode("utf-8", "replace")


def decode_header_value(value: str | None) -> str:
    """One header as readable text: unfolded, encoded-words decoded, never raising."""
    if value is None:
        return ""
    if not isinstance(value, str):  # a Header object from a hand-built message
        value = str(value)
    if "\n" in value:
        value = _FOLD.sub(" ", value)
    try:
        value.encode("ascii")
        ascii_only = True
    except UnicodeEncodeError:
        ascii_only = False
        value = _eight_bit(value) if _only_escapes(value) else value
    if "=?" not in value:
        return value.strip()
    if not ascii_only:
        # decode_header only looks for encoded-words in ASCII text; keep it simple.
        return value.strip()
    try:
        parts = decode_header(value)
    except Exception:  # a broken encoded-word must not stop the import
        return value.strip()
    # decode_header keeps the whitespace of plain chunks and drops the (meaningless)
    # whitespace between two encoded-words, so the chunks join as they are.
    return "".join(chunk if isinstance(chunk, str) else _decode_bytes(chunk, charset)
                   for chunk, charset in parts).strip()


def _msgids(value: str | None) -> list[str]:
    if not value:
        return []
    value = _FOLD.sub(" ", value)
    found = _MSGID.findall(value)
    if not found:
        bare = value.strip().strip("<>").strip()
        return [bare] if bare and " " not in bare else []
    return found


def message_key_for(message_id: str | None, raw: bytes | None = None,
                    sha256: str | None = None) -> str:
    """The per-mailbox key: the Message-ID, else ``sha256:`` of the bytes.

    An over-long Message-ID is hashed too so the key always fits its column.
    """
    if message_id:
        if len(message_id) <= MAX_ID:
            return message_id
        return "mid-sha256:" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
    if sha256 is None:
        sha256 = hashlib.sha256(raw or b"").hexdigest()
    return "sha256:" + sha256


#: the headers that make a message what it is to its reader (shown, replied to,
#: threaded, decoded). Transport headers (Received, Return-Path, Delivered-To,
#: DKIM-Signature, spam scores, ...) are added on the way and differ between two
#: copies of one message, so they are left out.
CONTENT_HEADERS = ("from", "sender", "reply-to", "to", "cc", "subject", "date",
                   "message-id", "in-reply-to", "references", "mime-version",
                   "content-type", "content-transfer-encoding")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_WS_BYTES = re.compile(rb"[ \t]+")


def content_digest(raw: bytes) -> str:
    """sha256 of a message's content headers and body, line endings and folding
    normalised: the same for the copy in INBOX, in Sent and in another folder, and
    for one that went through more servers; different for any other message."""
    m = _HEAD_END.search(raw)
    head, body = (raw[:m.start()], raw[m.end():]) if m else (raw, b"")
    fields: dict[bytes, list[bytes]] = {}
    name = None
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and name is not None:
            fields[name][-1] += b" " + line.strip()
            continue
        key, colon, value = line.partition(b":")
        name = key.strip().lower() if colon else None
        if name is not None:
            fields.setdefault(name, []).append(value.strip())
    h = hashlib.sha256()
    for wanted in CONTENT_HEADERS:
        for value in fields.get(wanted.encode(), []):
            h.update(wanted.encode() + b":" + _WS_BYTES.sub(b" ", value).strip() + b"\n")
    h.update(b"\n")
    h.update(body.replace(b"\r\n", b"\n").rstrip(b"\r\n \t"))
    return h.hexdigest()


def variant_key(message_key: str, digest: str) -> str:
    """The key of a message that re-uses a stored Message-ID with other content: the
    same for every copy of that other message (a re-fetch stays a no-op), never the
    key of the first one, and always within the column's width."""
    return "dup:" + hashlib.sha256(f"{message_key}#{digest}".encode(
        "utf-8", "surrogatepass")).hexdigest()


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    if not values:
        return []
    text = [_FOLD.sub(" ", v) if "\n" in v else v for v in values]
    text = [_eight_bit(v) if _only_escapes(v) and not v.isascii() else v for v in text]
    try:
        pairs = email.utils.getaddresses(text)
    except Exception:
        pairs = [("", t) for t in text]
    out = []
    for name, addr in pairs:
        if not name and not addr:
            continue
        if "=?" in name:
            name = decode_header_value(name)
        out.append((_clean(safe_display_name(name), MAX_NAME), _clean(addr.strip(), MAX_ADDR)))
    return out


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(_FOLD.sub(" ", value).strip())
    except Exception:  # garbage dates are common
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _param(part: _Msg, name: str, header: str) -> str | None:
    try:
        value = part.get_param(name, None, header)
    except Exception:
        return None
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231
        try:
            value = email.utils.collapse_rfc2231_value(value, errors="replace")
        except Exception:
            value = value[2] if len(value) > 2 else ""
    if not isinstance(value, str):
        value = str(value)
    return value


def safe_filename(name: str | None, fallback: str = "attachment") -> str:
    """A file name that cannot climb directories or carry control, reordering or
    invisible characters."""
    if not name:
        return fallback
    name = decode_header_value(name) if "=?" in name else name
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # "invoice\u202efdp.exe" must not display as a PDF: reordering marks become "_".
    name = _UNSAFE_FILENAME.sub("_", neutralise(name, "_")).strip(" .")
    if not name:
        return fallback
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot else ""
        name = (stem or name)[: MAX_NAME - len(ext) - 1] + ("." + ext if ext else "")
    return _clean(name, MAX_NAME)


def _encoded_size(part: _Msg) -> int:
    payload = part._payload  # the raw string; get_payload() would decode it
    if not isinstance(payload, str):
        return 0
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte == "base64":
        useful = len(payload) - payload.count("\n") - payload.count("\r") \
            - payload.count(" ") - payload.count("=")
        return max(useful, 0) * 3 // 4
    return len(payload)


def walk_parts(msg: _Msg) -> Iterator[tuple[int, int, _Msg]]:
    """Yield (index, depth, part) in ``Message.walk`` order, without recursion.

    Parts nested deeper than ``MAX_DEPTH`` are still numbered (so indexes agree with
    ``Message.walk``) but flagged by a depth over the limit.
    """
    stack = [(msg, 0)]
    index = 0
    while stack:
        part, depth = stack.pop()
        yield index, depth, part
        index += 1
        payload = part._payload
        if isinstance(payload, list):
            for child in reversed(payload):
                if isinstance(child, _Msg):
                    stack.append((child, depth + 1))


def decode_slice(data: bytes, encoding: str | None) -> bytes:
    """A part's decoded bytes from its encoded body alone (see ``ParsedAttachment.offset``)."""
    part = _Msg()
    part["Content-Transfer-Encoding"] = encoding or "7bit"
    part.set_payload(data.decode("ascii", "surrogateescape"))
    out = part.get_payload(decode=True)
    return out if isinstance(out, bytes) else data


def _locate(raw: bytes, part: _Msg, start: int) -> tuple[int | None, int | None]:
    """(offset, length) of a leaf part's encoded body in ``raw``, searched from
    ``start`` (parts come in byte order); (None, None) when it cannot be found."""
    payload = part._payload
    if not isinstance(payload, str) or not payload:
        return None, None
    try:
        needle = payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return None, None
    at = raw.find(needle, start)
    return (at, len(needle)) if at >= 0 else (None, None)


def find_part(raw: bytes, part_index: int) -> tuple[str, str, bytes] | None:
    """(content type, safe filename, decoded bytes) of one stored part, for downloads."""
    msg = _load(raw)
    for index, _depth, part in walk_parts(msg):
        if index == part_index:
            data = part.get_payload(decode=True)
            if data is None:
                inner = part.get_payload()
                data = inner.as_bytes() if isinstance(inner, _Msg) else b""
                if isinstance(inner, list) and inner and isinstance(inner[0], _Msg):
                    data = inner[0].as_bytes()
            name = _param(part, "filename", "content-disposition") or _param(
                part, "name", "content-type")
            return part.get_content_type(), safe_filename(name), data
    return None


def _load(raw: bytes) -> _Msg:
    return message_from_bytes(raw, policy=compat32)


# ------------------------------------------------------------------- the parser


def parse_message(raw: bytes, internaldate: datetime | None = None) -> ParsedMessage:
    """Read the fields the store keeps from raw RFC 5322 bytes; never raises."""
    sha = hashlib.sha256(raw).hexdigest()
    defects: list[str] = []
    try:
        msg = _load(raw)
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        defects.append(f"unparsable: {type(exc).__name__}")
        try:
            msg = BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
        except Exception:
            msg = _Msg()
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), []).append(value if isinstance(value, str)
                                                    else str(value))

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    ids = _msgids(first("message-id"))
    message_id = _clean(ids[0], 10_000) if ids else None
    reply_ids = _msgids(first("in-reply-to"))
    refs = _msgids(" ".join(headers.get("references", [])))
    from_list = _addresses(headers.get("from", []))
    from_name, from_addr = from_list[0] if from_list else ("", "")
    date = _date(first("date"))
    if date is None and internaldate is not None:
        date = internaldate.astimezone(UTC) if internaldate.tzinfo else \
            internaldate.replace(tzinfo=UTC)

    text, html, attachments = _bodies(msg, defects, raw)
    if text:
        snippet_src = text
    elif html:
        snippet_src = _TAGS.sub(" ", html[:20_000])
    else:
        snippet_src = ""
    snippet = _SPACES.sub(" ", snippet_src[:2000]).strip()[:SNIPPET_CHARS]
    key = message_key_for(message_id, sha256=sha)
    return ParsedMessage(
        message_key=key,
        message_id=message_id[:MAX_ID] if message_id else None,
        in_reply_to=_clean(reply_ids[0], MAX_ID) if reply_ids else None,
        references=_clean(" ".join(refs)) if refs else None,
        subject=_clean(decode_header_value(first("subject"))),
        from_name=_clean(from_name, MAX_NAME),
        from_addr=_clean(from_addr, MAX_ADDR),
        to=_addresses(headers.get("to", [])),
        cc=_addresses(headers.get("cc", [])),
        date=date,
        body_text=_clean(text),
        body_html=_clean(html) if html is not None else None,
        snippet=_clean(snippet),
        attachments=attachments,
        size=len(raw),
        sha256=sha,
        defects=defects,
        content_digest=content_digest(raw),
    )


def _bodies(msg: _Msg, defects: list[str], raw: bytes = b"") -> tuple[
        str, str | None, list[ParsedAttachment]]:
    text: str | None = None
    cursor = 0  # where the next part's body may start in ``raw``
    html: str | None = None
    attachments: list[ParsedAttachment] = []
    skip_below: int | None = None  # depth of a message/rfc822 we do not look into
    try:
        for index, depth, part in walk_parts(msg):
            if skip_below is not None:
                if depth > skip_below:
                    continue
                skip_below = None
            if depth > MAX_DEPTH:
                if "too deep" not in defects:
                    defects.append("too deep")
                continue
            payload = part._payload
            ctype = part.get_content_type()
            if isinstance(payload, list):
                if ctype == "message/rfc822" or (ctype.startswith("message/") and index):
                    # a forwarded message is one attachment, not parts of this one
                    attachments.append(_attachment(part, index, ctype, inner=True))
                    skip_below = depth
                continue
            disposition = str(part.get("content-disposition", "")).split(";", 1)[0]
            disposition = disposition.strip().lower()
            filename = _param(part, "filename", "content-disposition") or _param(
                part, "name", "content-type")
            is_attachment = disposition == "attachment" or (
                filename is not None and not ctype.startswith("text/"))
            if not is_attachment and ctype == "text/plain" and text is None:
                text = _part_text(part, defects)
                continue
            if not is_attachment and ctype == "text/html" and html is None:
                html = _part_text(part, defects)
                continue
            if not is_attachment and ctype.startswith("text/") and index == 0:
                text = _part_text(part, defects)  # text/enriched etc. as the only part
                continue
            if ctype.startswith("multipart/"):
                continue  # a multipart with a broken boundary: nothing to show
            if index == 0 and not filename:
                continue  # a bare non-text body without a name
            found = _attachment(part, index, ctype, filename=filename,
                                disposition=disposition)
            if cursor >= 0:  # parts come in byte order: one forward scan in all
                found.offset, found.length = _locate(raw, part, cursor)
                # Not found: stop looking (a scan to the end per part would be quadratic);
                # the rest are found again by part index when downloaded.
                cursor = -1 if found.offset is None else found.offset + found.length
            if found.offset is not None:
                found.encoding = _clean(str(part.get("content-transfer-encoding", "7bit"))
                                        .strip().lower(), 32)
            attachments.append(found)
    except Exception as exc:  # keep what we have
        defects.append(f"body: {type(exc).__name__}")
    return text or "", html, attachments


def _part_text(part: _Msg, defects: list[str]) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        defects.append(f"payload: {type(exc).__name__}")
        return ""
    if data is None:
        return ""
    charset = _param(part, "charset", "content-type")
    return _decode_bytes(data, charset)


def _attachment(part: _Msg, index: int, ctype: str, filename: str | None = None,
                disposition: str = "", inner: bool = False) -> ParsedAttachment:
    if inner:
        filename = filename or _param(part, "filename", "content-disposition")
        size = _inner_size(part)
        fallback = "forwarded.eml"
    else:
        size = _encoded_size(part)
        fallback = "attachment" + (mimetypes.guess_extension(ctype) or "")
    cid = part.get("content-id")
    cid = _clean(str(cid).strip().strip("<>"), MAX_ID) if cid else None
    return ParsedAttachment(
        part_index=index,
        filename=safe_filename(filename, fallback),
        content_type=_clean(ctype, MAX_ID),
        size=size,
        content_id=cid or None,
        inline=disposition == "inline" or (cid is not None and disposition != "attachment"),
    )


def _inner_size(part: _Msg) -> int:
    total = 0
    for _i, _d, sub in walk_parts(part):
        if isinstance(sub._payload, str):
            total += len(sub._payload)
    return total
