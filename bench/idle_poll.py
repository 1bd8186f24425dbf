"""Polling an unchanged mailbox (100 and 10,000 messages) versus a raw
connect + login + STATUS + logout over TLS. Ours is a whole sync_mailbox call:
database reads and status writes included. Interleaved, best of --rounds.

``--auth oauth``: the mailbox signs in with a (valid) OAuth2 access token, and the
baseline is imaplib's ``AUTHENTICATE XOAUTH2`` with the same token; Dovecot checks the
token at the lab provider's introspection endpoint on both sides. The target is that a
poll pays no token refresh or extra round trip while the token is valid.
"""
from __future__ import annotations

import argparse
import logging

from _lab import OAUTH, addon_app, imap_login, lab, new_mailbox, timed, tls_context


def baseline_poll(dovecot, user) -> None:
    m = imap_login(dovecot, user)
    m.status("INBOX", "(UIDVALIDITY UIDNEXT MESSAGES)")
    m.logout()


def baseline_oauth_poll(dovecot, user, token: str) -> None:
    import imaplib
    m = imaplib.IMAP4_SSL("localhost", dovecot.imaps, ssl_context=tls_context(dovecot))
    m.authenticate("XOAUTH2", lambda _: f"user={user.email}\x01auth=Bearer {token}\x01\x01")
    m.status("INBOX", "(UIDVALIDITY UIDNEXT MESSAGES)")
    m.logout()


def signed_in_mailbox(addon, dovecot, user) -> tuple[int, str]:
    """A mailbox signed in with Microsoft (the lab provider), token valid for an hour."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy.orm import Session

    from plugin.models import Mailbox
    from plugin.models.oauth import OAuthToken
    oauth = OAUTH["lab"]
    client = oauth.add_client()
    addon.app.config.update(
        IE_OAUTH_MICROSOFT_CLIENT_ID=client.client_id,
        IE_OAUTH_MICROSOFT_CLIENT_SECRET=client.client_secret,
        IE_OAUTH_ENDPOINTS={"microsoft": {"token_url": oauth.token_url,
                                          "authorize_url": oauth.authorize_url}})
    token = oauth.mint_token(user.email, client=client, lifetime=3600)
    mbid = new_mailbox(addon, dovecot, user)
    with Session(addon.engine) as s, s.begin():
        mb = s.get(Mailbox, mbid)
        mb.oauth_provider, mb.in_login, mb.in_password = "microsoft", user.email, None
        s.add(OAuthToken(mailbox_id=mbid, provider="microsoft", account=user.email,
                         refresh_token=addon.secrets.encrypt(token.refresh_token),
                         access_token=addon.secrets.encrypt(token.access_token),
                         access_expires_at=datetime.now(timezone.utc) + timedelta(hours=1),
                         version=1))
    return mbid, token.access_token


def measure(dovecot, addon, user, polls: int, rounds: int, auth: str) -> float:
    from plugin.jobs.dispatcher import fetch_and_link as sync_mailbox
    if auth == "oauth":
        mbid, token = signed_in_mailbox(addon, dovecot, user)
        refreshes = len(OAUTH["lab"].token_requests)
        base = lambda: baseline_oauth_poll(dovecot, user, token)  # noqa: E731
    else:
        mbid = new_mailbox(addon, dovecot, user)
        base = lambda: baseline_poll(dovecot, user)  # noqa: E731
    first = sync_mailbox(addon, mbid)
    assert first.error_kind is None, first
    best_base = best_ours = float("inf")
    for _ in range(rounds):
        tb, _ = timed(lambda: [base() for _ in range(polls)])
        to, results = timed(lambda: [sync_mailbox(addon, mbid) for _ in range(polls)])
        assert all(r.error_kind is None and r.stored == 0 for r in results)
        best_base, best_ours = min(best_base, tb), min(best_ours, to)
    if auth == "oauth":  # a valid token is never refreshed on a poll
        assert len(OAUTH["lab"].token_requests) == refreshes
    print(f"{user.login}: baseline {best_base / polls * 1000:.2f} ms/poll, "
          f"ours {best_ours / polls * 1000:.2f} ms/poll", flush=True)
    return best_ours / best_base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--polls", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--auth", choices=["password", "oauth"], default="password")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with lab(oauth=args.auth == "oauth") as dovecot, addon_app(dovecot) as addon:
        ratios = {}
        for n in (100, 10_000):
            user = dovecot.add_user(f"idle{n}", "idle-pass")
            dovecot.fill(user, n)
            ratios[n] = measure(dovecot, addon, user, args.polls, args.rounds, args.auth)
        label = "oauth idle poll ratio" if args.auth == "oauth" else "idle poll ratio"
        print(f"{label}: {ratios[100]:.2f} at 100, {ratios[10_000]:.2f} at 10000")


if __name__ == "__main__":
    main()
