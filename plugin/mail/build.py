"""Building outgoing messages safely: header checks, address lists, the MIME message.

Every header value a user (or a merge field) supplies is checked before it gets near
``EmailMessage``: CR, LF, NUL and the other line breaks Python knows (U+0085,
U+2028, U+2029, VT, FF, FS/GS/RS) are refused, and so are encoded-words
(``=?UTF-8?Q?=0A?=``, the base64 form, with whitespace inside, any charset: see
``plugin.mail.encoded_words``) whose decoded text holds one, because the stdlib's
parser and mail clients decode those before splitting headers. ``In-Reply-To`` and
``References`` keep only ids that pass the RFC 5322 grammar (``plugin.mail.msgid``) and
are written by the add-on, not re-parsed by the stdlib.

None of that relies on the interpreter: Python 3.11.7 lacks the CVE-2024-6923 fix and
would write a decoded CR LF out raw. So the flattened bytes are checked as well
(:func:`check_flattened`): CRLF only, no NUL, every header line a known field or a
continuation. Bodies holding NUL or other control characters go out quoted-printable
(``=00``), so no such byte reaches the wire and nothing the author wrote is lost.

Why one module of ~470 lines: header checks, address lists and the MIME builder are
one safety boundary; the checks must sit beside the only code that writes headers.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, quoprimime
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP, Policy, compat32
from email.utils import format_datetime, getaddresses, make_msgid

from plugin.mail import msgid
from plugin.mail.addresses import normalize_address
from plugin.mail.encoded_words import decoded_words
from plugin.mail.parse import safe_filename
from plugin.words import N_, said


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


class _MessageIdsHeader:
    """``In-Reply-To``/``References`` as the add-on writes them: ids checked by
    ``plugin.mail.msgid``, folded between ids, never parsed for encoded-words."""

    max_count = 1

    @classmethod
    def parse(cls, value: object, kwds: dict) -> None:  # the stdlib's header protocol
        ids = msgid.parse_msg_id_list(str(value))
        kwds["decoded"] = " ".join(f"<{i}>" for i in ids)
        kwds["parse_tree"] = None

    def fold(self, *, policy: Policy) -> str:
        ids = msgid.parse_msg_id_list(str(self))
        return msgid.fold_ids(self.name, ids, policy.linesep, policy.max_line_length or 78)


class _UrlHeader:
    """``List-Unsubscribe`` (RFC 2369): one ``<https://...>`` on one line, as written.

    The stdlib would encode a long URL with no space in it as encoded-words, which no
    mail client follows; the URL is checked instead (:func:`check_unsubscribe_url`)."""

    max_count = 1

    @classmethod
    def parse(cls, value: object, kwds: dict) -> None:  # the stdlib's header protocol
        kwds["decoded"] = f"<{check_unsubscribe_url(str(value).strip('<>'))}>"
        kwds["parse_tree"] = None

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


_URL = re.compile(r"https://[A-Za-z0-9.-]+(?::\d+)?/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")
#: RFC 8058's one value of List-Unsubscribe-Post
ONE_CLICK = "List-Unsubscribe=One-Click"


def check_unsubscribe_url(url: str) -> str:
    """``url`` when it is an https URL of plain characters that fits one header line."""
    if len(url) > 900 or not _URL.fullmatch(url):
        raise HeaderError("unsubscribe link", N_("The unsubscribe link must be an https:// "
                                                 "address of plain characters. Check "
                                                 "IE_PUBLIC_URL."))
    return url


_HEADERS = _HeaderClasses()
_HEADERS.map_to_type("list-unsubscribe", _UrlHeader)
_HEADERS.map_to_type("in-reply-to", _MessageIdsHeader)
_HEADERS.map_to_type("references", _MessageIdsHeader)
#: the policy messages are built and flattened with: CRLF, 78-column folding
POLICY = SMTP.clone(header_factory=_HEADERS)
#: where a bulk recipient list or a header may hold at most this many addresses
MAX_RECIPIENTS = 100


#: the field labels the sentences above name (msgids of their own, translated with them)
FIELD_LABELS = (N_("subject"), N_("sender name"), N_("recipient name"), N_("message text"),
                N_("message"), N_("signature"), N_("unsubscribe link"), N_("To field"),
                N_("Cc field"), N_("Bcc field"))


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


#: bytes that end a line or a record for some reader (ASCII controls but TAB)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _has_encoded_line_break(text: str) -> bool:
    """True when any reading of the encoded-words in ``text`` holds a line break."""
    if "=?" not in text:
        return False
    raws, texts = decoded_words(text)
    return any(_CONTROL_BYTES.search(raw) for raw in raws) or \
        any(_has_line_break(t) for t in texts)


def check_header(value: str, field_label: str) -> str:
    """``value`` unchanged when it is safe in a header; else :class:`HeaderError`."""
    value = value or ""
    if _has_line_break(value) or _has_encoded_line_break(value):
        raise HeaderError(field_label, N_(
            "The %(field)s must be on one line: remove the line break (or encoded line "
            "break) from it.", field=said(field_label)))
    return value


def check_body(text: str | None, field_label: str = "message text") -> str:
    """``text`` when it can be stored and sent; a NUL is refused with a sentence.

    Why refuse rather than encode: PostgreSQL text columns cannot hold a NUL, so the
    outbox row could not even be written, and nobody means to type one. Other control
    characters are kept and go out quoted-printable (see ``_cte``)."""
    text = text or ""
    if "\x00" in text:
        raise HeaderError(field_label, N_(
            "The %(field)s holds an invisible NUL character (often pasted from another "
            "program). Remove it and send again.", field=said(field_label)))
    return text


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
            raise HeaderError(field_label, N_(
                "'%(shown)s' in %(field)s is not an email address. Write addresses like "
                "name@example.com, separated by commas.", shown=shown[:80],
                field=said(field_label)))
        out.append((name.strip(), normal))
    if len(out) > MAX_RECIPIENTS:
        raise HeaderError(field_label, N_(
            "Put at most %(count)s addresses in %(field)s; use bulk email for more.",
            count=MAX_RECIPIENTS, field=said(field_label)))
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
    if _has_encoded_line_break(clean):
        # The stdlib decodes encoded-words even inside a quoted filename parameter.
        clean = clean.replace("=?", "=_")
    return clean.strip() or "attachment"


def _address(name: str, addr: str) -> Address:
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name or "", username=local, domain=domain)


def build_message(*, from_name: str, from_addr: str, to: list, cc: list, subject: str,
                  body_text: str, body_html: str | None, message_id: str, date: datetime,
                  in_reply_to: str | None = None, references: str | None = None,
                  attachments: list[Attachment] = (),
                  list_unsubscribe: str | None = None) -> EmailMessage:
    """The message as it goes out; the same inputs always give the same bytes.

    Never has a Bcc header: blind copies exist only in the SMTP envelope.
    ``list_unsubscribe``: the one-click unsubscribe URL of a bulk message (RFC 8058)."""
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
    # An incoming Message-ID is the outside sender's choice: only valid ids are copied.
    parent = msgid.parse_msg_id(in_reply_to)
    if parent:
        msg["In-Reply-To"] = f"<{parent}>"
    refs = msgid.parse_msg_id_list(references)[-msgid.MAX_REFERENCES:]
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    if list_unsubscribe:
        msg["List-Unsubscribe"] = list_unsubscribe
        msg["List-Unsubscribe-Post"] = ONE_CLICK
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
                           filename=safe_attachment_name(att.name))
    # Flatten once here, so that a header the stdlib wrote unsafely fails the build
    # (and the form) rather than the send; ``flatten`` returns these bytes.
    msg.ie_flattened = check_flattened(msg.as_bytes(policy=POLICY))  # type: ignore[attr-defined]
    return msg


def _cte(text: str | None) -> str:
    # 7bit when plain ASCII with short lines; else quoted-printable, which keeps lines
    # under the SMTP limit and needs no 8BITMIME from the server.
    # NUL and the other control characters (TAB and line ends aside) are sent as
    # =00 and the like: never raw on the wire, and not lost either.
    text = text or ""
    if text.isascii() and not _BODY_CONTROLS.search(text) and \
            all(len(line) <= 900 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


_BODY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def flatten(msg: EmailMessage) -> bytes:
    """The exact bytes sent for ``msg`` (before dot-stuffing), checked."""
    made = getattr(msg, "ie_flattened", None)
    if made is not None:
        return made
    return check_flattened(msg.as_bytes(policy=POLICY))


#: the header fields the add-on writes, on the message and on its MIME parts
TOP_FIELDS = frozenset({"from", "to", "cc", "subject", "date", "message-id", "in-reply-to",
                        "references", "mime-version", "content-type",
                        "content-transfer-encoding", "list-unsubscribe",
                        "list-unsubscribe-post"})
PART_FIELDS = frozenset({"content-type", "content-transfer-encoding", "content-disposition",
                         "mime-version", "content-id"})
_FIELD_LINE = re.compile(rb"([!-9;-~]+):")
_BARE_CR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_UNSAFE_OUTPUT = N_("This message cannot be sent safely as written. Check the subject and "
                    "the names in it for unusual characters, then try again.")


def _field_names(head: bytes) -> list[str]:
    names = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not names or not line.strip():
                raise HeaderError("message", _UNSAFE_OUTPUT)
            continue
        m = _FIELD_LINE.match(line)
        if not m:
            raise HeaderError("message", _UNSAFE_OUTPUT)
        names.append(m.group(1).decode("ascii").lower())
    return names


def check_flattened(raw: bytes, parts: bool = True) -> bytes:
    """``raw`` when it is safe to hand to SMTP: CRLF line ends only, no NUL, and only
    the header fields the add-on writes, once each; else :class:`HeaderError`.

    This is the check that does not trust the interpreter: whatever the stdlib did
    with a header value, an injected field or a raw line break shows here. ``parts``
    also reads the MIME parts' headers back (not needed for bytes whose parts the
    add-on wrote itself from fixed text).
    """
    if b"\x00" in raw or _BARE_CR_LF.search(raw):
        raise HeaderError("message", _UNSAFE_OUTPUT)
    head, sep, _body = raw.partition(b"\r\n\r\n")
    names = _field_names(head)
    if not sep or set(names) - TOP_FIELDS or len(names) != len(set(names)):
        raise HeaderError("message", _UNSAFE_OUTPUT)
    if parts and b"multipart/" in head.lower():
        for part in message_from_bytes(raw, policy=compat32).walk():
            names = [k.lower() for k in part.keys()]
            if part.defects or len(names) != len(set(names)) or \
                    set(names) - TOP_FIELDS - PART_FIELDS:
                raise HeaderError("message", _UNSAFE_OUTPUT)
    return raw


def addresses_json(pairs: list[tuple[str, str]]) -> str:
    """Address pairs as the JSON the outbox row keeps."""
    return json.dumps([[n, a] for n, a in pairs], ensure_ascii=False)


def addresses_from_json(text: str | None) -> list[tuple[str, str]]:
    """The address pairs of an outbox row's JSON (none for empty)."""
    return [(n, a) for n, a in json.loads(text or "[]")]


def quote_text(text: str, who: str, when: datetime | None) -> str:
    """``> ``-quoted original for replies, with an attribution line."""
    date = when.strftime("%d %b %Y, %H:%M") if when else "earlier"
    quoted = "\n".join("> " + line if line else ">" for line in (text or "").splitlines())
    return f"\n\nOn {date}, {who} wrote:\n{quoted}\n"


def reply_subject(subject: str, prefix: str) -> str:
    """The subject with ``prefix:`` (Re, Fwd) in front, unless it already has it."""
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
              body_html: str | None, message_id: str, date: datetime,
              list_unsubscribe: str | None = None) -> bytes:
        """The message's bytes for one recipient list (headers checked, CRLF only)."""
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
        if list_unsubscribe:
            head.append(b"List-Unsubscribe: <" + check_unsubscribe_url(
                list_unsubscribe).encode("ascii") + b">\r\nList-Unsubscribe-Post: "
                + ONE_CLICK.encode("ascii") + b"\r\n")
        head.append(b"MIME-Version: 1.0\r\n")
        cte, text = _body_part(body_text)
        if not body_html:
            head.append(b'Content-Type: text/plain; charset="utf-8"\r\n'
                        b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n\r\n")
            return check_flattened(b"".join(head) + text, parts=False)
        html_cte, html_body = _body_part(body_html)
        digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).digest()
        token = int.from_bytes(digest[:8], "big") % sys.maxsize
        boundary = ("=" * 15 + "%019d" % token + "==").encode("ascii")
        if b"--" + boundary in text or b"--" + boundary in html_body:
            # Never in practice (19 digits from a hash); the stdlib then picks another.
            return flatten(build_message(
                from_name=self._from_name, from_addr=self._from_addr, to=list(to), cc=[],
                subject=subject, body_text=body_text, body_html=body_html,
                message_id=message_id, date=date, list_unsubscribe=list_unsubscribe))
        head.append(b"Content-Type: multipart/alternative;\r\n boundary=\"" + boundary
                    + b"\"\r\n\r\n")
        return check_flattened(b"".join(head + [
            b"--", boundary, b"\r\n",
            b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: ',
            cte.encode(), b"\r\n\r\n", text,
            b"\r\n--", boundary, b"\r\n",
            b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: ',
            html_cte.encode(), b"\r\nMIME-Version: 1.0\r\n\r\n", html_body,
            b"\r\n--", boundary, b"--\r\n"]), parts=False)
