"""Outgoing mail: the outbox (one row per message per recipient set) and bulk jobs.

An :class:`OutboundMessage` row exists, with its Message-ID, before any byte goes to
the SMTP server; its ``state`` tells what is known about it:

    queued -> sending -> sent -> filed
                     \\-> failed (a plain reason)   \\-> unknown (found in sending
                                                      after a crash, not proven sent)

A bulk send is a :class:`BulkJob` plus one outbox row per recipient, so the same
state machine covers one message and a thousand.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base
from plugin.models._types import UTCDateTime, utcnow

#: every state of an outbox row; "cancelled" is a bulk row that was never attempted
OUTBOX_STATES = ("queued", "sending", "sent", "filed", "failed", "unknown", "cancelled")
#: states after which the message went out (or is proven to have)
DELIVERED_STATES = ("sent", "filed")
#: states that will not change without a person deciding
FINAL_STATES = ("filed", "failed", "unknown", "cancelled")


class OutboundMessage(Base):
    """One message the ATS sends (or sent) through a user's own SMTP server."""

    __tablename__ = "ie_outbound_message"
    __table_args__ = (
        Index("ix_ie_outbound_due", "state", "next_attempt_at"),
        Index("ix_ie_outbound_job", "bulk_job_id", "state"),
        Index("ix_ie_outbound_user", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: host user id of the sender
    user_id: Mapped[str] = mapped_column(String(255))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("ie_mailbox.id", ondelete="CASCADE"))
    #: the bulk job this row is one recipient of; None for a single message
    bulk_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("ie_bulk_job.id", ondelete="CASCADE"))
    #: Message-ID made before sending, without angle brackets
    message_id_header: Mapped[str] = mapped_column(String(255), unique=True)
    #: see OUTBOX_STATES
    state: Mapped[str] = mapped_column(String(10), default="queued")
    from_addr: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(320), default="")
    #: JSON lists of [name, address] pairs
    to_addrs: Mapped[str] = mapped_column(Text, default="[]")
    cc_addrs: Mapped[str] = mapped_column(Text, default="[]")
    #: envelope only: never written into the message's headers
    bcc_addrs: Mapped[str] = mapped_column(Text, default="[]")
    subject: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    #: HTML alternative of "formatted" messages, made from body_text
    body_html: Mapped[str | None] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(String(255))
    #: space-separated Message-IDs
    references: Mapped[str | None] = mapped_column(Text)
    #: JSON list of {"name", "type", "sha256", "size"}; bytes in the blob store
    attachments: Mapped[str] = mapped_column(Text, default="[]")
    #: space-separated record references ("candidate:12 contact:3") to note it on
    record_refs: Mapped[str] = mapped_column(Text, default="")
    #: bulk only: the recipient's signed one-click unsubscribe URL (List-Unsubscribe)
    unsubscribe_url: Mapped[str | None] = mapped_column(String(600))
    #: the Date header, fixed when sending starts so a rebuild gives the same bytes
    date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: a temporary failure waits until then
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: worker sending it ("host:pid:token"), and until when
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: MailError kind (or "crash", "merge") of the last failure
    error_kind: Mapped[str | None] = mapped_column(String(32))
    #: one plain sentence for the sender
    error: Mapped[str | None] = mapped_column(Text)
    #: the copy in the add-on's store (Sent view, record timelines)
    stored_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("ie_message.id", ondelete="SET NULL"))
    #: True once the copy is in the Sent folder (or the provider files it itself)
    in_sent_folder: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    job: Mapped[BulkJob | None] = relationship(back_populates="recipients")

    @property
    def delivered(self) -> bool:
        """Whether SMTP accepted the message (sent or filed in Sent)."""
        return self.state in DELIVERED_STATES

    @property
    def to_text(self) -> str:
        """The To addresses, comma-separated, for lists."""
        import json
        return ", ".join(addr for _name, addr in json.loads(self.to_addrs or "[]"))


class BulkJob(Base):
    """One bulk send: a template, its recipients (outbox rows), and its progress."""

    __tablename__ = "ie_bulk_job"
    __table_args__ = (Index("ix_ie_bulk_job_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("ie_mailbox.id", ondelete="CASCADE"))
    #: the templates as written (merge fields in {{ }})
    subject_template: Mapped[str] = mapped_column(Text, default="")
    body_template: Mapped[str] = mapped_column(Text, default="")
    #: "queued", "running", "done", "cancelled" or "stopped" (a limit was reached)
    state: Mapped[str] = mapped_column(String(10), default="queued")
    #: recipients with an outbox row
    total: Mapped[int] = mapped_column(Integer, default=0)
    #: JSON list of {"name", "reason"}: selected but left out before sending
    skipped: Mapped[str] = mapped_column(Text, default="[]")
    #: seconds between two messages (the admin's spacing when the job was made)
    spacing_seconds: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: send window: weekdays it may send on ("01234": Monday to Friday), None: any time
    window_days: Mapped[str | None] = mapped_column(String(7))
    #: the window's local opening and closing time ("08:00", "18:00") and its zone
    window_start: Mapped[str | None] = mapped_column(String(5))
    window_end: Mapped[str | None] = mapped_column(String(5))
    window_zone: Mapped[str | None] = mapped_column(String(64))
    #: one plain sentence when the job stopped early (a limit, a bad password)
    notice: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    recipients: Mapped[list[OutboundMessage]] = relationship(
        back_populates="job", order_by="OutboundMessage.id")

    @property
    def finished(self) -> bool:
        """Whether the job has ended (done, cancelled or stopped)."""
        return self.state in ("done", "cancelled", "stopped")
