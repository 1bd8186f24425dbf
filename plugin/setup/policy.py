"""The connection policy in force: config allow-list + the admin's list + CA + timeout."""

from __future__ import annotations

from sqlalchemy.orm import Session

from plugin.config import allowed_hosts
from plugin.context import AddonContext
from plugin.mail.connect import ConnectionPolicy
from plugin.models import GlobalSettings
from plugin.setup.discovery_config import discovery_settings


def connection_policy(addon: AddonContext, session: Session) -> ConnectionPolicy:
    """Where the form and the jobs may connect: allow-lists, the CA file, the timeout,
    the DNS servers."""
    app = addon.app
    hosts = set(allowed_hosts(app))
    gs = session.get(GlobalSettings, 1)
    if gs and gs.allowed_mail_hosts:
        hosts.update(h.strip() for h in gs.allowed_mail_hosts.splitlines() if h.strip())
    # Mail hosts resolve through discovery's DNS servers, so a host it found is reachable.
    found_with = discovery_settings(app.config)
    return ConnectionPolicy(allowed_hosts=frozenset(hosts), ca_file=app.config["IE_CA_FILE"],
                            timeout=float(app.config["IE_MAIL_TIMEOUT"]),
                            nameservers=found_with.nameservers, dns_port=found_with.dns_port)
