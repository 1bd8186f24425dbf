"""Building outgoing messages safely: header checks, address lists, the MIME message.

Every header value a user (or a merge field) supplies is checked before it gets near
``EmailMessage``: CR, LF, NUL and the other line breaks Python knows (U+0085,
U+2028, U+2029, VT, FF, FS/GS/RS) are refused, and so are encoded-words
(``=?UTF-8?Q?=0A?=``, the base64 form, ...) whose decoded text holds one, because
some mail clients decode those before splitting headers. Bodies stay ``str``, so
smtplib normalises line endings and dot-stuffs them.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email import quoprimime
from email.header import decode_header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid

from plugin.mail.addresses import normalize_address
from plugin.mail.parse import safe_filename


class _HeaderClasses(HeaderRegistry):
    """The stdlib registry builds a new class with ``type()`` for every header it
    makes; a bulk send makes thousands, so build each class once."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        cls = self._made.get(key)
        if cls is None:
            cls = self._made[key] = super().__getitem__(name)
        return cls


#: the policy messages are built and flattened with: CRLF, 78-column folding
POLICY = SMTP.clone(header_factory=_HeaderClasses())
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=")
#: where a bulk recipient list or a header may hold at most this many addresses
MAX_RECIPIENTS = 100


class HeaderError(ValueError):
    """A header value that must not be sent; ``sentence`` tells the user why."""

    def __init__(self, field_label: str, sentence: str) -> None:
        self.field_label = field_label
        self.sentence = sentence
        super().__init__(sentence)


#: characters that end a line somewhere (Python's str.splitlines, RFC 5322, browsers)
LINE_BREAKS = frozenset("\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _has_line_break(text: str) -> bool:
    # Any other control character (tab aside) has no business in a header either.
    return any(ch in LINE_BREAKS or (unicodedata.category(ch) == "Cc" and ch != "\t")
               for ch in text)


def _decoded_words(text: str) -> str:
    """The text of every encoded-word in ``text``, decoded (errors replaced)."""
    out = []
    for word in _ENCODED_WORD.findall(text):
        try:
            for chunk, charset in decode_header(word):
                if isinstance(chunk, bytes):
                    chunk = chunk.decode(charset or "utf-8", "replace") if _known(charset) \
                        else chunk.decode("latin-1")
                out.append(chunk)
        except (ValueError, LookupError, UnicodeError, AssertionError):
            # Undecodable: refuse it rather than guess what a client would make of it.
            out.append("\n")
    return "".join(out)


def _known(charset: str | None) -> bool:
    try:
        codecs.lookup(charset or "utf-8")
        return True
    except LookupError:
        return False


def check_header(value: str, field_label: str) -> str:
    """``value`` unchanged when it is safe in a header; else :class:`HeaderError`."""
    value = value or ""
    if _has_line_break(value) or _has_line_break(_decoded_words(value)):
        raise HeaderError(field_label, f"The {field_label} must be on one line: remove the "
                          "line break (or encoded line break) from it.")
    return value


def parse_addresses(text: str, field_label: str) -> list[tuple[str, str]]:
    """``"Ann <a@x.test>, b@y.test"`` -> [(name, normalized address)]; HeaderError if bad."""
    check_header(text, field_label)
    text = (text or "").replace(";", ",")
    if not text.strip():
        return []
    pairs = getaddresses([text])
    out: list[tuple[str, str]] = []
    for name, addr in pairs:
        if not addr and not name:
            continue
        check_header(name, field_label)
        normal = normalize_address(addr) if addr else None
        if normal is None or not addr:
            shown = addr or name or text
            raise HeaderError(field_label, f"'{shown[:80]}' in {field_label} is not an email "
                              "address. Write addresses like name@example.com, separated "
                              "by commas.")
        out.append((name.strip(), normal))
    if len(out) > MAX_RECIPIENTS:
        raise HeaderError(field_label, f"Put at most {MAX_RECIPIENTS} addresses in "
                          f"{field_label}; use bulk email for more.")
    return out


def new_message_id(from_addr: str) -> str:
    """A fresh Message-ID on the sender's domain, without angle brackets."""
    domain = from_addr.rpartition("@")[2] or "localhost"
    return make_msgid(domain=domain.encode("idna").decode("ascii") if not domain.isascii()
                      else domain)[1:-1]


def formatted_html(text: str) -> str:
    """Simple formatted text to HTML: paragraphs, line breaks, **bold**, *italic*, links.

    Everything is escaped first, so the text cannot inject markup."""
    escaped = html.escape(text.replace("\r\n", "\n"), quote=True)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", escaped)
    escaped = re.sub(r"(https?://[^\s<>&\"]+)", r'<a href="\1">\1</a>', escaped)
    paragraphs = [p.replace("\n", "<br>\n") for p in re.split(r"\n\s*\n", escaped) if p.strip()]
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return ('<!doctype html><html><head><meta charset="utf-8"></head>'
            f'<body style="font-family:sans-serif">{body}</body></html>')


@dataclass
class Attachment:
    name: str
    content_type: str
    data: bytes


@dataclass
class Draft:
    """A message as written, before it has a Message-ID."""

    from_name: str
    from_addr: str
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]] = field(default_factory=list)
    bcc: list[tuple[str, str]] = field(default_factory=list)
    subject: str = ""
    body_text: str = ""
    formatted: bool = False
    in_reply_to: str | None = None
    references: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


def safe_attachment_name(name: str) -> str:
    """A file name fit for a Content-Disposition header (no paths, no line breaks)."""
    clean = "".join(" " if ch in LINE_BREAKS or unicodedata.category(ch) == "Cc" else ch
                    for ch in safe_filename(name))
    return clean.strip() or "attachment"


def _address(name: str, addr: str) -> Address:
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name or "", username=local, domain=domain)


def build_message(*, from_name: str, from_addr: str, to: list, cc: list, subject: str,
                  body_text: str, body_html: str | None, message_id: str, date: datetime,
                  in_reply_to: str | None = None, references: str | None = None,
                  attachments: list[Attachment] = ()) -> EmailMessage:
    """The message as it goes out; the same inputs always give the same bytes.

    Never has a Bcc header: blind copies exist only in the SMTP envelope."""
    check_header(subject, "subject")
    check_header(from_name, "sender name")
    for name, _addr in list(to) + list(cc):
        check_header(name, "recipient name")
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _address(from_name, from_addr)
    if to:
        msg["To"] = [_address(n, a) for n, a in to]
    if cc:
        msg["Cc"] = [_address(n, a) for n, a in cc]
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references.split())
    msg["MIME-Version"] = "1.0"
    # Text, never bytes: the policy folds and line-ends it, smtplib dot-stuffs it.
    msg.set_content(body_text or "", subtype="plain", charset="utf-8", cte=_cte(body_text))
    if body_html:
        msg.add_alternative(body_html, subtype="html", charset="utf-8", cte=_cte(body_html))
    for att in attachments:
        maintype, _, subtype = (att.content_type or "application/octet-stream").partition("/")
        if maintype == "text":
            maintype, subtype = "application", "octet-stream"  # keep the bytes untouched
        msg.add_attachment(att.data, maintype=maintype, subtype=subtype or "octet-stream",
                           filename=att.name)
    return msg


def _cte(text: str | None) -> str:
    # 7bit when plain ASCII with short lines; else quoted-printable, which keeps lines
    # under the SMTP limit and needs no 8BITMIME from the server.
    text = text or ""
    if text.isascii() and all(len(line) <= 900 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def flatten(msg: EmailMessage) -> bytes:
    """The exact bytes smtplib sends for ``msg`` (before dot-stuffing)."""
    return msg.as_bytes(policy=POLICY)


def addresses_json(pairs: list[tuple[str, str]]) -> str:
    return json.dumps([[n, a] for n, a in pairs], ensure_ascii=False)


def addresses_from_json(text: str | None) -> list[tuple[str, str]]:
    return [(n, a) for n, a in json.loads(text or "[]")]


def quote_text(text: str, who: str, when: datetime | None) -> str:
    """``> ``-quoted original for replies, with an attribution line."""
    date = when.strftime("%d %b %Y, %H:%M") if when else "earlier"
    quoted = "\n".join("> " + line if line else ">" for line in (text or "").splitlines())
    return f"\n\nOn {date}, {who} wrote:\n{quoted}\n"


def reply_subject(subject: str, prefix: str) -> str:
    subject = (subject or "").strip()
    if re.match(rf"^{prefix}:\s", subject, re.IGNORECASE):
        return subject
    return f"{prefix}: {subject}".strip()


# ------------------------------------------------------------------ bulk: prepared messages

#: a display name that needs neither quoting nor encoding (RFC 5322 atext, single spaces)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_PLAIN_ADDR = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                         r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")
#: unstructured text the stdlib writes unchanged: printable ASCII, single spaces, and
#: nothing that looks like an encoded-word (the stdlib decodes and re-encodes those)
_PLAIN_TEXT = re.compile(r"[!-~]+(?: [!-~]+)*\Z")
_MAX_LINE = 78  # POLICY.max_line_length: longer header lines get folded


def _header_line(name: str, value: str | list[Address]) -> bytes:
    """One header exactly as ``EmailMessage`` + ``flatten`` write it (folded, encoded)."""
    return POLICY.fold_binary(name, POLICY.header_factory(name, value))


def _address_line(name: str, pairs: list[tuple[str, str]]) -> bytes:
    if len(pairs) == 1:
        display, addr = pairs[0]
        if _PLAIN_ADDR.match(addr) and (not display or (_PLAIN_NAME.match(display)
                                                        and "=?" not in display)):
            line = f"{name}: {display} <{addr}>" if display else f"{name}: {addr}"
            if len(line) <= _MAX_LINE:
                return line.encode("ascii") + b"\r\n"
    return _header_line(name, [_address(n, a) for n, a in pairs])


def _text_line(name: str, value: str) -> bytes:
    line = f"{name}: {value}"
    if _PLAIN_TEXT.match(value) and "=?" not in value and len(line) <= _MAX_LINE:
        return line.encode("ascii") + b"\r\n"
    return _header_line(name, value)


def _body_part(text: str) -> tuple[str, bytes]:
    """(transfer encoding, CRLF body) as ``set_content(..., charset="utf-8")`` makes it."""
    cte = _cte(text)
    normal = b"\n".join((text or "").encode("utf-8").splitlines()) + b"\n"
    if cte == "7bit":
        return cte, normal.replace(b"\n", b"\r\n")
    data = quoprimime.body_encode(normal.decode("latin-1"), POLICY.max_line_length)
    return cte, data.replace("\n", "\r\n").encode("ascii")


class PreparedMessage:
    """The messages of one bulk job, built as bytes from what they share.

    ``From`` and the MIME framing are encoded once; per recipient only ``To``,
    ``Subject``, ``Date``, ``Message-ID`` and the bodies are. The bytes are the ones
    :func:`build_message` + :func:`flatten` give for the same inputs (a unit test
    holds the two together); simple ASCII header values are written directly and
    everything else goes through the stdlib's header classes, one header at a time.
    The multipart boundary comes from the Message-ID, so a row always gives the same
    bytes (the stdlib's is random). Bodies end CRLF-normalised; smtplib dot-stuffs.
    """

    def __init__(self, from_name: str, from_addr: str) -> None:
        check_header(from_name, "sender name")
        self._from_name, self._from_addr = from_name, from_addr
        self._from = _address_line("From", [(from_name, from_addr)])

    def build(self, *, to: list[tuple[str, str]], subject: str, body_text: str,
              body_html: str | None, message_id: str, date: datetime) -> bytes:
        check_header(subject, "subject")
        for name, _addr in to:
            check_header(name, "recipient name")
        head = [self._from]
        if to:
            head.append(_address_line("To", list(to)))
        head.append(_text_line("Subject", subject))
        head.append(b"Date: " + format_datetime(date).encode("ascii") + b"\r\n")
        mid = f"<{message_id}>"
        head.append(b"Message-ID: " + mid.encode("ascii") + b"\r\n"
                    if _PLAIN_ADDR.match(message_id) and len(mid) <= _MAX_LINE - 12
                    else _header_line("Message-ID", mid))
        head.append(b"MIME-Version: 1.0\r\n")
        cte, text = _body_part(body_text)
        if not body_html:
            head.append(b'Content-Type: text/plain; charset="utf-8"\r\n'
                        b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n\r\n")
            return b"".join(head) + text
        html_cte, html_body = _body_part(body_html)
        digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).digest()
        token = int.from_bytes(digest[:8], "big") % sys.maxsize
        boundary = ("=" * 15 + "%019d" % token + "==").encode("ascii")
        if b"--" + boundary in text or b"--" + boundary in html_body:
            # Never in practice (19 digits from a hash); the stdlib then picks another.
            return flatten(build_message(
                from_name=self._from_name, from_addr=self._from_addr, to=list(to), cc=[],
                subject=subject, body_text=body_text, body_html=body_html,
                message_id=message_id, date=date))
        head.append(b"Content-Type: multipart/alternative;\r\n boundary=\"" + boundary
                    + b"\"\r\n\r\n")
        return b"".join(head + [
            b"--", boundary, b"\r\n",
            b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: ',
            cte.encode(), b"\r\n\r\n", text,
            b"\r\n--", boundary, b"\r\n",
            b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: ',
            html_cte.encode(), b"\r\nMIME-Version: 1.0\r\n\r\n", html_body,
            b"\r\n--", boundary, b"--\r\n"])
