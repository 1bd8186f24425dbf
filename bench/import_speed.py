"""Full IMAP import into an empty store versus a raw baseline, side by side, over TLS.

Baseline: imaplib UID FETCH BODY.PEEK[] in batches of 500 + email.message_from_bytes
(policy=default) + reading the text body, storing nothing. Ours: the worker's whole
import (``fetch_and_link``: sync and linking) into an empty store (rows, attachment
metadata, raw blobs; ``--blobs``, ``--db``). Timed: the import alone; creating the
store (app, migrations) and removing it afterwards are printed beside it, not counted.
Best of --rounds each.
"""
from __future__ import annotations

import argparse
import email
import email.policy
import logging

from _lab import (add_store_flags, best_of_rounds, import_once, imap_login, lab, peak_rss_mb,
                  realistic_message, use_store_flags)


def baseline(dovecot, user) -> int:
    m = imap_login(dovecot, user)
    m.select("INBOX", readonly=True)
    _typ, dat = m.uid("SEARCH", "ALL")
    uids = [int(x) for x in dat[0].split()]
    n = 0
    for i in range(0, len(uids), 500):
        chunk = uids[i:i + 500]
        _typ, dat = m.uid("FETCH", f"{chunk[0]}:{chunk[-1]}", "(BODY.PEEK[])")
        for item in dat:
            if isinstance(item, tuple):
                msg = email.message_from_bytes(item[1], policy=email.policy.default)
                body = msg.get_body(("plain",))
                if body is not None:
                    body.get_content()
                n += 1
    m.logout()
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    add_store_flags(ap)
    args = ap.parse_args()
    print(use_store_flags(args), flush=True)
    logging.basicConfig(level=logging.WARNING)
    with lab() as dovecot:
        user = dovecot.add_user("bench", "bench-pass")
        dovecot.fill(user, args.messages, make=realistic_message)
        best_base, best_ours = best_of_rounds(
            lambda: baseline(dovecot, user), lambda: import_once(dovecot, user, "imap"),
            args.rounds, args.messages)
        x, y = args.messages / best_ours, args.messages / best_base
        print(f"import/baseline ratio: {x / y:.2f} (import {x:.0f} msg/s, baseline {y:.0f} "
              f"msg/s, peak RSS {peak_rss_mb():.0f} MB)")


if __name__ == "__main__":
    main()
