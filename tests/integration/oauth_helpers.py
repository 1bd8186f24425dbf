"""Pointing an app's Google and Microsoft sign-in at the lab: its provider, Dovecot and
SMTP server. Addresses at contoso.test are Microsoft's, at fabrikam.test Google's; the
lab's Dovecot knows its users by the local part, so ``<login>@contoso.test`` signs in to
the lab mailbox ``<login>``."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from tests.helpers import form
from tests.lab.servers import HOST

MICROSOFT_DOMAIN = "contoso.test"
GOOGLE_DOMAIN = "fabrikam.test"


def lab_endpoints(oauth_lab, dovecot, smtp_lab) -> dict:
    """IE_OAUTH_ENDPOINTS moving both providers to the lab."""
    common = {"authorize_url": oauth_lab.authorize_url, "token_url": oauth_lab.token_url,
              "revoke_url": oauth_lab.revoke_url, "userinfo_url": oauth_lab.userinfo_url,
              "imap": f"{HOST}:{dovecot.imaps}:ssl", "pop3": f"{HOST}:{dovecot.pop3s}:ssl",
              "smtp": f"{HOST}:{smtp_lab.tls_port}:ssl"}
    microsoft = {**common, "domains": MICROSOFT_DOMAIN}
    microsoft.pop("userinfo_url")
    return {"google": {**common, "domains": GOOGLE_DOMAIN}, "microsoft": microsoft}


def point_at_lab(app, oauth_lab, dovecot, smtp_lab, redirect_uri: str,
                 timeout: float = 3.0) -> dict[str, object]:
    """Configure ``app`` for the lab; returns the lab clients registered for each provider
    (the admin pastes their ids and secrets)."""
    app.config["IE_OAUTH_ENDPOINTS"] = lab_endpoints(oauth_lab, dovecot, smtp_lab)
    app.config["IE_OAUTH_TIMEOUT"] = timeout
    return {key: oauth_lab.add_client(redirect_uris=(redirect_uri,))
            for key in ("google", "microsoft")}


def enable_providers(client, clients: dict, tenant: str = "organizations", **extra) -> object:
    """The admin saves the sign-in section with both lab clients."""
    data = form(google_enabled="on", google_client_id=clients["google"].client_id,
                google_client_secret=clients["google"].client_secret,
                microsoft_enabled="on", microsoft_client_id=clients["microsoft"].client_id,
                microsoft_client_secret=clients["microsoft"].client_secret,
                microsoft_tenant=tenant)
    data.update(extra)
    return client.post("/integrated-email/admin/sign-in", data=data)


def query(url: str) -> dict[str, str]:
    """The query parameters of a URL."""
    return dict(parse_qsl(urlsplit(url).query))


def callback_path(params: dict[str, str]) -> str:
    """The add-on's callback as the provider redirects to it."""
    from urllib.parse import urlencode
    return "/integrated-email/oauth/callback?" + urlencode(params)
