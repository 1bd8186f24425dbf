"""Mail sync: a mailbox's new mail from IMAP or POP3 into the store, exactly once.

Order of effects per batch: fetch -> parse -> store (blobs, rows) -> commit -> only
then anything on the server (POP3 DELE; IMAP is never changed by a sync). The folder
cursor advances in the same transaction as the rows it covers, so a crash at any
point loses nothing and a restart duplicates nothing (the unique keys absorb any
re-fetch). ``crashpoint`` marks each step for the fault tests.

This module is the entry (read what a run needs, run it, record the outcome);
``imap_sync`` and ``pop3_sync`` hold the protocols' runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.blobs import blob_store
from plugin.context import AddonContext
from plugin.crypto import SecretKeyError
from plugin.fetching import status as fetch_status
from plugin.fetching.imap_sync import ImapSync
from plugin.fetching.pop3_sync import Pop3Sync
from plugin.fetching.store import MessageStore, begin_write
from plugin.fetching.sync_run import BatchHook, MailboxView, SyncRun
from plugin.fetching.sync_run import now as _now
from plugin.mail.connect import ssl_context
from plugin.mail.errors import OAUTH_REJECTED, MailError
from plugin.models import FetchCursor, Mailbox, Message
from plugin.setup.credentials import incoming_for
from plugin.setup.oauth_signin import forget_access_token
from plugin.setup.policy import connection_policy
from plugin.setup.settings import fetch_interval_for, load

log = logging.getLogger("plugin.integrated_email.sync")

_CUR = FetchCursor.__table__
_MSG = Message.__table__


@dataclass
class SyncResult:
    """What one sync of a mailbox did (its status is also on the mailbox row)."""

    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    #: MailError kind (or "internal") when the sync failed; None on success
    error_kind: str | None = None
    #: why nothing was attempted: "missing", "inactive", "paused", "no_incoming"
    skipped: str | None = None
    #: stored messages may still wait for automatic linking (left by an earlier
    #: sync that crashed, or by a batch whose hook failed): sweep them up
    unlinked: bool = False
    #: the final write ran: committed, or withheld because ``on_finish`` found that the
    #: mailbox had changed hands meanwhile
    settled: bool = False


def warm_up(addon: AddonContext) -> None:
    """Load the TLS trust store the first syncs would otherwise all load at once."""
    with addon.app.app_context(), addon.session() as session:
        ssl_context(connection_policy(addon, session))
    addon.session.remove()


# ------------------------------------------------------------------ entry point


def sync_mailbox(addon: AddonContext, mailbox_id: int, *,
                 on_batch: BatchHook | None = None,
                 on_finish: Callable[[Mailbox], bool] | None = None,
                 sweep: Callable[[], None] | None = None) -> SyncResult:
    """Fetch a mailbox's new mail and update its status. Never raises for mail or
    message trouble: the outcome is in the result and on the mailbox row.

    ``on_batch(addon, mailbox_id, new_ids)`` runs after each committed batch that
    created messages; if it raises, those messages wait for ``sweep``.

    ``on_finish(mailbox)`` runs in the transaction that records the outcome, with the
    row locked: the dispatcher gives its lease back there, in the same write, and
    returns False when the lease has passed to another worker (then nothing of this
    run's status or folder cursors is written: the new holder's are newer).
    ``sweep()`` runs before that write when stored mail may still wait for automatic
    linking (an earlier run crashed, or a batch hook failed): still under the lease."""
    result = SyncResult()
    now = _now()
    # One transaction reads all a sync needs (mailbox, settings, folder cursors,
    # whether mail waits for linking). It writes only to restart the progress count:
    # a poll of an unchanged mailbox makes one write in all, the status at the end.
    with Session(addon.engine, expire_on_commit=False) as s:
        mb = s.get(Mailbox, mailbox_id)
        result.skipped = _skip_reason(mb)
        if result.skipped:
            if mb is not None and on_finish is not None:
                begin_write(s.connection())
                s.refresh(mb, with_for_update=True)
                if on_finish(mb) is False:
                    s.rollback()
                else:
                    s.commit()
            result.settled = True
            return result
        gs = load(s)
        window = (gs.initial_sync_days, gs.initial_sync_messages)
        interval = fetch_interval_for(gs, mb.in_host)
        policy = connection_policy(addon, s)
        cursors = [dict(r._mapping) for r in s.execute(
            select(_CUR).where(_CUR.c.mailbox_id == mailbox_id).order_by(_CUR.c.id))
        ] if mb.protocol == "imap" else []
        result.unlinked = s.execute(select(_MSG.c.id).where(
            _MSG.c.mailbox_id == mailbox_id, _MSG.c.import_checked.is_(False)).limit(1)
        ).first() is not None
        if mb.progress_count:
            mb.progress_count = 0  # Fetch now shows this run's messages "so far"
        s.commit()
        snapshot = MailboxView(mb.id, mb.email, mb.protocol, mb.delete_policy,
                                mb.delete_after_days)

    syncer: SyncRun | None = None
    try:
        store = MessageStore(addon.engine, blob_store(addon.app.config), snapshot.id,
                             snapshot.email)
        cls: type[SyncRun] = ImapSync if snapshot.protocol == "imap" else Pop3Sync
        for attempt in (1, 2):
            settings = incoming_for(addon, mb)  # mb stays loaded after commit
            syncer = cls(addon, snapshot, settings, policy, store, window, cursors, on_batch)
            try:
                syncer.run()
            except MailError as exc:
                # A server may refuse an access token the provider has not expired yet
                # (the grant was withdrawn): refresh once; a dead grant then pauses.
                if exc.kind == OAUTH_REJECTED and mb.oauth_provider and attempt == 1:
                    forget_access_token(addon, mb)
                    continue
                raise
            break
    except MailError as exc:
        kind, sentence = exc.kind, exc.sentence
        result.error_kind = kind
        change = lambda m: fetch_status.record_failure(m, _now(), kind, sentence)  # noqa: E731
        log.info("sync of mailbox %s failed: %s", mailbox_id, kind)
    except SecretKeyError as exc:  # the admin's keys, not the owner's password
        sentence = str(exc)
        result.error_kind = "secret_key"
        change = lambda m: fetch_status.record_failure(  # noqa: E731
            m, _now(), "secret_key", sentence)
    except Exception:  # one mailbox must never stop the others
        log.exception("sync of mailbox %s failed unexpectedly", mailbox_id)
        result.error_kind = "internal"
        change = lambda m: fetch_status.record_failure(  # noqa: E731
            m, _now(), "internal", fetch_status.INTERNAL_SENTENCE)
    else:
        pause_sentence = syncer.pause_sentence

        def change(m: Mailbox) -> None:
            fetch_status.record_success(m, _now(), interval)
            if pause_sentence:
                fetch_status.pause(m, "uidvalidity", pause_sentence)
    if syncer is not None:
        result.stored = syncer.totals.stored
        result.duplicates = syncer.totals.duplicates
        result.quarantined = syncer.totals.quarantined
        result.unlinked = result.unlinked or syncer.hook_failed
    if result.unlinked and sweep is not None:
        try:
            sweep()
        except Exception:  # the status must still be written
            log.exception("sweeping up unlinked mail of mailbox %s failed", mailbox_id)
    cursor_updates = syncer.cursor_updates if syncer is not None else {}
    result.settled = _finish(addon, mailbox_id, now, change, cursor_updates, on_finish)
    return result


def _skip_reason(mb: Mailbox | None) -> str | None:
    if mb is None:
        return "missing"
    if not mb.is_active:
        return "inactive"
    if mb.paused:
        return "paused"
    if mb.protocol not in ("imap", "pop3") or not mb.in_host:
        return "no_incoming"
    return None


def _finish(addon: AddonContext, mailbox_id: int, attempted: datetime,
            change: Callable[[Mailbox], None], cursor_updates: dict[int, dict[str, Any]],
            on_finish: Callable[[Mailbox], bool] | None
            ) -> bool:
    """Record the outcome: the mailbox's status, the folder cursors that no stored
    row carried, and the caller's ``on_finish``, in one write. True once committed,
    or withheld because ``on_finish`` said the mailbox changed hands."""
    try:
        with Session(addon.engine, expire_on_commit=False) as s:
            begin_write(s.connection())
            mb = s.get(Mailbox, mailbox_id, with_for_update=True)
            if mb is not None:
                mb.last_attempt_at = attempted
                change(mb)
                if on_finish is not None and on_finish(mb) is False:
                    s.rollback()
                    log.info("mailbox %s changed hands during its sync; the new holder "
                             "records its status", mailbox_id)
                    return True
                for cursor_id, values in cursor_updates.items():
                    s.execute(update(_CUR).where(_CUR.c.id == cursor_id).values(**values))
                s.commit()
                return True
    except Exception:
        log.exception("could not record the sync status of mailbox %s", mailbox_id)
    return False


__all__ = ["BatchHook", "SyncResult", "sync_mailbox", "warm_up"]
