"""Saved templates (a subject and body with merge fields, personal or shared with
everyone) and each mailbox's signature: what compose, reply and bulk start from."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from plugin.host import HostRecord
from plugin.mail import build as compose
from plugin.models.deliverability import MailTemplate, Signature
from plugin.sending import merge
from plugin.sending.lease import now

#: the line above a signature (RFC 3676 §4.3: "-- " on a line of its own)
SIGNATURE_MARK = "\n\n-- \n"
MAX_NAME = 120


def usable(session: Session, user_id: str) -> list[MailTemplate]:
    """The user's own templates and everyone's shared ones, by name."""
    return list(session.scalars(select(MailTemplate).where(or_(
        MailTemplate.user_id == user_id, MailTemplate.shared.is_(True)))
        .order_by(MailTemplate.name, MailTemplate.id)))


def get_usable(session: Session, user_id: str, template_id: object) -> MailTemplate | None:
    """One template the user may use (theirs, or shared), or None."""
    try:
        tid = int(str(template_id))
    except ValueError:
        return None
    tpl = session.get(MailTemplate, tid)
    if tpl is None or not (tpl.user_id == user_id or tpl.shared):
        return None
    return tpl


@dataclass
class Saved:
    """A template saved, or the sentences that say what to correct."""

    template: MailTemplate | None = None
    errors: dict[str, str] = field(default_factory=dict)


def save(session: Session, user_id: str, tpl: MailTemplate | None, name: str, subject: str,
         body: str, shared: bool) -> Saved:
    """Create (``tpl`` None) or change the user's template; nothing saved when wrong."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        errors["name"] = f"Give the template a name of at most {MAX_NAME} characters."
    for problem in (merge.check_template(subject, "subject")
                    + merge.check_template(body, "body")):
        errors.setdefault(problem.where, problem.sentence)
    try:
        compose.check_header(subject, "subject")
        compose.check_body(body)
    except compose.HeaderError as exc:
        errors.setdefault("subject", exc.sentence)
    if errors:
        return Saved(errors=errors)
    if tpl is None:
        tpl = MailTemplate(user_id=user_id)
        session.add(tpl)
    tpl.name, tpl.subject, tpl.body, tpl.shared, tpl.updated_at = \
        name, subject, body, bool(shared), now()
    session.commit()
    return Saved(template=tpl)


def filled(tpl: MailTemplate, record: HostRecord | None, sender_name: str,
           signature: str) -> tuple[str, str]:
    """Subject and body for one message: merge fields filled in for ``record``; without
    a record (several or no recipients) the fields stay as written."""
    if record is None:
        return tpl.subject, tpl.body
    values = merge.values_for(record, sender_name, signature)
    try:
        return merge.render(tpl.subject, values), merge.render(tpl.body, values)
    except merge.MergeError:
        return tpl.subject, tpl.body


# ------------------------------------------------------------------ signatures


def signature_of(session: Session, mailbox_id: int) -> str:
    """The mailbox's signature text ("" when it has none)."""
    return session.scalar(select(Signature.text).where(Signature.mailbox_id == mailbox_id)) \
        or ""


def save_signature(session: Session, mailbox_id: int, text: str) -> str | None:
    """Save the signature; the sentence that says what is wrong, if anything."""
    text = (text or "").replace("\r\n", "\n").strip("\n")
    try:
        compose.check_body(text, "signature")
    except compose.HeaderError as exc:
        return exc.sentence
    if len(text) > 4000:
        return "Keep the signature under 4,000 characters."
    row = session.scalar(select(Signature).where(Signature.mailbox_id == mailbox_id))
    if row is None:
        row = Signature(mailbox_id=mailbox_id)
        session.add(row)
    row.text, row.updated_at = text, now()
    session.commit()
    return None


def with_signature(body: str, signature: str) -> str:
    """New mail: the text, then the signature under its "-- " line."""
    return body + SIGNATURE_MARK + signature + "\n" if signature else body


def reply_with_signature(quoted: str, signature: str, top: str = "") -> str:
    """A reply: room to write (or a template's text), the signature, then the quote, as
    most mail programs place it."""
    head = top or "\n"
    if signature:
        head = head.rstrip("\n") + SIGNATURE_MARK + signature + "\n"
    return head + quoted
