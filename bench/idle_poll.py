"""Polling an unchanged mailbox (100 and 10,000 messages) versus a raw
connect + login + STATUS + logout over TLS. Ours is a whole sync_mailbox call:
database reads and status writes included. Interleaved, best of --rounds."""
from __future__ import annotations

import argparse
import logging

from _lab import addon_app, imap_login, lab, new_mailbox, timed


def baseline_poll(dovecot, user) -> None:
    m = imap_login(dovecot, user)
    m.status("INBOX", "(UIDVALIDITY UIDNEXT MESSAGES)")
    m.logout()


def measure(dovecot, addon, user, polls: int, rounds: int) -> float:
    from plugin.jobs.dispatcher import fetch_and_link as sync_mailbox
    mbid = new_mailbox(addon, dovecot, user)
    first = sync_mailbox(addon, mbid)
    assert first.error_kind is None, first
    best_base = best_ours = float("inf")
    for _ in range(rounds):
        tb, _ = timed(lambda: [baseline_poll(dovecot, user) for _ in range(polls)])
        to, results = timed(lambda: [sync_mailbox(addon, mbid) for _ in range(polls)])
        assert all(r.error_kind is None and r.stored == 0 for r in results)
        best_base, best_ours = min(best_base, tb), min(best_ours, to)
    print(f"{user.login}: baseline {best_base / polls * 1000:.2f} ms/poll, "
          f"ours {best_ours / polls * 1000:.2f} ms/poll", flush=True)
    return best_ours / best_base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--polls", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with lab() as dovecot, addon_app(dovecot) as addon:
        ratios = {}
        for n in (100, 10_000):
            user = dovecot.add_user(f"idle{n}", "idle-pass")
            dovecot.fill(user, n)
            ratios[n] = measure(dovecot, addon, user, args.polls, args.rounds)
        print(f"idle poll ratio: {ratios[100]:.2f} at 100, {ratios[10_000]:.2f} at 10000")


if __name__ == "__main__":
    main()
