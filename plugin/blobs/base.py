"""What every blob store is: content-addressed bytes (a blob's name is its sha256)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

HEX = frozenset("0123456789abcdef")
#: a directory store syncs by itself once this many files wait, so memory stays bounded
MAX_PENDING = 4096


def check_digest(sha256: str) -> str:
    """sha256 when it is a lowercase hex digest, else ValueError (it becomes a path)."""
    if len(sha256) != 64 or not HEX.issuperset(sha256):
        raise ValueError("not a sha256 hex digest")
    return sha256


class BlobStoreBase:
    """What every store offers; ``conn`` is the caller's open transaction, if any."""

    kind = "abstract"
    #: whether put(conn=...) writes inside the caller's transaction
    transactional = False

    def put(self, data: bytes, sha256: str | None = None, conn: Any = None) -> str:
        """Store data (its hash may be given when known); returns the hash."""
        raise NotImplementedError

    def put_many(self, pairs: Iterable[tuple[bytes, str]], conn: Any = None) -> None:
        """Store (data, sha256) pairs; one statement where the store can."""
        for data, sha in pairs:
            self.put(data, sha, conn)

    def get(self, sha256: str, conn: Any = None) -> bytes:
        """The bytes named sha256 (FileNotFoundError when missing)."""
        raise NotImplementedError

    def get_range(self, sha256: str, start: int, length: int) -> bytes:
        """``length`` bytes of a blob from ``start`` (stores override it to read only those)."""
        return self.get(sha256)[start:start + length]

    def exists(self, sha256: str, conn: Any = None) -> bool:
        """Whether the blob named sha256 is stored."""
        raise NotImplementedError

    def delete(self, sha256: str, conn: Any = None) -> bool:
        """Remove a blob; True when it was there."""
        raise NotImplementedError

    def names(self) -> Iterator[str]:
        """Every stored digest (for moves, reports and garbage collection)."""
        raise NotImplementedError

    def size(self, sha256: str) -> int:
        """Bytes used by one blob (0 when missing)."""
        raise NotImplementedError

    def sync(self, names: Iterable[str] = ()) -> int:
        """Make every write so far, and the blobs ``names``, durable; returns how many
        blobs it had to sync (a database store's bytes are rows: the database's own
        durability covers them)."""
        return 0


def now() -> float:
    """The clock garbage collection compares against (a test may move it)."""
    return time.time()
