"""The bulk runner's filer: records sent messages and saves them in Sent, in the
sending thread, a batch at a time while the SMTP server digests a message."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from sqlalchemy import update

from plugin.context import AddonContext
from plugin.fetching.store import begin_write
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import MailError
from plugin.models import Mailbox
from plugin.models.outbound import OutboundMessage
from plugin.sending.lease import now, write_lock
from plugin.sending.sent_copy import copy_digest, record_sent
from plugin.sending.sent_folder import APPEND_BATCH, SentFolder, provider_files_sent

log = logging.getLogger("plugin.integrated_email.bulk")
_OUT = OutboundMessage.__table__


class Filer:
    """Records sent messages and saves them in Sent, in the sending thread.

    No thread of its own: a second busy Python thread makes every socket wait of the
    SMTP loop pay for a GIL hand-over (measured: 10 ms a message instead of 3).
    Instead the work is cut into steps that run while the SMTP server digests a
    message (:meth:`step`, passed as ``while_waiting``): every ``batch`` messages,
    recording the batch (store rows, record links, host notes in
    a few statements) and starting its MULTIAPPEND into Sent, whose answer is read
    at the next batch, so Dovecot stores it meanwhile. Rows become ``filed`` only
    once that answer is OK; until then they stay ``sent`` and a restarted job files
    them again (checking Sent first).
    """

    def __init__(self, addon: AddonContext, mb: Mailbox, policy: ConnectionPolicy,
                 sender_name: str, batch: int = APPEND_BATCH) -> None:
        self.addon, self.mb, self.policy, self.sender_name = addon, mb, policy, sender_name
        self.batch = batch
        self._sent: SentFolder | None = None
        self._imap_ok = mb.protocol == "imap" and not provider_files_sent(mb)
        self._checked = False
        #: sent, not yet recorded: (row, raw, sha256 of raw)
        self._ready: list = []
        #: recorded and being appended to Sent: (rows, tag of the MULTIAPPEND)
        self._appending: tuple[list, bytes | None] | None = None
        self.filed = 0

    def put(self, row: SimpleNamespace, raw: bytes) -> None:
        """Take a message the server accepted, to be filed with its batch."""
        # A bulk message has no attachments, so this only hashes (no blob to write).
        self._ready.append((row, raw, copy_digest(self.addon, row, raw)))

    def step(self) -> None:
        """One small piece of the filing work; never raises."""
        try:
            if len(self._ready) >= self.batch:
                self._file_ready()
        except Exception:
            log.exception("filing bulk messages failed")

    def finish(self) -> None:
        """File everything still pending (at the end of the job, or when it stops)."""
        try:
            self._file_ready()
            self._collect()
        except Exception:
            log.exception("filing bulk messages failed")
        finally:
            if self._sent is not None:
                self._sent.__exit__(None, None, None)
                self._sent = None

    def _folder(self) -> SentFolder | None:
        if not self._imap_ok:
            return None
        if self._sent is None:
            try:
                self._sent = SentFolder(self.addon, self.mb, self.policy).__enter__()
            except MailError as exc:
                log.warning("Sent folder of mailbox %s unavailable: %s", self.mb.id, exc.kind)
                self._imap_ok = False
                return None
        return self._sent

    def _file_ready(self) -> None:
        batch, self._ready = self._ready, []
        if not batch:
            return
        rows = [r for r, _raw, _sha in batch]
        raws = {r.id: raw for r, raw, _sha in batch}
        record_sent(self.addon, rows, raws, self.sender_name,
                    shas={r.id: sha for r, _raw, sha in batch})
        self._collect()  # the previous batch's answer: one APPEND at a time
        if self.mb.protocol != "imap" or provider_files_sent(self.mb):
            self._mark_filed(rows)
            return
        folder = self._folder()
        if folder is None:
            return  # stays ``sent``: the send job files it when IMAP is back
        try:
            todo = rows
            if not self._checked:
                # The provider may file sent mail itself: then never append.
                self._checked = True
                if folder.contains([rows[0].message_id_header]):
                    self._imap_ok = False
                    self._mark_filed(rows)
                    return
            self._appending = (rows, folder.append_start([raws[r.id] for r in todo]))
        except MailError as exc:
            log.warning("saving bulk messages in Sent failed: %s", exc.kind)
            self._imap_ok = False

    def _collect(self) -> None:
        if self._appending is None:
            return
        rows, tag = self._appending
        self._appending = None
        try:
            self._sent.append_finish(tag)
        except MailError as exc:
            log.warning("saving bulk messages in Sent failed: %s", exc.kind)
            self._imap_ok = False
            return
        self._mark_filed(rows)

    def _mark_filed(self, rows: list) -> None:
        with write_lock, self.addon.engine.connect() as conn:
            begin_write(conn)
            conn.execute(update(_OUT).where(_OUT.c.id.in_([r.id for r in rows]),
                                            _OUT.c.state == "sent").values(
                state="filed", filed_at=now(), in_sent_folder=self.mb.protocol == "imap"))
            conn.commit()
        self.filed += len(rows)
