"""Content-addressed store of raw message bytes (``IE_BLOB_DIR``).

A blob's name is the sha256 of its bytes, so writing is idempotent: the same message
fetched twice, or found in two folders, is one file. Files fan out over two levels
(``ab/cd/abcd...``) so no directory grows huge. Writes go to a temporary file in the
store and are renamed into place, so a reader (or a crash) never sees half a blob.
Blobs are written *before* the database rows that point at them are committed: a
crash leaves at worst an orphan file, never a row without its bytes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["BlobStore", "blob_store"]


class BlobStore:
    def __init__(self, root: str | os.PathLike, fsync: bool = False) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._dirs: set[str] = set()
        self._lock = threading.Lock()
        self._counter = 0

    def path(self, sha256: str) -> Path:
        """Where the blob named digest lives (whether or not it exists)."""
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether the blob named digest is stored."""
        return self.path(sha256).exists()

    def get(self, sha256: str) -> bytes:
        """The bytes of the blob named digest (FileNotFoundError when missing)."""
        return self.path(sha256).read_bytes()

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` (its hash may be given when already known); returns the hash."""
        if sha256 is None:
            sha256 = hashlib.sha256(data).hexdigest()
        sub = sha256[:2] + "/" + sha256[2:4]
        final = os.path.join(self.root, sub, sha256)
        if os.path.exists(final):
            return sha256
        if sub not in self._dirs:
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
            self._dirs.add(sub)
        with self._lock:
            self._counter += 1
            n = self._counter
        tmp = os.path.join(self._tmp, f"{sha256[:16]}.{os.getpid()}.{threading.get_ident()}.{n}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)  # atomic; a concurrent writer of the same bytes is harmless
        return sha256


_stores: dict[tuple[str, bool], BlobStore] = {}
_stores_lock = threading.Lock()


def blob_store(config: Mapping[str, Any]) -> BlobStore:
    """The store of an app config (one instance per directory, shared by threads)."""
    root = str(config["IE_BLOB_DIR"])
    fsync = bool(config.get("IE_BLOB_FSYNC", False))
    with _stores_lock:
        store = _stores.get((root, fsync))
        if store is None:
            store = _stores[(root, fsync)] = BlobStore(root, fsync)
        return store
