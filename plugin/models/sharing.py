"""Sharing state: the records on which a mailbox owner ticked "Share email"."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import Base
from plugin.models._types import UTCDateTime, utcnow


class RecordShare(Base):
    """Owner ``owner_user_id`` shares the mail of a Custom mailbox with this record."""

    __tablename__ = "ie_record_share"
    __table_args__ = (UniqueConstraint("owner_user_id", "record_kind", "record_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: host user id of the mailbox owner who ticked the box
    owner_user_id: Mapped[str] = mapped_column(String(255))
    #: "candidate" or "contact"
    record_kind: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
