"""Full POP3 import into an empty store versus raw poplib RETR + parse, over TLS.

Baseline: poplib RETR of every message + email.message_from_bytes(policy=default) +
reading the text body, storing nothing. Ours: sync_mailbox (leave on server) into a
fresh SQLite store. Best of --rounds each."""
from __future__ import annotations

import argparse
import email
import email.policy
import logging
import poplib

from _lab import (add_store_flags, best_of_rounds, import_once, lab, realistic_message,
                  tls_context, use_store_flags)


def baseline(dovecot, user) -> int:
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
    p.quit()
    return count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    add_store_flags(ap)
    args = ap.parse_args()
    print(use_store_flags(args), flush=True)
    logging.basicConfig(level=logging.WARNING)
    with lab() as dovecot:
        user = dovecot.add_user("benchpop", "bench-pass")
        dovecot.fill(user, args.messages, make=realistic_message)
        best_base, best_ours = best_of_rounds(
            lambda: baseline(dovecot, user), lambda: import_once(dovecot, user, "pop3"),
            args.rounds, args.messages)
        print(f"pop3 import/baseline ratio: {best_base / best_ours:.2f}")


if __name__ == "__main__":
    main()
