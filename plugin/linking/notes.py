"""The notes the add-on writes on host records, and how much each may say.

A host shows a record's notes to everyone who may open the record, with no way
for the add-on to tell one viewer from another.  So a note carries only what the
mail's sharing shows *every* viewer of the record:

* mail the ATS sent, and synced mail of a Public mailbox (no user excluded from
  public mail, no excluded domain involved): who, when, the subject and the first
  line of text ("full");
* everything else (Private, Custom, Admin, or Public with exclusions): only that
  an email was exchanged, when, and a link to the add-on's view of it, which
  applies the sharing rule and the host's record access per viewer ("brief").

Every note written is recorded (``ie_host_note``) so that notes sharing no longer
allows are made brief (:func:`enforce`: after each fetch of the mailbox and by
``flask integrated-email redact-notes``), and so a removed mailbox's notes can be
removed (:func:`remove_for_mailbox`).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from plugin.host import RecordRef
from plugin.models import GlobalSettings, Mailbox, Message
from plugin.models.notes import BRIEF, FULL, HostNote
from plugin.sharing.rule import excluded_domains, excluded_users

log = logging.getLogger("plugin.integrated_email.notes")


def note_key(message_key: str, ref: RecordRef) -> str:
    """The host note's idempotency key for a synced message on ``ref``."""
    # The same email in two users' mailboxes is one note on the record.
    return f"integrated_email:{message_key}:{ref}"


def _addresses(from_addr: str | None, *json_lists: str | None) -> list[str]:
    out = [from_addr.lower()] if from_addr else []
    for raw in json_lists:
        try:
            out += [a.lower() for _n, a in json.loads(raw or "[]") if a]
        except (ValueError, TypeError):
            continue
    return out


def may_be_full(origin: str, sharing: str, gs: GlobalSettings | None,
                addresses: list[str]) -> bool:
    """Whether every viewer of the record may read this mail (so may its note)."""
    if origin == "ats":
        return True  # shared with whoever may open a record it is linked to
    if sharing != "public" or excluded_users(gs):
        return False
    domains = excluded_domains(gs)
    return not any(a.endswith("@" + d) for a in addresses for d in domains)


def full_text(m: Any, owner_email: str) -> str:
    """The full note: who, what, when (``m``: a Message or a row with its fields)."""
    sent = (m.from_addr or "").lower() == owner_email.lower()
    if sent:
        to = ", ".join(a for _n, a in json.loads(m.to_addrs or "[]"))
        head = f"Email sent to {to}"
    else:
        who = f"{m.from_name} <{m.from_addr}>" if m.from_name else m.from_addr
        head = f"Email received from {who}"
    snippet = f"\n{m.snippet}" if m.snippet else ""
    return f"{head} ({_when(m.date)}): {m.subject or '(no subject)'}{snippet}"


def brief_text(ref: RecordRef, message_id: int, date: datetime | None) -> str:
    """The brief note: that an email was exchanged, and where to read it."""
    from plugin.hostkit import url_for_anywhere
    url = url_for_anywhere("integrated_email.record_message", kind=ref.kind,
                           record_id=ref.id, message_id=message_id)
    return (f"An email was exchanged ({_when(date)}). Its subject and text are shown "
            f"only to those its owner shares it with: {url}")


def _when(date: datetime | None) -> str:
    return date.strftime("%d %b %Y %H:%M UTC") if date else "date unknown"


def write(session: Session, host: Any, gs: GlobalSettings | None, mailbox: Any, m: Any,
          ref: RecordRef, key: str | None = None) -> str:
    """Write the note about message ``m`` of ``mailbox`` on ``ref`` and record it
    (the caller commits); returns FULL or BRIEF.

    ``mailbox`` needs ``id``, ``user_id``, ``email`` and ``sharing``; ``m`` the
    message's id, origin, addresses, subject, snippet and date.
    """
    key = key or note_key(m.message_key, ref)
    origin = getattr(m, "origin", "synced")
    full = may_be_full(origin, mailbox.sharing, gs,
                       _addresses(m.from_addr, m.to_addrs, m.cc_addrs))
    detail = FULL if full else BRIEF
    text = full_text(m, mailbox.email) if full else brief_text(ref, m.id, m.date)
    # A note another mailbox already wrote under this key stays as the host has it.
    # No autoflush: the host may share our SQLite file, and a flush here would hold
    # its write lock while the host writes the note.
    with session.no_autoflush:
        held = session.scalar(select(HostNote.detail).where(HostNote.note_key == key)
                              .limit(1))
    if held is None:
        host.add_note(ref, mailbox.user_id, text, key)
    else:
        detail = held
    record(session, mailbox.id, m.id, ref, key, detail)
    return detail


def record(session: Session, mailbox_id: int, message_id: int, ref: RecordRef, key: str,
           detail: str) -> None:
    """Remember a note written on the host (idempotent per mailbox and key)."""
    with session.no_autoflush:
        exists = session.scalar(select(HostNote.id).where(
            HostNote.mailbox_id == mailbox_id, HostNote.note_key == key))
    if exists is None:
        session.add(HostNote(mailbox_id=mailbox_id, message_id=message_id,
                             record_kind=ref.kind, record_id=str(ref.id), note_key=key,
                             detail=detail))


@dataclass
class Enforced:
    """What :func:`enforce` did."""

    briefed: int = 0
    #: full notes sharing no longer allows that the host cannot rewrite (no delete_note)
    left: int = 0


def enforce(session: Session, host: Any, mailbox_id: int | None = None) -> Enforced:
    """Make brief every full note that sharing no longer lets all the record's
    viewers read (of one mailbox, or all); the caller commits."""
    gs = session.get(GlobalSettings, 1)
    q = (select(HostNote, Mailbox.sharing, Mailbox.user_id, Message.origin, Message.from_addr,
                Message.to_addrs, Message.cc_addrs, Message.date)
         .join(Mailbox, Mailbox.id == HostNote.mailbox_id)
         .join(Message, Message.id == HostNote.message_id)
         .where(HostNote.detail == FULL))
    if mailbox_id is not None:
        keys = select(HostNote.note_key).where(HostNote.mailbox_id == mailbox_id,
                                               HostNote.detail == FULL)
        q = q.where(HostNote.note_key.in_(keys))
    by_key: dict[str, list] = defaultdict(list)
    for row in session.execute(q):
        by_key[row[0].note_key].append(row)
    done = Enforced()
    briefed = []
    for key, rows in by_key.items():
        # A note stays full while any mailbox holding the email shares it with all.
        if any(may_be_full(r.origin, r.sharing, gs,
                           _addresses(r.from_addr, r.to_addrs, r.cc_addrs)) for r in rows):
            continue
        note, first = rows[0][0], rows[0]
        ref = RecordRef(note.record_kind, note.record_id)
        if not host.delete_note(ref, key):
            done.left += 1
            continue
        host.add_note(ref, first.user_id, brief_text(ref, note.message_id, first.date), key)
        briefed.append(key)
    # Our writes after the host's (they may share one SQLite file and its write lock).
    for start in range(0, len(briefed), 500):
        session.execute(update(HostNote).where(
            HostNote.note_key.in_(briefed[start:start + 500])).values(detail=BRIEF))
    done.briefed = len(briefed)
    if done.briefed:
        log.info("made %d host notes brief", done.briefed)
    return done


def count_for_mailbox(session: Session, mailbox_id: int) -> int:
    """How many host notes only this mailbox recorded (what removing it may remove)."""
    return len(_own_keys(session, mailbox_id))


def _own_keys(session: Session, mailbox_id: int) -> list[tuple[str, str, str]]:
    others = select(HostNote.note_key).where(HostNote.mailbox_id != mailbox_id)
    return list(session.execute(select(HostNote.note_key, HostNote.record_kind,
                                       HostNote.record_id).where(
        HostNote.mailbox_id == mailbox_id, ~HostNote.note_key.in_(others))).all())


def remove_for_mailbox(session: Session, host: Any, mailbox_id: int) -> int:
    """Remove from the host the notes this mailbox wrote that no other mailbox holds;
    returns how many (0 when the host cannot delete notes)."""
    if not host.can_delete_notes:
        return 0
    removed = 0
    for key, kind, rid in _own_keys(session, mailbox_id):
        host.delete_note(RecordRef(kind, rid), key)
        removed += 1
    session.execute(HostNote.__table__.delete().where(HostNote.mailbox_id == mailbox_id))
    return removed


def forget(session: Session, host: Any, message_id: int, ref: RecordRef) -> bool:
    """The link of ``message_id`` to ``ref`` is gone: remove its note from the host
    unless another mailbox holds it (or the host cannot delete notes); the caller
    commits.  Returns whether the host's note was removed."""
    rows = list(session.scalars(select(HostNote).where(
        HostNote.message_id == message_id, HostNote.record_kind == ref.kind,
        HostNote.record_id == str(ref.id))))
    removed = False
    gone = []
    for row in rows:
        with session.no_autoflush:  # host first, our writes after (one SQLite file?)
            others = session.scalar(select(HostNote.id).where(
                HostNote.note_key == row.note_key, HostNote.id != row.id).limit(1))
        if others is not None:  # the note stays, for the other mailbox's copy
            gone.append(row)
        elif host.delete_note(ref, row.note_key):
            removed = True
            gone.append(row)
        # else the host keeps its note, and this keeps the record of it
    for row in gone:
        session.delete(row)
    return removed


def enforce_after_sync(engine: Any, host: Any, mailbox_id: int) -> Enforced:
    """:func:`enforce` for one mailbox, after its sync: a sharing change made since
    reaches the notes within one fetch interval.  One short statement when there is
    nothing to do (no full notes, or a Public mailbox with no exclusions)."""
    has_full = exists().where(HostNote.mailbox_id == mailbox_id, HostNote.detail == FULL)
    with engine.connect() as conn:
        row = conn.execute(select(
            Mailbox.sharing, GlobalSettings.public_excluded_users,
            GlobalSettings.public_excluded_domains, has_full)
            .select_from(Mailbox).outerjoin(GlobalSettings, GlobalSettings.id == 1)
            .where(Mailbox.id == mailbox_id)).first()
    if row is None or not row[3]:
        return Enforced()
    sharing, users, domains = row[0], (row[1] or "").strip(), (row[2] or "").strip()
    if sharing == "public" and not users.strip(",") and not domains:
        return Enforced()
    with Session(engine) as s:
        done = enforce(s, host, mailbox_id)
        s.commit()
        return done
