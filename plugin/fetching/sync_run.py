"""What an IMAP and a POP3 sync run share: the mailbox they fetch, the store they
write to, the totals, and what runs after each committed batch."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from plugin.context import AddonContext
from plugin.fetching.batch_writer import BatchWriter
from plugin.fetching.store import BatchResult, MessageStore
from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy
from plugin.testing.faults import crashpoint

log = logging.getLogger("plugin.integrated_email.sync")

T = TypeVar("T")

#: ``on_batch(addon, mailbox_id, new_message_ids)``: what runs after each committed
#: batch that created messages (the dispatcher passes automatic linking)
BatchHook = Callable[[Any, int, list[int]], None]


def now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def chunks(seq: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``seq`` in consecutive pieces of at most ``size`` items."""
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


@dataclass(frozen=True)
class MailboxView:
    """The mailbox fields a sync run reads, copied out of the session that loaded them."""

    id: int
    email: str
    protocol: str
    delete_policy: str
    delete_after_days: int | None


class SyncRun:
    """One run of a mailbox's sync against its server (subclassed per protocol)."""

    def __init__(self, addon: AddonContext, mailbox: MailboxView, settings: ServerSettings,
                 policy: ConnectionPolicy, store: MessageStore, window: tuple[int, int],
                 cursors: list[dict[str, Any]] | None = None,
                 on_batch: BatchHook | None = None) -> None:
        self.addon = addon
        self.on_batch = on_batch
        self.mailbox = mailbox
        self.settings = settings
        self.policy = policy
        self.store = store
        self.engine = addon.engine
        self.window_days, self.window_messages = window
        self.totals = BatchResult()
        #: set when the mailbox must pause after this run (looping UIDVALIDITY)
        self.pause_sentence: str | None = None
        #: the folder cursors read with the mailbox (IMAP)
        self.cursors = cursors or []
        #: cursor changes no stored row depends on (an empty folder's first look,
        #: UIDNEXT after a batch): written with the mailbox status at the end. Lost
        #: in a crash they only make the next sync look again.
        self.cursor_updates: dict[int, dict[str, Any]] = {}
        #: a batch hook (automatic linking) failed: its messages wait for the sweep
        self.hook_failed = False

    def run(self) -> None:
        """Fetch what is new on the server into the store."""
        raise NotImplementedError

    def _defer_cursor(self, cursor_id: int, **values: object) -> None:
        self.cursor_updates.setdefault(cursor_id, {}).update(values)

    def _batch_writer(self) -> BatchWriter:
        """Where a run's loop hands its batches: stored while the next is fetched,
        each committed one passed to :meth:`_stored` in this thread."""
        return BatchWriter(self.store, self._stored)

    def _stored(self, batch: BatchResult) -> None:
        crashpoint("after_commit")
        self.totals.add(batch)
        if batch.new_message_ids and self.on_batch is not None:
            try:
                self.on_batch(self.addon, self.mailbox.id, list(batch.new_message_ids))
            except Exception:
                self.hook_failed = True
                log.exception("batch hook %r failed", self.on_batch)
