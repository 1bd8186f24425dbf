"""The bulk runner: sends a job's queued rows, exactly once each.

Per recipient: commit ``sending`` -> SMTP (one connection for the whole job) ->
commit ``sent``, where, without spacing, "``sent`` of recipient i" and "``sending``
of recipient i+1" are one commit (:class:`~plugin.sending.bulk.row_marks.RowMarks`),
made while the server answers i+1's MAIL FROM, so before any byte of i+1's message
(``SmtpSession.send_bytes(on_envelope=)``). A crash right after that commit leaves
i+1 ``unknown`` although it was not sent: the price of one commit a message instead
of two. The runner hands the bytes to the :class:`~plugin.sending.bulk.filer.Filer`,
which files them in the same thread while the SMTP server works. A runner that dies
leaves at most one row in ``sending``; the next runner (same job) turns it into
``sent`` when the Sent folder proves it, else ``unknown`` — never a second copy.

Paced: messages start on the provider's grid (:mod:`.pace`), the run waits outside
its send window or when the provider's day is full (:mod:`.hold`; the send job
resumes it), and a throttling answer puts the row back in the queue and halves the
pace (:meth:`JobRun._throttled`) instead of failing the recipient.

Why one module of ~480 lines: it is the runner (``JobRun``) and its thread start;
the row marks, the filer, the pace and the holds it uses live in their own modules.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import NamedTuple

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.orm import Session

from plugin.context import AddonContext
from plugin.fetching.store import begin_write
from plugin.mail import build as compose
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import (
    MESSAGE_REJECTED,
    MESSAGE_UNSAFE,
    RECIPIENT_REFUSED,
    SENDER_REFUSED,
    THROTTLED,
    TOO_LARGE,
    MailError,
)
from plugin.models import Mailbox
from plugin.models.outbound import BulkJob, OutboundMessage
from plugin.sending import limits, outbox
from plugin.sending.bulk.filer import Filer
from plugin.sending.bulk.jobs import claim_job, close_run
from plugin.sending.bulk.recipients import sent_today
from plugin.sending.bulk import window as send_window
from plugin.sending.bulk.hold import Hold
from plugin.sending.bulk.pace import Pace
from plugin.sending.bulk.row_marks import RowMarks
from plugin.sending.delivery import PERMANENT_KINDS, smtp_session
from plugin.sending.lease import lease_length, now, worker_id
from plugin.sending.messages import bulk_template, message_for, raw_for
from plugin.sending.sent_copy import sender_name
from plugin.sending.sent_folder import file_rows
from plugin.setup import settings as settings_service
from plugin.setup.policy import connection_policy
from plugin.testing import clock
from plugin.testing.faults import crashpoint

log = logging.getLogger("plugin.integrated_email.bulk")
_OUT = OutboundMessage.__table__
_JOB = BulkJob.__table__
#: failures that concern one recipient's message, not the connection
PER_MESSAGE_KINDS = frozenset({RECIPIENT_REFUSED, MESSAGE_REJECTED, TOO_LARGE, SENDER_REFUSED})
#: how often a running job looks for Cancel and renews its lease
CHECK_SECONDS = 0.5
#: a row's failure when its message cannot be built for a reason without its own sentence
UNBUILDABLE = "This message could not be written (a header holds something mail cannot carry)."
CHUNK = 200
#: clock seconds a throttled job waits before it tries again, slower
THROTTLE_WAIT = 60.0


def run_job(addon: AddonContext, job_id: int) -> str | None:
    """Run (or resume) a bulk job to its end; returns its final state, None if busy."""
    if not claim_job(addon, job_id):
        return None
    with Session(addon.engine, expire_on_commit=False) as session:
        outbox.recover(addon, session, job_id=job_id)
        job = session.get(BulkJob, job_id)
        mb = session.get(Mailbox, job.mailbox_id)
        gs = settings_service.load(session)
        policy = connection_policy(addon, session)
        name = sender_name(addon.host, job.user_id, mb.account_name)
        leftover = session.scalars(select(OutboundMessage).where(
            OutboundMessage.bulk_job_id == job_id, OutboundMessage.state == "sent")).all()
        if leftover:
            file_rows(addon, session, mb, leftover, policy)
        allowance = gs.bulk_per_day - sent_today(session, job.user_id)
        spacing = job.spacing_seconds
        limit = limits.limit_for(session, mb, addon.app.config)
        hours = send_window.of_job(job)
    state = JobRun(addon, job_id, mb, policy, name, allowance, spacing, limit, hours).run()
    log.info("bulk job %s ended %s", job_id, state)
    return state


def start_in_thread(addon: AddonContext, job_id: int) -> threading.Thread:
    """Run the job now in a background thread of this process (the send job would too)."""
    app = addon.app

    def target() -> None:
        with app.app_context():
            try:
                run_job(addon, job_id)
            except Exception:
                log.exception("bulk job %s stopped with an error", job_id)

    thread = threading.Thread(target=target, name=f"ie-bulk-{job_id}", daemon=True)
    thread.start()
    return thread


class _NotClaimed(Exception):
    """The folded claim found its row no longer queued (nothing of it was sent)."""


class _Taken(NamedTuple):
    """A row the server took (250) whose ``sent`` is not committed yet."""

    ns: SimpleNamespace
    raw: bytes
    refused: bool


class _Built(NamedTuple):
    """A row's bytes, made before its turn (or at it)."""

    at: datetime
    ns: SimpleNamespace
    prepared: compose.PreparedMessage | None
    raw: bytes | None


class _Turn(NamedTuple):
    """The row to send next: claimed already, or to be claimed by the folded commit."""

    row: Row
    stamp: datetime
    built: _Built | None
    claimed: bool


class JobRun:
    """One run over a job's queued rows, one at a time, each claimed (``sending``) in
    a committed transaction before its DATA and marked ``sent`` after the server
    took it. Without spacing the two commits between messages are one (see
    :class:`~plugin.sending.bulk.row_marks.RowMarks`).

    The steps: :meth:`run` opens SMTP and goes through the rows; each turn is either
    :meth:`_folded_turn` (claimed with the previous row's ``sent``) or
    :meth:`_own_turn` (claimed on its own); :meth:`_send` sends it; :meth:`_failed`
    settles what SMTP refused; :meth:`_while_waiting` files and builds the next
    message while the server digests one. The outcome (done, cancelled, stopped,
    paused) is written by :func:`~plugin.sending.bulk.jobs.close_run`.
    """

    def __init__(self, addon: AddonContext, job_id: int, mb: Mailbox,
                 policy: ConnectionPolicy, name: str, allowance: int, spacing: int,
                 limit: limits.ProviderLimit | None = None,
                 window: send_window.SendWindow | None = None) -> None:
        self.addon, self.job_id = addon, job_id
        self.allowance, self.spacing = allowance, spacing
        self.mailbox_id = mb.id
        self.limit = limit or limits.ProviderLimit(limits.OTHER, "", 0, 0)
        #: when the run waits for the provider's day to have room again
        self.resume_at: datetime | None = None
        self.owner = worker_id()
        self.lease = lease_length(addon.app.config)
        self.filer = Filer(addon, mb, policy, name)
        self.smtp = smtp_session(addon, mb, policy)
        self.outcome = "done"
        self.notice: str | None = None
        self.conn = addon.engine.connect()
        self.marks = RowMarks(self.conn, self.owner)
        #: the provider's pace (and the admin's spacing)
        self.pace = Pace(spacing, limits.paced_per_minute(self.conn, mb.id, self.limit, now()))
        #: "sent" of one row and "sending" of the next are one commit (no pacing)
        self.fold = not self.pace.paced
        self.conn.rollback()
        #: the send window and the provider's daily budget
        self.hold = Hold(self.conn, mb.id, self.limit, window)
        self._last_check = 0.0
        self._queued: Iterator[Row] = iter(())
        self._upcoming: Row | None = None
        #: the row the server took whose ``sent`` is not committed yet: it is
        #: committed with the next row's claim, during that row's MAIL FROM round trip
        #: (before any byte of the next message), or on its own
        self._taken: _Taken | None = None
        #: the next row's bytes, built while the server digests the current message
        self._prebuilt: dict[int, _Built] = {}

    def run(self) -> str:
        """Send every queued row; returns the outcome, written to the job."""
        try:
            try:
                if self._may_send_now():
                    self.smtp.open()
            except MailError as exc:
                self._stop(exc.kind, exc.sentence)
            if self.outcome == "done":
                self._queued = _queued_rows(self.conn, self.job_id)
            self._upcoming = next(self._queued, None)
            while True:
                turn = self._folded_turn() or self._own_turn()
                if turn is None or not self._send(turn):
                    break
            if self._taken is not None:
                self._mark_taken_sent()
        except Exception:
            # Whatever went wrong, the job must not stay "running" for ever: it stops
            # with a sentence (a row left "sending" is settled by the next run's recovery).
            log.exception("bulk job %s failed", self.job_id)
            self.outcome = "stopped"
            self.notice = ("Sending stopped on an unexpected error; the messages not yet "
                           "sent were kept. Try again, or tell your administrator.")
        finally:
            self.smtp.close()
            self.filer.finish()
            self.conn.close()
        close_run(self.addon.engine, self.job_id, self.outcome, self.notice, self.resume_at)
        return self.outcome

    # ------------------------------------------------------------ the provider's pace

    def _may_send_now(self) -> bool:
        """False (the run waits, see :class:`Hold`) outside the send window or when the
        provider's day is full."""
        wait = self.hold.wait()
        if wait is None:
            return True
        self.resume_at, self.notice, self.outcome = wait.until, wait.notice, "waiting"
        return False

    def _wait_for_slot(self) -> bool:
        """Wait for this message's place in the provider's pace; False when cancelled."""
        left = self.pace.wait_seconds()
        if left > 0 and _sleep_unless_cancelled(self.conn, self.job_id, self.owner,
                                                self.lease, left):
            self.outcome = "cancelled"
            return False
        self.pace.started()
        return True

    def _throttled(self, ns: SimpleNamespace | None) -> bool:
        """The server said "too fast": the row waits (queued), the pace halves, and the
        run goes on after a pause; False when cancelled meanwhile."""
        if ns is not None:
            begin_write(self.conn)
            self.conn.execute(update(_OUT).where(_OUT.c.id == ns.id,
                                                 _OUT.c.state == "sending").values(
                state="queued", lease_owner=None, error_kind=THROTTLED, error=None))
            self.conn.commit()
        slower = limits.record_throttle(self.conn, self.mailbox_id, self.pace.per_minute)
        log.info("bulk job %s throttled by the server: %d a minute now", self.job_id, slower)
        self.pace.set(slower)
        self.fold = not self.pace.paced
        self._prebuilt.clear()
        if _sleep_unless_cancelled(self.conn, self.job_id, self.owner, self.lease,
                                   THROTTLE_WAIT):
            self.outcome = "cancelled"
            return False
        self.pace.restart()
        # Start again from the first queued row: the throttled one is queued again.
        self._queued = _queued_rows(self.conn, self.job_id)
        self._upcoming = next(self._queued, None)
        return True

    # ------------------------------------------------------------ choosing the next row

    def _advance(self) -> Row:
        row, self._upcoming = self._upcoming, next(self._queued, None)
        return row

    def _may_go_on(self) -> bool:
        """Cancel, lease, the send window and the daily limits, checked before each claim."""
        if time.monotonic() - self._last_check >= CHECK_SECONDS or self.pace.paced:
            self._last_check = time.monotonic()
            if _cancelled_or_lost(self.conn, self.job_id, self.owner, self.lease):
                self.outcome = "cancelled"
                return False
        if not self._may_send_now():
            return False
        if self.allowance <= 0:
            self.outcome = "stopped"
            self.notice = ("Your administrator's limit of bulk messages per day was "
                           "reached; the rest were not sent. Send them tomorrow.")
            return False
        return True

    def _folded_turn(self) -> _Turn | None:
        """The next row, to be claimed in the commit of the previous row's ``sent``."""
        if self._taken is None or not self.fold or self._upcoming is None or \
                not self._may_go_on():
            return None
        row = self._advance()
        built = self._prebuilt.pop(row.id, None)
        return _Turn(row, built.at if built is not None else now(), built, claimed=False)

    def _own_turn(self) -> _Turn | None:
        """Claim the next row on its own (first message, after a failure, with
        spacing, or when the folded claim found the row taken); None: the run ends."""
        if self._taken is not None:
            self._mark_taken_sent()
        if self.outcome != "done":
            return None
        while self._upcoming is not None and self._may_go_on() and self._wait_for_slot():
            candidate = self._advance()
            stamp = now()
            if self.marks.claim(candidate.id, stamp):
                return _Turn(candidate, stamp, None, claimed=True)
        return None

    # ------------------------------------------------------------ sending one row

    def _send(self, turn: _Turn) -> bool:
        """Send the turn's row; False when the run must end."""
        config = self.addon.app.config
        message = None
        if turn.built is not None:
            ns, prepared, raw = turn.built.ns, turn.built.prepared, turn.built.raw
        else:
            ns = _row_namespace(turn.row, turn.stamp)
            try:  # a row whose headers cannot be written fails alone, before any byte
                prepared = bulk_template(ns)
                if prepared is None:
                    message = message_for(config, ns)
                    raw = compose.flatten(message)
                else:
                    raw = raw_for(config, ns, prepared)
            except ValueError as exc:  # HeaderError, or the email library's own
                return self._unbuildable(ns, getattr(exc, "sentence", UNBUILDABLE))
        rcpts = [a for _n, a in compose.addresses_from_json(ns.to_addrs)]
        claimed = turn.claimed
        if not claimed and prepared is None:
            # An unusual shape (the general path has no envelope hook): the
            # previous row's ``sent`` and this row's claim are two commits.
            self._mark_taken_sent()
            if not self.marks.claim(turn.row.id, turn.stamp):
                return True
            claimed = True
        hook = None
        if claimed:
            crashpoint("bulk_before_smtp")
        else:
            hook = partial(self._folded_commit, turn.row.id, turn.stamp, self._taken)
        try:
            if prepared is None:
                refused = self.smtp.send(ns.from_addr, rcpts, message or message_for(config, ns))
            else:
                refused = self.smtp.send_bytes(ns.from_addr, rcpts, raw,
                                               while_waiting=self._while_waiting,
                                               on_envelope=hook)
        except _NotClaimed:
            return True  # someone else settled the row; the previous one is recorded
        except MailError as exc:
            return self._failed(ns, exc)
        crashpoint("bulk_after_smtp")
        self.allowance -= 1
        self.hold.sent_one()
        self._taken = _Taken(ns, raw, bool(refused))
        if not self.fold:
            self._mark_taken_sent()
        return True

    def _unbuildable(self, ns: SimpleNamespace, sentence: str) -> bool:
        """Fail one row whose message cannot be built (say a line break in the sender's
        profile name); nothing of it was sent and the run goes on with the next row."""
        if self._taken is not None:
            self._mark_taken_sent()
        begin_write(self.conn)
        self.conn.execute(update(_OUT).where(
            _OUT.c.id == ns.id, _OUT.c.state.in_(("queued", "sending"))).values(
            state="failed", error_kind=MESSAGE_UNSAFE, error=sentence, lease_owner=None))
        self.conn.commit()
        return True

    def _folded_commit(self, row_id: int, stamp: datetime, prev: _Taken) -> None:
        """``on_envelope``: one commit, the previous row ``sent`` and this one ``sending``."""
        if not self.marks.sent_and_claim(prev.ns.id, prev.refused, row_id, stamp):
            self._settle_taken()
            raise _NotClaimed
        self._settle_taken()
        crashpoint("bulk_before_smtp")

    def _mark_taken_sent(self) -> None:
        """Commit the taken row's ``sent`` on its own, then hand it to the filer."""
        self.marks.sent(self._taken.ns.id, self._taken.refused)
        self._settle_taken()

    def _settle_taken(self) -> None:
        taken, self._taken = self._taken, None
        crashpoint("bulk_after_sent")
        self.filer.put(taken.ns, taken.raw)

    def _failed(self, ns: SimpleNamespace, exc: MailError) -> bool:
        """Settle a row SMTP did not take; False when the run must end."""
        if self._taken is not None:
            # The hook never ran (the connection failed before MAIL FROM was
            # written): the previous row is committed on its own and this one
            # was never claimed (still ``queued``, nothing of it sent).
            self._mark_taken_sent()
            if exc.kind == THROTTLED:
                return self._throttled(None)
            self._stop(exc.kind, exc.sentence)
            return False
        if exc.kind == THROTTLED:
            return self._throttled(ns)
        stop = _after_failure(self.conn, ns, exc)
        if stop is not None:
            self._stop(exc.kind, stop)
            return False
        return True

    def _stop(self, kind: str, notice: str) -> None:
        self.outcome = "stopped" if kind in PERMANENT_KINDS else "paused"
        self.notice = notice

    def _while_waiting(self) -> None:
        """While the server digests a message: a step of filing, the next row's bytes."""
        self.filer.step()
        following = self._upcoming
        if not self.fold or following is None or following.id in self._prebuilt:
            return
        self._prebuilt.clear()
        try:
            at = now()
            next_ns = _row_namespace(following, at)
            next_prepared = bulk_template(next_ns)
            if next_prepared is not None:
                self._prebuilt[following.id] = _Built(
                    at, next_ns, next_prepared,
                    raw_for(self.addon.app.config, next_ns, next_prepared))
        except Exception:  # built again (and reported) when its turn comes
            self._prebuilt.clear()


def _row_namespace(row: Row, date: datetime) -> SimpleNamespace:
    ns = SimpleNamespace(**dict(row._mapping))
    ns.date = date
    ns.stored_message_id = None
    return ns


def _queued_rows(conn: Connection, job_id: int) -> Iterator[Row]:
    """The job's queued rows in id order, read CHUNK at a time (each read ends its
    transaction at once, so no read transaction is held while sending)."""
    last = 0
    while True:
        chunk = conn.execute(select(_OUT).where(
            _OUT.c.bulk_job_id == job_id, _OUT.c.state == "queued", _OUT.c.id > last)
            .order_by(_OUT.c.id).limit(CHUNK)).all()
        conn.rollback()
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].id


def _after_failure(conn: Connection, ns: SimpleNamespace, exc: MailError) -> str | None:
    """Settle a row SMTP did not take; returns a notice when the whole job must stop."""
    begin_write(conn)
    if exc.kind in PER_MESSAGE_KINDS and not (exc.code and 400 <= exc.code < 500):
        conn.execute(update(_OUT).where(_OUT.c.id == ns.id).values(
            state="failed", error_kind=exc.kind, error=exc.sentence, lease_owner=None))
        conn.commit()
        return None
    # The connection failed mid-message: it may or may not have gone out.
    if exc.kind in PERMANENT_KINDS:
        conn.execute(update(_OUT).where(_OUT.c.id == ns.id).values(
            state="queued", error_kind=exc.kind, error=exc.sentence, lease_owner=None))
    else:
        conn.execute(update(_OUT).where(_OUT.c.id == ns.id).values(
            state="unknown", error_kind=exc.kind,
            error=exc.sentence + " The connection broke while this message was being sent; "
            "it may or may not have arrived.", lease_owner=None))
    conn.commit()
    return exc.sentence


def _cancelled_or_lost(conn: Connection, job_id: int, owner: str, lease: timedelta) -> bool:
    """Renew the lease; True when Cancel was pressed or another worker took the job."""
    begin_write(conn)
    renewed = conn.execute(update(_JOB).where(_JOB.c.id == job_id, _JOB.c.lease_owner == owner)
                           .values(lease_until=now() + lease)).rowcount
    cancel = conn.execute(select(_JOB.c.cancel_requested).where(_JOB.c.id == job_id)).scalar()
    conn.commit()
    return bool(cancel) or renewed != 1


def _sleep_unless_cancelled(conn: Connection, job_id: int, owner: str, lease: timedelta,
                            seconds: float) -> bool:
    """Sleep ``seconds`` of the sending clock, looking for Cancel every CHECK_SECONDS."""
    end = clock.monotonic() + seconds
    while True:
        left = end - clock.monotonic()
        if left <= 0:
            return False
        clock.sleep(min(left, clock.scaled(CHECK_SECONDS)))
        if _cancelled_or_lost(conn, job_id, owner, lease):
            return True
