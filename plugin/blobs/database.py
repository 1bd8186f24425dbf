"""The database blob store: raw bytes as rows of ``ie_blob``, seen by every machine.

Written through the caller's connection when it passes one, so a message row and its
bytes commit (or roll back) together: no orphan, no missing blob. Without a connection
a put commits on its own (an orphan at worst, which garbage collection removes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from plugin.blobs.base import BlobStoreBase, check_digest
from plugin.models.blob import BLOB



def _upsert(conn: Any):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(BLOB)
    # a reused blob gets a fresh time, so a collector running now spares it
    return stmt.on_conflict_do_update(index_elements=[BLOB.c.sha256],
                                      set_={"created_at": stmt.excluded.created_at})


class DatabaseBlobStore(BlobStoreBase):
    """Blobs as ``ie_blob`` rows on the add-on's engine."""

    kind = "database"
    transactional = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, data: bytes, sha256: str | None = None, conn: Any = None) -> str:
        """Store data in conn's transaction (or its own); returns the hash."""
        import hashlib
        sha = check_digest(sha256 or hashlib.sha256(data).hexdigest())
        self.put_many([(data, sha)], conn)
        return sha

    def put_many(self, pairs: Iterable[tuple[bytes, str]], conn: Any = None) -> None:
        """Store (data, sha256) pairs in one statement."""
        now = datetime.now(UTC)
        rows = {sha: {"sha256": check_digest(sha), "size": len(data), "data": data,
                      "created_at": now} for data, sha in pairs}
        if not rows:
            return
        # sorted: two writers of overlapping batches lock rows in one order (no deadlock)
        values = [rows[k] for k in sorted(rows)]
        if conn is not None:
            conn.execute(_upsert(conn), values)
            return
        with self.engine.begin() as own:
            own.execute(_upsert(own), values)

    def get(self, sha256: str, conn: Any = None) -> bytes:
        """The bytes named sha256 (FileNotFoundError when missing)."""
        check_digest(sha256)
        q = select(BLOB.c.data).where(BLOB.c.sha256 == sha256)
        if conn is not None:
            row = conn.execute(q).first()
        else:
            with self.engine.connect() as own:
                row = own.execute(q).first()
        if row is None:
            raise FileNotFoundError(f"blob {sha256[:12]}... is not stored")
        return bytes(row[0])

    def get_range(self, sha256: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start``, cut by the database (substr counts from 1)."""
        q = select(func.substr(BLOB.c.data, start + 1, length)).where(
            BLOB.c.sha256 == check_digest(sha256))
        with self.engine.connect() as own:
            row = own.execute(q).first()
        if row is None:
            raise FileNotFoundError(f"blob {sha256[:12]}... is not stored")
        return bytes(row[0])

    def exists(self, sha256: str, conn: Any = None) -> bool:
        """Whether the blob named sha256 is stored."""
        q = select(BLOB.c.sha256).where(BLOB.c.sha256 == check_digest(sha256))
        if conn is not None:
            return conn.execute(q).first() is not None
        with self.engine.connect() as own:
            return own.execute(q).first() is not None

    def size(self, sha256: str) -> int:
        """Bytes used by one blob (0 when missing)."""
        with self.engine.connect() as own:
            return own.execute(select(BLOB.c.size).where(BLOB.c.sha256 == sha256)).scalar() or 0

    def delete(self, sha256: str, conn: Any = None) -> bool:
        """Remove a blob row; True when it was there."""
        q = BLOB.delete().where(BLOB.c.sha256 == check_digest(sha256))
        if conn is not None:
            return conn.execute(q).rowcount > 0
        with self.engine.begin() as own:
            return own.execute(q).rowcount > 0

    def names(self) -> Iterator[str]:
        """Every stored digest, in name order (pages of 1,000: no long read)."""
        last = ""
        while True:
            with self.engine.connect() as own:
                page = own.execute(select(BLOB.c.sha256).where(BLOB.c.sha256 > last)
                                   .order_by(BLOB.c.sha256).limit(1000)).scalars().all()
            if not page:
                return
            yield from page
            last = page[-1]

    def total(self) -> tuple[int, int]:
        """(count, bytes) of the whole store."""
        with self.engine.connect() as own:
            n, b = own.execute(select(func.count(), func.coalesce(func.sum(BLOB.c.size), 0))).one()
        return int(n), int(b)
