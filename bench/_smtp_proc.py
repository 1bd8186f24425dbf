"""The lab SMTP server (tests/lab/smtp.py) in a process of its own, for bench/bulk_send.py.

Why a process: the server is Python too; in the benchmark's own process it would
share the GIL with the client being measured.

    python bench/_smtp_proc.py CERT KEY LOGIN PASSWORD [pipelining|no-pipelining]
prints "PORTS <starttls> <tls>", then answers "count", "clear", "throttle N" (accept at
most N messages a minute, then 421 4.7.0), "throttled" (refusals so far), "busiest"
(most messages accepted in any 60 s) and "quit" on stdin."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lab.dovecot import MailUser  # noqa: E402 - after the sys.path line
from tests.lab.smtp import SmtpLab  # noqa: E402


class _Users:
    """Just enough of tests.lab.dovecot.Dovecot for SmtpLab: one login, the certs."""

    oauth = None

    def __init__(self, cert: str, key: str, login: str, password: str) -> None:
        self.certs = SimpleNamespace(cert=cert, key=key)
        self._user = MailUser(login, f"{login}@example.test", password, Path("/nonexistent"))

    def user(self, login_or_email: str):
        return self._user if login_or_email.split("@")[0] == self._user.login else None

    def deliver(self, user, raw) -> None:
        pass  # the benchmark's recipients are not lab users


def main() -> None:
    cert, key, login, password = sys.argv[1:5]
    pipelining = (sys.argv[5] if len(sys.argv) > 5 else "pipelining") == "pipelining"
    lab = SmtpLab(_Users(cert, key, login, password), with_plain=False,
                  pipelining=pipelining).start()
    print(f"PORTS {lab.starttls_port} {lab.tls_port}", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "count":
            print(len(lab.received), flush=True)
        elif cmd == "clear":
            lab.clear()
            print("ok", flush=True)
        elif cmd.startswith("throttle "):
            lab.throttle_per_minute = int(cmd.split()[1])
            print("ok", flush=True)
        elif cmd == "throttled":
            print(lab.throttled, flush=True)
        elif cmd == "busiest":
            times = sorted(r.at for r in lab.received)
            lo = most = 0
            for hi, t in enumerate(times):
                while times[lo] <= t - 60.0:
                    lo += 1
                most = max(most, hi - lo + 1)
            print(most, flush=True)
        elif cmd == "quit":
            break
    lab.stop()


if __name__ == "__main__":
    main()
