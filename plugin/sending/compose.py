"""The compose use case: a message written in the compose form, checked, queued and
delivered now; and the form pre-filled for a reply, a reply to all, or a forward.

The route reads the form (and the uploaded files, and the message replied to, which
the sharing rule lets the user see); everything from there on is here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from plugin.context import AddonContext
from plugin.host import HostAdapter, HostUser, RecordRef
from plugin.mail import build as compose
from plugin.models import Mailbox, Message
from plugin.models.outbound import OutboundMessage
from plugin.reading.messages import attachment_bytes
from plugin.sending import outbox, send_later
from plugin.words import N_

#: the compose form's address fields and the label its error sentences use
ADDRESS_FIELDS = (("to", "To field"), ("cc", "Cc field"), ("bcc", "Bcc field"))


@dataclass
class ComposeOutcome:
    """What sending from the compose form came to: the row as it ended, or the
    sentences (by form field) that kept it from being sent."""

    row: OutboundMessage | None = None
    errors: dict[str, str] = field(default_factory=dict)
    #: the records the message is recorded on
    records: list[RecordRef] = field(default_factory=list)


def visible_records(host: HostAdapter, user: HostUser, texts: Iterable[str]) -> list[RecordRef]:
    """Record references from the form that the user may see."""
    out: list[RecordRef] = []
    for text in dict.fromkeys(t for t in texts if t):
        try:
            ref = host.parse_ref(text) if hasattr(host, "parse_ref") else RecordRef.parse(text)
        except ValueError:
            continue
        if host.may_view_record(user, ref):
            out.append(ref)
    return out


def send_from_form(addon: AddonContext, session: Session, user: HostUser, mb: Mailbox,
                   values: dict[str, Any], attachments: list[compose.Attachment],
                   original: Message | None = None,
                   input_errors: dict[str, str] | None = None,
                   send_at: datetime | None = None) -> ComposeOutcome:
    """Check the form's values, queue the message and deliver it now.

    ``original``: the message replied to (threading headers come from it);
    ``input_errors``: what the route found wrong while reading the input (the
    attachments), reported with the rest. Nothing is queued while anything is wrong."""
    parsed, errors = _check(values)
    errors.update(input_errors or {})
    if errors:
        return ComposeOutcome(errors=errors)
    in_reply_to, references = _thread_headers(original)
    records = visible_records(addon.host, user, values["records"])
    # Mail to a candidate's or contact's address is recorded on them, too.
    addresses = [a for key in ("to", "cc", "bcc") for _n, a in parsed[key]]
    for matches in addon.host.records_by_email(addresses).values():
        for rec in matches:
            if rec.ref not in records and addon.host.may_view_record(user, rec.ref):
                records.append(rec.ref)
    draft = compose.Draft(
        from_name=user.name, from_addr=mb.email, to=parsed["to"], cc=parsed["cc"],
        bcc=parsed["bcc"], subject=values["subject"], body_text=values["body"],
        formatted=values["formatted"], in_reply_to=in_reply_to, references=references,
        attachments=attachments)
    try:
        row = outbox.queue(addon, session, user, mb, draft, records)
    except (compose.HeaderError, ValueError) as exc:
        return ComposeOutcome(errors={"subject": getattr(exc, "sentence", None) or (
            N_("This message cannot be sent as written. Check the recipients and subject."))})
    if send_at is not None:  # send later: the send job delivers it at its time
        send_later.schedule_row(session, row, send_at)
        return ComposeOutcome(row=row, records=records)
    row = outbox.deliver(addon, row.id) or row
    return ComposeOutcome(row=row, records=records)


def _check(values: dict[str, Any]) -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """The parsed recipients, and a sentence for each field that is wrong."""
    errors: dict[str, str] = {}
    parsed: dict[str, list[tuple[str, str]]] = {}
    for name, label in ADDRESS_FIELDS:
        try:
            parsed[name] = compose.parse_addresses(values[name], label)
        except compose.HeaderError as exc:
            errors[name] = exc.sentence
            parsed[name] = []
    if not errors.get("to") and not (parsed["to"] or parsed["cc"] or parsed["bcc"]):
        errors["to"] = N_("Enter at least one recipient, like name@example.com.")
    try:
        compose.check_header(values["subject"], "subject")
    except compose.HeaderError as exc:
        errors["subject"] = exc.sentence
    return parsed, errors


def _thread_headers(original: Message | None) -> tuple[str | None, str | None]:
    """In-Reply-To and References of a reply to ``original`` (None, None otherwise)."""
    if original is None:
        return None, None
    refs = (original.references or "").split()
    if original.message_id_header and original.message_id_header not in refs:
        refs.append(original.message_id_header)
    return original.message_id_header, " ".join(refs[-20:]) or None


def reply_values(msg: Message, mode: str, mb: Mailbox) -> dict[str, Any]:
    """The compose form pre-filled from ``msg``: recipients, subject, quoted text."""
    own = mb.email.lower()
    to_pairs = [tuple(p) for p in json.loads(msg.to_addrs or "[]")]
    cc_pairs = [tuple(p) for p in json.loads(msg.cc_addrs or "[]")]
    sender = (msg.from_name, msg.from_addr)

    def fmt(pairs: Iterable[tuple[str, str]]) -> str:
        seen, out = set(), []
        for name, addr in pairs:
            if not addr or addr.lower() == own or addr.lower() in seen:
                continue
            seen.add(addr.lower())
            out.append(f'"{name}" <{addr}>' if name and not any(c in name for c in '"\\')
                       else addr)
        return ", ".join(out)

    who = msg.from_name or msg.from_addr
    if mode == "forward":
        to, cc = "", ""
        subject = compose.reply_subject(msg.subject, "Fwd")
        body = ("\n\n---------- Forwarded message ----------\n"
                f"From: {who} <{msg.from_addr}>\nDate: {msg.date:%d %b %Y, %H:%M}\n"
                f"Subject: {msg.subject}\n\n{msg.body_text or ''}\n")
    else:
        # Replying to one's own sent message goes to its recipients again.
        primary = to_pairs if msg.direction == "out" else [sender] + (
            to_pairs if mode == "reply_all" else [])
        to = fmt(primary)
        cc = fmt([p for p in cc_pairs if p not in primary]) if mode == "reply_all" else ""
        subject = compose.reply_subject(msg.subject, "Re")
        body = compose.quote_text(msg.body_text, who, msg.date)
    records = [f"{link.record_kind}:{link.record_id}" for link in msg.links]
    # A forward carries every file of the original (inline images too) until unticked.
    forward = [str(a.id) for a in msg.attachments] if mode == "forward" else []
    return {"to": to, "cc": cc, "bcc": "", "subject": subject, "body": body,
            "formatted": False, "source": str(msg.id), "mode": mode, "records": records,
            "forward": forward}


@dataclass
class ForwardedFiles:
    """The original's files a forward keeps, read from its stored bytes."""

    attachments: list[compose.Attachment] = field(default_factory=list)
    #: decoded bytes in all, for the attachment size limit
    total: int = 0
    #: a sentence when one of them cannot be read
    problem: str | None = None


def forwarded_files(config: Mapping[str, Any], original: Message,
                    chosen: Iterable[str]) -> ForwardedFiles:
    """The attachments of ``original`` whose ids the form kept ticked.

    Only the original's own attachments count: the caller found ``original`` by the
    sharing rule, so an id of any other message's file is ignored."""
    wanted = set(chosen)
    out = ForwardedFiles()
    for att in original.attachments:
        if str(att.id) not in wanted:
            continue
        data = attachment_bytes(config, att)
        if data is None:
            out.problem = N_("The file %(file)s of the forwarded message could not be read. "
                             "Untick it, or save it and attach it again.", file=att.filename)
            return out
        ctype = att.content_type or "application/octet-stream"
        if ctype.startswith("message/"):
            # message/rfc822 may not be base64-encoded (RFC 2046); as a file it can be.
            ctype = "application/octet-stream"
        out.attachments.append(compose.Attachment(att.filename, ctype, data))
        out.total += len(data)
    return out
