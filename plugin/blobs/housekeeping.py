"""Blob housekeeping: move between stores, report usage, collect garbage, retention.

Garbage collection is safe against a concurrent import of the same bytes: a put of a
blob that already exists refreshes its time (file mtime, ``ie_blob.created_at``), and
only blobs untouched for ``grace`` seconds *and* named by no row are deleted, the time
checked again at the moment of deletion.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from plugin.blobs.base import BlobStoreBase, now
from plugin.blobs.database import DatabaseBlobStore
from plugin.blobs.directory import DirectoryBlobStore
from plugin.models.blob import BLOB
from plugin.models import Mailbox, Message, Quarantine
from plugin.models.outbound import OutboundMessage

log = logging.getLogger("plugin.integrated_email.storage")

#: seconds a new or reused blob is spared by the collector (an import in flight)
GRACE_SECONDS = 3600


@dataclass
class MoveResult:
    moved: int = 0
    skipped: int = 0  # already in the target, hash verified


class BlobHashMismatch(Exception):
    """A blob's bytes do not hash to its name: nothing is moved past it."""


def move_blobs(source: BlobStoreBase, target: BlobStoreBase, *, delete_source: bool = False,
               on_each: Callable[[str], None] | None = None) -> MoveResult:
    """Copy every blob of source into target, verifying each hash before and after.

    Resumable: a blob already in the target (with the right hash) is skipped, so a run
    that was interrupted simply runs again. ``delete_source`` removes each source
    blob once its copy is verified (and synced)."""
    result = MoveResult()
    done: list[str] = []
    for sha in list(source.names()):
        data = source.get(sha)
        if hashlib.sha256(data).hexdigest() != sha:
            raise BlobHashMismatch(f"blob {sha[:12]}... in the source is damaged")
        if target.exists(sha):
            if hashlib.sha256(target.get(sha)).hexdigest() != sha:
                target.delete(sha)  # a damaged copy: write it again
            else:
                result.skipped += 1
                done.append(sha)
                continue
        target.put(data, sha)
        if hashlib.sha256(target.get(sha)).hexdigest() != sha:
            raise BlobHashMismatch(f"blob {sha[:12]}... read back wrong from the target")
        result.moved += 1
        done.append(sha)
        if on_each is not None:
            on_each(sha)
        if len(done) >= 500:
            _settle(source, target, done, delete_source)
    _settle(source, target, done, delete_source)
    return result


def _settle(source: BlobStoreBase, target: BlobStoreBase, done: list[str],
            delete_source: bool) -> None:
    target.sync()
    if delete_source:
        for sha in done:
            source.delete(sha)
        source.sync()
    done.clear()


def referenced(engine: Engine) -> set[str]:
    """Every digest some row still needs."""
    with engine.connect() as conn:
        names = set(conn.execute(select(Message.blob_sha256)).scalars())
        names.update(conn.execute(select(Quarantine.blob_sha256)).scalars())
        for raw in conn.execute(select(OutboundMessage.attachments)).scalars():
            for item in json.loads(raw or "[]"):
                if item.get("sha256"):
                    names.add(item["sha256"])
    return names


def _blob_time(store: BlobStoreBase, sha: str) -> float:
    if isinstance(store, DirectoryBlobStore):
        return store.mtime(sha)
    with store.engine.connect() as conn:
        t = conn.execute(select(BLOB.c.created_at).where(BLOB.c.sha256 == sha)).scalar()
    if t is None:
        return 0.0
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def collect_garbage(engine: Engine, store: BlobStoreBase, grace: float = GRACE_SECONDS,
                    keep: set[str] | None = None) -> int:
    """Delete blobs no row uses and nobody touched for grace seconds; returns how many."""
    cutoff = now() - grace
    candidates = [s for s in store.names() if _blob_time(store, s) < cutoff]
    needed = referenced(engine) if keep is None else keep
    removed = 0
    for sha in candidates:
        if sha in needed:
            continue
        if isinstance(store, DatabaseBlobStore):
            with store.engine.begin() as conn:  # the time is checked in the same statement
                removed += conn.execute(BLOB.delete().where(
                    BLOB.c.sha256 == sha,
                    BLOB.c.created_at < datetime.fromtimestamp(cutoff, UTC))).rowcount
        elif _blob_time(store, sha) < cutoff and store.delete(sha):
            removed += 1
    log.info("garbage collection removed %d blobs", removed)
    return removed


def apply_retention(engine: Engine, store: BlobStoreBase, days: int | None,
                    grace: float = GRACE_SECONDS) -> int:
    """Drop raw bytes of messages older than days whose text is all we need.

    Attachments are read from the raw bytes, so a message with attachments keeps its
    blob; so does any blob a newer message, a quarantine row or a draft also names."""
    if days is None:
        return 0
    old = datetime.now(UTC) - timedelta(days=days)
    with engine.connect() as conn:
        droppable = set(conn.execute(select(Message.blob_sha256).where(
            Message.date < old, Message.has_attachments.is_(False))).scalars())
    keep = referenced(engine)
    with engine.connect() as conn:
        still = set(conn.execute(select(Message.blob_sha256).where(
            (Message.date >= old) | Message.has_attachments.is_(True))).scalars())
    keep = (keep - droppable) | still
    return collect_garbage(engine, store, grace, keep=keep)


def storage_report(engine: Engine, store: BlobStoreBase) -> list[tuple[str, int, int, int]]:
    """(mailbox email, messages, raw bytes named, raw bytes stored) per mailbox."""
    stored: dict[str, int] = {}
    out = []
    with engine.connect() as conn:
        rows = conn.execute(select(Mailbox.id, Mailbox.email, func.count(Message.id),
                                   func.coalesce(func.sum(Message.size), 0))
                            .join(Message, Message.mailbox_id == Mailbox.id, isouter=True)
                            .group_by(Mailbox.id, Mailbox.email).order_by(Mailbox.email)).all()
        for mid, email, count, size in rows:
            shas = set(conn.execute(select(Message.blob_sha256)
                                    .where(Message.mailbox_id == mid)).scalars())
            held = 0
            for sha in shas:
                if sha not in stored:
                    stored[sha] = store.size(sha)
                held += stored[sha]
            out.append((email, int(count), int(size), held))
    return out
