"""Store fetched messages: parse, write the raw bytes, insert rows, commit per batch.

The unique keys do the deduplication, so importing is idempotent and safe when two
syncs of one mailbox run at once: every insert is ``INSERT .. ON CONFLICT DO
NOTHING`` (PostgreSQL and SQLite alike), and a message already present by its
per-mailbox key (Message-ID or content hash) only gets a new location row — the
copy of a sent message in INBOX and in Sent is one message.

A batch is one transaction. When it fails, its messages are retried one per
transaction; one that still fails goes to the quarantine with its raw bytes (in the
blob store) and the error, and the sync goes on. Errors that say the *database* is
unavailable (``OperationalError``: locked, connection lost) are not the message's
fault and are raised instead, so the sync stops and retries later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, Insert, Table, and_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import InterfaceError, OperationalError

from plugin.blobs import BlobStoreBase
from plugin.mail.parse import ParsedMessage, content_digest, parse_message, variant_key
from plugin.models import Attachment, Mailbox, Message, MessageLocation, Quarantine
from plugin.testing.faults import crashpoint

log = logging.getLogger("plugin.integrated_email.store")

_MSG = Message.__table__
_LOC = MessageLocation.__table__
_ATT = Attachment.__table__
_QUA = Quarantine.__table__
_MBX = Mailbox.__table__

#: transient database trouble: stop the sync, do not blame the message
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)


@dataclass(slots=True)
class FetchedItem:
    """One message as fetched, with where it was found."""

    raw: bytes
    folder: str
    #: "inbox", "sent", ... (decides how lists show it)
    role: str = "inbox"
    uidvalidity: int | None = None
    uid: int | None = None
    uidl: str | None = None
    internaldate: datetime | None = None
    parsed: ParsedMessage | None = None


@dataclass(slots=True)
class BatchResult:
    """What storing a batch did."""

    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    #: ids of the messages this batch created (for on-batch-stored hooks)
    new_message_ids: list[int] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        """Count ``other`` into these totals."""
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.new_message_ids.extend(other.new_message_ids)


def _insert(conn: Connection, table: Table) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING in the connection's dialect."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing()


def insert_new(conn: Connection, table: Table, rows: Sequence[dict]) -> None:
    """Insert ``rows``, skipping any whose unique key is already stored (idempotent)."""
    conn.execute(_insert(conn, table), list(rows))


def begin_write(conn: Connection) -> None:
    """Start a write transaction. On SQLite take the write lock up front
    (BEGIN IMMEDIATE): a deferred transaction that read first can fail with
    'database is locked' at its first write when another writer got in between."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def parse_items(items: Sequence[FetchedItem]) -> None:
    """Parse each item's raw bytes once, before the write transaction."""
    for item in items:
        if item.parsed is None:
            item.parsed = parse_message(item.raw, item.internaldate)


class MessageStore:
    """Writes batches of one mailbox."""

    def __init__(self, engine: Engine, blobs: BlobStoreBase, mailbox_id: int,
                 owner_email: str = "") -> None:
        self.engine = engine
        self.blobs = blobs
        self.mailbox_id = mailbox_id
        self.owner = (owner_email or "").strip().lower()

    # ---------------------------------------------------------------- public
    def store_batch(self, items: Sequence[FetchedItem],
                    in_transaction: Callable[[Connection], None] | None = None) -> BatchResult:
        """Store ``items`` in one transaction (then one by one if that fails).

        ``in_transaction(conn)`` runs inside the same transaction just before commit
        (the sync advances its folder cursor there, so cursor and rows commit together).
        """
        if not items:
            if in_transaction is not None:
                with self.engine.connect() as conn:
                    begin_write(conn)
                    in_transaction(conn)
                    conn.commit()
            return BatchResult()
        parse_items(items)
        if not self.blobs.transactional:  # files first: a crash leaves an orphan at worst
            for item in items:
                self.blobs.put(item.raw, item.parsed.sha256)
            if getattr(self.blobs, "fsync", False):
                self.blobs.sync()  # one round of fsyncs per batch, before its rows commit
        crashpoint("after_store")
        try:
            with self.engine.connect() as conn:
                begin_write(conn)
                if self.blobs.transactional:  # bytes and rows commit together
                    self.blobs.put_many([(i.raw, i.parsed.sha256) for i in items], conn)
                result = self._insert_items(conn, items)
                if in_transaction is not None:
                    in_transaction(conn)
                crashpoint("before_commit")
                conn.commit()
            return result
        except TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:  # retry one by one to find the culprit
            log.warning("batch of %d for mailbox %s failed (%s); retrying one by one",
                        len(items), self.mailbox_id, type(exc).__name__)
        total = BatchResult()
        for item in items:
            total.add(self._store_one(item))
        if in_transaction is not None:
            with self.engine.connect() as conn:
                begin_write(conn)
                in_transaction(conn)
                conn.commit()
        return total

    # -------------------------------------------------------------- internals
    def _store_one(self, item: FetchedItem) -> BatchResult:
        try:
            with self.engine.connect() as conn:
                begin_write(conn)
                if self.blobs.transactional:
                    self.blobs.put(item.raw, item.parsed.sha256, conn)
                result = self._insert_items(conn, [item])
                conn.commit()
            return result
        except TRANSIENT_DB_ERRORS:
            raise
        except Exception as exc:  # this message is the poison
            self._quarantine(item, exc)
            return BatchResult(quarantined=1)

    def _quarantine(self, item: FetchedItem, exc: BaseException) -> None:
        sha = self.blobs.put(item.raw, item.parsed.sha256 if item.parsed else None)
        error = f"{type(exc).__name__}: {str(exc)[:2000]}"
        log.error("quarantined a message of mailbox %s (%s)", self.mailbox_id,
                  type(exc).__name__)
        with self.engine.connect() as conn:
            begin_write(conn)
            where = [_QUA.c.mailbox_id == self.mailbox_id, _QUA.c.blob_sha256 == sha]
            if item.uidl is not None:
                where.append(_QUA.c.uidl == item.uidl)
            else:
                where += [_QUA.c.folder == item.folder, _QUA.c.uidvalidity == item.uidvalidity,
                          _QUA.c.uid == item.uid]
            seen = conn.execute(select(_QUA.c.id).where(and_(*where))).first()
            if seen is None:  # a restart re-fetching it does not quarantine it twice
                conn.execute(_QUA.insert().values(
                    mailbox_id=self.mailbox_id, folder=item.folder,
                    uidvalidity=item.uidvalidity, uid=item.uid, uidl=item.uidl,
                    blob_sha256=sha, error=error, created_at=_now()))
            conn.commit()

    def _existing_locations(self, conn: Connection, items: Sequence[FetchedItem]) -> set:
        """Location keys of ``items`` already stored (a re-fetch after a crash)."""
        found: set = set()
        pop = [i.uidl for i in items if i.uidl is not None]
        if pop:
            rows = conn.execute(select(_LOC.c.uidl).where(
                _LOC.c.mailbox_id == self.mailbox_id, _LOC.c.uidl.in_(pop)))
            found.update(("uidl", r[0]) for r in rows)
        groups: dict[tuple[str, int | None], list[int]] = {}
        for i in items:
            if i.uid is not None:
                groups.setdefault((i.folder, i.uidvalidity), []).append(i.uid)
        for (folder, validity), uids in groups.items():
            rows = conn.execute(select(_LOC.c.uid).where(
                _LOC.c.mailbox_id == self.mailbox_id, _LOC.c.folder == folder,
                _LOC.c.uidvalidity == validity, _LOC.c.uid.in_(uids)))
            found.update(("imap", folder, validity, r[0]) for r in rows)
        return found

    @staticmethod
    def _loc_key(item: FetchedItem) -> tuple:
        if item.uidl is not None:
            return ("uidl", item.uidl)
        return ("imap", item.folder, item.uidvalidity, item.uid)

    def message_row(self, item: FetchedItem, now: datetime) -> dict:
        """The message table's values for a parsed item (under its parsed key)."""
        p = item.parsed
        out = item.role == "sent" or (self.owner and p.from_addr.lower() == self.owner)
        return {
            "mailbox_id": self.mailbox_id,
            "message_key": p.message_key,
            "content_digest": p.content_digest or None,
            "message_id_header": p.message_id,
            "in_reply_to": p.in_reply_to,
            "references": p.references,
            "subject": p.subject,
            "from_addr": p.from_addr,
            "from_name": p.from_name,
            "to_addrs": json.dumps(p.to, ensure_ascii=False),
            "cc_addrs": json.dumps(p.cc, ensure_ascii=False),
            "date": p.date or now,
            "snippet": p.snippet,
            "body_text": p.body_text,
            "body_html": p.body_html,
            "has_attachments": bool(p.attachments),
            "size": p.size,
            "blob_sha256": p.sha256,
            "folder_role": item.role or "inbox",
            "direction": "out" if out else "in",
            "origin": "synced",
            "seen": False,
            "deleted": False,
            "created_at": now,
        }

    def _identity_keys(self, conn: Connection, items: Sequence[FetchedItem]) -> dict[int, str]:
        """The key each item is stored under, by ``id(item)``.

        Two messages are one only when they have the same Message-ID *and* the same
        content (:func:`~plugin.mail.parse.content_digest`): a later message re-using a
        stored Message-ID with other content (a spoofer's, or a broken sender's) gets
        its own key, so it is stored and shown instead of hiding behind the first."""
        wanted = {i.parsed.message_key for i in items if i.parsed.message_id}
        known: dict[str, str | None] = {}
        legacy: dict[str, str] = {}
        listed = sorted(wanted)
        for start in range(0, len(listed), 500):
            for key, digest, blob in conn.execute(select(
                    _MSG.c.message_key, _MSG.c.content_digest, _MSG.c.blob_sha256).where(
                    _MSG.c.mailbox_id == self.mailbox_id,
                    _MSG.c.message_key.in_(listed[start:start + 500]))):
                known[key] = digest
                if digest is None:
                    legacy[key] = blob
        out: dict[int, str] = {}
        for item in items:
            key, digest = item.parsed.message_key, item.parsed.content_digest
            if not item.parsed.message_id or not digest:
                out[id(item)] = key  # keyed by its bytes already
                continue
            if key not in known:
                known[key] = digest  # the first of this batch takes the plain key
            elif known[key] is None and key in legacy:
                known[key] = self._fill_digest(conn, key, legacy.pop(key))
            have = known[key]
            out[id(item)] = key if have is None or have == digest else variant_key(key, digest)
        return out

    def _fill_digest(self, conn: Connection, key: str, blob_sha256: str) -> str | None:
        """The digest of a row stored before 0008, from its raw bytes (kept on the row);
        None when the bytes are gone (then the old rule holds: same Message-ID, same
        message)."""
        try:
            digest = content_digest(self.blobs.get(
                blob_sha256, conn if self.blobs.transactional else None))
        except (OSError, ValueError):
            return None
        conn.execute(update(_MSG).where(_MSG.c.mailbox_id == self.mailbox_id,
                                        _MSG.c.message_key == key).values(content_digest=digest))
        return digest

    def _insert_items(self, conn: Connection, items: Sequence[FetchedItem]) -> BatchResult:
        result = BatchResult()
        now = _now()
        existing = self._existing_locations(conn, items)
        todo: list[FetchedItem] = []
        seen_keys: set = set()
        for item in items:
            key = self._loc_key(item)
            if key in existing or key in seen_keys:
                result.duplicates += 1
                continue
            seen_keys.add(key)
            todo.append(item)
        if not todo:
            return result

        keys = self._identity_keys(conn, todo)
        rows: dict[str, dict] = {}
        for item in todo:
            key = keys[id(item)]
            if key not in rows:
                rows[key] = {**self.message_row(item, now), "message_key": key}
        ids: dict[str, int] = {}
        new_keys: set[str] = set()
        returned = conn.execute(
            _insert(conn, _MSG).returning(_MSG.c.id, _MSG.c.message_key), list(rows.values()))
        for mid, key in returned:
            ids[key] = mid
            new_keys.add(key)
        missing = [k for k in rows if k not in ids]
        if missing:
            found = conn.execute(select(_MSG.c.id, _MSG.c.message_key).where(
                _MSG.c.mailbox_id == self.mailbox_id, _MSG.c.message_key.in_(missing)))
            ids.update({key: mid for mid, key in found})

        locations = [{
            "message_id": ids[keys[id(item)]],
            "mailbox_id": self.mailbox_id,
            "folder": item.folder,
            "uidvalidity": item.uidvalidity,
            "uid": item.uid,
            "uidl": item.uidl,
            "stored_at": now,
            "removed_from_server": False,
        } for item in todo]
        conn.execute(_insert(conn, _LOC), locations)

        attachments = []
        done: set[str] = set()
        for item in todo:
            key = keys[id(item)]
            if key in new_keys and key not in done:
                done.add(key)
                attachments += attachment_rows(ids[key], item.parsed)
        if attachments:
            conn.execute(_ATT.insert(), attachments)

        result.stored = len(new_keys)
        result.duplicates += len(todo) - len(new_keys)
        result.new_message_ids = [ids[k] for k in rows if k in new_keys]
        if result.stored:
            conn.execute(update(_MBX).where(_MBX.c.id == self.mailbox_id).values(
                messages_imported=_MBX.c.messages_imported + result.stored,
                progress_count=_MBX.c.progress_count + result.stored))
        return result


def attachment_rows(message_id: int, parsed: ParsedMessage) -> list[dict]:
    """The attachment table's values for a parsed message (with each body's slice)."""
    return [{"message_id": message_id, "part_index": a.part_index, "filename": a.filename,
             "content_type": a.content_type, "size": a.size, "content_id": a.content_id,
             "is_inline": a.inline, "body_offset": a.offset, "body_length": a.length,
             "transfer_encoding": a.encoding} for a in parsed.attachments]


def _now() -> datetime:
    return datetime.now(UTC)
