"""IMAP client: one signed-in session on a policy-checked connection.

Why the stdlib ``imaplib`` and not IMAPClient:

- Control over the socket. The host policy (``connect.check_host``) resolves the host
  once and must connect to exactly the addresses it checked, while TLS is verified
  against the host name. ``imaplib`` lets a subclass override ``_create_socket``;
  IMAPClient builds its own socket/TLS path and would need patching to do the same.
- Speed. ``imaplib`` reads message literals straight off the socket as bytes; IMAPClient
  parses every response with a Python-level lexer, which dominates when fetching
  thousands of messages.
- One client family. ``imaplib``, ``poplib`` and ``smtplib`` share the same socket
  hooks, so one connection policy and one error mapping cover all three protocols.

The price is that ``imaplib`` does not quote arguments and returns raw response
tuples; this module quotes folder names (modified UTF-7) and parses responses itself.

Why one module of ~600 lines: it is the one IMAP session class and the imaplib
subclasses it needs; splitting its commands across files would split one object.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable
import base64
import datetime as dt
import functools
import imaplib
import logging
import re
import ssl
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, Self

from plugin.mail.account import ServerSettings
from plugin.mail.auth import (
    OAuthExchange,
    choose_mechanism,
    initial_response,
    require_tls,
)
from plugin.mail.connect import ConnectionPolicy, check_host, connect_addresses, ssl_context
from plugin.mail.errors import (
    NO_SERVER,
    AUTH_FAILED,
    FOLDER_MISSING,
    OAUTH_UNAVAILABLE,
    PROTOCOL,
    STARTTLS_MISSING,
    TLS_REQUIRED,
    MailError,
    classify,
)
from plugin.mail.imap_responses import (
    CAPS_RE,
    CODE_RE,
    DATE_RE,
    UID_RE,
    Folder,
    folder_roles,
    group_fetch_items,
    parse_flags,
    parse_internaldate,
    parse_list_item,
    parse_uid_set,
    sent_date,
    tagged_text,
    uid_set,
)
from plugin.mail.utf7 import quote, quote_folder

log = logging.getLogger("plugin.integrated_email.mail")

# imaplib refuses response lines over 1 MB; a UID SEARCH of a large mailbox is one line.
_MAX_LINE = 64 * 1024 * 1024
_IMAP_ERRORS = (imaplib.IMAP4.error, OSError, EOFError, ValueError)


class FolderStatus(NamedTuple):
    uidvalidity: int
    uidnext: int
    messages: int
    #: CONDSTORE (RFC 7162): grows with every flag change; None without CONDSTORE
    highestmodseq: int | None = None


class SelectedFolder(NamedTuple):
    name: str
    uidvalidity: int
    exists: int
    uidnext: int | None


class FetchedMessage(NamedTuple):
    uid: int
    flags: tuple[str, ...]
    internaldate: dt.datetime | None
    raw: bytes


# --- connections on checked addresses -------------------------------------------------


class _CheckedIMAP4(imaplib.IMAP4):
    def __init__(self, host: str, port: int, addresses: list[str], timeout: float) -> None:
        self._addresses = addresses
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None):
        return connect_addresses(self._addresses, self.port, timeout)

    def readline(self):
        line = self.file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise self.error("response line too long")
        return line


class _CheckedIMAP4_SSL(imaplib.IMAP4_SSL):
    def __init__(
        self, host: str, port: int, addresses: list[str], context: ssl.SSLContext, timeout: float
    ) -> None:
        self._addresses = addresses
        super().__init__(host, port, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout: float | None):
        sock = connect_addresses(self._addresses, self.port, timeout)
        try:
            # self.host is the name the user typed: the certificate must match it.
            return self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise

    readline = _CheckedIMAP4.readline


def _guarded(method: Callable[..., Any]):
    """Run a session method, turning library and socket errors into MailError."""

    @functools.wraps(method)
    def wrapper(self: Any, *args, **kwargs):
        if self._imap is None:
            raise MailError(PROTOCOL, detail="not connected")
        try:
            return method(self, *args, **kwargs)
        except MailError:
            raise
        except _IMAP_ERRORS as exc:
            log.debug("imap %s failed: %s", method.__name__, type(exc).__name__)
            raise classify(exc) from None

    return wrapper


class ImapSession:
    """A signed-in IMAP connection; use as a context manager.

    >>> with ImapSession(settings, policy) as imap:
    ...     folder = imap.select("INBOX")
    ...     for msg in imap.fetch(imap.search_uids_since(last_uid)): ...
    """

    def __init__(self, settings: ServerSettings, policy: ConnectionPolicy) -> None:
        self.settings = settings
        self.policy = policy
        self._imap: imaplib.IMAP4 | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.selected: SelectedFolder | None = None

    # --- life cycle ---

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(polite=exc_type is None)

    def open(self) -> None:
        """Connect, secure the connection as configured, and sign in."""
        s = self.settings
        if s is None or not (s.host or "").strip():  # a mailbox row without this server
            raise MailError(NO_SERVER, detail="no server")
        addresses = check_host(s.host, s.port, self.policy)
        try:
            self._imap = self._connect(addresses)
            self._login()
        except MailError:
            self.close(polite=False)
            raise
        except _IMAP_ERRORS as exc:
            self.close(polite=False)
            raise classify(exc) from None
        log.info("imap signed in to %s:%d (%s)", s.host, s.port, s.security)

    def _connect(self, addresses: list[str]) -> imaplib.IMAP4:
        s, timeout = self.settings, self.policy.timeout
        if s.security == "ssl":
            return _CheckedIMAP4_SSL(s.host, s.port, addresses, ssl_context(self.policy), timeout)
        imap = _CheckedIMAP4(s.host, s.port, addresses, timeout)
        self._imap = imap  # so that close() can clean up if STARTTLS fails
        if s.security == "starttls":
            if "STARTTLS" not in imap.capabilities:
                # Never fall back to a plaintext login.
                raise MailError(STARTTLS_MISSING)
            imap.starttls(ssl_context(self.policy))
        return imap

    def _login(self) -> None:
        imap, s = self._imap, self.settings
        assert imap is not None
        if s.uses_oauth:
            dat = self._oauth_login(imap)
            self._after_login(imap, dat)
            return
        if "LOGINDISABLED" in imap.capabilities:
            raise MailError(TLS_REQUIRED)
        try:
            if "AUTH=PLAIN" in imap.capabilities:
                # SASL PLAIN carries any UTF-8 user name and password unquoted.
                token = b"\0" + s.login.encode() + b"\0" + s.password.encode()
                if "SASL-IR" in imap.capabilities:
                    # RFC 4959: the credentials ride on the command, one round trip
                    # instead of two (a poll is a handful of round trips in all).
                    typ, dat = imap._simple_command("AUTHENTICATE", "PLAIN",
                                                    base64.b64encode(token))
                    if typ != "OK":
                        raise imaplib.IMAP4.error(tagged_text(dat).decode("ascii", "replace"))
                    imap.state = "AUTH"
                else:
                    _typ, dat = imap.authenticate("PLAIN", lambda _challenge: token)
            else:
                _typ, dat = imap.login(quote(s.login), s.password)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            text = str(exc).upper()
            raise MailError(
                TLS_REQUIRED if "PRIVACYREQUIRED" in text else AUTH_FAILED, detail="login refused"
            ) from None
        self._after_login(imap, dat)

    def _oauth_login(self, imap: imaplib.IMAP4) -> list:
        """AUTHENTICATE XOAUTH2 (or OAUTHBEARER) with the token, SASL-IR when offered."""
        s = self.settings
        require_tls(s)
        offered = [c[5:] for c in imap.capabilities if c.startswith("AUTH=")]
        mechanism = choose_mechanism(offered)
        if mechanism is None:
            raise MailError(OAUTH_UNAVAILABLE)
        exchange = OAuthExchange(mechanism, initial_response(mechanism, s),
                                 sent_first="SASL-IR" in imap.capabilities)
        # imaplib calls a bound-method "literal" for each "+" line and sends its answer.
        imap.literal = exchange.respond
        try:
            args = ((mechanism, base64.b64encode(exchange.first)) if exchange.sent_first
                    else (mechanism,))
            typ, dat = imap._simple_command("AUTHENTICATE", *args)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error:  # BAD: the server did not like the message at all
            raise exchange.error() from None
        finally:
            imap.literal = None
        if typ != "OK":
            raise exchange.error()
        imap.state = "AUTH"
        return dat

    def _after_login(self, imap: imaplib.IMAP4, dat: Any) -> None:
        match = CAPS_RE.search(tagged_text(dat))
        if match:  # saves a round trip; servers add MOVE, SPECIAL-USE... after login
            caps = tuple(match.group(1).decode("ascii", "replace").upper().split())
        else:
            _typ, dat = imap.capability()
            caps = tuple(tagged_text(dat).decode("ascii", "replace").upper().split())
        imap.capabilities = caps
        self.capabilities = frozenset(caps)

    def close(self, polite: bool = True) -> None:
        """Log out (when ``polite``) and close the socket; never raises."""
        imap, self._imap = self._imap, None
        self.selected = None
        if imap is None:
            return
        try:
            if polite and imap.state != "NONAUTH":
                imap.logout()
            else:
                imap.shutdown()
        except (imaplib.IMAP4.error, OSError) as exc:
            # Closing must not hide the error that got us here.
            log.debug("imap close failed: %s", type(exc).__name__)
            try:
                imap.shutdown()
            except OSError:
                log.debug("imap shutdown failed")

    def _check(self, typ: str, dat: Any, what: str, folder_command: bool = False) -> None:
        if typ == "OK":
            return
        text = tagged_text(dat).upper()
        # Not every server sends [NONEXISTENT] (Dovecot 2.3 does not for SELECT), and a NO
        # to SELECT/STATUS means the folder cannot be opened either way.
        missing = folder_command or b"NONEXISTENT" in text or b"TRYCREATE" in text
        raise MailError(FOLDER_MISSING if missing else PROTOCOL, detail=what)

    # --- folders ---

    @_guarded
    def list_folders(self) -> list[Folder]:
        """All folders, with their attributes (special-use ones when the server has them)."""
        imap = self._imap
        if {"SPECIAL-USE", "LIST-EXTENDED"} <= self.capabilities:
            typ, dat = imap._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
            typ, dat = imap._untagged_response(typ, dat, "LIST")
        else:
            typ, dat = imap.list('""', '"*"')
        self._check(typ, dat, "list")
        return [f for f in (parse_list_item(i) for i in dat if i is not None) if f]

    def find_folders(self) -> dict[str, str]:
        """Map roles ("inbox", "sent", "trash", "drafts", "junk", "archive") to folder names."""
        return folder_roles(self.list_folders())

    @_guarded
    def create_folder(self, name: str) -> bool:
        """Create a folder; False when it already exists."""
        typ, dat = self._imap.create(quote_folder(name))
        if typ != "OK" and b"ALREADYEXISTS" in tagged_text(dat).upper():
            return False
        self._check(typ, dat, "create")
        return True

    @_guarded
    def status(self, folder: str) -> FolderStatus:
        """UIDVALIDITY, UIDNEXT, message count (and HIGHESTMODSEQ where the server
        has CONDSTORE, so flag changes are seen without a listing) in one round trip."""
        items = "UIDVALIDITY UIDNEXT MESSAGES"
        if "CONDSTORE" in self.capabilities:
            items += " HIGHESTMODSEQ"
        typ, dat = self._imap.status(quote_folder(folder), f"({items})")
        self._check(typ, dat, "status", folder_command=True)
        text = b" ".join(i[0] if isinstance(i, tuple) else i for i in dat if i)
        values = dict(re.findall(rb"(UIDVALIDITY|UIDNEXT|MESSAGES|HIGHESTMODSEQ) (\d+)",
                                 text[text.rfind(b"(") :]))
        modseq = values.get(b"HIGHESTMODSEQ")
        try:
            return FolderStatus(
                int(values[b"UIDVALIDITY"]), int(values[b"UIDNEXT"]), int(values[b"MESSAGES"]),
                int(modseq) if modseq is not None else None,
            )
        except KeyError:
            raise MailError(PROTOCOL, detail="status incomplete") from None

    @_guarded
    def select(self, folder: str, readonly: bool = True) -> SelectedFolder:
        """Open a folder (EXAMINE when ``readonly``, so nothing can be marked read)."""
        imap = self._imap
        typ, dat = imap.select(quote_folder(folder), readonly)
        self._check(typ, dat, "select", folder_command=True)
        untagged = imap.untagged_responses

        def number(key: str) -> int | None:
            values = untagged.get(key) or [None]
            try:
                return int(values[-1])
            except (TypeError, ValueError):
                return None

        uidvalidity = number("UIDVALIDITY")
        if uidvalidity is None:
            raise MailError(PROTOCOL, detail="no UIDVALIDITY")
        self.selected = SelectedFolder(
            folder, uidvalidity, number("EXISTS") or 0, number("UIDNEXT")
        )
        return self.selected

    # --- searching and fetching (need a selected folder) ---

    def _uid_search(self, *criteria: str) -> list[int]:
        typ, dat = self._imap.uid("SEARCH", *criteria)
        self._check(typ, dat, "search")
        uids: list[int] = []
        for line in dat:
            if line:
                uids.extend(int(x) for x in line.split())
        return sorted(set(uids))

    @_guarded
    def search_uids_since(self, uid: int) -> list[int]:
        """UIDs greater than ``uid``, ascending."""
        # "n:*" always matches the highest UID even when it is below n, so filter.
        return [u for u in self._uid_search("UID", f"{uid + 1}:*") if u > uid]

    @_guarded
    def search_uids_since_date(self, day: dt.date) -> list[int]:
        """UIDs of messages received on or after ``day`` (server INTERNALDATE), ascending."""
        return self._uid_search("SINCE", _imap_date(day))

    @_guarded
    def newest_uids(self, day: dt.date | None, limit: int | None) -> list[int]:
        """UIDs of the ``limit`` newest messages by date, newest first, among those
        received on or after ``day`` (INTERNALDATE; None: all); ``limit`` None: all.

        "Newest" is the sent date (the Date header, else INTERNALDATE: RFC 5256's
        DATE), not the delivery order: a week-old newsletter delivered last must not
        push out today's mail. Only when more than ``limit`` match: with SORT the
        server orders them; without it their Date headers are fetched and compared.
        """
        criteria = ("SINCE", _imap_date(day)) if day else ("ALL",)
        uids = self._uid_search(*criteria)
        if limit is None or len(uids) <= limit:
            return uids[::-1]  # room for all: no order to ask for
        if "SORT" in self.capabilities:
            typ, dat = self._imap.uid("SORT", "(REVERSE DATE)", "UTF-8", *criteria)
            self._check(typ, dat, "sort")
            ordered = list(dict.fromkeys(int(x) for line in dat if line for x in line.split()))
        else:
            ordered = self._by_sent_date(uids)
        return ordered[:limit]

    def _by_sent_date(self, uids: list[int], batch: int = 1000) -> list[int]:
        """``uids`` newest first by Date header (else INTERNALDATE), then by UID."""
        keyed: list[tuple[float, int]] = []
        for start in range(0, len(uids), batch):
            part = uids[start:start + batch]
            typ, dat = self._imap.uid("FETCH", uid_set(part),
                                      "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (DATE)])")
            self._check(typ, dat, "fetch dates")
            for meta, body in group_fetch_items(dat):
                match = UID_RE.search(meta)
                if not match:
                    continue
                arrived = DATE_RE.search(meta)
                when = sent_date(body) or (parse_internaldate(arrived.group(1))
                                           if arrived else None)
                keyed.append((when.timestamp() if when else 0.0, int(match.group(1))))
        return [uid for _when, uid in sorted(set(keyed), reverse=True)]

    @_guarded
    def uid_list(self) -> list[int]:
        """Every UID in the selected folder, ascending."""
        return self._uid_search("ALL")

    def fetch(self, uids: list[int], batch: int = 500) -> Iterator[FetchedMessage]:
        """Yield (uid, flags, internaldate, raw) for ``uids`` without marking them read.

        Uses ``BODY.PEEK[]``; a batch is held in memory at once, so lower ``batch``
        for mailboxes with very large messages.
        """
        ordered = sorted(set(uids))
        for start in range(0, len(ordered), batch):
            yield from self._fetch_batch(ordered[start : start + batch])

    @_guarded
    def _fetch_batch(self, uids: list[int]) -> list[FetchedMessage]:
        typ, dat = self._imap.uid("FETCH", uid_set(uids), "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        self._check(typ, dat, "fetch")
        wanted = set(uids)
        out: list[FetchedMessage] = []
        for meta, body in group_fetch_items(dat):
            match = UID_RE.search(meta)
            if body is None or not match or int(match.group(1)) not in wanted:
                continue  # flag updates from other clients arrive in the same stream
            date = DATE_RE.search(meta)
            out.append(
                FetchedMessage(
                    int(match.group(1)),
                    parse_flags(meta),
                    parse_internaldate(date.group(1)) if date else None,
                    body,
                )
            )
        return out

    @_guarded
    def fetch_flags(self, uids: list[int]) -> dict[int, tuple[str, ...]]:
        """Current flags per UID."""
        if not uids:
            return {}
        typ, dat = self._imap.uid("FETCH", uid_set(uids), "(UID FLAGS)")
        self._check(typ, dat, "fetch flags")
        out: dict[int, tuple[str, ...]] = {}
        for meta, _body in group_fetch_items(dat):
            match = UID_RE.search(meta)
            if match:
                out[int(match.group(1))] = parse_flags(meta)
        return out

    @_guarded
    def store_flags(
        self, uids: list[int], add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> None:
        """Add and/or remove flags (e.g. ``add=["\\\\Seen"]``) on UIDs."""
        if not uids:
            return
        for sign, flags in (("+", tuple(add)), ("-", tuple(remove))):
            if flags:
                typ, dat = self._imap.uid(
                    "STORE", uid_set(uids), sign + "FLAGS.SILENT", f"({' '.join(flags)})"
                )
                self._check(typ, dat, "store")

    @_guarded
    def append(
        self, folder: str, raw: bytes, flags: Iterable[str] = (), date: dt.datetime | None = None
    ) -> int | None:
        """Store a message in ``folder``; returns its UID when the server says (UIDPLUS)."""
        flag_text = f"({' '.join(flags)})" if flags else None
        typ, dat = self._imap.append(quote_folder(folder), flag_text, date, raw)
        self._check(typ, dat, "append")
        for code, args in CODE_RE.findall(tagged_text(dat)):
            if code == b"APPENDUID":
                return int(args.split()[1])
        return None

    @_guarded
    def search_message_ids(self, message_ids: Iterable[str]) -> set[str]:
        """Which of ``message_ids`` (without angle brackets) the selected folder holds
        (``UID SEARCH HEADER Message-ID``, one search each)."""
        found: set[str] = set()
        for mid in message_ids:
            if not mid or any(c in mid for c in '"\\\r\n') or not mid.isascii():
                continue
            typ, dat = self._imap.uid("SEARCH", "HEADER", "Message-ID", quote(f"<{mid}>"))
            self._check(typ, dat, "search")
            if any(line and line.split() for line in dat):
                found.add(mid)
        return found

    def can_multiappend(self) -> bool:
        """MULTIAPPEND (RFC 3502) with LITERAL+ (RFC 7888): many messages, one answer."""
        return "MULTIAPPEND" in self.capabilities and "LITERAL+" in self.capabilities

    @_guarded
    def multiappend_start(self, folder: str, raws: Sequence[bytes],
                          flags: Iterable[str] = ()) -> bytes:
        """Send one APPEND of all ``raws`` without waiting; returns the tag to pass to
        :meth:`multiappend_finish` (no other command may go out in between). Needs
        :meth:`can_multiappend`."""
        flag_text = f"({' '.join(flags)}) ".encode("ascii") if flags else b""
        tag = self._imap._new_tag()
        parts = [tag, b" APPEND ", quote_folder(folder).encode("ascii")]
        for raw in raws:
            parts += [b" ", flag_text, b"{%d+}\r\n" % len(raw), raw]
        parts.append(b"\r\n")
        self._imap.send(b"".join(parts))
        return tag

    @_guarded
    def multiappend_finish(self, tag: bytes) -> None:
        """Read the answer to :meth:`multiappend_start`; MailError when refused."""
        typ, dat = self._imap._command_complete("APPEND", tag)
        self._check(typ, dat, "append")

    def append_many(self, folder: str, raws: Sequence[bytes], flags: Iterable[str] = ()) -> None:
        """Store all ``raws`` in ``folder``: one MULTIAPPEND when offered, else APPENDs."""
        if len(raws) > 1 and self.can_multiappend():
            self.multiappend_finish(self.multiappend_start(folder, raws, flags))
            return
        for raw in raws:
            self.append(folder, raw, flags=flags)

    def _copyuid(self, dat: Any) -> dict[int, int]:
        texts = [tagged_text(dat)]
        texts += [
            b"[COPYUID %s]" % v
            for v in self._imap.untagged_responses.pop("COPYUID", [])
            if isinstance(v, bytes)
        ]
        for text in texts:
            for code, args in CODE_RE.findall(text):
                if code == b"COPYUID":
                    _validity, src, dst = args.split()
                    return dict(zip(parse_uid_set(src), parse_uid_set(dst), strict=False))
        return {}

    @_guarded
    def copy(self, uids: list[int], folder: str) -> dict[int, int]:
        """Copy UIDs to ``folder``; returns old -> new UID when known (UIDPLUS)."""
        if not uids:
            return {}
        typ, dat = self._imap.uid("COPY", uid_set(uids), quote_folder(folder))
        self._check(typ, dat, "copy")
        return self._copyuid(dat)

    @_guarded
    def move(self, uids: list[int], folder: str) -> dict[int, int]:
        """Move UIDs to ``folder`` (MOVE, else COPY + \\Deleted + expunge of those UIDs)."""
        if not uids:
            return {}
        if "MOVE" in self.capabilities:
            typ, dat = self._imap.uid("MOVE", uid_set(uids), quote_folder(folder))
            self._check(typ, dat, "move")
            return self._copyuid(dat)
        mapping = self.copy(uids, folder)
        self._remove(uids)
        return mapping

    def _remove(self, uids: list[int]) -> None:
        typ, dat = self._imap.uid("STORE", uid_set(uids), "+FLAGS.SILENT", "(\\Deleted)")
        self._check(typ, dat, "store deleted")
        if "UIDPLUS" in self.capabilities:
            typ, dat = self._imap.uid("EXPUNGE", uid_set(uids))
        else:
            # Without UIDPLUS only a full EXPUNGE exists; it also removes messages the
            # user had already marked deleted, which is what their own client would do.
            typ, dat = self._imap.expunge()
        self._check(typ, dat, "expunge")

    @_guarded
    def delete(self, uids: list[int], trash_folder: str | None = None) -> None:
        """Move UIDs to the trash folder, or remove them for good when there is none
        (or when the selected folder is the trash)."""
        if not uids:
            return
        in_trash = self.selected is not None and self.selected.name == trash_folder
        if trash_folder and not in_trash:
            self.move(uids, trash_folder)
        else:
            self._remove(uids)

    @_guarded
    def expunge(self) -> None:
        """Remove every message flagged \\Deleted in the selected folder."""
        typ, dat = self._imap.expunge()
        self._check(typ, dat, "expunge")

    @_guarded
    def add_labels(self, uids: list[int], labels: list[str]) -> None:
        """Gmail (X-GM-EXT-1): add labels to UIDs of the selected folder."""
        if not uids or not labels:
            return
        names = " ".join(quote_folder(label) for label in labels)
        typ, dat = self._imap.uid("STORE", uid_set(uids), "+X-GM-LABELS", f"({names})")
        self._check(typ, dat, "store")

    @_guarded
    def noop(self) -> None:
        """Keep the connection alive and collect pending updates."""
        typ, dat = self._imap.noop()
        self._check(typ, dat, "noop")


#: IMAP month names are fixed English; strftime("%b") would follow the locale
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _imap_date(day: dt.date) -> str:
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"

