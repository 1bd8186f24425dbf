"""The notes the add-on wrote on host records, so it can make them briefer or
remove them later (the host owns the notes themselves)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import Base
from plugin.models._types import UTCDateTime, utcnow

#: what a note says: the subject and text ("full") or only that an email was exchanged
FULL, BRIEF = "full", "brief"


class HostNote(Base):
    """A note written on ``record`` about ``message`` of ``mailbox`` under ``note_key``.

    Two mailboxes holding the same email share one host note (one key), each with
    its own row here, so removing one mailbox never removes the other's note.
    """

    __tablename__ = "ie_host_note"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "note_key"),
        Index("ix_ie_host_note_key", "note_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("ie_mailbox.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("ie_message.id", ondelete="CASCADE"),
                                            index=True)
    record_kind: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(255))
    note_key: Mapped[str] = mapped_column(String(700))
    #: FULL or BRIEF
    detail: Mapped[str] = mapped_column(String(8), default=BRIEF)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
