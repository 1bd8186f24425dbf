"""Delivery through the user's own servers: SMTP out, the copy in Sent, the record notes.

What happens to one outbox row once it is in ``sending``:

1. SMTP through the mailbox's outgoing settings (one connection reused per batch).
2. ``sent`` committed; the copy recorded in the add-on's store (a ``Message`` with
   origin "ats", the user's Sent view and the records' timelines), ``RecordLink``
   rows and a host note on every linked record (idempotent keys throughout).
3. The copy saved in the IMAP Sent folder with ``\\Seen`` (APPEND; MULTIAPPEND for a
   batch), unless the provider files sent mail itself (Gmail) or it is already
   there; then ``filed``. POP3 and outbound-only mailboxes keep the add-on's copy
   as their Sent view and are ``filed`` at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets as pysecrets
import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from plugin.blobs import blob_store
from plugin.host import RecordRef
from plugin.mail.errors import (
    AUTH_FAILED,
    AUTH_UNAVAILABLE,
    HOST_NOT_ALLOWED,
    MESSAGE_REJECTED,
    MESSAGE_UNSAFE,
    RECIPIENT_REFUSED,
    SENDER_REFUSED,
    STARTTLS_MISSING,
    TLS_CERTIFICATE,
    TLS_REQUIRED,
    TOO_LARGE,
    MailError,
)
from plugin.mail.imap import ImapSession
from plugin.mail.parse import message_key_for, parse_message
from plugin.mail.smtp import SmtpSession
from plugin.setup.credentials import incoming_settings, outgoing_settings
from plugin.models import Attachment as StoredAttachment
from plugin.models import Mailbox, Message, RecordLink
from plugin.models.outbound import OutboundMessage
from plugin.mail import build as compose
from plugin.fetching.store import _insert

log = logging.getLogger("plugin.integrated_email.send")

#: hosts whose providers put mail sent through SMTP into Sent themselves
SELF_FILING_HOSTS = ("gmail.com", "googlemail.com")
#: failures no retry can fix: the row fails at once with the error's sentence
PERMANENT_KINDS = frozenset({AUTH_FAILED, AUTH_UNAVAILABLE, HOST_NOT_ALLOWED, TLS_CERTIFICATE,
                             STARTTLS_MISSING, TLS_REQUIRED, SENDER_REFUSED, RECIPIENT_REFUSED,
                             MESSAGE_REJECTED, TOO_LARGE, MESSAGE_UNSAFE})
#: waits before the 2nd, 3rd, ... attempt after a temporary failure
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15),
           timedelta(hours=1))
MAX_ATTEMPTS = len(BACKOFF) + 1
APPEND_BATCH = 50
UNKNOWN_SENTENCE = ("We lost track of this message while it was being sent (the sending "
                    "process stopped). Check your Sent folder or ask the recipient; send it "
                    "again only if it did not arrive.")


#: taken around this process's own write transactions on the outbox, so a bulk
#: runner and its filer thread queue for SQLite's write lock without its busy sleeps
write_lock = threading.RLock()


def now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ who holds what

_worker: tuple[int, str] | None = None


def worker_id() -> str:
    """``host:pid:token`` of this process (a new token after fork)."""
    global _worker
    pid = os.getpid()
    if _worker is None or _worker[0] != pid:
        _worker = (pid, f"{socket.gethostname()[:40]}:{pid}:{pysecrets.token_hex(4)}")
    return _worker[1]


def owner_gone(owner: str | None) -> bool:
    """True when ``owner`` is a process on this machine that no longer runs (it crashed)."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != socket.gethostname()[:40] or not pid_text.isdigit():
        return False  # another machine: only its lease expiry tells
    if owner == worker_id():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # our pid, another token: an earlier process that had this pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lease_length(addon) -> timedelta:
    return timedelta(seconds=max(120.0, 6 * float(addon.app.config["IE_MAIL_TIMEOUT"])))


# ------------------------------------------------------------------ server settings


def provider_files_sent(mb: Mailbox) -> bool:
    """Whether the provider saves SMTP-sent mail in Sent by itself (then we must not)."""
    hosts = [(mb.out_host or "").lower(), (mb.in_host or "").lower(), mb.email.lower()]
    return any(h == d or h.endswith("." + d) or h.endswith("@" + d)
               for h in hosts for d in SELF_FILING_HOSTS)


def smtp_session(addon, mb: Mailbox, policy) -> SmtpSession:
    domain = mb.email.rpartition("@")[2] or None
    return SmtpSession(outgoing_settings(mb, addon.secrets), policy, use_auth=mb.out_auth,
                       local_hostname=domain)


# ------------------------------------------------------------------ the message


def attachments_of(addon, row: OutboundMessage) -> list[compose.Attachment]:
    items = json.loads(row.attachments or "[]")
    if not items:
        return []
    blobs = blob_store(addon.app.config)
    return [compose.Attachment(a["name"], a["type"], blobs.get(a["sha256"])) for a in items]


def message_for(addon, row: OutboundMessage):
    """The EmailMessage of a row; the same row always gives the same bytes."""
    return compose.build_message(
        from_name=row.from_name, from_addr=row.from_addr,
        to=compose.addresses_from_json(row.to_addrs),
        cc=compose.addresses_from_json(row.cc_addrs), subject=row.subject,
        body_text=row.body_text, body_html=row.body_html, message_id=row.message_id_header,
        date=row.date or now(), in_reply_to=row.in_reply_to, references=row.references,
        attachments=attachments_of(addon, row))


def bulk_template(row) -> compose.PreparedMessage | None:
    """The prepared builder for a bulk row of the common shape (text and optional
    HTML, one recipient, ASCII addresses); None for anything else."""
    if row.bulk_job_id is None or row.attachments not in (None, "", "[]") or \
            row.cc_addrs not in (None, "", "[]") or row.in_reply_to or row.references or \
            not row.from_addr.isascii():
        return None
    to = compose.addresses_from_json(row.to_addrs)
    if len(to) != 1 or not to[0][1].isascii():
        return None
    key = (row.from_name or "", row.from_addr)
    prepared = _prepared.get(key)
    if prepared is None:
        if len(_prepared) > 64:
            _prepared.clear()
        prepared = _prepared[key] = compose.PreparedMessage(*key)
    return prepared


_prepared: dict[tuple[str, str], compose.PreparedMessage] = {}


def raw_for(addon, row, prepared: compose.PreparedMessage | None = None) -> bytes:
    """The bytes of a row as they are sent (and saved in Sent); the same row always
    gives the same bytes. Bulk rows of the common shape skip ``EmailMessage``
    (:class:`compose.PreparedMessage`, same bytes, a fiftieth of the time)."""
    prepared = prepared or bulk_template(row)
    if prepared is None:
        return compose.flatten(message_for(addon, row))
    return prepared.build(to=compose.addresses_from_json(row.to_addrs), subject=row.subject,
                          body_text=row.body_text, body_html=row.body_html,
                          message_id=row.message_id_header, date=row.date or now())


def envelope_recipients(row: OutboundMessage) -> list[str]:
    seen: dict[str, None] = {}
    for col in (row.to_addrs, row.cc_addrs, row.bcc_addrs):
        for _name, addr in compose.addresses_from_json(col):
            seen.setdefault(addr, None)
    return list(seen)


# ------------------------------------------------------------------ failures


@dataclass
class Failure:
    """What a MailError means for a row: retry later, or fail with a sentence."""

    kind: str
    sentence: str
    retry: bool


def judge(exc: MailError, attempts: int) -> Failure:
    temporary = exc.code is not None and 400 <= exc.code < 500
    if exc.kind in PERMANENT_KINDS and not temporary:
        return Failure(exc.kind, exc.sentence, retry=False)
    if attempts >= MAX_ATTEMPTS:
        return Failure(exc.kind, exc.sentence + " We tried several times and gave up; "
                       "send it again when the server works.", retry=False)
    return Failure(exc.kind, exc.sentence, retry=True)


def backoff(attempts: int) -> timedelta:
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


# ------------------------------------------------------------------ the Sent folder


class SentFolder:
    """The IMAP Sent folder of a mailbox, on one connection (use as a context manager)."""

    def __init__(self, addon, mb: Mailbox, policy) -> None:
        # The Sent folder is an IMAP folder; POP3 mailboxes keep sent copies here only.
        self.settings = incoming_settings(mb, addon.secrets) if mb.protocol == "imap" else None
        self.policy = policy
        self.imap: ImapSession | None = None
        self.name: str | None = None

    def __enter__(self) -> SentFolder:
        self.imap = ImapSession(self.settings, self.policy)
        self.imap.open()
        roles = self.imap.find_folders()
        self.name = roles.get("sent")
        if self.name is None:
            self.name = "Sent"
            self.imap.create_folder(self.name)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.imap is not None:
            self.imap.close(polite=exc_type is None)

    def contains(self, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` are in Sent (``UID SEARCH HEADER Message-ID``)."""
        self.imap.select(self.name, readonly=True)
        return self.imap.search_message_ids(message_ids)

    def append_many(self, raws: Sequence[bytes]) -> None:
        """APPEND each message with \\Seen; one MULTIAPPEND command per batch when offered."""
        for start in range(0, len(raws), APPEND_BATCH):
            self.imap.append_many(self.name, raws[start:start + APPEND_BATCH], flags=("\\Seen",))

    def append_start(self, raws: Sequence[bytes]) -> bytes | None:
        """Start saving ``raws`` (MULTIAPPEND, answer read by :meth:`append_finish`);
        None when the server cannot, after saving them one by one."""
        if len(raws) > 1 and self.imap.can_multiappend():
            return self.imap.multiappend_start(self.name, raws, flags=("\\Seen",))
        self.append_many(raws)
        return None

    def append_finish(self, tag: bytes | None) -> None:
        if tag is not None:
            self.imap.multiappend_finish(tag)


# ------------------------------------------------------------------ recording


def note_key(message_id: str, ref: RecordRef) -> str:
    digest = hashlib.sha256(f"{message_id}|{ref}".encode()).hexdigest()[:40]
    return f"ie-sent:{digest}"


def note_text(row: OutboundMessage, sender_name: str) -> str:
    to = ", ".join(a for _n, a in compose.addresses_from_json(row.to_addrs))
    subject = row.subject or "(no subject)"
    return f"Email sent by {sender_name} to {to}: \u201c{subject}\u201d"


def refs_of(row: OutboundMessage) -> list[RecordRef]:
    out = []
    for text in (row.record_refs or "").split():
        try:
            out.append(RecordRef.parse(text))
        except ValueError:
            continue
    return out


def keeps_raw_copy(row) -> bool:  # an OutboundMessage or its namespace
    """Whether the sent copy's raw bytes go to the blob store.

    Raw bytes are only ever read back for attachments and inline images; a copy
    without attachments is shown from its text and HTML (in its row), filed from its
    outbox row (:func:`raw_for` rebuilds the same bytes) and kept whole in the user's
    Sent folder. So it gets no blob: one file less per recipient of a bulk email.
    Its ``blob_sha256`` still names the bytes that were sent."""
    return row.attachments not in (None, "", "[]")


def copy_digest(addon, row, raw: bytes) -> str:
    """The sha256 of a sent copy, storing the bytes when :func:`keeps_raw_copy`."""
    if keeps_raw_copy(row):
        return blob_store(addon.app.config).put(raw)
    return hashlib.sha256(raw).hexdigest()


def record_sent(addon, rows: Sequence[OutboundMessage], raws: dict[int, bytes],
                sender_name: str, shas: dict[int, str] | None = None) -> None:
    """Store the copies, link them to their records and write the host notes.

    ``shas``: digests the caller already made (:func:`copy_digest`, by row id). One
    transaction, a few statements for the whole batch. Idempotent: a second call for
    the same rows changes nothing (unique keys)."""
    if not rows:
        return
    msg_table, link_table, att_table = (Message.__table__, RecordLink.__table__,
                                        StoredAttachment.__table__)
    out_table = OutboundMessage.__table__
    shas = dict(shas or {})
    # Bytes first, outside the transaction: a crash leaves at worst an orphan blob.
    for row in rows:
        if raws.get(row.id) is None:
            raws[row.id] = raw_for(addon, row)
        if row.id not in shas:
            shas[row.id] = copy_digest(addon, row, raws[row.id])
    stamp = now()
    values = []
    for row in rows:
        to = compose.addresses_from_json(row.to_addrs)
        values.append({
            "mailbox_id": row.mailbox_id, "message_key": message_key_for(row.message_id_header),
            "message_id_header": row.message_id_header, "in_reply_to": row.in_reply_to,
            "references": row.references, "subject": row.subject,
            "from_addr": row.from_addr, "from_name": row.from_name,
            "to_addrs": json.dumps([[n, a] for n, a in to], ensure_ascii=False),
            "cc_addrs": row.cc_addrs, "date": row.date or stamp,
            "snippet": " ".join((row.body_text or "").split())[:200],
            "body_text": row.body_text, "body_html": row.body_html,
            "has_attachments": row.attachments not in (None, "", "[]"),
            "size": len(raws[row.id]), "blob_sha256": shas[row.id], "folder_role": "sent",
            "direction": "out", "origin": "ats", "seen": True, "deleted": False,
            "created_at": stamp})
    with write_lock, addon.engine.connect() as conn:
        from plugin.fetching.store import begin_write
        begin_write(conn)
        conn.execute(_insert(conn, msg_table), values)
        ids: dict[tuple[int, str], int] = {}
        by_mailbox: dict[int, list[str]] = {}
        for v in values:
            by_mailbox.setdefault(v["mailbox_id"], []).append(v["message_key"])
        for mailbox_id, keys in by_mailbox.items():
            for start in range(0, len(keys), 500):
                for mid, key in conn.execute(select(msg_table.c.id, msg_table.c.message_key)
                                             .where(msg_table.c.mailbox_id == mailbox_id,
                                                    msg_table.c.message_key.in_(
                                                        keys[start:start + 500]))):
                    ids[(mailbox_id, key)] = mid
        links, stored = [], []
        for row, v in zip(rows, values, strict=True):
            message_id = ids[(row.mailbox_id, v["message_key"])]
            if v["has_attachments"]:
                parsed = parse_message(raws[row.id])
                have = conn.execute(select(att_table.c.id).where(
                    att_table.c.message_id == message_id)).first()
                if have is None and parsed.attachments:
                    conn.execute(att_table.insert(), [{
                        "message_id": message_id, "part_index": a.part_index,
                        "filename": a.filename, "content_type": a.content_type,
                        "size": a.size, "content_id": a.content_id, "is_inline": a.inline}
                        for a in parsed.attachments])
            links += [{"message_id": message_id, "record_kind": ref.kind, "record_id": ref.id,
                       "how": "sent", "linked_by": row.user_id, "created_at": stamp}
                      for ref in refs_of(row)]
            stored.append({"row_id": row.id, "stored": message_id})
            row.stored_message_id = message_id
        if links:
            conn.execute(_insert(conn, link_table), links)
        conn.execute(update(out_table).where(out_table.c.id == bindparam("row_id"))
                     .values(stored_message_id=bindparam("stored")), stored)
        conn.commit()
    # Host notes after our commit: the host's add_note is idempotent by key.
    for row in rows:
        text = note_text(row, sender_name)
        for ref in refs_of(row):
            try:
                addon.host.add_note(ref, row.user_id, text, note_key(row.message_id_header, ref))
            except Exception:
                log.exception("host note for outbound %s failed", row.id)


def sender_name(addon, user_id: str, fallback: str = "") -> str:
    user = addon.host.get_user(user_id)
    return user.name if user else fallback


def file_rows(addon, session: Session, mb: Mailbox, rows: Sequence[OutboundMessage],
              policy, raws: dict[int, bytes] | None = None,
              check_first: bool = True) -> None:
    """Record ``sent`` rows and put their copies in Sent; mark them ``filed``.

    When IMAP fails the rows stay ``sent`` (recorded) and the send job tries again."""
    raws = dict(raws or {})
    rows = [r for r in rows if r.state == "sent"]
    if not rows:
        return
    for r in rows:
        if r.id not in raws:
            raws[r.id] = raw_for(addon, r)
    record_sent(addon, [r for r in rows if r.stored_message_id is None], raws,
                sender_name(addon, rows[0].user_id, mb.account_name))
    in_sent = True
    if mb.protocol == "imap" and not provider_files_sent(mb):
        try:
            with SentFolder(addon, mb, policy) as sent:
                todo = rows
                if check_first:
                    there = sent.contains([r.message_id_header for r in rows])
                    todo = [r for r in rows if r.message_id_header not in there]
                sent.append_many([raws[r.id] for r in todo])
        except MailError as exc:
            log.warning("saving %d sent messages of mailbox %s failed: %s", len(rows), mb.id,
                        exc.kind)
            in_sent = False
    elif mb.protocol == "imap":
        in_sent = True  # the provider files it
    if not in_sent:
        return
    stamp = now()
    ids = [r.id for r in rows]
    session.execute(update(OutboundMessage).where(
        OutboundMessage.id.in_(ids), OutboundMessage.state == "sent").values(
        state="filed", filed_at=stamp, in_sent_folder=mb.protocol == "imap"),
        execution_options={"synchronize_session": False})
    session.commit()
    for r in rows:
        r.state, r.filed_at = "filed", stamp


def prove_sent(addon, mb: Mailbox, policy, message_ids: Iterable[str]) -> set[str]:
    """Which Message-IDs the Sent folder proves went out (empty without IMAP)."""
    ids = [m for m in message_ids if m]
    if not ids or mb.protocol != "imap":
        return set()
    try:
        with SentFolder(addon, mb, policy) as sent:
            return sent.contains(ids)
    except MailError as exc:
        log.warning("checking Sent of mailbox %s failed: %s", mb.id, exc.kind)
        return set()
