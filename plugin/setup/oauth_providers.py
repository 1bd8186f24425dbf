"""The OAuth2 providers the add-on signs in with: Google and Microsoft, as data.

Each entry says where to send the user (authorize), where to trade a code or a refresh
token (token), where to revoke (Google only: Microsoft has no revocation endpoint for a
single refresh token), what to ask for (scopes and extra authorize parameters) and which
mail servers take the token. The endpoints are defaults: settings may override any of
them (the test lab points them at its own provider; a company may point Microsoft at its
tenant). Nothing here talks to the network or knows Flask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from plugin.mail.presets import PRESETS, Endpoint
from plugin.words import N_

GOOGLE = "google"
MICROSOFT = "microsoft"
#: the placeholder in Microsoft's endpoint URLs that the tenant setting fills in
TENANT = "{tenant}"
#: Microsoft's multi-tenant names; anything else must be a tenant id or a verified domain
TENANT_NAMES = ("common", "organizations", "consumers")
_TENANT_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                        r"[0-9a-fA-F]{12}")
_TENANT_DOMAIN = re.compile(r"(?=.{4,253}$)([a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
                            r"[a-zA-Z]{2,63}")
#: endpoint names a setting may override
ENDPOINT_NAMES = ("authorize_url", "token_url", "revoke_url", "userinfo_url")


@dataclass(frozen=True)
class OAuthProvider:
    """One provider's sign-in and mail facts."""

    key: str
    #: shown on the button: "Sign in with <name>"
    name: str
    authorize_url: str
    token_url: str
    #: RFC 7009 revocation; None where the provider has none
    revoke_url: str | None
    #: OpenID userinfo; None where the mail token cannot call it (Microsoft's is on Graph)
    userinfo_url: str | None
    scopes: tuple[str, ...]
    #: added to the authorize request (Google needs them to return a refresh token)
    authorize_params: Mapping[str, str]
    imap: Endpoint
    pop3: Endpoint
    smtp: Endpoint
    #: address domains known to be hosted there (from the presets)
    domains: tuple[str, ...]
    #: id_token claims naming the account's address, first present wins
    address_claims: tuple[str, ...] = ("email",)
    #: each refresh returns a new refresh token and kills the old one
    rotates_refresh_tokens: bool = False
    #: the endpoints contain TENANT
    has_tenant: bool = False
    #: short facts for the admin's guide
    notes: tuple[str, ...] = field(default=())
    #: the admin's steps to register the app, in plain words
    guide: tuple[str, ...] = field(default=())

    @property
    def scope(self) -> str:
        """The scopes as the space-separated ``scope`` parameter."""
        return " ".join(self.scopes)


def _domains(preset_name: str) -> tuple[str, ...]:
    return next(p.domains for p in PRESETS if p.name == preset_name)


_OUTLOOK = "https://outlook.office.com/"
_MS_BASE = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0"

PROVIDERS: Mapping[str, OAuthProvider] = MappingProxyType({
    GOOGLE: OAuthProvider(
        key=GOOGLE,
        name="Google",
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        revoke_url="https://oauth2.googleapis.com/revoke",
        userinfo_url="https://openidconnect.googleapis.com/v1/userinfo",
        scopes=("https://mail.google.com/", "openid", "email"),
        # Without both, Google returns a refresh token only on the very first consent.
        authorize_params=MappingProxyType({"access_type": "offline", "prompt": "consent"}),
        imap=Endpoint("imap.gmail.com", 993, "ssl"),
        pop3=Endpoint("pop.gmail.com", 995, "ssl"),
        smtp=Endpoint("smtp.gmail.com", 465, "ssl"),
        domains=_domains("Gmail"),
        notes=(
            N_("While the app's consent screen is in Testing, Google expires its refresh "
            "tokens after 7 days: publish the app to keep mailboxes signed in."),
            N_("Google sends a refresh token only when asked for offline access with consent; "
            "the add-on asks for both, so recruiters stay signed in."),
        ),
        guide=(
            N_("In the Google Cloud console, pick or create a project, open APIs & Services, "
            "OAuth consent screen, and set it up: Internal for your Google Workspace users "
            "only, External otherwise."),
            N_("Under Credentials, create an OAuth client ID of the type Web application and "
            "add the redirect URI shown above."),
            N_("Copy its client id and secret into the fields here, tick Let users sign in "
            "with Google, and save."),
        ),
    ),
    MICROSOFT: OAuthProvider(
        key=MICROSOFT,
        name="Microsoft",
        authorize_url=f"{_MS_BASE}/authorize",
        token_url=f"{_MS_BASE}/token",
        revoke_url=None,
        userinfo_url=None,
        # One token cannot mix Outlook and Graph resources: Outlook scopes only.
        scopes=(f"{_OUTLOOK}IMAP.AccessAsUser.All", f"{_OUTLOOK}POP.AccessAsUser.All",
                f"{_OUTLOOK}SMTP.Send", "offline_access", "openid", "email"),
        authorize_params=MappingProxyType({}),
        imap=Endpoint("outlook.office365.com", 993, "ssl"),
        pop3=Endpoint("outlook.office365.com", 995, "ssl"),
        smtp=Endpoint("smtp.office365.com", 587, "starttls"),
        domains=_domains("Microsoft 365 / Outlook.com"),
        address_claims=("email", "preferred_username", "upn"),
        rotates_refresh_tokens=True,
        has_tenant=True,
        notes=(
            N_("Tenant: common (work, school and personal accounts), organizations (work and "
            "school only), or your tenant's id for your company only."),
            N_("SMTP AUTH must be allowed for the mailbox (Exchange admin center), or sending "
            "is refused."),
            N_("Client secrets expire (after 6 to 24 months, as chosen): create a new one "
            "before then and paste it here."),
        ),
        guide=(
            N_("In the Microsoft Entra admin center, open App registrations, New registration; "
            "choose who may sign in (it matches the tenant below) and add the redirect URI "
            "shown above as a Web redirect URI."),
            N_("Under API permissions, add the delegated permissions IMAP.AccessAsUser.All, "
            "POP.AccessAsUser.All and SMTP.Send (listed under Microsoft Graph) and "
            "offline_access, openid and email; grant admin consent if your tenant asks "
            "for it."),
            N_("Under Certificates & secrets, create a client secret. Copy the application "
            "(client) id and the secret's value into the fields here, tick Let users sign "
            "in with Microsoft, and save."),
        ),
    ),
})


def get_provider(key: str) -> OAuthProvider:
    """The provider called ``key``; ValueError for any other name."""
    try:
        return PROVIDERS[key]
    except KeyError:
        raise ValueError(f"unknown OAuth provider {key[:40]!r}") from None


def valid_tenant(tenant: str) -> bool:
    """``common``, ``organizations``, ``consumers``, a tenant id (GUID) or a domain name."""
    return (tenant in TENANT_NAMES or bool(_TENANT_ID.fullmatch(tenant))
            or bool(_TENANT_DOMAIN.fullmatch(tenant)))


def configured(provider: OAuthProvider, overrides: Mapping[str, str | None] | None = None,
               tenant: str | None = None) -> OAuthProvider:
    """The provider with settings applied: endpoint overrides, then the tenant filled in.

    ``overrides`` maps names of ENDPOINT_NAMES to URLs (empty values keep the default).
    The tenant goes into a URL path, so only the shapes of :func:`valid_tenant` pass.
    """
    changes = {}
    for name, url in (overrides or {}).items():
        if name not in ENDPOINT_NAMES:
            raise ValueError(f"not an endpoint setting: {name[:40]!r}")
        if url:
            if not url.startswith("https://"):
                raise ValueError(f"{name} must be an https:// URL")
            changes[name] = url
    result = replace(provider, **changes)
    if provider.has_tenant:
        tenant = tenant or "common"
        if not valid_tenant(tenant):
            raise ValueError("the tenant must be common, organizations, consumers, a tenant id "
                             "or a domain name")
        fill = {n: getattr(result, n).replace(TENANT, tenant) for n in ENDPOINT_NAMES
                if getattr(result, n)}
        result = replace(result, **fill)
    return result


def provider_for_address(address: str) -> OAuthProvider | None:
    """The provider hosting this address's domain, when the domain is a known one."""
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    return next((p for p in PROVIDERS.values() if domain in p.domains), None)
