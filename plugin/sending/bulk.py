"""Bulk email: pick recipients, render merge fields, and run the job exactly once each.

A job is made in one transaction: a :class:`BulkJob` and one ``queued`` outbox row
per recipient, each with its own Message-ID and its rendered subject and body. The
runner (the send job, or a thread started right away) then, per recipient:

    commit ``sending`` -> SMTP (one connection for the whole job) -> commit ``sent``

where, without spacing, "``sent`` of recipient i" and "``sending`` of recipient
i+1" are one commit (:class:`_RowMarks`), made while the server answers i+1's MAIL
FROM, so before any byte of i+1's message (``SmtpSession.send_bytes(on_envelope=)``).
A crash right after that commit leaves i+1 ``unknown`` although it was not sent: the
price of one commit a message instead of two. The runner
hands the bytes to the :class:`Filer`, which records them (store, record links,
host notes) and saves them in Sent with MULTIAPPEND in batches, in the same thread
while the SMTP server works, then marks them ``filed``. A runner
that dies leaves at most one row in ``sending``; the next runner (same job) turns it
into ``sent`` when the Sent folder proves it, else ``unknown`` — never a second copy.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import bindparam, func, literal, select, update
from sqlalchemy.orm import Session

from plugin.host import HostRecord, HostUser, RecordRef
from plugin.mail.addresses import normalize_address
from plugin.mail.errors import (
    MESSAGE_REJECTED,
    RECIPIENT_REFUSED,
    SENDER_REFUSED,
    TOO_LARGE,
    MailError,
)
from plugin.models import Mailbox
from plugin.models._types import UTCDateTime
from plugin.models.outbound import BulkJob, OutboundMessage
from plugin.mail import build as compose
from plugin.sending import merge
from plugin.sending import outbox
from plugin.sending import delivery as sender
from plugin.setup import settings as settings_service
from plugin.testing.faults import crashpoint
from plugin.setup.policy import connection_policy
from plugin.fetching.store import begin_write

log = logging.getLogger("plugin.integrated_email.bulk")
_OUT = OutboundMessage.__table__
_JOB = BulkJob.__table__
#: failures that concern one recipient's message, not the connection
PER_MESSAGE_KINDS = frozenset({RECIPIENT_REFUSED, MESSAGE_REJECTED, TOO_LARGE, SENDER_REFUSED})
#: how often a running job looks for Cancel and renews its lease
CHECK_SECONDS = 0.5
CHUNK = 200
#: lease owner of a job waiting for its server to come back
PAUSED = "paused"


# ------------------------------------------------------------------ choosing recipients


@dataclass
class Selection:
    """The candidates picked in the host's list, split into sendable and left out."""

    records: list[HostRecord]
    #: {"name": ..., "reason": ...} for everyone left out before sending
    skipped: list[dict]


def select_recipients(addon, user: HostUser, ids: list[str],
                      kind: str = "candidate") -> Selection:
    refs = [RecordRef(kind, str(i).strip()) for i in dict.fromkeys(ids) if str(i).strip()]
    found = addon.host.get_records(refs)
    records: list[HostRecord] = []
    skipped: list[dict] = []
    seen_addresses: set[str] = set()
    for ref in refs:
        rec = found.get(ref)
        if rec is None or not addon.host.may_view_record(user, ref):
            skipped.append({"name": f"{kind.title()} {ref.id}", "ref": str(ref),
                            "reason": "Not found, or not shared with you."})
            continue
        if not (rec.email or "").strip():
            skipped.append({"name": rec.name, "ref": str(ref), "reason": "No email address."})
            continue
        normal = normalize_address(rec.email.strip())
        if normal is None or any(c in rec.email for c in "\r\n"):
            skipped.append({"name": rec.name, "ref": str(ref),
                            "reason": f"'{rec.email[:80]}' is not a valid email address."})
            continue
        if normal.lower() in seen_addresses:
            skipped.append({"name": rec.name, "ref": str(ref),
                            "reason": f"{normal} is already a recipient (one copy only)."})
            continue
        seen_addresses.add(normal.lower())
        records.append(HostRecord(rec.ref, rec.name, normal, rec.url, rec.first_name,
                                  rec.last_name))
    return Selection(records, skipped)


# ------------------------------------------------------------------ limits


def sent_today(session, user_id: str) -> int:
    """Bulk messages the user sent (or may have sent) in the last 24 hours."""
    since = sender.now() - timedelta(days=1)
    return session.scalar(select(func.count()).select_from(_OUT).where(
        _OUT.c.user_id == user_id, _OUT.c.bulk_job_id.is_not(None),
        _OUT.c.state.in_(("sending", "sent", "filed", "unknown")),
        _OUT.c.date >= literal(since, UTCDateTime()))) or 0


def queued_elsewhere(session, user_id: str) -> int:
    return session.scalar(select(func.count()).select_from(_OUT).where(
        _OUT.c.user_id == user_id, _OUT.c.bulk_job_id.is_not(None),
        _OUT.c.state == "queued")) or 0


def limit_problem(session, gs, user_id: str, count: int) -> str | None:
    """The plain sentence when sending to ``count`` recipients breaks an admin limit."""
    if count > gs.bulk_per_send:
        return (f"You selected {count} recipients; your administrator allows at most "
                f"{gs.bulk_per_send} in one bulk email. Select fewer and send the rest "
                "in another one.")
    left = gs.bulk_per_day - sent_today(session, user_id) - queued_elsewhere(session, user_id)
    if count > left:
        left = max(left, 0)
        return (f"Your administrator allows {gs.bulk_per_day} bulk messages a day and you "
                f"can send {left} more today. Select at most {left} recipients, or send "
                "tomorrow.")
    return None


# ------------------------------------------------------------------ making the job


@dataclass
class Preview:
    subject: str
    body: str
    problems: list[merge.MergeProblem]


def check_templates(subject: str, body: str) -> list[merge.MergeProblem]:
    problems = merge.check_template(subject, "subject") + merge.check_template(body, "body")
    if not subject.strip():
        problems.append(merge.MergeProblem("subject", "Write a subject."))
    try:
        compose.check_body(body)
    except compose.HeaderError as exc:
        problems.append(merge.MergeProblem("body", exc.sentence))
    return problems


def preview(subject: str, body: str, record: HostRecord, sender_user: HostUser,
            signature: str) -> Preview:
    problems = check_templates(subject, body)
    if problems:
        return Preview("", "", problems)
    values = merge.values_for(record, sender_user.name, signature)
    try:
        rendered_subject = merge.render(subject, values)
        rendered_body = merge.render(body, values)
        compose.check_header(rendered_subject, "subject")
    except merge.MergeError:
        return Preview("", "", [merge.MergeProblem("body", "A merge field could not be "
                                                   "filled in safely.")])
    except compose.HeaderError as exc:
        return Preview("", "", [merge.MergeProblem("subject", exc.sentence)])
    return Preview(rendered_subject, rendered_body, [])


def create_job(addon, session: Session, user: HostUser, mb: Mailbox,
               subject: str, body: str, selection: Selection, signature: str = "",
               formatted: bool = False) -> BulkJob:
    """The job and its queued rows, committed together (nothing is sent here)."""
    gs = settings_service.load(session)
    job = BulkJob(user_id=user.id, mailbox_id=mb.id, subject_template=subject,
                  body_template=body, state="queued",
                  spacing_seconds=int(gs.bulk_spacing_seconds or 0))
    session.add(job)
    session.flush()
    skipped = list(selection.skipped)
    subject_tpl = merge.compile_template(subject)
    body_tpl = merge.compile_template(body)
    rows = []
    for rec in selection.records:
        values = merge.values_for(rec, user.name, signature)
        try:
            rendered_subject = compose.check_header(merge.render(subject_tpl, values), "subject")
            rendered_body = compose.check_body(merge.render(body_tpl, values))
            to = [(compose.check_header(rec.name, "recipient name"), rec.email)]
        except (merge.MergeError, compose.HeaderError) as exc:
            reason = exc.sentence if isinstance(exc, compose.HeaderError) else \
                "A merge field could not be filled in safely."
            skipped.append({"name": rec.name, "ref": str(rec.ref), "reason": reason})
            continue
        rows.append({
            "user_id": user.id, "mailbox_id": mb.id, "bulk_job_id": job.id,
            "message_id_header": compose.new_message_id(mb.email), "state": "queued",
            "from_addr": mb.email, "from_name": user.name,
            "to_addrs": compose.addresses_json(to), "cc_addrs": "[]", "bcc_addrs": "[]",
            "subject": rendered_subject, "body_text": rendered_body,
            "body_html": compose.formatted_html(rendered_body) if formatted else None,
            "attachments": "[]", "record_refs": str(rec.ref), "attempts": 0,
            "in_sent_folder": False, "created_at": sender.now()})
    if rows:
        session.execute(_OUT.insert(), rows)
    job.total = len(rows)
    job.skipped = json.dumps(skipped, ensure_ascii=False)
    if not rows:
        job.state, job.finished_at = "done", sender.now()
    session.commit()
    return job


# ------------------------------------------------------------------ progress


@dataclass
class Progress:
    total: int
    sent: int
    failed: int
    unknown: int
    cancelled: int
    remaining: int

    @property
    def done(self) -> int:
        return self.total - self.remaining

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else int(100 * self.done / self.total)


def progress(session, job_id: int) -> Progress:
    counts = dict(session.execute(select(_OUT.c.state, func.count()).where(
        _OUT.c.bulk_job_id == job_id).group_by(_OUT.c.state)).all())
    total = sum(counts.values())
    return Progress(total=total, sent=counts.get("sent", 0) + counts.get("filed", 0),
                    failed=counts.get("failed", 0), unknown=counts.get("unknown", 0),
                    cancelled=counts.get("cancelled", 0),
                    remaining=counts.get("queued", 0) + counts.get("sending", 0))


def request_cancel(session: Session, job: BulkJob) -> None:
    """Cancel: a running job stops before its next message; a waiting one at once."""
    session.execute(update(_JOB).where(_JOB.c.id == job.id).values(cancel_requested=True))
    session.commit()
    session.refresh(job)
    if job.state == "queued" or (job.state == "running" and (
            job.lease_owner is None or sender.owner_gone(job.lease_owner))):
        _finish_cancelled(session.connection(), job.id)
        session.commit()
        session.refresh(job)


def _finish_cancelled(conn, job_id: int) -> None:
    conn.execute(update(_OUT).where(_OUT.c.bulk_job_id == job_id, _OUT.c.state == "queued")
                 .values(state="cancelled", error="Not sent: the bulk email was cancelled."))
    conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(
        state="cancelled", finished_at=sender.now(), lease_owner=None, lease_until=None))


# ------------------------------------------------------------------ running


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

    def __init__(self, addon, mb: Mailbox, policy, sender_name: str,
                 batch: int = sender.APPEND_BATCH) -> None:
        self.addon, self.mb, self.policy, self.sender_name = addon, mb, policy, sender_name
        self.batch = batch
        self._sent: sender.SentFolder | None = None
        self._imap_ok = mb.protocol == "imap" and not sender.provider_files_sent(mb)
        self._checked = False
        #: sent, not yet recorded: (row, raw, sha256 of raw)
        self._ready: list = []
        #: recorded and being appended to Sent: (rows, tag of the MULTIAPPEND)
        self._appending: tuple[list, bytes | None] | None = None
        self.filed = 0

    def put(self, row: SimpleNamespace, raw: bytes) -> None:
        # A bulk message has no attachments, so this only hashes (no blob to write).
        self._ready.append((row, raw, sender.copy_digest(self.addon, row, raw)))

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

    def _folder(self) -> sender.SentFolder | None:
        if not self._imap_ok:
            return None
        if self._sent is None:
            try:
                self._sent = sender.SentFolder(self.addon, self.mb, self.policy).__enter__()
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
        sender.record_sent(self.addon, rows, raws, self.sender_name,
                           shas={r.id: sha for r, _raw, sha in batch})
        self._collect()  # the previous batch's answer: one APPEND at a time
        if self.mb.protocol != "imap" or sender.provider_files_sent(self.mb):
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
        with sender.write_lock, self.addon.engine.connect() as conn:
            begin_write(conn)
            conn.execute(update(_OUT).where(_OUT.c.id.in_([r.id for r in rows]),
                                            _OUT.c.state == "sent").values(
                state="filed", filed_at=sender.now(), in_sent_folder=self.mb.protocol == "imap"))
            conn.commit()
        self.filed += len(rows)


def claim_job(addon, job_id: int) -> bool:
    """Take the job's lease when it is free, expired, or held by a dead process."""
    owner = sender.worker_id()
    stamp = sender.now()
    with addon.engine.connect() as conn:
        job = conn.execute(select(_JOB).where(_JOB.c.id == job_id)).first()
        if job is None or job.state not in ("queued", "running"):
            return False
        held = job.lease_owner is not None and job.lease_owner != owner
        if held and job.lease_until is not None and outbox._aware(job.lease_until) > stamp \
                and not sender.owner_gone(job.lease_owner):
            return False
        begin_write(conn)
        where = [_JOB.c.id == job_id, _JOB.c.state.in_(("queued", "running"))]
        where.append(_JOB.c.lease_owner == job.lease_owner if job.lease_owner is not None
                     else _JOB.c.lease_owner.is_(None))
        result = conn.execute(update(_JOB).where(*where).values(
            state="running", lease_owner=owner, lease_until=stamp + sender.lease_length(addon),
            started_at=func.coalesce(_JOB.c.started_at, literal(stamp, UTCDateTime()))))
        conn.commit()
        return result.rowcount == 1


def _row_namespace(row, date) -> SimpleNamespace:
    ns = SimpleNamespace(**dict(row._mapping))
    ns.date = date
    ns.stored_message_id = None
    return ns


def run_job(addon, job_id: int) -> str | None:
    """Run (or resume) a bulk job to its end; returns its final state, None if busy."""
    if not claim_job(addon, job_id):
        return None
    with Session(addon.engine, expire_on_commit=False) as session:
        outbox.recover(addon, session, job_id=job_id)
        job = session.get(BulkJob, job_id)
        mb = session.get(Mailbox, job.mailbox_id)
        gs = settings_service.load(session)
        policy = connection_policy(addon, session)
        name = sender.sender_name(addon, job.user_id, mb.account_name)
        leftover = session.scalars(select(OutboundMessage).where(
            OutboundMessage.bulk_job_id == job_id, OutboundMessage.state == "sent")).all()
        if leftover:
            sender.file_rows(addon, session, mb, leftover, policy)
        allowance = gs.bulk_per_day - sent_today(session, job.user_id)
        spacing = job.spacing_seconds
    state = _send_all(addon, job_id, mb, policy, name, allowance, spacing)
    log.info("bulk job %s ended %s", job_id, state)
    return state


class _NotClaimed(Exception):
    """The folded claim found its row no longer queued (nothing of it was sent)."""


class _RowMarks:
    """The per-recipient state changes of a running job, as Core statements compiled
    once and executed on the job's own DBAPI connection (no ORM, no per-call
    compiling). Bind values go through the columns' own bind processors, so
    ``UTCDateTime`` is stored exactly as through SQLAlchemy (naive UTC text on SQLite,
    aware on PostgreSQL).

    ``sent_and_claim`` is the folded commit: recipient i becomes ``sent`` and
    recipient i+1 ``sending`` in one transaction, so at most one row is ever in
    ``sending`` and a crash between two messages costs one commit less per message.
    """

    def __init__(self, conn, owner: str) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.sqlite = self.dialect.name == "sqlite"
        self.owner = owner
        self._claim = self._compile(update(_OUT).where(
            _OUT.c.id == bindparam("row_id"), _OUT.c.state == "queued").values(
            state="sending", date=bindparam("stamp"), attempts=_OUT.c.attempts + 1,
            lease_owner=bindparam("owner")))
        self._sent = self._compile(update(_OUT).where(_OUT.c.id == bindparam("row_id")).values(
            state="sent", sent_at=bindparam("stamp"), lease_owner=None,
            error_kind=bindparam("kind")))

    def _compile(self, stmt):
        compiled = stmt.compile(dialect=self.dialect)
        fixed = compiled.construct_params(
            {name: None for name in ("row_id", "stamp", "owner", "kind")
             if name in compiled.binds}, _check=False)
        procs = {}
        for name, bind in compiled.binds.items():
            proc = bind.type._cached_bind_processor(self.dialect)
            if proc is not None:
                procs[name] = proc
        fixed = {k: (procs[k](v) if k in procs and v is not None else v)
                 for k, v in fixed.items()}
        order = tuple(compiled.positiontup) if compiled.positional else None
        return compiled.string, fixed, procs, order

    def _params(self, prepared, values: dict):
        _sql, fixed, procs, order = prepared
        params = dict(fixed)
        for k, v in values.items():
            proc = procs.get(k)
            params[k] = proc(v) if proc is not None and v is not None else v
        return tuple(params[k] for k in order) if order is not None else params

    def _run(self, steps) -> list[int]:
        """Execute ``steps`` ((prepared, values), ...) in one write transaction."""
        raw = self.conn.connection.dbapi_connection
        if not self.sqlite and hasattr(raw, "pipeline"):
            return self._run_pipelined(raw, steps)
        with sender.write_lock:
            cur = raw.cursor()
            try:
                if self.sqlite:
                    cur.execute("BEGIN IMMEDIATE")
                counts = []
                for prepared, values in steps:
                    cur.execute(prepared[0], self._params(prepared, values))
                    counts.append(cur.rowcount)
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                cur.close()
        return counts

    def _run_pipelined(self, raw, steps) -> list[int]:
        """PostgreSQL (psycopg 3): BEGIN, the statements and COMMIT in one round trip
        (pipeline mode) instead of one each; a commit a message, so it counts."""
        cursors = []
        with sender.write_lock:
            try:
                with raw.pipeline():
                    for prepared, values in steps:
                        cur = raw.cursor()
                        cursors.append(cur)
                        cur.execute(prepared[0], self._params(prepared, values))
                    raw.commit()
                return [cur.rowcount for cur in cursors]
            except BaseException:
                raw.rollback()
                raise
            finally:
                for cur in cursors:
                    cur.close()

    def claim(self, row_id: int, stamp) -> bool:
        (n,) = self._run([(self._claim, {"row_id": row_id, "stamp": stamp,
                                         "owner": self.owner})])
        return n == 1

    def sent(self, row_id: int, refused: bool) -> None:
        self._run([(self._sent, {"row_id": row_id, "stamp": sender.now(),
                                 "kind": "recipient_refused" if refused else None})])

    def sent_and_claim(self, row_id: int, refused: bool, next_id: int, stamp) -> bool:
        _n, claimed = self._run([
            (self._sent, {"row_id": row_id, "stamp": stamp,
                          "kind": "recipient_refused" if refused else None}),
            (self._claim, {"row_id": next_id, "stamp": stamp, "owner": self.owner})])
        return claimed == 1


def _queued_rows(conn, job_id: int):
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


def _send_all(addon, job_id: int, mb: Mailbox, policy, name: str,
              allowance: int, spacing: int) -> str:
    """Send every queued row of the job, one at a time, each claimed (``sending``) in
    a committed transaction before its DATA and marked ``sent`` after the server
    took it. Without spacing the two commits between messages are one (see
    :class:`_RowMarks`)."""
    engine = addon.engine
    owner = sender.worker_id()
    lease = sender.lease_length(addon)
    filer = Filer(addon, mb, policy, name)
    smtp = sender.smtp_session(addon, mb, policy)
    notice: str | None = None
    outcome = "done"
    last_check = 0.0
    conn = engine.connect()
    marks = _RowMarks(conn, owner)
    fold = not spacing
    last_sent = False

    def may_go_on() -> bool:
        """Cancel, lease and the daily limit, checked before each claim."""
        nonlocal outcome, notice, last_check
        if time.monotonic() - last_check >= CHECK_SECONDS or spacing:
            last_check = time.monotonic()
            if _cancelled_or_lost(conn, job_id, owner, lease):
                outcome = "cancelled"
                return False
        if allowance <= 0:
            outcome = "stopped"
            notice = ("Your administrator's limit of bulk messages per day was "
                      "reached; the rest were not sent. Send them tomorrow.")
            return False
        return True

    try:
        try:
            smtp.open()
        except MailError as exc:
            outcome, notice = ("stopped" if exc.kind in sender.PERMANENT_KINDS else "paused",
                               exc.sentence)
        queued = _queued_rows(conn, job_id) if outcome == "done" else iter(())
        upcoming = next(queued, None)
        #: the row the server took (250) whose ``sent`` is not committed yet: it is
        #: committed with the next row's claim, during that row's MAIL FROM round trip
        #: (before any byte of the next message), or on its own
        taken = None

        def settle_taken() -> None:
            nonlocal taken
            row_ns, raw_bytes, _refused = taken
            taken = None
            crashpoint("bulk_after_sent")
            filer.put(row_ns, raw_bytes)

        #: the next row's bytes, built while the server digests the current message
        prebuilt: dict[int, tuple] = {}

        def while_waiting() -> None:
            filer.step()
            following = upcoming
            if not fold or following is None or following.id in prebuilt:
                return
            prebuilt.clear()
            try:
                at = sender.now()
                next_ns = _row_namespace(following, at)
                next_prepared = sender.bulk_template(next_ns)
                if next_prepared is not None:
                    prebuilt[following.id] = (at, next_ns, next_prepared,
                                              sender.raw_for(addon, next_ns, next_prepared))
            except Exception:  # built again (and reported) when its turn comes
                prebuilt.clear()

        while True:
            claimed_now = False
            ready = None
            if taken is not None and fold and upcoming is not None and may_go_on():
                row, upcoming = upcoming, next(queued, None)
                ready = prebuilt.pop(row.id, None)
                stamp = ready[0] if ready is not None else sender.now()
            else:
                if taken is not None:
                    marks.sent(taken[0].id, taken[2])
                    settle_taken()
                if outcome != "done":
                    break
                if spacing and last_sent:
                    last_sent = False
                    if _sleep_unless_cancelled(conn, job_id, owner, lease, spacing):
                        outcome = "cancelled"
                        break
                row = None
                # Claim the next row on its own (first message, after a failure, with
                # spacing, or when the folded claim found the row taken).
                while upcoming is not None and may_go_on():
                    candidate, upcoming = upcoming, next(queued, None)
                    stamp = sender.now()
                    if marks.claim(candidate.id, stamp):
                        row, claimed_now = candidate, True
                        break
                if row is None:
                    break
            if ready is not None:
                _at, ns, prepared, raw = ready
            else:
                ns = _row_namespace(row, stamp)
                prepared = sender.bulk_template(ns)
                raw = None
            rcpts = [a for _n, a in compose.addresses_from_json(ns.to_addrs)]
            if not claimed_now and prepared is None:
                # An unusual shape (the general path has no envelope hook): the
                # previous row's ``sent`` and this row's claim are two commits.
                marks.sent(taken[0].id, taken[2])
                settle_taken()
                if not marks.claim(row.id, stamp):
                    continue
                claimed_now = True
            hook = None
            if not claimed_now:
                def hook(row_id=row.id, stamp=stamp, prev=taken) -> None:
                    # The folded commit: the previous row ``sent``, this one ``sending``.
                    if not marks.sent_and_claim(prev[0].id, prev[2], row_id, stamp):
                        settle_taken()
                        raise _NotClaimed
                    settle_taken()
                    crashpoint("bulk_before_smtp")
            else:
                crashpoint("bulk_before_smtp")
            try:
                if prepared is None:
                    message = sender.message_for(addon, ns)
                    raw = compose.flatten(message)
                    refused = smtp.send(ns.from_addr, rcpts, message)
                else:
                    if raw is None:
                        raw = sender.raw_for(addon, ns, prepared)
                    refused = smtp.send_bytes(ns.from_addr, rcpts, raw,
                                              while_waiting=while_waiting, on_envelope=hook)
            except _NotClaimed:
                continue  # someone else settled the row; the previous one is recorded
            except MailError as exc:
                if taken is not None:
                    # The hook never ran (the connection failed before MAIL FROM was
                    # written): the previous row is committed on its own and this one
                    # was never claimed (still ``queued``, nothing of it sent).
                    marks.sent(taken[0].id, taken[2])
                    settle_taken()
                    outcome = "stopped" if exc.kind in sender.PERMANENT_KINDS else "paused"
                    notice = exc.sentence
                    break
                stop = _after_failure(conn, ns, exc)
                if stop is not None:
                    outcome = "stopped" if exc.kind in sender.PERMANENT_KINDS else "paused"
                    notice = stop
                    break
                continue
            crashpoint("bulk_after_smtp")
            allowance -= 1
            last_sent = True
            taken = (ns, raw, bool(refused))
            if not fold:
                marks.sent(ns.id, bool(refused))
                settle_taken()
        if taken is not None:
            marks.sent(taken[0].id, taken[2])
            settle_taken()
    finally:
        smtp.close()
        filer.finish()
        conn.close()
    with engine.connect() as conn:
        begin_write(conn)
        if outcome == "cancelled":
            _finish_cancelled(conn, job_id)
        elif outcome == "stopped":
            conn.execute(update(_OUT).where(_OUT.c.bulk_job_id == job_id,
                                            _OUT.c.state == "queued").values(
                state="cancelled", error="Not sent: " + (notice or "the job stopped.")))
            conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(
                state="stopped", notice=notice, finished_at=sender.now(),
                lease_owner=None, lease_until=None))
        elif outcome == "paused":
            # The server is unreachable for now: the send job resumes after a pause.
            conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(
                notice=notice + " Sending resumes by itself in a minute.",
                lease_owner=PAUSED, lease_until=sender.now() + sender.backoff(1)))
        else:
            conn.execute(update(_JOB).where(_JOB.c.id == job_id).values(
                state="done", finished_at=sender.now(), lease_owner=None, lease_until=None,
                notice=None))
        conn.commit()
    return outcome


def _after_failure(conn, ns: SimpleNamespace, exc: MailError) -> str | None:
    """Settle a row SMTP did not take; returns a notice when the whole job must stop."""
    begin_write(conn)
    if exc.kind in PER_MESSAGE_KINDS and not (exc.code and 400 <= exc.code < 500):
        conn.execute(update(_OUT).where(_OUT.c.id == ns.id).values(
            state="failed", error_kind=exc.kind, error=exc.sentence, lease_owner=None))
        conn.commit()
        return None
    # The connection failed mid-message: it may or may not have gone out.
    if exc.kind in sender.PERMANENT_KINDS:
        conn.execute(update(_OUT).where(_OUT.c.id == ns.id).values(
            state="queued", error_kind=exc.kind, error=exc.sentence, lease_owner=None))
    else:
        conn.execute(update(_OUT).where(_OUT.c.id == ns.id).values(
            state="unknown", error_kind=exc.kind,
            error=exc.sentence + " The connection broke while this message was being sent; "
            "it may or may not have arrived.", lease_owner=None))
    conn.commit()
    return exc.sentence


def _cancelled_or_lost(conn, job_id: int, owner: str, lease: timedelta) -> bool:
    """Renew the lease; True when Cancel was pressed or another worker took the job."""
    begin_write(conn)
    renewed = conn.execute(update(_JOB).where(_JOB.c.id == job_id, _JOB.c.lease_owner == owner)
                           .values(lease_until=sender.now() + lease)).rowcount
    cancel = conn.execute(select(_JOB.c.cancel_requested).where(_JOB.c.id == job_id)).scalar()
    conn.commit()
    return bool(cancel) or renewed != 1


def _sleep_unless_cancelled(conn, job_id: int, owner: str, lease: timedelta,
                            seconds: float) -> bool:
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, CHECK_SECONDS))
        if _cancelled_or_lost(conn, job_id, owner, lease):
            return True


def start_in_thread(addon, job_id: int) -> threading.Thread:
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


def resumable_jobs(addon) -> list[int]:
    """Jobs waiting to run, or whose runner is gone."""
    stamp = sender.now()
    with addon.engine.connect() as conn:
        rows = conn.execute(select(_JOB.c.id, _JOB.c.state, _JOB.c.lease_owner,
                                   _JOB.c.lease_until).where(
            _JOB.c.state.in_(("queued", "running")))).all()
    out = []
    for r in rows:
        if r.lease_owner is None or r.lease_until is None or \
                outbox._aware(r.lease_until) < stamp or sender.owner_gone(r.lease_owner):
            out.append(r.id)
    return out
