"""A mailbox's OAuth tokens at rest: stored encrypted, refreshed shortly before expiry.

A poll while the access token is valid costs one read and no network call. A refresh is
claimed first with a compare-and-swap on the row's ``version`` (and a short claim that a
crashed process lets lapse), so of two processes only one spends the refresh token; the
other waits and uses what the winner stored. Microsoft rotates refresh tokens: the new one
is written in the same statement as the new access token. ``invalid_grant`` (revoked,
expired, password changed) clears the tokens and pauses the mailbox until its owner signs
in again, as a rejected password does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from plugin.crypto import SecretBox
from plugin.mail.errors import OAUTH_SIGN_IN_AGAIN, SENTENCES
from plugin.models import Mailbox
from plugin.models._types import utcnow
from plugin.models.oauth import OAuthToken
from plugin.setup.oauth_client import SIGN_IN_AGAIN, TIMEOUT, OAuthFailure, TokenSet

#: refresh this long before the access token expires (not on every sync)
REFRESH_MARGIN = timedelta(minutes=5)
#: how long a refresh claim holds; longer than the client's HTTP timeout
CLAIM = timedelta(seconds=30)
PAUSE_REASON = "oauth"
SIGN_IN_AGAIN_SENTENCE = SENTENCES[OAUTH_SIGN_IN_AGAIN]


def save_sign_in(session: Session, box: SecretBox, mailbox_id: int, provider: str,
                 tokens: TokenSet) -> None:
    """Store a fresh sign-in (in the caller's transaction) and resume a mailbox paused for it."""
    row = session.scalar(select(OAuthToken).where(OAuthToken.mailbox_id == mailbox_id))
    if row is None:
        row = OAuthToken(mailbox_id=mailbox_id, version=0)
        session.add(row)
    row.provider = provider
    row.account = tokens.account or row.account
    row.access_token = box.encrypt(tokens.access_token)
    row.access_expires_at = datetime.fromtimestamp(tokens.expires_at, utcnow().tzinfo)
    if tokens.refresh_token:
        row.refresh_token = box.encrypt(tokens.refresh_token)
    row.version = (row.version or 0) + 1
    row.refreshing_until = None
    row.updated_at = utcnow()
    mb = session.get(Mailbox, mailbox_id)
    if mb is not None and mb.paused and mb.pause_reason == PAUSE_REASON:
        mb.paused = False
        mb.pause_reason = None
        mb.last_error = mb.last_error_kind = None
        mb.auth_failures = mb.failure_count = 0
        mb.next_fetch_at = None


def _fresh(row: Any, now: datetime, margin: timedelta) -> bool:
    return (row.access_token is not None and row.access_expires_at is not None
            and row.access_expires_at - margin > now)


def access_token(engine: Engine, box: SecretBox, mailbox_id: int,
                 refresh: Callable[[str], TokenSet], *, margin: timedelta = REFRESH_MARGIN,
                 wait: float = 15.0, clock: Callable[[], datetime] = utcnow) -> str:
    """The mailbox's access token, refreshed first when it expires within ``margin``.

    ``refresh`` trades a refresh token for a TokenSet (``oauth_client.refresh`` bound to
    the provider and client). Raises OAuthFailure: ``sign_in_again`` (the mailbox is then
    paused), or a transient kind (nothing changed; try later).
    """
    table = OAuthToken.__table__
    deadline = time.monotonic() + wait
    while True:
        now = clock()
        with engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.mailbox_id == mailbox_id)).first()
        if row is None or (row.refresh_token is None and not _fresh(row, now, timedelta())):
            raise OAuthFailure(SIGN_IN_AGAIN)
        if _fresh(row, now, margin) or (row.refresh_token is None):
            return box.decrypt(row.access_token)
        claimed = row.version + 1
        with engine.begin() as conn:
            won = conn.execute(
                update(table)
                .where(table.c.id == row.id, table.c.version == row.version,
                       or_(table.c.refreshing_until.is_(None), table.c.refreshing_until < now))
                .values(version=claimed, refreshing_until=now + CLAIM)).rowcount == 1
        if not won:  # another process refreshes: use its token once it is stored
            if time.monotonic() > deadline:
                if _fresh(row, now, timedelta()):
                    return box.decrypt(row.access_token)
                raise OAuthFailure(TIMEOUT)
            time.sleep(0.05)
            continue
        return _refresh_claimed(engine, box, row, claimed, refresh, clock)


def _refresh_claimed(engine: Engine, box: SecretBox, row: Any, claimed: int,
                     refresh: Callable[[str], TokenSet], clock: Callable[[], datetime]) -> str:
    table = OAuthToken.__table__
    mine = (table.c.id == row.id) & (table.c.version == claimed)
    try:
        tokens = refresh(box.decrypt(row.refresh_token))
    except OAuthFailure as failure:
        with engine.begin() as conn:
            if failure.kind == SIGN_IN_AGAIN:
                if conn.execute(update(table).where(mine).values(
                        version=claimed + 1, refresh_token=None, access_token=None,
                        access_expires_at=None, refreshing_until=None,
                        updated_at=clock())).rowcount == 1:
                    conn.execute(update(Mailbox.__table__)
                                 .where(Mailbox.__table__.c.id == row.mailbox_id)
                                 .values(paused=True, pause_reason=PAUSE_REASON,
                                         last_error=SIGN_IN_AGAIN_SENTENCE,
                                         last_error_kind=OAUTH_SIGN_IN_AGAIN,
                                         next_fetch_at=None))
            else:  # transient: give the claim back, keep every token
                conn.execute(update(table).where(mine).values(refreshing_until=None))
        raise
    values = {"version": claimed + 1, "access_token": box.encrypt(tokens.access_token),
              "access_expires_at": datetime.fromtimestamp(tokens.expires_at, clock().tzinfo),
              "refreshing_until": None, "updated_at": clock()}
    if tokens.rotated and tokens.refresh_token:
        values["refresh_token"] = box.encrypt(tokens.refresh_token)
    with engine.begin() as conn:
        stored = conn.execute(update(table).where(mine).values(**values)).rowcount == 1
    if not stored:
        # Our claim lapsed and another process took over; its write stands.
        raise OAuthFailure(TIMEOUT)
    return tokens.access_token


def expire_access_token(engine: Engine, mailbox_id: int) -> None:
    """Treat the stored access token as expired (a mail server refused it), so the next
    :func:`access_token` refreshes; the refresh token and any refresh under way stay."""
    table = OAuthToken.__table__
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.mailbox_id == mailbox_id,
                                         table.c.refreshing_until.is_(None))
                     .values(access_expires_at=utcnow() - timedelta(seconds=1),
                             version=table.c.version + 1))
