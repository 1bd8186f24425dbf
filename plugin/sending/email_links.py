"""Email links on host pages: our compose, or a plain mailto:."""

from __future__ import annotations

from urllib.parse import quote

from flask import g, has_request_context, url_for
from sqlalchemy import select

from plugin.context import AddonContext
from plugin.host import RecordRef
from plugin.models import GlobalSettings, Mailbox


def _compose_allowed(addon: AddonContext) -> bool:
    """Admin said "email links use webmail" and the user has an active mailbox.

    Asked once per request: a list page calls this for every row."""
    if not has_request_context():
        return False
    cached = getattr(g, "_ie_compose_links", None)
    if cached is not None:
        return cached
    allowed = False
    user = addon.host.current_user()
    if user is not None and addon.is_active():
        with addon.engine.connect() as conn:
            links = conn.execute(select(GlobalSettings.webmail_links, GlobalSettings.saved_at)
                                 .where(GlobalSettings.id == 1)).first()
            if links is not None and links.webmail_links and links.saved_at is not None:
                allowed = conn.execute(select(Mailbox.id).where(
                    Mailbox.user_id == user.id, Mailbox.is_active.is_(True))).first() is not None
    g._ie_compose_links = allowed
    return allowed


def email_link(addon: AddonContext, address: str, record: RecordRef | str | None = None) -> str:
    """Where an address shown by the host should point: the add-on's compose (with
    the address filled in and the record linked) when the admin's "email links use
    webmail" is Yes and the user has an active mailbox; else ``mailto:``."""
    address = (address or "").strip()
    if address and _compose_allowed(addon):
        params = {"to": address}
        if record is not None:
            params["record"] = str(record)
        return url_for("integrated_email.compose", **params)
    return "mailto:" + quote(address, safe="@.+-_")
