"""Connection test for the setup form: sign in to both servers, send nothing."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import MailError, classify
from plugin.mail.imap import ImapSession
from plugin.mail.pop3 import Pop3Session
from plugin.mail.smtp import SmtpSession

log = logging.getLogger("plugin.integrated_email.mail")


@dataclass(frozen=True)
class ProbeResult:
    """What went wrong on each side; ``None`` means that side worked (or was not tested)."""

    incoming_error: MailError | None = None
    outgoing_error: MailError | None = None

    @property
    def ok(self) -> bool:
        """Whether both sides worked."""
        return self.incoming_error is None and self.outgoing_error is None


def _probe_incoming(
    settings: ServerSettings, protocol: str, policy: ConnectionPolicy
) -> MailError | None:
    session_class = ImapSession if protocol == "imap" else Pop3Session
    try:
        with session_class(settings, policy):
            pass
    except MailError as exc:
        return exc
    except Exception as exc:  # a probe reports, it does not crash the form
        log.warning("unexpected %s while probing incoming server", type(exc).__name__)
        return classify(exc)
    return None


def _probe_outgoing(
    settings: ServerSettings, use_auth: bool, policy: ConnectionPolicy
) -> MailError | None:
    try:
        with SmtpSession(settings, policy, use_auth=use_auth):
            pass
    except MailError as exc:
        return exc
    except Exception as exc:  # same as above
        log.warning("unexpected %s while probing outgoing server", type(exc).__name__)
        return classify(exc)
    return None


def test_connection(
    incoming: ServerSettings | None,
    incoming_protocol: Literal["imap", "pop3"],
    outgoing: ServerSettings | None,
    use_auth: bool,
    policy: ConnectionPolicy,
) -> ProbeResult:
    """Sign in to the incoming server and authenticate to the outgoing one.

    Both sides run at the same time, so a form with two silent servers answers after
    one timeout rather than two.
    """
    if incoming_protocol not in ("imap", "pop3"):
        raise ValueError("incoming_protocol must be 'imap' or 'pop3'")
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ie-probe") as pool:
        incoming_future = (
            pool.submit(_probe_incoming, incoming, incoming_protocol, policy) if incoming else None
        )
        outgoing_future = (
            pool.submit(_probe_outgoing, outgoing, use_auth, policy) if outgoing else None
        )
        result = ProbeResult(
            incoming_error=incoming_future.result() if incoming_future else None,
            outgoing_error=outgoing_future.result() if outgoing_future else None,
        )
    log.info(
        "connection test: incoming=%s outgoing=%s",
        result.incoming_error.kind if result.incoming_error else "ok",
        result.outgoing_error.kind if result.outgoing_error else "ok",
    )
    return result


# pytest collects functions named test_* from imported modules; this one is an API.
test_connection.__test__ = False  # type: ignore[attr-defined]
