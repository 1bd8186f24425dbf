"""The connection policy in force: config allow-list + the admin's list + CA + timeout."""

from __future__ import annotations

from sqlalchemy.orm import Session

from plugin.config import allowed_hosts
from plugin.context import AddonContext
from plugin.mail.connect import ConnectionPolicy
from plugin.models import GlobalSettings


def connection_policy(addon: AddonContext, session: Session) -> ConnectionPolicy:
    """Where the form and the jobs may connect: allow-lists, the CA file, the timeout."""
    app = addon.app
    hosts = set(allowed_hosts(app))
    gs = session.get(GlobalSettings, 1)
    if gs and gs.allowed_mail_hosts:
        hosts.update(h.strip() for h in gs.allowed_mail_hosts.splitlines() if h.strip())
    return ConnectionPolicy(allowed_hosts=frozenset(hosts), ca_file=app.config["IE_CA_FILE"],
                            timeout=float(app.config["IE_MAIL_TIMEOUT"]))
