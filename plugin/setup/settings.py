"""Reading and saving the admin's global settings (the gate of the set-up)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from plugin.mail.connect import parse_allow_entry
from plugin.mail.presets import min_poll_minutes
from plugin.models import GlobalSettings
from plugin.models.settings import SHARING_OPTIONS
from plugin.words import N_, said

SHARING_LABELS = {
    "private": N_("Private – only me"),
    "custom": N_("Custom – mail with the candidates and contacts I tick 'Share email' on"),
    "public": N_("Public – all my mail with candidates and contacts"),
    "admin": N_("Admin – administrators only"),
}
#: never below this, whatever the admin types: providers throttle faster polling
MIN_FETCH_MINUTES = 5
MAX_FETCH_MINUTES = 24 * 60


def load(session: Session) -> GlobalSettings:
    """The one settings row (an unsaved default when none exists yet)."""
    gs = session.get(GlobalSettings, 1)
    if gs is None:
        gs = GlobalSettings(id=1, outbound_only=False, webmail_links=True, auto_import=True,
                            sharing_allowed=",".join(SHARING_OPTIONS), sharing_default="private",
                            fetch_interval_minutes=10, initial_sync_days=30,
                            initial_sync_messages=500, bulk_per_send=200, bulk_per_day=500,
                            bulk_spacing_seconds=2, allowed_mail_hosts="",
                            public_excluded_users="", public_excluded_domains="")
    return gs


def auto_import(gs: GlobalSettings | None) -> bool:
    """The admin's "automatic import" switch (on until the settings say otherwise), of
    the settings row already read."""
    return True if gs is None or gs.auto_import is None else bool(gs.auto_import)


def is_complete(session: Session) -> bool:
    """Whether an admin has saved the global settings (the gate is open)."""
    gs = session.get(GlobalSettings, 1)
    return bool(gs and gs.saved_at)


def fetch_interval_for(gs: GlobalSettings, host: str | None) -> int:
    """Minutes between fetches for a mailbox on ``host``: never below the
    provider's floor (10 minutes for Gmail)."""
    return max(gs.fetch_interval_minutes, min_poll_minutes(host or ""), MIN_FETCH_MINUTES)


@dataclass
class SettingsForm:
    """The global-settings half of the admin page, parsed and checked."""

    values: dict = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: what was typed into each number field, shown again when it was refused
    typed: dict[str, str] = field(default_factory=dict)

    @property
    def shown(self) -> dict:
        """The values to draw the form with: a refused number keeps its typed text."""
        return {**self.values, **{k: t for k, t in self.typed.items() if k in self.errors}}


def _yes(form: Mapping[str, Any], name: str) -> bool:
    return str(form.get(name, "")).lower() in ("yes", "on", "true", "1")


def _int(form: Mapping[str, Any], name: str, errors: dict, lo: int, hi: int,
         label: str) -> int | None:
    raw = str(form.get(name, "")).strip()
    try:
        val = int(raw)
    except ValueError:
        errors[name] = N_("Enter %(what)s as a whole number.", what=said(label))
        return None
    if not lo <= val <= hi:
        errors[name] = N_("Enter %(what)s between %(lo)s and %(hi)s.", what=said(label),
                          lo=lo, hi=hi)
        return None
    return val


NUMBER_FIELDS = ("fetch_interval_minutes", "initial_sync_days", "initial_sync_messages",
                 "bulk_per_send", "bulk_per_day", "bulk_spacing_seconds")


def parse_settings_form(form: MultiDict) -> SettingsForm:
    """The posted global settings, checked: one sentence per bad field."""
    errors: dict[str, str] = {}
    allowed = [s for s in SHARING_OPTIONS if s in form.getlist("sharing_allowed")]
    default = form.get("sharing_default", "")
    if not allowed:
        errors["sharing_allowed"] = N_("Allow at least one sharing option.")
    elif default not in allowed:
        errors["sharing_default"] = N_("Pick a default that is among the allowed options.")
    values = {
        "outbound_only": _yes(form, "outbound_only"),
        "webmail_links": _yes(form, "webmail_links"),
        "auto_import": _yes(form, "auto_import"),
        "sharing_allowed": ",".join(allowed),
        "sharing_default": default,
        "fetch_interval_minutes": _int(form, "fetch_interval_minutes", errors,
                                       MIN_FETCH_MINUTES, MAX_FETCH_MINUTES,
                                       N_("the fetch interval")),
        "initial_sync_days": _int(form, "initial_sync_days", errors, 1, 3650,
                                  N_("the number of days")),
        "initial_sync_messages": _int(form, "initial_sync_messages", errors, 1, 100000,
                                      N_("the number of messages")),
        "bulk_per_send": _int(form, "bulk_per_send", errors, 1, 10000, N_("recipients per send")),
        "bulk_per_day": _int(form, "bulk_per_day", errors, 1, 100000, N_("messages per day")),
        "bulk_spacing_seconds": _int(form, "bulk_spacing_seconds", errors, 0, 3600,
                                     N_("the spacing")),
        "allowed_mail_hosts": "\n".join(
            h.strip().lower() for h in str(form.get("allowed_mail_hosts", "")).splitlines()
            if h.strip()),
    }
    values["public_excluded_users"] = ",".join(
        sorted({str(u).strip() for u in form.getlist("public_excluded_users") if str(u).strip()}))
    domains = [d.strip().lower().lstrip("@") for d in
               str(form.get("public_excluded_domains", "")).splitlines() if d.strip()]
    if len(domains) > 5:
        errors["public_excluded_domains"] = N_("List at most 5 domains.")
    elif any(not re.fullmatch(r"[a-z0-9.-]+\.[a-z0-9-]+", d) for d in domains):
        errors["public_excluded_domains"] = N_("One domain per line, like example.com.")
    values["public_excluded_domains"] = "\n".join(domains)
    hosts = values["allowed_mail_hosts"].splitlines()
    bad = [h for h in hosts if len(h) > 253 or parse_allow_entry(h) is None]
    if bad:
        errors["allowed_mail_hosts"] = N_("One host per line, like mail.example.com, 203.0.113.7 "
                                        "or 10.0.0.0/8; add :PORT (mail.example.com:2526) to "
                                        "allow a port that is not a mail port.")
    typed = {k: str(form.get(k, "")).strip() for k in NUMBER_FIELDS}
    return SettingsForm(values=values, errors=errors, typed=typed)


def save(session: Session, gs: GlobalSettings, values: dict, admin_id: str) -> str:
    """Store the settings; returns the sentence that tells the admin what changed."""
    first = gs.saved_at is None
    for key, val in values.items():
        setattr(gs, key, val)
    gs.saved_at = datetime.now(timezone.utc)
    gs.saved_by = admin_id
    session.add(gs)
    if first:
        return N_("Integrated email settings saved. Users can now set up their mailboxes.")
    return N_("Integrated email settings saved.")
