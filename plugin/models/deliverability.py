"""What keeps bulk mail landing: provider limits the admin changed, a mailbox's
slowed pace after throttling, the company's suppression list, and bounces."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import Base
from plugin.models._types import UTCDateTime, utcnow


class SendLimit(Base):
    """An administrator's own sending limits for one provider (else the built-in table)."""

    __tablename__ = "ie_send_limit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: key of plugin.sending.limits.PROVIDER_LIMITS ("other": servers not in the table)
    provider: Mapped[str] = mapped_column(String(32), unique=True)
    #: most messages a minute from one mailbox (0: no limit)
    per_minute: Mapped[int] = mapped_column(Integer)
    #: most messages in 24 hours from one mailbox (0: no limit)
    per_day: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SendPace(Base):
    """A mailbox its server asked to slow down: the slower rate and until when."""

    __tablename__ = "ie_send_pace"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("ie_mailbox.id", ondelete="CASCADE"), unique=True)
    #: messages a minute while slowed down
    per_minute: Mapped[int] = mapped_column(Integer)
    #: the slower rate holds until then; after it the provider's limit again
    slowed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: throttling answers seen (reset when the slow-down ends)
    throttles: Mapped[int] = mapped_column(Integer, default=0)


class Suppression(Base):
    """An address bulk email never goes to again: it unsubscribed or hard-bounced."""

    __tablename__ = "ie_suppression"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: lower-cased address
    address: Mapped[str] = mapped_column(String(320), unique=True)
    #: "unsubscribed" or "bounced"
    reason: Mapped[str] = mapped_column(String(16))
    #: plain words shown in previews and on the record ("mailbox does not exist")
    detail: Mapped[str] = mapped_column(String(200), default="")
    #: the outbound message the unsubscribe link or bounce belonged to
    outbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("ie_outbound_message.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Bounce(Base):
    """A delivery failure report that arrived for a message the ATS sent."""

    __tablename__ = "ie_bounce"
    __table_args__ = (Index("ix_ie_bounce_outbound", "outbound_id"),
                      UniqueConstraint("message_id", "address"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbound_id: Mapped[int] = mapped_column(
        ForeignKey("ie_outbound_message.id", ondelete="CASCADE"))
    #: the stored report (shown in the webmail, never linked to records)
    message_id: Mapped[int] = mapped_column(ForeignKey("ie_message.id", ondelete="CASCADE"))
    #: the recipient that failed, lower-cased
    address: Mapped[str] = mapped_column(String(320))
    #: True: permanent (the address is suppressed); False: temporary
    hard: Mapped[bool] = mapped_column(Boolean, default=True)
    #: RFC 3463 status ("5.1.1") when the report gives one
    status: Mapped[str | None] = mapped_column(String(16))
    #: plain words ("mailbox does not exist")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MailTemplate(Base):
    """A saved subject and body (with merge fields), personal or shared with everyone."""

    __tablename__ = "ie_mail_template"
    __table_args__ = (Index("ix_ie_mail_template_user", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: host user id of its author (the only one who may change it)
    user_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    #: True: every user may pick it; False: only its author
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Signature(Base):
    """A mailbox's signature, added under new mail and replies (formatting like the body)."""

    __tablename__ = "ie_signature"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("ie_mailbox.id", ondelete="CASCADE"), unique=True)
    #: plain text; **bold**, *italic* and links become formatting in formatted mail
    text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
