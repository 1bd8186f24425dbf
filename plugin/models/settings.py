"""Add-on activation and the admin's global settings (one row each)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import Base
from plugin.models._types import UTCDateTime

SHARING_OPTIONS = ("private", "custom", "public", "admin")


class AddonState(Base):
    """Whether the host's plugin manager has activated the add-on."""

    __tablename__ = "ie_addon_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: True between Activate and Deactivate; data is kept either way.
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    #: when the state last changed
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GlobalSettings(Base):
    """What the administrator decides for everyone.  ``saved_at`` opens the gate."""

    __tablename__ = "ie_global_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: None until an admin saves the page once; no one else may set up before
    saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: host user id of the admin who saved last
    saved_by: Mapped[str | None] = mapped_column(String(255))
    #: hides the webmail and records only outgoing mail
    outbound_only: Mapped[bool] = mapped_column(Boolean, default=False)
    #: email addresses on records open the add-on's compose instead of mailto:
    webmail_links: Mapped[bool] = mapped_column(Boolean, default=True)
    #: fetched mail is linked to candidates/contacts automatically
    auto_import: Mapped[bool] = mapped_column(Boolean, default=True)
    #: comma-separated subset of SHARING_OPTIONS users may pick
    sharing_allowed: Mapped[str] = mapped_column(String(64), default="private,custom,public,admin")
    #: the option pre-selected in set-up (never a default of complete sharing)
    sharing_default: Mapped[str] = mapped_column(String(16), default="private")
    #: minutes between fetches (raised to the provider's floor per mailbox)
    fetch_interval_minutes: Mapped[int] = mapped_column(Integer, default=10)
    #: first sync takes mail of the last N days ...
    initial_sync_days: Mapped[int] = mapped_column(Integer, default=30)
    #: ... and at most N messages per folder
    initial_sync_messages: Mapped[int] = mapped_column(Integer, default=500)
    #: most recipients in one bulk send
    bulk_per_send: Mapped[int] = mapped_column(Integer, default=200)
    #: most bulk messages one user may send per day
    bulk_per_day: Mapped[int] = mapped_column(Integer, default=500)
    #: seconds between two bulk messages
    bulk_spacing_seconds: Mapped[int] = mapped_column(Integer, default=2)
    #: one-click unsubscribe (RFC 8058) headers and link on bulk messages
    bulk_unsubscribe: Mapped[bool] = mapped_column(Boolean, default=True)
    #: extra mail hosts (one per line) allowed beyond IE_ALLOWED_MAIL_HOSTS
    allowed_mail_hosts: Mapped[str] = mapped_column(Text, default="")
    #: user ids (comma-separated) who do not see other users' public mail
    public_excluded_users: Mapped[str] = mapped_column(Text, default="")
    #: email domains (one per line) whose mail is never shared publicly
    public_excluded_domains: Mapped[str] = mapped_column(Text, default="")

    @property
    def is_complete(self) -> bool:
        """Whether the admin has completed the global settings (the set-up gate)."""
        return self.saved_at is not None

    @property
    def sharing_choices(self) -> list[str]:
        """The sharing options the admin lets users pick (private when none is)."""
        picked = [s for s in self.sharing_allowed.split(",") if s in SHARING_OPTIONS]
        return picked or ["private"]
