"""A user's connected mailbox and its per-folder fetch cursors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plugin.db import Base
from plugin.models._types import UTCDateTime, utcnow


class Mailbox(Base):
    """One incoming/outgoing account of one user.  Exactly one per user is active."""

    __tablename__ = "ie_mailbox"
    __table_args__ = (
        Index("ix_ie_mailbox_user", "user_id"),
        # The sharing rule lists mailboxes by sharing mode on every timeline, search
        # and shared-folder query; without it SQLite builds a transient index each time.
        Index("ix_ie_mailbox_sharing", "sharing", "user_id"),
        Index("ix_ie_mailbox_due", "is_active", "paused", "next_fetch_at"),
        # A mailbox that fetches has a server to fetch from (an empty host crashed
        # Sent copies, consolidation and recovery before every path said so in words).
        CheckConstraint("protocol IS NULL OR (in_host IS NOT NULL AND in_host <> '')",
                        name="incoming_host"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: host user id of the owner
    user_id: Mapped[str] = mapped_column(String(255))
    #: the owner's label for it ("Work Gmail")
    account_name: Mapped[str] = mapped_column(String(120))
    #: the address mail is sent from
    email: Mapped[str] = mapped_column(String(320))
    #: the one mailbox of its owner that is fetched and sent from
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    #: "imap" or "pop3"; None in outbound-only set-ups
    protocol: Mapped[str | None] = mapped_column(String(8))
    in_host: Mapped[str | None] = mapped_column(String(255))
    in_port: Mapped[int | None] = mapped_column(Integer)
    #: "ssl", "starttls" or "none"
    in_security: Mapped[str | None] = mapped_column(String(10))
    in_login: Mapped[str | None] = mapped_column(String(320))
    #: Fernet token, never shown again
    in_password: Mapped[str | None] = mapped_column(Text)
    #: outgoing login/password are the incoming ones
    same_credentials: Mapped[bool] = mapped_column(Boolean, default=True)
    out_host: Mapped[str] = mapped_column(String(255))
    out_port: Mapped[int] = mapped_column(Integer)
    out_security: Mapped[str] = mapped_column(String(10))
    #: whether the outgoing server wants a login at all
    out_auth: Mapped[bool] = mapped_column(Boolean, default=True)
    out_login: Mapped[str | None] = mapped_column(String(320))
    #: Fernet token, never shown again
    out_password: Mapped[str | None] = mapped_column(Text)
    #: POP3: "leave", "after_retrieval" or "after_days"
    delete_policy: Mapped[str] = mapped_column(String(16), default="leave")
    #: with "after_days": how many
    delete_after_days: Mapped[int | None] = mapped_column(Integer)
    #: "private", "custom", "public" or "admin"
    sharing: Mapped[str] = mapped_column(String(10), default="private")
    #: IMAP folder (or Gmail label) that matched client mail is filed into; None: off
    consolidate_folder: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: "google" or "microsoft" when the mailbox signs in with OAuth2 (its tokens are in
    #: ie_oauth_token); None: it signs in with passwords
    oauth_provider: Mapped[str | None] = mapped_column(String(20))

    # --- fetch state, written by the sync engine and shown on the status panel
    #: fetching stopped until the owner acts (wrong password, looping UIDVALIDITY)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    #: machine-readable reason: "auth", "uidvalidity", ...
    pause_reason: Mapped[str | None] = mapped_column(String(32))
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: error kind from plugin.mail.errors
    last_error_kind: Mapped[str | None] = mapped_column(String(32))
    #: one plain sentence for the owner
    last_error: Mapped[str | None] = mapped_column(Text)
    #: consecutive failures (back-off grows with it)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    #: consecutive rejected logins (pauses after a few)
    auth_failures: Mapped[int] = mapped_column(Integer, default=0)
    messages_imported: Mapped[int] = mapped_column(Integer, default=0)
    #: when the dispatcher should fetch next; None: as soon as possible
    next_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: worker holding the fetch lease, and until when
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: a user asked for "Fetch now"
    fetch_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: progress of the sync under way (messages stored so far), for Fetch now
    progress_count: Mapped[int] = mapped_column(Integer, default=0)
    #: the last failure of a server action besides fetching (Sent copy, consolidation,
    #: flag push), in plain words for the status panel; cleared when it next works
    action_error: Mapped[str | None] = mapped_column(Text)
    #: which action: "sent_copy", "consolidate" or "flags" (fetching.status.ACTION_WORDS)
    action_error_kind: Mapped[str | None] = mapped_column(String(16))
    action_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    cursors: Mapped[list[FetchCursor]] = relationship(
        back_populates="mailbox", cascade="all, delete-orphan")

    @property
    def needs_password(self) -> bool:
        """Whether the mailbox's sign-in is waiting for a new password."""
        return self.paused and self.pause_reason == "auth"

    @property
    def needs_sign_in(self) -> bool:
        """Whether the mailbox waits for its owner to sign in with Google/Microsoft again."""
        return self.paused and self.pause_reason == "oauth"


class FetchCursor(Base):
    """How far an IMAP folder has been fetched: UIDVALIDITY and the highest UID.

    A POP3 mailbox has one row as well (folder "(pop3 window)"): whether its initial
    window is done and which old mail it left out (``plugin.fetching.pop3_window``)."""

    __tablename__ = "ie_fetch_cursor"
    __table_args__ = (UniqueConstraint("mailbox_id", "folder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("ie_mailbox.id", ondelete="CASCADE"))
    #: server folder name
    folder: Mapped[str] = mapped_column(String(255))
    #: "inbox", "sent" or None
    role: Mapped[str | None] = mapped_column(String(16))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    #: highest UID stored (or deliberately skipped by the initial window)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    #: UIDNEXT at the last look, so an unchanged folder costs one STATUS
    uidnext: Mapped[int | None] = mapped_column(BigInteger)
    #: HIGHESTMODSEQ at the last look (CONDSTORE): unchanged means no flag changed
    highestmodseq: Mapped[int | None] = mapped_column(BigInteger)
    #: UIDVALIDITY changes seen recently (pauses the mailbox if it keeps changing)
    uidvalidity_changes: Mapped[int] = mapped_column(Integer, default=0)
    #: when the first of those recent UIDVALIDITY changes was seen (a one-day window)
    uidvalidity_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    mailbox: Mapped[Mailbox] = relationship(back_populates="cursors")
