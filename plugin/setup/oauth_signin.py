"""Signing a mailbox in with Google or Microsoft: the configured providers, the access
token every mail connection uses, and what a finished sign-in writes.

Which providers users may sign in with comes from two places: the administrator's
settings page (``ie_oauth_provider``, secret encrypted) or the deployment's config
(CONFIG_KEYS), which wins when it names a client id and secret. ``IE_OAUTH_ENDPOINTS`` moves a
provider's endpoints and mail servers (the test lab and the demo point them at a local
provider; a company may point Microsoft at its own tenant's URLs).

Nothing here knows Flask's request: the routes hand in the redirect URI and the values
the user typed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.context import AddonContext
from plugin.mail.addresses import normalize_address
from plugin.mail.errors import OAUTH_DISABLED, OAUTH_PROVIDER, OAUTH_SIGN_IN_AGAIN, MailError
from plugin.mail.presets import Endpoint
from plugin.models import Mailbox
from plugin.models.oauth import OAuthProviderSettings, OAuthToken
from plugin.setup import oauth_client, oauth_tokens
from plugin.setup.oauth_client import ClientConfig, OAuthFailure, TokenSet
from plugin.setup.oauth_providers import (
    ENDPOINT_NAMES,
    PROVIDERS,
    OAuthProvider,
    configured,
    get_provider,
    provider_for_address,
)

log = logging.getLogger("plugin.integrated_email.oauth")

#: the deployment's client id, secret and tenant settings of each provider
CONFIG_KEYS = {
    "google": ("IE_OAUTH_GOOGLE_CLIENT_ID", "IE_OAUTH_GOOGLE_CLIENT_SECRET", None),
    "microsoft": ("IE_OAUTH_MICROSOFT_CLIENT_ID", "IE_OAUTH_MICROSOFT_CLIENT_SECRET",
                  "IE_OAUTH_MICROSOFT_TENANT"),
}
#: server names IE_OAUTH_ENDPOINTS may move, each "host:port:security"
SERVER_NAMES = ("imap", "pop3", "smtp")


@dataclass(frozen=True)
class SignIn:
    """An enabled provider, configured, and the client the add-on signs in as."""

    provider: OAuthProvider
    client: ClientConfig
    #: where the client id and secret come from: "settings" (the admin page) or "config"
    source: str


def config_credentials(config: Mapping[str, Any], key: str) -> tuple[str, str, str | None]:
    """(client id, client secret, tenant) the deployment's config (CONFIG_KEYS) gives."""
    names = CONFIG_KEYS[key]
    return (str(config.get(names[0]) or "").strip(), str(config.get(names[1]) or "").strip(),
            str(config.get(names[2]) or "").strip() or None if names[2] else None)


def _endpoint(text: str) -> Endpoint:
    # "host:port:security": split from the right so an IPv6 literal stays whole
    parts = str(text).rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in ("ssl", "starttls"):
        raise ValueError("IE_OAUTH_ENDPOINTS servers are written host:port:ssl or "
                         "host:port:starttls")
    return Endpoint(parts[0].strip("[]"), int(parts[1]), parts[2])


def _overrides(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    table = config.get("IE_OAUTH_ENDPOINTS") or {}
    entry = table.get(key) or {}
    return dict(entry)


def provider_domains(config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """Address domains hosted at the provider: the built-in ones plus the config's."""
    extra = _overrides(config, key).get("domains") or ()
    if isinstance(extra, str):
        extra = extra.split(",")
    return tuple(PROVIDERS[key].domains) + tuple(d.strip().lower() for d in extra if d.strip())


def _configured(config: Mapping[str, Any], key: str, tenant: str | None) -> OAuthProvider:
    extra = _overrides(config, key)
    endpoints = {n: extra.get(n) for n in ENDPOINT_NAMES if extra.get(n)}
    provider = configured(get_provider(key), endpoints, tenant=tenant)
    servers = {n: _endpoint(extra[n]) for n in SERVER_NAMES if extra.get(n)}
    return replace(provider, **servers) if servers else provider


def sign_in_for(addon: AddonContext, session: Session, key: str,
                redirect_uri: str = "") -> SignIn | None:
    """The provider ``key`` as users may sign in with it now; None when it is off."""
    if key not in PROVIDERS:
        return None
    config = addon.app.config
    client_id, secret, tenant = config_credentials(config, key)
    source = "config"
    if not (client_id and secret):
        row = session.scalar(select(OAuthProviderSettings)
                             .where(OAuthProviderSettings.provider == key))
        if row is None or not row.enabled or not row.client_id or not row.client_secret:
            return None
        client_id, secret, tenant = row.client_id, addon.secrets.decrypt(row.client_secret), \
            row.tenant
        source = "settings"
    try:
        provider = _configured(config, key, tenant)
    except ValueError as exc:
        # A wrong IE_OAUTH_ENDPOINTS (an http:// URL, a bad server) turns the provider off
        # with the reason logged, not every set-up page into a 500. The texts are ours.
        log.error("sign-in with %s is off: IE_OAUTH_ENDPOINTS: %s", key, exc)
        return None
    client = ClientConfig(client_id, secret, redirect_uri, ca_file=config.get("IE_CA_FILE"),
                          timeout=float(config.get("IE_OAUTH_TIMEOUT") or 10.0))
    return SignIn(provider, client, source)


def enabled_providers(addon: AddonContext, session: Session) -> list[str]:
    """The keys of the providers users may sign in with, in the table's order."""
    return [k for k in PROVIDERS if sign_in_for(addon, session, k) is not None]


def provider_for(addon: AddonContext, session: Session, address: str,
                 hosted: str | None = None) -> str | None:
    """The enabled provider the address's mail is at (by domain, or ``hosted``: what
    discovery found from the domain's MX records), or None."""
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    if not domain:
        return None
    enabled = enabled_providers(addon, session)
    if hosted in enabled:
        return hosted
    known = provider_for_address(address)
    if known is not None and known.key in enabled:
        return known.key
    return next((k for k in enabled if domain in provider_domains(addon.app.config, k)), None)


def servers(sign_in: SignIn, protocol: str) -> tuple[Endpoint, Endpoint]:
    """The incoming (for ``protocol``) and outgoing server the provider's tokens work on."""
    provider = sign_in.provider
    return (provider.pop3 if protocol == "pop3" else provider.imap), provider.smtp


def mailbox_access_token(addon: AddonContext, mb: Mailbox) -> str | None:
    """The access token a mail connection of ``mb`` signs in with; None for password
    mailboxes. Refreshed first when it is about to expire (one read otherwise).

    Raises MailError: ``oauth_sign_in_again`` (the mailbox is paused for its owner),
    ``oauth_disabled`` (the admin turned the provider off), ``oauth_provider`` (the
    token endpoint failed; nothing changed).
    """
    if not mb.oauth_provider:
        return None
    with Session(addon.engine) as s:
        sign_in = sign_in_for(addon, s, mb.oauth_provider)
    if sign_in is None:
        raise MailError(OAUTH_DISABLED)
    try:
        return oauth_tokens.access_token(
            addon.engine, addon.secrets, mb.id,
            partial(oauth_client.refresh, sign_in.provider, sign_in.client))
    except OAuthFailure as failure:
        if failure.kind == oauth_client.SIGN_IN_AGAIN:
            raise MailError(OAUTH_SIGN_IN_AGAIN) from None
        if failure.kind == oauth_client.CLIENT_REJECTED:
            raise MailError(OAUTH_DISABLED) from None
        raise MailError(OAUTH_PROVIDER) from None


def forget_access_token(addon: AddonContext, mb: Mailbox) -> None:
    """A mail server refused the access token: the next connection refreshes it first."""
    oauth_tokens.expire_access_token(addon.engine, mb.id)


@dataclass(frozen=True)
class Account:
    """How a mailbox signs in, for its page: "Signed in with Microsoft as x@y"."""

    provider_name: str
    address: str
    #: the provider refused the sign-in: the owner must sign in again
    expired: bool


def account_of(session: Session, mb: Mailbox) -> Account | None:
    """The sign-in of ``mb``, or None for a password mailbox."""
    if not mb.oauth_provider:
        return None
    row = session.scalar(select(OAuthToken).where(OAuthToken.mailbox_id == mb.id))
    name = PROVIDERS[mb.oauth_provider].name if mb.oauth_provider in PROVIDERS else "?"
    if row is None:
        return Account(name, mb.email, expired=True)
    return Account(name, row.account, expired=row.refresh_token is None
                   and row.access_token is None)


def same_account(a: str | None, b: str | None) -> bool:
    """Whether two addresses name one account (case-insensitive)."""
    na, nb = normalize_address(a or ""), normalize_address(b or "")
    # email_validator lowers only the domain; Google and Microsoft treat the local part
    # case-insensitively too (a UPN keeps the capitals it was created with). lower(),
    # not casefold(): "ß" must not become "ss", another mailbox.
    return bool(na) and bool(nb) and na.lower() == nb.lower()


def connect(session: Session, addon: AddonContext, mb: Mailbox, sign_in: SignIn,
            tokens: TokenSet, protocol: str) -> None:
    """Point ``mb`` at the provider's servers and store the sign-in (caller commits).

    The servers are the provider's: its tokens are valid nowhere else. Passwords a
    mailbox had before are dropped: they must not be tried again.
    """
    incoming, outgoing = servers(sign_in, protocol)
    mb.oauth_provider = sign_in.provider.key
    mb.protocol = protocol
    mb.in_host, mb.in_port, mb.in_security = incoming.host, incoming.port, incoming.security
    mb.in_login = tokens.account
    mb.in_password = None
    mb.same_credentials = True
    mb.out_host, mb.out_port, mb.out_security = outgoing.host, outgoing.port, outgoing.security
    mb.out_auth = True
    mb.out_login = mb.out_password = None
    if mb.id is None:
        session.add(mb)
        session.flush()
    oauth_tokens.save_sign_in(session, addon.secrets, mb.id, sign_in.provider.key, tokens)


def revoke(addon: AddonContext, session: Session, mb: Mailbox) -> bool:
    """Withdraw the mailbox's sign-in at the provider where it can be (Google); best
    effort: a failure is logged by kind and never stops the removal."""
    if not mb.oauth_provider:
        return False
    row = session.scalar(select(OAuthToken).where(OAuthToken.mailbox_id == mb.id))
    sign_in = sign_in_for(addon, session, mb.oauth_provider)
    if row is None or sign_in is None or not sign_in.provider.revoke_url:
        return False
    token = row.refresh_token or row.access_token
    if token is None:
        return False
    hint = "refresh_token" if row.refresh_token else "access_token"
    try:
        return oauth_client.revoke(sign_in.provider, sign_in.client,
                                   addon.secrets.decrypt(token), token_type_hint=hint)
    except OAuthFailure as failure:
        log.warning("revoking the sign-in of mailbox %s failed: %s", mb.id, failure.kind)
        return False
