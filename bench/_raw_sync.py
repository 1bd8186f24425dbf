"""The scale-out benchmark's raw baseline: the IMAP work of a sync, nothing else.

Per mailbox, with plain ``imaplib`` over TLS, the commands a sync needs: a poll
that finds ``new`` messages is connect, LOGIN, STATUS INBOX, EXAMINE INBOX, UID
SEARCH of the new UIDs, UID FETCH of them, STATUS Sent, LOGOUT; a first sync
(``new`` = 0: everything) is connect, LOGIN, LIST, and per folder EXAMINE, UID
SEARCH ALL, UID FETCH, then LOGOUT. No parsing, no database, no host: what the
protocol alone costs, run by the same number of processes and threads as the
workers.

Started by bench/scale_out.py with the ``spawn`` method (a clean interpreter).
"""
from __future__ import annotations

import imaplib
import ssl
import threading


def _sync(port: int, context: ssl.SSLContext, login: str, password: str,
          new: int = 0) -> int:
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=120)
    m.login(login, password)
    fetched = 0
    if new:
        _typ, dat = m.status("INBOX", "(UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)")
        uidnext = int(dat[0].split(b"UIDNEXT ")[1].split()[0].rstrip(b")"))
        folders = ["INBOX"]
        search = ("UID", f"{max(uidnext - new, 1)}:*")
    else:
        m._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
        folders = ["INBOX", "Sent"]
        search = ("ALL",)
    for folder in folders:
        m.select(folder, readonly=True)
        _typ, dat = m.uid("SEARCH", *search)
        uids = dat[0].split()
        if uids:
            _typ, dat = m.uid("FETCH", b",".join(uids).decode(),
                              "(UID FLAGS INTERNALDATE BODY.PEEK[])")
            fetched += sum(1 for part in dat if isinstance(part, tuple))
    if new:
        m.status("Sent", "(UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)")
    m.logout()
    return fetched


def sync_all(port: int, ca_file: str, accounts: list[tuple[str, str]], threads: int,
             new: int, claim) -> int:  # a multiprocessing.Value("i")
    """Sync mailboxes claimed from the counter ``claim`` (shared with other processes,
    or not) on ``threads`` threads until none is left; returns the messages fetched."""
    context = ssl.create_default_context(cafile=ca_file)
    counts = []
    lock = threading.Lock()

    def worker() -> None:
        n = 0
        while True:
            with claim.get_lock():
                i = claim.value
                claim.value += 1
            if i >= len(accounts):
                break
            n += _sync(port, context, *accounts[i], new=new)
        with lock:
            counts.append(n)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts)


def run(port: int, ca_file: str, accounts: list[tuple[str, str]], threads: int, new: int,
        claim, start, results) -> None:  # multiprocessing primitives
    """One raw process of a round: wait for the start line, then :func:`sync_all`."""
    start.wait()
    results.put(sync_all(port, ca_file, accounts, threads, new, claim))
