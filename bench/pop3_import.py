"""Full POP3 import into an empty store versus raw poplib RETR + parse, over TLS.

Baseline: poplib RETR of every message + email.message_from_bytes(policy=default) +
reading the text body, storing nothing. Ours: the worker's whole import (leave on
server) into an empty store (``--blobs``, ``--db``); timed as in import_speed.py (the
import alone; the store's creation and removal printed, not counted). Best of --rounds
each.

``--delete``: delete after retrieval, on both sides (the baseline sends DELE for every
message before QUIT; ours stores, makes the store durable, then deletes): the mailbox
is filled again before each side. Prints the syncs ours paid."""
from __future__ import annotations

import argparse
import email
import email.policy
import logging
import poplib

from _lab import (DURABILITY, add_store_flags, best_of_rounds, import_once, lab,
                  realistic_message, tls_context, use_store_flags)


def baseline(dovecot, user, delete: bool = False) -> int:
    p = poplib.POP3_SSL("localhost", dovecot.pop3s, context=tls_context(dovecot))
    p.user(user.login)
    p.pass_(user.password)
    count, _size = p.stat()
    for i in range(1, count + 1):
        _resp, lines, _octets = p.retr(i)
        msg = email.message_from_bytes(b"\r\n".join(lines), policy=email.policy.default)
        body = msg.get_body(("plain",))
        if body is not None:
            body.get_content()
        if delete:
            p.dele(i)
    p.quit()
    return count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--delete", action="store_true",
                    help="delete after retrieval (both sides), the mailbox refilled each time")
    add_store_flags(ap)
    args = ap.parse_args()
    label = use_store_flags(args)
    print(label + (" delete-after" if args.delete else ""), flush=True)
    logging.basicConfig(level=logging.WARNING)
    with lab() as dovecot:
        user = dovecot.add_user("benchpop", "bench-pass")
        dovecot.fill(user, args.messages, make=realistic_message)
        if args.delete:
            base = lambda: baseline(dovecot, user, delete=True)  # noqa: E731
            ours = lambda: import_once(dovecot, user, "pop3", "after_retrieval")  # noqa: E731
            best_base, best_ours = _rounds_with_refill(dovecot, user, args, base, ours)
            print(f"durability: {DURABILITY['rounds']} blob sync rounds "
                  f"({DURABILITY['fsyncs']} file fsyncs), {DURABILITY['checkpoints']} "
                  f"database checkpoints for {args.messages} messages", flush=True)
        else:
            best_base, best_ours = best_of_rounds(
                lambda: baseline(dovecot, user), lambda: import_once(dovecot, user, "pop3"),
                args.rounds, args.messages)
        print(f"pop3 import/baseline ratio: {best_base / best_ours:.2f}")


def _rounds_with_refill(dovecot, user, args, base, ours) -> tuple[float, float]:
    """Like best_of_rounds, the mailbox filled again (untimed) before each side."""
    import time
    best_base = best_ours = float("inf")
    for r in range(args.rounds):
        times = []
        for fn in (base, ours):
            if not dovecot.list_messages(user):
                dovecot.fill(user, args.messages, make=realistic_message)
            t = time.perf_counter()
            n = fn()
            times.append(getattr(n, "seconds", time.perf_counter() - t))  # ours: the import
            assert n == args.messages, n
            assert dovecot.list_messages(user) == [], "not deleted"
        print(f"round {r + 1}: baseline {times[0]:.2f} s, import {times[1]:.2f} s "
              f"({n.whole:.2f} s with creating and removing the store)", flush=True)
        best_base, best_ours = min(best_base, times[0]), min(best_ours, times[1])
    return best_base, best_ours


if __name__ == "__main__":
    main()
