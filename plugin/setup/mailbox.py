"""Personal mailbox set-up: the form's values, derived defaults, checks, and saving.

The form is a flat dict of strings (what a browser posts).  ``derive`` applies
what changes in place when the user edits one field (provider preset, default
ports, pre-filled login); ``validate`` returns one sentence per bad field;
``apply`` writes a Mailbox, encrypting passwords and keeping stored ones when
a password field is left blank.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.crypto import SecretBox
from plugin.host import HostUser
from plugin.mail.account import ServerSettings
from plugin.mail.addresses import normalize_address
from plugin.mail.connect import ConnectionPolicy, check_host
from plugin.mail.errors import MailError
from plugin.mail.presets import Preset, default_port, preset_for
from plugin.models import GlobalSettings, Mailbox
from plugin.setup.discovery import Discovery, domain_of
from plugin.setup.oauth_providers import PROVIDERS
from plugin.words import N_

PROTOCOLS = {"imap": "IMAP", "pop3": "POP3"}
SECURITIES = {"ssl": "SSL/TLS", "starttls": "STARTTLS", "none": "None (not encrypted)"}
DELETE_POLICIES = {
    "leave": "Leave messages on the server",
    "after_retrieval": "Delete from the server after retrieval",
    "after_days": "Delete from the server after some days",
}
CHECKBOXES = ("same_credentials", "out_auth", "consolidate", "use_password")
TEXT_FIELDS = ("account_name", "email", "protocol", "in_login", "in_password", "in_host",
               "in_port", "in_security", "out_login", "out_password", "out_host", "out_port",
               "out_security", "delete_policy", "delete_after_days", "sharing",
               "consolidate_folder")
#: what the add-on filled in itself (hidden fields): the hosts and login discovery put in the
#: form, so a later address may replace them (a value the user typed differs from these),
#: and the sign-in provider discovery found at the domain's MX
AUTO_FIELDS = ("_auto_in_host", "_auto_out_host", "_auto_login", "_hosted")
HOST_RE = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,253}$")


@dataclass
class FormState:
    """What the template needs to draw the mailbox form."""

    values: dict
    errors: dict
    outbound_only: bool
    sharing_choices: list[str]
    preset_notes: list[str]
    preset_name: str | None
    has_in_password: bool = False
    has_out_password: bool = False
    #: one sentence when a provider's preset was replaced, removed or not applied
    preset_notice: str = ""
    #: the enabled sign-in provider ("google"/"microsoft") the address's mail is at
    oauth: str | None = None
    #: the mailbox being edited signs in with Google or Microsoft (no passwords, no servers)
    signed_in: bool = False
    #: a stored mailbox is edited (a password one is offered sign-in, not switched to it)
    editing: bool = False

    @property
    def offer_sign_in(self) -> bool:
        """Whether the form leads with "Sign in with ..." and hides the password fields."""
        return (bool(self.oauth) and not self.signed_in and not self.editing
                and self.values.get("use_password") != "on")

    @property
    def oauth_name(self) -> str:
        """The provider's name, for "Sign in with <name>"."""
        return PROVIDERS[self.oauth].name if self.oauth in PROVIDERS else ""

    @property
    def show_incoming(self) -> bool:
        """Whether the form shows the incoming server (hidden when outbound only)."""
        return not self.outbound_only

    @property
    def show_out_credentials(self) -> bool:
        """Whether the form asks for a separate outgoing login."""
        return self.values.get("out_auth") == "on" and (
            self.outbound_only or self.values.get("same_credentials") != "on")

    @property
    def show_consolidate(self) -> bool:
        """Whether the form offers consolidation (IMAP mailboxes only)."""
        return not self.outbound_only and self.values.get("protocol") == "imap"

    @property
    def show_delete_policy(self) -> bool:
        """Whether the form offers delete-after-retrieval (POP3 mailboxes only)."""
        return not self.outbound_only and self.values.get("protocol") == "pop3"


def read_form(form: Mapping[str, Any]) -> dict:
    """The posted fields as a flat dict (checkboxes as 'on' or '')."""
    values = {name: str(form.get(name, "")).strip() for name in TEXT_FIELDS}
    for pw in ("in_password", "out_password"):
        values[pw] = str(form.get(pw, ""))  # passwords may have spaces at the ends
    for name in CHECKBOXES:
        values[name] = "on" if form.get(name) in ("on", "yes", "1", "true") else ""
    for name in AUTO_FIELDS:
        values[name] = str(form.get(name, "")).strip()[:253]
    return values


def initial_values(user: HostUser, gs: GlobalSettings) -> dict:
    """A new mailbox form pre-filled from the user's ATS profile and the preset."""
    values = {name: "" for name in TEXT_FIELDS}
    values.update(account_name="Work email", email=user.email, in_login=user.email,
                  protocol="imap", in_security="ssl", out_security="ssl",
                  in_port="993", out_port="465", same_credentials="on", out_auth="on",
                  delete_policy="leave", sharing=gs.sharing_default,
                  consolidate_folder="Clients and candidates")
    return derive(values, "email", previous_email="")


def values_from_mailbox(mb: Mailbox) -> dict:
    """The form's values for a stored mailbox (passwords always blank)."""
    def s(v: object) -> str:
        return "" if v is None else str(v)
    return {
        "account_name": mb.account_name, "email": mb.email, "protocol": s(mb.protocol or "imap"),
        "in_login": s(mb.in_login), "in_password": "", "in_host": s(mb.in_host),
        "in_port": s(mb.in_port), "in_security": s(mb.in_security or "ssl"),
        "same_credentials": "on" if mb.same_credentials else "",
        # Outbound-only mode shows the outgoing login even when it is the incoming one.
        "out_login": s(mb.out_login or (mb.in_login if mb.same_credentials else "")),
        "out_password": "", "out_host": mb.out_host,
        "out_port": s(mb.out_port), "out_security": mb.out_security,
        "out_auth": "on" if mb.out_auth else "", "delete_policy": mb.delete_policy,
        "delete_after_days": s(mb.delete_after_days), "sharing": mb.sharing,
        "consolidate": "on" if mb.consolidate_folder else "",
        "consolidate_folder": mb.consolidate_folder or "Clients and candidates",
    }


def _preset_hosts(preset: Preset | None, side: str) -> set[str]:
    """The server names a preset fills in on one side ("in" or "out")."""
    if preset is None:
        return set()
    if side == "in":
        return {e.host for e in (preset.imap, preset.pop3) if e}
    return {e.host for e in preset.smtp}


def _apply_preset(v: dict, previous_email: str) -> None:
    """Fill the servers of the address's provider; clear those a previous provider's
    preset filled that no longer match; never overwrite servers typed by hand."""
    old, new = preset_for(previous_email), preset_for(v.get("email", ""))
    if old is not None and new is not None and old.name == new.name:
        return
    if old is None and new is None and domain_of(previous_email) == domain_of(v.get("email", "")):
        return  # same domain: what discovery filled still applies
    kept = []
    for side, host_key, port_key, sec_key in (("in", "in_host", "in_port", "in_security"),
                                              ("out", "out_host", "out_port", "out_security")):
        current = v.get(host_key, "")
        # Ours to change: empty, or what the previous address's preset or discovery put there.
        ours = (not current or current in _preset_hosts(old, side)
                or current == v.get(f"_auto_{side}_host"))
        if side == "in":
            proto = v.get("protocol") or "imap"
            if new is not None and proto == "pop3" and not new.pop3 and ours:
                v["protocol"] = proto = "imap"
            endpoint = (new.pop3 if proto == "pop3" else new.imap) if new else None
        else:
            proto = "smtp"
            endpoint = new.smtp[0] if new else None
        if not ours:
            if endpoint is not None and endpoint.host != current:
                kept.append(endpoint.host)
            continue
        if endpoint is not None:
            v[host_key], v[port_key], v[sec_key] = (
                endpoint.host, str(endpoint.port), endpoint.security)
        elif current:
            v[host_key] = v[f"_auto_{side}_host"] = ""
            v[port_key] = str(default_port(proto, v.get(sec_key) or "ssl"))
    if kept and new is not None:
        v["_preset_notice"] = N_(
            "You typed your own servers, so they were kept. %(provider)s uses "
            "%(servers)s; change the fields if you want those.",
            provider=new.name, servers=" and ".join(kept))
    elif old is not None and new is None and not v.get("in_host") and not v.get("out_host"):
        v["_preset_notice"] = N_(
            "This is no longer a %(provider)s address, so the %(provider)s servers were "
            "removed. Enter your own incoming and outgoing mail hosts.", provider=old.name)


def derive(values: dict, changed: str, previous_email: str = "") -> dict:
    """Apply what follows from editing ``changed``: preset hosts, default ports, login."""
    v = dict(values)
    v.pop("_preset_notice", None)
    if changed == "email":
        email = v.get("email", "")
        if v.get("in_login") in ("", previous_email, v.get("_auto_login") or None):
            v["in_login"] = email
        if domain_of(email) != domain_of(previous_email):
            v["_hosted"] = ""
        _apply_preset(v, previous_email)
    elif changed in ("protocol", "in_security"):
        proto = v.get("protocol") or "imap"
        preset = preset_for(v.get("email", ""))
        server = None
        if preset and changed == "protocol":
            server = preset.pop3 if proto == "pop3" else preset.imap
        if server:
            v["in_host"], v["in_port"], v["in_security"] = (
                server.host, str(server.port), server.security)
        else:
            v["in_port"] = str(default_port(proto, v.get("in_security") or "ssl"))
    elif changed == "out_security":
        v["out_port"] = str(default_port("smtp", v.get("out_security") or "ssl"))
    return v


def apply_discovery(values: dict, found: Discovery) -> tuple[dict, set[str]]:
    """Fill in what discovery found where the form is still the add-on's to fill: a side
    whose host is empty or was filled by a preset or an earlier discovery, a login that is
    empty, the address or discovery's. Never a value typed by hand. Returns the values and
    the parts filled ("in", "out", "login")."""
    v, filled = dict(values), set()
    v["_hosted"] = found.oauth or ""
    preset = preset_for(v.get("email", ""))
    for side, server in (("in", found.incoming), ("out", found.outgoing)):
        current = v.get(f"{side}_host", "")
        if server is None or (current and current != v.get(f"_auto_{side}_host")
                              and current not in _preset_hosts(preset, side)):
            continue
        v[f"{side}_host"], v[f"{side}_port"], v[f"{side}_security"] = (
            server.host, str(server.port), server.security)
        v[f"_auto_{side}_host"] = server.host
        if side == "in":
            v["protocol"] = server.protocol
        filled.add(side)
    if "in" in filled and found.incoming is not None and v.get("in_login") in (
            "", v.get("email"), v.get("_auto_login") or None):
        v["in_login"] = v["_auto_login"] = found.incoming.username
        filled.add("login")
    return v, filled


def preset_info(values: dict) -> tuple[str | None, list[str]]:
    """The provider's name and notes for the address in the form, if it has a preset."""
    preset = preset_for(values.get("email", ""))
    if not preset:
        return None, []
    notes = list(preset.notes)
    if values.get("protocol") == "pop3":
        notes += list(getattr(preset, "pop3_notes", ()) or ())
    return preset.name, notes


def _port(v: dict, name: str, errors: dict) -> int | None:
    try:
        port = int(v.get(name) or "")
    except ValueError:
        errors[name] = N_("Enter the port as a number, like 993.")
        return None
    if not 1 <= port <= 65535:
        errors[name] = N_("Enter a port between 1 and 65535.")
        return None
    return port


def _host(v: dict, name: str, errors: dict, policy: ConnectionPolicy | None) -> None:
    host = v.get(name, "")
    if not host:
        errors[name] = N_("Enter the server name, like imap.example.com.")
        return
    if not HOST_RE.match(host):
        errors[name] = N_("Enter only the server name, like mail.example.com.")
        return
    if policy is not None:
        # Judged with its port: only mail ports are allowed unless the allow-list names one.
        port_text = str(v.get(name.replace("_host", "_port")) or "")
        port = int(port_text) if port_text.isdigit() and 0 < int(port_text) < 65536 else 993
        try:
            check_host(host, port, policy)
        except MailError as exc:
            if exc.kind == "host_not_allowed":
                errors[name] = exc.sentence
            # An unknown name is reported by Test connection, not a reason to lose the form.


def validate(v: dict, *, outbound_only: bool, sharing_choices: list[str],
             existing: Mailbox | None, policy: ConnectionPolicy | None,
             only: str | None = None) -> dict[str, str]:
    """One sentence per bad field.  ``only`` limits the answer to one field (htmx)."""
    errors: dict[str, str] = {}
    if not v.get("account_name"):
        errors["account_name"] = N_("Give this mailbox a name, like 'Work email'.")
    elif len(v["account_name"]) > 120:
        errors["account_name"] = N_("Keep the name under 120 characters.")
    if normalize_address(v.get("email", "")) is None:
        errors["email"] = N_("Enter an email address like name@example.com.")
    if not outbound_only:
        if v.get("protocol") not in PROTOCOLS:
            errors["protocol"] = N_("Choose IMAP or POP3.")
        if not v.get("in_login"):
            errors["in_login"] = N_("Enter the login for the incoming server (usually your email).")
        if not v.get("in_password") and not (existing and existing.in_password):
            errors["in_password"] = N_("Enter your email password (not your ATS password).")
        _host(v, "in_host", errors, policy)
        _port(v, "in_port", errors)
        if v.get("in_security") not in SECURITIES:
            errors["in_security"] = N_("Choose SSL/TLS, STARTTLS or None.")
        if v.get("protocol") == "pop3":
            if v.get("delete_policy") not in DELETE_POLICIES:
                errors["delete_policy"] = N_("Choose when messages are deleted from the server.")
            elif v["delete_policy"] == "after_days":
                try:
                    if not 1 <= int(v.get("delete_after_days") or "") <= 3650:
                        raise ValueError
                except ValueError:
                    errors["delete_after_days"] = N_("Enter a number of days between 1 and 3650.")
        if v.get("protocol") == "imap" and v.get("consolidate") == "on":
            folder = v.get("consolidate_folder", "")
            if not folder or len(folder) > 200 or any(ord(c) < 32 for c in folder) \
                    or folder.upper() == "INBOX":
                errors["consolidate_folder"] = N_(
                    "Enter a folder name, like 'Clients and candidates'.")
    _host(v, "out_host", errors, policy)
    _port(v, "out_port", errors)
    if v.get("out_security") not in SECURITIES:
        errors["out_security"] = N_("Choose SSL/TLS, STARTTLS or None.")
    needs_own_out = v.get("out_auth") == "on" and (
        outbound_only or v.get("same_credentials") != "on")
    if needs_own_out:
        if not v.get("out_login"):
            errors["out_login"] = N_("Enter the login for the outgoing server.")
        if not v.get("out_password") and not stored_out_password(existing, outbound_only):
            errors["out_password"] = N_("Enter the password for the outgoing server.")
    if v.get("sharing") not in sharing_choices:
        errors["sharing"] = N_("Choose one of the sharing options your administrator allows.")
    if only is not None:
        return {k: e for k, e in errors.items() if k == only}
    return errors


def validate_sign_in(v: dict, *, sharing_choices: list[str],
                     existing: Mailbox | None = None) -> dict[str, str]:
    """The checks of a mailbox that signs in with Google or Microsoft: no login, password
    or server to check (the provider's are used), the rest as for any mailbox."""
    errors = validate({**v, "in_login": "-", "in_password": "-", "in_host": "x.invalid",
                       "in_port": "993", "in_security": "ssl", "out_host": "x.invalid",
                       "out_port": "465", "out_security": "ssl", "out_auth": "on",
                       "same_credentials": "on"},
                      outbound_only=False, sharing_choices=sharing_choices, existing=existing,
                      policy=None)
    if existing is not None:
        errors.pop("email", None)  # the signed-in account is the address; not edited
    return errors


def stored_out_password(existing: Mailbox | None, outbound_only: bool) -> str | None:
    """The stored token that sends mail when the outgoing password is left blank.

    In outbound-only mode the incoming fields are hidden, not gone: a mailbox that
    shares one login for both servers keeps sending with the incoming password.
    """
    if existing is None:
        return None
    if outbound_only and existing.same_credentials and not existing.out_password:
        return existing.in_password
    return existing.out_password


def server_settings(v: dict, existing: Mailbox | None, secrets: SecretBox,
                    outbound_only: bool) -> tuple[ServerSettings | None, ServerSettings | None]:
    """Incoming and outgoing settings from the form (stored passwords fill blanks)."""
    def stored(col: str) -> str:
        token = getattr(existing, col, None) if existing else None
        if col == "out_password":
            token = stored_out_password(existing, outbound_only)
        return secrets.decrypt(token) if token else ""

    incoming = None
    in_password = v.get("in_password") or stored("in_password")
    if not outbound_only:
        incoming = ServerSettings(v["in_host"], int(v["in_port"]), v["in_security"],
                                  v["in_login"], in_password)
    if v.get("same_credentials") == "on" and not outbound_only:
        out_login, out_password = v["in_login"], in_password
    else:
        out_login = v.get("out_login", "")
        out_password = v.get("out_password") or stored("out_password")
    outgoing = ServerSettings(v["out_host"], int(v["out_port"]), v["out_security"],
                              out_login, out_password)
    return incoming, outgoing


def apply(mb: Mailbox, v: dict, secrets: SecretBox, outbound_only: bool) -> bool:
    """Write the form into ``mb``.  Returns True when a password was changed.

    Outbound-only mode hides the incoming settings; it never erases them, so
    switching the mode back finds the mailbox as it was.
    """
    mb.account_name = v["account_name"]
    mb.email = v["email"]
    if outbound_only:
        _apply_outgoing_login_only(mb, v)
    else:
        mb.protocol = v["protocol"]
        mb.in_host, mb.in_port, mb.in_security = v["in_host"], int(v["in_port"]), v["in_security"]
        mb.in_login = v["in_login"]
        mb.same_credentials = v.get("same_credentials") == "on"
        mb.out_login = None if mb.same_credentials else (v.get("out_login") or None)
        mb.delete_policy = v.get("delete_policy") or "leave" if mb.protocol == "pop3" else "leave"
        mb.delete_after_days = (int(v["delete_after_days"])
                                if mb.delete_policy == "after_days" else None)
        mb.consolidate_folder = (v.get("consolidate_folder") or None
                                 if mb.protocol == "imap" and v.get("consolidate") == "on"
                                 else None)
    mb.out_host, mb.out_port, mb.out_security = v["out_host"], int(v["out_port"]), v["out_security"]
    mb.out_auth = v.get("out_auth") == "on"
    mb.sharing = v["sharing"]
    changed = False
    if v.get("in_password") and not outbound_only:
        mb.in_password = secrets.encrypt(v["in_password"])
        changed = True
    if v.get("out_password") and not mb.same_credentials:
        mb.out_password = secrets.encrypt(v["out_password"])
        changed = True
    return changed


def _apply_outgoing_login_only(mb: Mailbox, v: dict) -> None:
    """Outbound-only mode: the form shows one outgoing login and password."""
    login = v.get("out_login") or None
    if mb.id is None:
        mb.same_credentials = False
        mb.out_login = login
        return
    shared = mb.same_credentials and login in (None, mb.in_login)
    if shared and not v.get("out_password"):
        return  # the shared login sends, as before
    if mb.same_credentials and not mb.out_password:
        mb.out_password = mb.in_password  # the shared password, now the outgoing one too
    mb.same_credentials = False
    mb.out_login = login


def make_active(session: Session, mb: Mailbox) -> None:
    """Exactly one active mailbox per user: this one."""
    session.execute(update(Mailbox).where(Mailbox.user_id == mb.user_id, Mailbox.id != mb.id)
                    .values(is_active=False))
    mb.is_active = True


def user_mailboxes(session: Session, user_id: str) -> list[Mailbox]:
    """The user's mailboxes, oldest first."""
    return list(session.scalars(select(Mailbox).where(Mailbox.user_id == user_id)
                                .order_by(Mailbox.id)))


def active_mailbox(session: Session, user_id: str) -> Mailbox | None:
    """The user's active mailbox: the one fetched and sent from (None: not set up)."""
    return session.scalars(select(Mailbox).where(Mailbox.user_id == str(user_id),
                                                 Mailbox.is_active.is_(True))).first()


def owned_mailbox(session: Session, user_id: str, mailbox_id: int) -> Mailbox | None:
    """The user's own mailbox by id; another user's is None (the route answers 404)."""
    mb = session.get(Mailbox, mailbox_id)
    return mb if mb is not None and mb.user_id == user_id else None
