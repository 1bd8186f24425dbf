"""Stored mail: one row per message per mailbox, where it lives on the server,
its attachments, the messages that could not be processed, and record links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base
from plugin.models._types import UTCDateTime, utcnow


class Message(Base):
    """A message as its mailbox's owner has it.  The same mail in two users'
    mailboxes is two rows; the same mail in one mailbox's INBOX and Sent is one."""

    __tablename__ = "ie_message"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "message_key"),
        Index("ix_ie_message_list", "mailbox_id", "folder_role", "date"),
        Index("ix_ie_message_date", "mailbox_id", "date"),
        Index("ix_ie_message_msgid", "message_id_header"),
        Index("ix_ie_message_unchecked", "mailbox_id", "import_checked"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("ie_mailbox.id", ondelete="CASCADE"))
    #: Message-ID, or "sha256:<hash>" of the bytes when it has none: the per-mailbox key
    message_key: Mapped[str] = mapped_column(String(255))
    #: the Message-ID header as sent, without angle brackets
    message_id_header: Mapped[str | None] = mapped_column(String(255))
    in_reply_to: Mapped[str | None] = mapped_column(String(255))
    #: space-separated Message-IDs from References
    references: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text, default="")
    from_addr: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(320), default="")
    #: JSON list of [name, address] pairs
    to_addrs: Mapped[str] = mapped_column(Text, default="[]")
    cc_addrs: Mapped[str] = mapped_column(Text, default="[]")
    #: Date header, else the server's INTERNALDATE, else when stored
    date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: first characters of the text, for lists
    snippet: Mapped[str] = mapped_column(String(300), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    #: HTML as received (sanitized when shown, never stored sanitized-only)
    body_html: Mapped[str | None] = mapped_column(Text)
    #: ``body_html`` sanitized once, on first view (reading.render_body); None: not yet
    body_html_safe: Mapped[str | None] = mapped_column(Text)
    #: sha256 of the content the reader sees (mail.parse.content_digest): one Message-ID
    #: with other content is another message; None for rows from before 0008
    content_digest: Mapped[str | None] = mapped_column(String(64))
    has_attachments: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(Integer, default=0)
    #: sha256 of the raw bytes, which are in the blob store for every synced message
    #: and every sent one with attachments (see sender.keeps_raw_copy)
    blob_sha256: Mapped[str] = mapped_column(String(64))
    #: "inbox", "sent" or another folder role; where lists show it
    folder_role: Mapped[str] = mapped_column(String(16), default="inbox")
    #: "in" (received) or "out" (sent by the owner)
    direction: Mapped[str] = mapped_column(String(3), default="in")
    #: "synced" (from the mailbox) or "ats" (sent from the ATS) — decides sharing
    origin: Mapped[str] = mapped_column(String(8), default="synced")
    seen: Mapped[bool] = mapped_column(Boolean, default=False)
    #: deleted in webmail (kept for the records it is linked to)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: automatic import has looked at it (linked or not); False rows are swept up
    import_checked: Mapped[bool] = mapped_column(Boolean, default=False)
    #: copied/labelled into the owner's consolidation folder on the server
    consolidated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    locations: Mapped[list[MessageLocation]] = relationship(
        back_populates="message", cascade="all, delete-orphan")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="Attachment.id")
    links: Mapped[list[RecordLink]] = relationship(
        back_populates="message", cascade="all, delete-orphan")


class MessageLocation(Base):
    """Where a stored message sits on the server: an IMAP UID or a POP3 UIDL.
    The unique keys are what make a second fetch a no-op."""

    __tablename__ = "ie_message_location"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "folder", "uidvalidity", "uid"),
        UniqueConstraint("mailbox_id", "uidl"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("ie_message.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("ie_mailbox.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    #: POP3 unique id (suffixed "#n" when a server repeats one)
    uidl: Mapped[str | None] = mapped_column(String(255))
    #: when we first stored it (POP3 "delete after N days" counts from here)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: deleted on the server by us (POP3 policy or webmail delete)
    removed_from_server: Mapped[bool] = mapped_column(Boolean, default=False)

    message: Mapped[Message] = relationship(back_populates="locations")


class Attachment(Base):
    """Metadata of one attachment; the bytes stay inside the raw message blob."""

    __tablename__ = "ie_attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("ie_message.id", ondelete="CASCADE"), index=True)
    #: position of the part in a walk of the message, to find it again
    part_index: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255), default="attachment")
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    #: Content-ID for inline cid: images
    content_id: Mapped[str | None] = mapped_column(String(255))
    is_inline: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the encoded body's place in the raw blob: a download reads that slice only
    #: (None: look the part up by ``part_index``, reading the whole message)
    body_offset: Mapped[int | None] = mapped_column(BigInteger)
    body_length: Mapped[int | None] = mapped_column(BigInteger)
    transfer_encoding: Mapped[str | None] = mapped_column(String(32))

    message: Mapped[Message] = relationship(back_populates="attachments")


class Quarantine(Base):
    """A fetched message that could not be stored: kept aside with its bytes."""

    __tablename__ = "ie_quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("ie_mailbox.id", ondelete="CASCADE"), index=True)
    folder: Mapped[str | None] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    uidl: Mapped[str | None] = mapped_column(String(255))
    blob_sha256: Mapped[str] = mapped_column(String(64))
    #: the error, for the admin (never shown to users verbatim)
    error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RecordLink(Base):
    """A message recorded on a candidate or contact, exactly once."""

    __tablename__ = "ie_record_link"
    __table_args__ = (
        UniqueConstraint("message_id", "record_kind", "record_id"),
        Index("ix_ie_record_link_record", "record_kind", "record_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("ie_message.id", ondelete="CASCADE"))
    #: "candidate" or "contact"
    record_kind: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(255))
    #: "auto" (address match), "reply" (thread), "manual" or "sent"
    how: Mapped[str] = mapped_column(String(8), default="auto")
    #: host user id who linked it by hand
    linked_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    message: Mapped[Message] = relationship(back_populates="links")
