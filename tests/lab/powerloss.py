"""A file layer that loses what was not fsynced when the power goes off.

Stands in for the disk under a DirectoryBlobStore: file contents and directory entries
written since the last fsync live in memory only; ``power_off()`` discards them, just
as a machine losing power loses its page cache. What was fsynced (file data by
fsync_file, a rename by fsync_dir of its directory) is on the real disk.
"""

from __future__ import annotations

import os

from plugin.blobs import OsFiles


class PowerLossFiles(OsFiles):
    """OsFiles that buffers until fsync, and records every call in order."""

    def __init__(self, calls: list | None = None) -> None:
        self.data: dict[str, bytes] = {}      # tmp path -> bytes not yet on disk
        self.renamed: dict[str, bytes] = {}   # final path -> bytes, entry not yet durable
        self.synced_data: dict[str, bytes] = {}  # final path -> bytes fsynced, entry not
        self.calls = calls if calls is not None else []

    def write_new(self, path: str, data: bytes) -> None:
        self.calls.append(("write", os.path.basename(path)))
        self.data[path] = bytes(data)

    def replace(self, src: str, dst: str) -> None:
        self.calls.append(("rename", os.path.basename(dst)))
        self.renamed[dst] = self.data.pop(src)

    def fsync_file(self, path: str) -> None:
        self.calls.append(("fsync", os.path.basename(path)))
        if path in self.renamed:
            self.synced_data[path] = self.renamed[path]

    def fsync_dir(self, path: str) -> None:
        self.calls.append(("fsync_dir", path))
        for final in [p for p in self.synced_data if os.path.dirname(p) == path]:
            with open(final, "wb") as fh:  # data and entry durable: on the real disk
                fh.write(self.synced_data.pop(final))
            self.renamed.pop(final, None)

    def read(self, path: str) -> bytes:
        if path in self.renamed:
            return self.renamed[path]
        return super().read(path)

    def exists(self, path: str) -> bool:
        return path in self.renamed or super().exists(path)

    def touch(self, path: str) -> None:
        if path not in self.renamed:
            super().touch(path)

    def power_off(self) -> int:
        """Lose every write not yet synced; returns how many blobs were lost."""
        lost = len(self.renamed)
        self.data.clear()
        self.renamed.clear()
        self.synced_data.clear()
        self.calls.append(("power_off",))
        return lost
