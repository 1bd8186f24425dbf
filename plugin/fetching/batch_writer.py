"""Store a sync's batches in a writer thread while the sync fetches and parses the next.

Why: a batch's database work is mostly waiting (PostgreSQL working on its own core,
SQLite inside its C library, the disk), and psycopg and sqlite3 wait without holding
the interpreter lock; fetching and parsing are the other half of an import. In one
thread they take turns; here they overlap. Measured with 10,000 messages on this
project's 2-core machine: see the README's Performance section.

What does not change: batches commit one at a time, in order, each in its own
transaction with its cursor (a crash loses at most the batches not yet committed,
which the next sync fetches again). At most one batch is being written while the
next is fetched, so at most two batches' bytes are in memory. What runs after a
committed batch (totals, automatic linking: host calls that may need the host's app
context) runs in the sync's own thread, when it hands over the next batch or at the
end. A writer's error reaches the sync at its next hand-over or at the end, as if
the sync had stored the batch itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from sqlalchemy import Connection

from plugin.fetching.store import BatchResult, FetchedItem, MessageStore, parse_items

log = logging.getLogger("plugin.integrated_email.sync")


class BatchWriter:
    """``with BatchWriter(store, on_stored) as writer: writer.submit(items)``."""

    def __init__(self, store: MessageStore, on_stored: Callable[[BatchResult], None]) -> None:
        self.store = store
        self.on_stored = on_stored
        self._pool: ThreadPoolExecutor | None = None  # started by the first batch
        self._writing: Future | None = None

    def __enter__(self) -> BatchWriter:
        return self

    def submit(self, items: Sequence[FetchedItem],
               in_transaction: Callable[[Connection], None] | None = None) -> None:
        """Parse ``items`` here (while the batch before is written), then wait for that
        batch and hand this one to the writer."""
        parse_items(items)
        self._collect()
        if self._pool is None:  # a folder with nothing new starts no thread
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ie-batch-writer")
        self._writing = self._pool.submit(self.store.store_batch, items, in_transaction)

    def _collect(self) -> None:
        """Wait for the batch being written; its result to ``on_stored`` (or its error)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            self.on_stored(writing.result())

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                self._collect()
            elif self._writing is not None:
                # The sync failed while a batch was being written: that batch still
                # counts (and is linked) when it committed; the sync's error wins.
                try:
                    self._collect()
                except Exception:
                    log.warning("a batch being written when the sync failed did not "
                                "commit; the next sync fetches it again")
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
