"""Content-addressed stores of raw message bytes: a directory, or the database itself.

A blob's name is the sha256 of its bytes, so writing is idempotent: the same message
fetched twice, or found in two folders, is one blob. Two kinds (``IE_BLOB_STORE``):

- ``directory`` (default on SQLite, one machine): files fanned out over two levels
  (``ab/cd/abcd...``), written to a temporary file and renamed into place so a reader
  (or a crash) never sees half a blob. Every new file is remembered until ``sync()``
  fsyncs the files *and* their directories together: a batch pays one round of syncs,
  not one per message. Blobs are written before the rows that point at them commit.
- ``database`` (default on PostgreSQL, any number of machines): rows of ``ie_blob``
  (``plugin.blobs.database``), written through the caller's connection when it passes
  one, so a message and its bytes commit together.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from plugin.blobs.base import BlobStoreBase, check_digest, now
from plugin.blobs.database import DatabaseBlobStore
from plugin.blobs.directory import BlobStore, DirectoryBlobStore, OsFiles
from plugin.db import make_engine

__all__ = ["BlobStore", "BlobStoreBase", "DatabaseBlobStore", "DirectoryBlobStore", "OsFiles",
           "blob_store", "check_digest", "now", "register_engine", "store_kind"]

_stores: dict[tuple, BlobStoreBase] = {}
_stores_lock = threading.Lock()
#: database URL -> the add-on's engine on it (config stays plain, JSON-able data)
_engines: dict[str, Any] = {}


def register_engine(url: str, engine: Any) -> None:
    """Let the database store of url use the add-on's engine (its pool)."""
    _engines[url] = engine


def store_kind(config: Mapping[str, Any]) -> str:
    """IE_BLOB_STORE, else "database" on PostgreSQL and "directory" elsewhere."""
    kind = config.get("IE_BLOB_STORE")
    if kind:
        if kind not in ("database", "directory"):
            raise ValueError("IE_BLOB_STORE must be 'database' or 'directory'")
        return str(kind)
    url = str(config.get("IE_DATABASE_URL") or config.get("SQLALCHEMY_DATABASE_URI") or "")
    return "database" if url.startswith("postgresql") else "directory"


def blob_store(config: Mapping[str, Any], kind: str | None = None) -> BlobStoreBase:
    """The store of an app config (one instance per place, shared by threads)."""
    kind = kind or store_kind(config)
    if kind == "database":
        url = config.get("IE_BLOB_DATABASE_URL")
        if not url:
            raise RuntimeError("the database blob store needs the add-on's database "
                               "(IntegratedEmail.init_app sets IE_BLOB_DATABASE_URL)")
        engine = _engines.get(url)
        if engine is None:
            engine = _engines.setdefault(url, make_engine(url))
        key: tuple = ("database", id(engine))
        with _stores_lock:
            store = _stores.get(key)
            if store is None:
                store = _stores[key] = DatabaseBlobStore(engine)
            return store
    root = str(config["IE_BLOB_DIR"])
    fsync = bool(config.get("IE_BLOB_FSYNC", False))
    with _stores_lock:
        store = _stores.get(("directory", root, fsync))
        if store is None:
            store = _stores[("directory", root, fsync)] = DirectoryBlobStore(root, fsync)
        return store
