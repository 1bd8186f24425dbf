"""Bounce reports arriving in a sender's mailbox: recognised at import, matched to the
message the ATS sent, recorded per recipient, hard bounces suppressed.

Recognised: RFC 3464 delivery status notifications (``multipart/report;
report-type=delivery-status``), read here for each recipient's status and
diagnostic; and the common non-standard formats (qmail, Exim, Postfix, Exchange,
Yahoo, ...) through flufl.bounce, GNU Mailman's detectors. Only messages that look
like reports (a mailer-daemon sender, a report content type, a bounce subject) are
read at all, so ordinary mail never reaches the heuristics.

Matched only by one of our own Message-IDs quoted in the report, for a message this
mailbox sent, and only for an address that message went to: our Message-IDs are
random, so a report made up for a message we never sent, or naming someone it did
not go to, changes nothing. A recognised report is never linked to records as mail.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message as EmailMessage
from typing import Any

from flufl.bounce import all_failures
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.blobs import blob_store
from plugin.context import AddonContext
from plugin.mail import build as compose
from plugin.models.deliverability import Bounce
from plugin.models.outbound import OutboundMessage
from plugin.sending import suppression

log = logging.getLogger("plugin.integrated_email.bounces")

_DAEMON = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailer|bounces?|"
                     r"mail\.delivery\.subsystem|microsoftexchange[0-9a-f]*)@", re.I)
_SUBJECT = re.compile(r"undeliver|delivery status notification|returned mail|"
                      r"delivery (?:has )?fail|mail delivery failed|failure notice|"
                      r"could not be delivered|non-?delivery|delivery problem", re.I)
_IDS = re.compile(rb"<([^<>\s\"]{1,250}@[^<>\s\"]{1,250})>")
#: RFC 3463 statuses in plain words; the class alone when the detail is not listed
_WORDS = {"5.1.1": "mailbox does not exist", "5.1.10": "mailbox does not exist",
          "5.1.2": "the domain does not exist", "5.1.3": "the address is not valid",
          "5.1.6": "the mailbox has moved", "5.2.1": "the mailbox is disabled",
          "5.2.2": "the mailbox is full", "4.2.2": "the mailbox is full (still trying)",
          "5.2.3": "the message is too large", "5.3.4": "the message is too large",
          "5.4.1": "the recipient's server does not accept mail",
          "5.4.4": "the recipient's domain cannot be reached",
          "5.7.1": "refused by the recipient's server (its policy)"}
_TEXT_STATUS = re.compile(rb"\(#([45]\.\d{1,3}\.\d{1,3})\)|"
                          rb"\b[45]\d\d[ -]([45]\.\d{1,3}\.\d{1,3})\b")
_LIMIT = 1_000_000  # a report's first megabyte is read; returned attachments are not


@dataclass(frozen=True)
class Failure:
    """One recipient a report says the message did not reach."""

    address: str
    status: str | None
    permanent: bool

    @property
    def suppresses(self) -> bool:
        """Whether the address itself is bad (gone, unknown, disabled): never mail it again."""
        if self.status is None:
            return self.permanent
        return self.status.startswith("5.1.") or self.status == "5.2.1"

    @property
    def reason(self) -> str:
        """The plain words shown on the recipient's row and the record."""
        if self.status in _WORDS:
            return _WORDS[self.status]
        if self.status and self.status.startswith("4."):
            return "a temporary problem at the recipient's server (it keeps trying)"
        return "the recipient's server refused it" if self.permanent else \
            "a temporary problem at the recipient's server"


def looks_like_report(from_addr: str, subject: str, raw_head: bytes = b"") -> bool:
    """The cheap first test: a mailer-daemon sender, a bounce subject, or a report type."""
    return bool(_DAEMON.match(from_addr or "") or _SUBJECT.search(subject or "")
                or re.search(rb"(?i)report-type=\"?delivery-status", raw_head))


def _dsn_failures(msg: EmailMessage) -> list[Failure]:
    """Each failed or delayed recipient of an RFC 3464 report, with its status."""
    out = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks[1:] if isinstance(blocks, list) else []:
            action = str(block.get("Action", "")).strip().lower()
            if action not in ("failed", "delayed"):
                continue
            rcpt = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
            addr = rcpt.partition(";")[2].strip().strip("<>") if ";" in rcpt else rcpt.strip()
            status = str(block.get("Status", "")).strip().split(" ")[0] or None
            if status and not re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", status):
                status = None
            if addr:
                out.append(Failure(addr.lower(), status, action == "failed" and
                                   (status or "5").startswith("5")))
    return out


def failures_in(raw: bytes) -> list[Failure]:
    """What a report says failed; empty when it is no bounce report."""
    msg = email.message_from_bytes(raw[:_LIMIT], policy=email.policy.compat32)
    found = _dsn_failures(msg)
    if found:
        return found
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector tripping over malformed mail: not a report we can read
        log.info("bounce detectors could not read a message")
        return []
    # A status in the text ("550 5.1.1 ...", qmail's "(#5.1.1)") when one address failed.
    said = _TEXT_STATUS.search(raw[:_LIMIT]) if len(permanent) == 1 else None
    status = (said.group(1) or said.group(2)).decode() if said else None
    if status is not None and not status.startswith("5"):
        status = None
    out = [Failure(a.decode("utf-8", "replace").lower(), status, True) for a in permanent]
    out += [Failure(a.decode("utf-8", "replace").lower(), None, False)
            for a in temporary - permanent]
    return out


def take_reports(addon: AddonContext, session: Session, mailbox_id: int,
                 rows: Sequence[Any]) -> set[int]:
    """Record the bounce reports among freshly stored messages; their ids (to be left
    out of linking: a report is no candidate's mail). ``rows``: the messages as linking
    read them (``id``, ``from_addr``, ``subject``, ``blob_sha256``, ``direction``)."""
    likely = [r for r in rows if r.direction != "out" and looks_like_report(r.from_addr,
                                                                            r.subject)]
    if not likely:
        return set()
    blobs = blob_store(addon.app.config)
    reports: set[int] = set()
    for r in likely:
        try:
            raw = blobs.get(r.blob_sha256)
        except Exception:  # raw bytes dropped (retention) or missing: nothing to read
            continue
        failures = failures_in(raw)
        if not failures:
            continue
        reports.add(r.id)
        _record(session, mailbox_id, r.id, raw, failures)
    return reports


def _record(session: Session, mailbox_id: int, message_id: int, raw: bytes,
            failures: list[Failure]) -> None:
    """Bounce rows for the failures that name a recipient of our quoted message."""
    ids = {m.decode("ascii", "replace") for m in _IDS.findall(raw[:_LIMIT])}
    if not ids:
        return
    sent = session.scalars(select(OutboundMessage).where(
        OutboundMessage.mailbox_id == mailbox_id,
        OutboundMessage.message_id_header.in_(sorted(ids)[:200]))).all()
    seen: set[str] = set()
    for row in sent:
        recipients = {a.lower() for col in (row.to_addrs, row.cc_addrs, row.bcc_addrs)
                      for _n, a in compose.addresses_from_json(col)}
        for f in failures:
            if f.address not in recipients or f.address in seen:
                continue
            seen.add(f.address)
            session.add(Bounce(outbound_id=row.id, message_id=message_id, address=f.address,
                               hard=f.suppresses, status=f.status, reason=f.reason))
            session.flush()
            if f.suppresses:
                suppression.add_pending(session, f.address, "bounced", f.reason, row.id)
            log.info("bounce for outbound %s (%s)", row.id, f.status or "no status")


def for_outbound(session: Session, outbound_ids: list[int]) -> dict[int, Bounce]:
    """The latest bounce of each of those outbound rows."""
    out: dict[int, Bounce] = {}
    if outbound_ids:
        for b in session.scalars(select(Bounce).where(Bounce.outbound_id.in_(outbound_ids))
                                 .order_by(Bounce.id)):
            out[b.outbound_id] = b
    return out


def for_stored(session: Session, message_ids: list[int]) -> dict[int, Bounce]:
    """The latest bounce of the sent messages stored as those message ids."""
    if not message_ids:
        return {}
    rows = session.execute(select(OutboundMessage.stored_message_id, Bounce).join(
        Bounce, Bounce.outbound_id == OutboundMessage.id).where(
        OutboundMessage.stored_message_id.in_(message_ids)).order_by(Bounce.id)).all()
    return {mid: b for mid, b in rows}
