"""Saving a mailbox from the set-up form: the checks Test connection runs, then the write.

Routes read the form and render; this module decides.  A mailbox whose servers or
passwords changed is signed in to before it is saved; one that cannot sign in is
saved only when the user ticks "Save anyway", and a new one saved that way is not
made the active mailbox (the user makes it active once it works).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from plugin.context import AddonContext
from plugin.mail.account import ServerSettings
from plugin.mail.addresses import normalize_address
from plugin.mail.errors import OAUTH_DISABLED, MailError
from plugin.mail.probe import ProbeResult
from plugin.mail.probe import test_connection as probe
from plugin.models import Mailbox
from plugin.setup import mailbox as form
from plugin.setup import oauth_signin
from plugin.setup import settings as settings_service
from plugin.setup.policy import connection_policy
from plugin.setup.ratelimit import RateLimiter
from plugin.words import N_

RATE_LIMITED = N_("You have tested the connection several times in a row. "
                   "Wait a minute and try again.")
#: what the incoming side of a stored mailbox is compared on
_INCOMING = ("protocol", "in_host", "in_port", "in_security", "in_login")
_OUTGOING = ("out_host", "out_port", "out_security")


@dataclass
class SaveOutcome:
    """What Save did: refused with field errors, stopped at the sign-in check, or saved."""

    errors: dict[str, str] = field(default_factory=dict)
    #: the sign-in check's answer when it ran and failed
    probe: ProbeResult | None = None
    #: one sentence when the check could not run (rate limit, refused host)
    message: str | None = None
    mailbox: Mailbox | None = None
    #: saved although it could not sign in (the user ticked "Save anyway")
    unverified: bool = False

    @property
    def saved(self) -> bool:
        """Whether the mailbox was written."""
        return self.mailbox is not None

    @property
    def needs_confirmation(self) -> bool:
        """Stopped because it could not sign in: the form offers "Save anyway"."""
        return not self.saved and not self.errors and (
            self.probe is not None or self.message not in (None, RATE_LIMITED))


def form_state(session: Session, values: dict, errors: dict, existing: Mailbox | None,
               gs_override: dict | None = None, oauth: str | None = None) -> form.FormState:
    """What the mailbox form needs to draw itself (the admin page may override the mode)."""
    gs = settings_service.load(session)
    outbound_only = gs.outbound_only
    choices = gs.sharing_choices
    if gs_override:
        outbound_only = gs_override.get("outbound_only", outbound_only)
        picked = [c for c in (gs_override.get("sharing_allowed") or "").split(",") if c]
        choices = picked or choices
    name, notes = form.preset_info(values)
    return form.FormState(
        values=values, errors=errors, outbound_only=outbound_only, sharing_choices=choices,
        preset_notes=notes, preset_name=name, preset_notice=values.get("_preset_notice", ""),
        has_in_password=bool(existing and existing.in_password),
        has_out_password=bool(form.stored_out_password(existing, outbound_only)),
        oauth=existing.oauth_provider if existing is not None and existing.oauth_provider
        else oauth,
        signed_in=bool(existing is not None and existing.oauth_provider),
        editing=existing is not None)


def keep_stored_incoming(values: dict, existing: Mailbox | None) -> dict:
    """Fields the page did not post (hidden by the mode or by shared credentials), as stored."""
    if existing is None:
        return values
    stored = form.values_from_mailbox(existing)
    # The outgoing login was hidden too while it was shared with the incoming one.
    keys = (*_INCOMING, "same_credentials", "delete_policy", "delete_after_days",
            "consolidate", "consolidate_folder", "out_login")
    return {**values, **{k: stored[k] for k in keys if not values.get(k) and stored.get(k)}}


def connection_limiter(addon: AddonContext) -> RateLimiter:
    """The per-user limit on signing in to mail servers from the form (one per add-on)."""
    limiter = getattr(addon, "_test_limiter", None)
    if limiter is None:
        limiter = RateLimiter(int(addon.app.config["IE_TEST_CONNECTION_PER_MINUTE"]))
        addon._test_limiter = limiter  # type: ignore[attr-defined]
    return limiter


def probe_form(addon: AddonContext, session: Session, values: dict, existing: Mailbox | None,
               outbound_only: bool) -> ProbeResult:
    """Sign in to the servers the form names (stored passwords fill blank fields)."""
    incoming, outgoing = form.server_settings(values, existing, addon.secrets, outbound_only)
    return probe(incoming, values.get("protocol") or "imap", outgoing,
                 values.get("out_auth") == "on", connection_policy(addon, session))


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def connection_changed(existing: Mailbox | None, values: dict, outbound_only: bool) -> bool:
    """Whether saving would sign in differently: new servers, logins or passwords."""
    if existing is None or values.get("out_password"):
        return True
    if (existing.out_host, existing.out_port, existing.out_security) != (
            values.get("out_host"), _as_int(values.get("out_port")), values.get("out_security")):
        return True
    if existing.out_auth != (values.get("out_auth") == "on"):
        return True
    stored = form.values_from_mailbox(existing)
    if values.get("out_auth") == "on" and values.get("out_login", "") != stored["out_login"] \
            and (outbound_only or values.get("same_credentials") != "on"):
        return True
    if outbound_only:
        return False
    return bool(values.get("in_password")) or any(
        str(values.get(k) or "") != stored[k] for k in (*_INCOMING, "same_credentials"))


def duplicate_of(session: Session, user_id: str, values: dict,
                 existing: Mailbox | None) -> Mailbox | None:
    """Another of the user's mailboxes for the same account (same address or same login)."""
    email = normalize_address(values.get("email", ""))
    login = (values.get("in_host", "").lower(), values.get("in_login", "").lower())
    for other in form.user_mailboxes(session, user_id):
        if existing is not None and other.id == existing.id:
            continue
        if email and normalize_address(other.email) == email:
            return other
        if other.in_host and login[0] and (other.in_host.lower(), (
                other.in_login or "").lower()) == login:
            return other
    return None


def save_mailbox(session: Session, mb: Mailbox, values: dict, addon: AddonContext,
                 outbound_only: bool, resume: Callable[[Mailbox], None],
                 activate: bool = True) -> Mailbox:
    """Apply the form; keep one active mailbox; ``resume`` a paused one that changed."""
    is_new = mb.id is None
    changed = connection_changed(None if is_new else mb, values, outbound_only)
    form.apply(mb, values, addon.secrets, outbound_only)
    if is_new:
        mb.is_active = False
        session.add(mb)
        session.flush()
    if activate and (is_new or not any(m.is_active for m in form.user_mailboxes(
            session, mb.user_id))):
        form.make_active(session, mb)
    if changed:
        resume(mb)
    return mb


def check_and_save(addon: AddonContext, session: Session, user_id: str, values: dict,
                   existing: Mailbox | None, *, outbound_only: bool, sharing_choices: list[str],
                   save_anyway: bool, resume: Callable[[Mailbox], None]) -> SaveOutcome:
    """Save runs the checks Test connection runs; see the module docstring."""
    errors = form.validate(values, outbound_only=outbound_only, sharing_choices=sharing_choices,
                           existing=existing, policy=connection_policy(addon, session))
    twin = duplicate_of(session, user_id, values, existing)
    if twin is not None:
        errors["email"] = N_("You have already connected this account as '%(mailbox)s'. "
                             "Edit that mailbox instead of adding it twice.",
                             mailbox=twin.account_name)
    if errors:
        return SaveOutcome(errors=errors)
    unverified = False
    if connection_changed(existing, values, outbound_only):
        result, message = None, None
        if not connection_limiter(addon).allow(user_id):
            return SaveOutcome(message=RATE_LIMITED)
        try:
            result = probe_form(addon, session, values, existing, outbound_only)
        except MailError as exc:  # refused before either server was reached
            message = exc.sentence
        if message or not (result and result.ok):
            if not save_anyway:
                return SaveOutcome(probe=result, message=message)
            unverified = True
    mb = save_mailbox(session, existing or Mailbox(user_id=user_id), values, addon,
                      outbound_only, resume, activate=not unverified)
    return SaveOutcome(mailbox=mb, unverified=unverified)


def new_signed_in_mailbox(user_id: str, values: dict, account: str) -> Mailbox:
    """A new mailbox from the values typed before signing in (servers come with the
    sign-in: see ``oauth_signin.connect``)."""
    mb = Mailbox(user_id=user_id, account_name=values.get("account_name") or "Work email",
                 email=account, sharing=values.get("sharing") or "private", is_active=False)
    _apply_signed_in_options(mb, values)
    return mb


def _apply_signed_in_options(mb: Mailbox, values: dict) -> None:
    protocol = values.get("protocol") or "imap"
    mb.delete_policy = (values.get("delete_policy") or "leave") if protocol == "pop3" \
        else "leave"
    mb.delete_after_days = (int(values["delete_after_days"])
                            if mb.delete_policy == "after_days" else None)
    mb.consolidate_folder = (values.get("consolidate_folder") or None
                             if protocol == "imap" and values.get("consolidate") == "on" else None)


def probe_signed_in(addon: AddonContext, mb: Mailbox, protocol: str,
                    outbound_only: bool) -> ProbeResult:
    """Test connection of a mailbox signed in with Google or Microsoft: its servers for
    ``protocol``, with its current access token (renewed first when due)."""
    with Session(addon.engine) as s:
        sign_in = oauth_signin.sign_in_for(addon, s, mb.oauth_provider or "")
        policy = connection_policy(addon, s)
    if sign_in is None:
        raise MailError(OAUTH_DISABLED)
    incoming_ep, outgoing_ep = oauth_signin.servers(sign_in, protocol)
    token = oauth_signin.mailbox_access_token(addon, mb)
    login = mb.in_login or mb.email
    incoming = None if outbound_only else ServerSettings(
        incoming_ep.host, incoming_ep.port, incoming_ep.security, login, "", access_token=token)
    outgoing = ServerSettings(outgoing_ep.host, outgoing_ep.port, outgoing_ep.security, login,
                              "", access_token=token)
    return probe(incoming, protocol, outgoing, True, policy)


def save_signed_in(addon: AddonContext, session: Session, mb: Mailbox, values: dict, *,
                   outbound_only: bool, sharing_choices: list[str], save_anyway: bool,
                   resume: Callable[[Mailbox], None]) -> SaveOutcome:
    """Save the editable parts of a signed-in mailbox: its name, sharing, protocol and
    what happens to mail on the server. A new protocol is tried with the token first."""
    errors = form.validate_sign_in(values, sharing_choices=sharing_choices, existing=mb)
    if errors:
        return SaveOutcome(errors=errors)
    protocol = values.get("protocol") or "imap"
    unverified = False
    if protocol != mb.protocol and not outbound_only:
        result, message = None, None
        try:
            result = probe_signed_in(addon, mb, protocol, outbound_only)
        except MailError as exc:
            message = exc.sentence
        if message or not (result and result.ok):
            if not save_anyway:
                return SaveOutcome(probe=result, message=message)
            unverified = True
        with Session(addon.engine) as s:
            sign_in = oauth_signin.sign_in_for(addon, s, mb.oauth_provider or "")
        if sign_in is not None:
            incoming, _ = oauth_signin.servers(sign_in, protocol)
            mb.in_host, mb.in_port, mb.in_security = incoming.host, incoming.port, \
                incoming.security
        mb.protocol = protocol
        resume(mb)
    mb.account_name = values["account_name"]
    mb.sharing = values["sharing"]
    _apply_signed_in_options(mb, {**values, "protocol": mb.protocol})
    return SaveOutcome(mailbox=mb, unverified=unverified)
