"""Durable before destructive: what a server change depends on survives a power cut.

Before anything is deleted, moved or expunged on a mail server because of our import
(POP3 DELE, a consolidate copy, a webmail delete), the bytes and rows it depends on
must be on the disk, not in a page cache: the directory store's new files and their
directories are fsynced (one round for everything written since the last one, plus
any named blob this process has not synced yet), then the database is made durable
(SQLite: a FULL checkpoint; PostgreSQL: its commits already are). Called once per
batch of server changes, so a 10,000-message POP3 import pays one round, not one per
message (plus one per MAX_PENDING files the store syncs by itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Engine, select

from plugin.blobs.base import BlobStoreBase
from plugin.db import make_durable
from plugin.models import Message

_CHUNK = 500


def durable_before_server_change(engine: Engine, store: BlobStoreBase,
                                 blob_names: Iterable[str | None] = ()) -> None:
    """Make the blobs ``blob_names`` (and every write so far) and every commit so far
    durable; raises when that cannot be done, so nothing destructive follows."""
    store.sync([n for n in blob_names if n])
    make_durable(engine)


def blob_names_of(engine: Engine, message_ids: Sequence[int]) -> list[str]:
    """The raw blobs of those messages (messages without one are left out)."""
    out: list[str] = []
    with engine.connect() as conn:
        for i in range(0, len(message_ids), _CHUNK):
            out.extend(conn.execute(select(Message.blob_sha256).where(
                Message.id.in_(list(message_ids[i:i + _CHUNK])),
                Message.blob_sha256.is_not(None))).scalars())
    return out
