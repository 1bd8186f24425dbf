"""The directory store: files fanned out over two levels, synced in batches."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from plugin.blobs.base import HEX, MAX_PENDING, BlobStoreBase, check_digest

#: names this process has made durable, remembered up to this many (then forgotten and
#: synced again when asked: slower, never less safe)
MAX_REMEMBERED = 200_000


class OsFiles:
    """The file operations a directory store uses; a test swaps in one that loses
    unsynced writes on "power off" (tests/lab/powerloss.py)."""

    def write_new(self, path: str, data: bytes) -> None:
        """Write data into a new file at path."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def replace(self, src: str, dst: str) -> None:
        """Rename src over dst (atomic)."""
        os.replace(src, dst)

    def fsync_file(self, path: str) -> None:
        """Flush a file's data to the disk."""
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def fsync_dir(self, path: str) -> None:
        """Flush a directory's entries (a rename is durable only then)."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, path: str) -> bytes:
        """The bytes of path."""
        with open(path, "rb") as fh:
            return fh.read()

    def exists(self, path: str) -> bool:
        """Whether path exists."""
        return os.path.exists(path)

    def touch(self, path: str) -> None:
        """Mark path as just used (garbage collection spares recent blobs)."""
        try:
            os.utime(path)
        except FileNotFoundError:
            pass


class DirectoryBlobStore(BlobStoreBase):
    """Blobs as files under root; ``sync()`` makes new ones durable in one batch."""

    kind = "directory"

    def __init__(self, root: str | os.PathLike, fsync: bool = False,
                 files: OsFiles | None = None) -> None:
        self.root = Path(root)
        #: IE_BLOB_FSYNC: the fetch syncs each batch before its rows commit
        self.fsync = fsync
        self.files = files or OsFiles()
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._dirs: set[str] = set()
        self._lock = threading.Lock()
        #: one round at a time: a caller whose files another thread's round took waits
        #: for that round to finish instead of returning before they are durable
        self._round = threading.Lock()
        self._counter = 0
        #: files renamed into place and not yet fsynced, with their directories
        self._pending: dict[str, str] = {}
        #: names fsynced by this instance (a blob is immutable: durable once, for good)
        self._durable: set[str] = set()
        #: rounds of syncs done (each: the files, then their directories once)
        self.sync_calls = 0

    def path(self, sha256: str) -> Path:
        """Where the blob named digest lives (whether or not it exists)."""
        check_digest(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str, conn: Any = None) -> bool:
        """Whether the blob named digest is stored."""
        return self.files.exists(str(self.path(sha256)))

    def get(self, sha256: str, conn: Any = None) -> bytes:
        """The bytes of the blob named digest (FileNotFoundError when missing)."""
        return self.files.read(str(self.path(sha256)))

    def get_range(self, sha256: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start``: an attachment without reading its message."""
        with open(self.path(sha256), "rb") as fh:
            fh.seek(start)
            return fh.read(length)

    def size(self, sha256: str) -> int:
        """Bytes used by one blob (0 when missing)."""
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return 0

    def put(self, data: bytes, sha256: str | None = None, conn: Any = None) -> str:
        """Store ``data`` (its hash may be given when already known); returns the hash."""
        if sha256 is None:
            sha256 = hashlib.sha256(data).hexdigest()
        check_digest(sha256)
        sub = sha256[:2] + "/" + sha256[2:4]
        final = os.path.join(self.root, sub, sha256)
        if self.files.exists(final):
            self.files.touch(final)  # a collector running now must spare it
            return sha256
        if sub not in self._dirs:
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
            self._dirs.add(sub)
        with self._lock:
            self._counter += 1
            n = self._counter
        tmp = os.path.join(self._tmp, f"{sha256[:16]}.{os.getpid()}.{threading.get_ident()}.{n}")
        self.files.write_new(tmp, data)
        self.files.replace(tmp, final)  # atomic; a concurrent writer of the same bytes is harmless
        with self._lock:
            self._pending[final] = os.path.join(self.root, sub)
            full = len(self._pending) >= MAX_PENDING
        if full:
            self.sync()
        return sha256

    def sync(self, names: Iterable[str] = ()) -> int:
        """fsync every file written since the last sync, and every blob of ``names``
        not yet known durable (written by an earlier process, say), then each
        directory once: one round, however many files."""
        with self._round:
            return self._sync_round(names)

    def _sync_round(self, names: Iterable[str]) -> int:
        with self._lock:
            pending, self._pending = self._pending, {}
            wanted = [n for n in names if n not in self._durable]
        for name in wanted:
            path = str(self.path(name))
            if path not in pending and self.files.exists(path):
                pending[path] = os.path.dirname(path)
        if not pending:
            return 0
        self.sync_calls += 1
        try:
            for path in pending:
                self.files.fsync_file(path)
            for folder in sorted(set(pending.values())):
                self.files.fsync_dir(folder)
                # the two fan-out levels were created (renamed into existence) too
                self.files.fsync_dir(os.path.dirname(folder))
            self.files.fsync_dir(str(self.root))
        except BaseException:
            with self._lock:  # not durable: try again at the next sync
                self._pending.update(pending)
            raise
        with self._lock:
            if len(self._durable) + len(pending) > MAX_REMEMBERED:
                self._durable.clear()
            self._durable.update(os.path.basename(p) for p in pending)
        return len(pending)

    def delete(self, sha256: str, conn: Any = None) -> bool:
        """Remove a blob file; True when it was there."""
        path = self.path(sha256)
        with self._lock:
            self._pending.pop(str(path), None)
            self._durable.discard(sha256)
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def names(self) -> Iterator[str]:
        """Every stored digest, in name order."""
        for first in sorted(p for p in self.root.iterdir() if len(p.name) == 2):
            for second in sorted(first.iterdir()):
                for f in sorted(second.iterdir()):
                    if len(f.name) == 64 and HEX.issuperset(f.name):
                        yield f.name

    def mtime(self, sha256: str) -> float:
        """When the blob was last written or reused (0 when missing)."""
        try:
            return self.path(sha256).stat().st_mtime
        except FileNotFoundError:
            return 0.0


#: the name callers and tests used before there were two kinds
BlobStore = DirectoryBlobStore
