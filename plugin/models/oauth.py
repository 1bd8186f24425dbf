"""OAuth2 sign-ins: the admin's provider settings and each mailbox's tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from plugin.db import Base
from plugin.models._types import UTCDateTime


class OAuthProviderSettings(Base):
    """One built-in provider as the administrator set it up."""

    __tablename__ = "ie_oauth_provider"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: "google" or "microsoft" (plugin.setup.oauth_providers)
    provider: Mapped[str] = mapped_column(String(20), unique=True)
    #: users see "Sign in with ..." only when enabled
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    client_id: Mapped[str | None] = mapped_column(String(255))
    #: Fernet token, never shown again
    client_secret: Mapped[str | None] = mapped_column(Text)
    #: Microsoft: common, organizations, a tenant id or domain; None elsewhere
    tenant: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OAuthToken(Base):
    """The sign-in of one mailbox: both tokens encrypted, and a version for compare-and-swap.

    ``version`` grows on every write; a refresh first claims the row (``refreshing_until``)
    with the version it read, so of two processes only one ever spends a refresh token
    that the provider rotates, and the other waits and reads the new one.
    """

    __tablename__ = "ie_oauth_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("ie_mailbox.id", ondelete="CASCADE"),
                                            unique=True)
    #: "google" or "microsoft"
    provider: Mapped[str] = mapped_column(String(20))
    #: the address the provider says signed in
    account: Mapped[str] = mapped_column(String(320))
    #: Fernet token of the refresh token; None once the provider refused it
    refresh_token: Mapped[str | None] = mapped_column(Text)
    #: Fernet token of the current access token
    access_token: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: compare-and-swap counter
    version: Mapped[int] = mapped_column(Integer, default=0)
    #: a process is refreshing until then (a crashed one's claim lapses)
    refreshing_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
