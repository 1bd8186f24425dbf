"""The admin's OAuth provider settings: enable, client id, encrypted secret, tenant."""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.crypto import SecretBox
from plugin.models._types import utcnow
from plugin.models.oauth import OAuthProviderSettings
from plugin.setup.oauth_client import ClientConfig
from plugin.setup.oauth_providers import OAuthProvider, configured, get_provider, valid_tenant
from plugin.words import N_

#: a client id or secret as providers issue them (the id column is 255 long)
_CREDENTIAL = re.compile(r"[\x21-\x7e]{1,255}")


def save_provider(session: Session, box: SecretBox, key: str, *, enabled: bool,
                  client_id: str, client_secret: str | None = None,
                  tenant: str | None = None) -> OAuthProviderSettings:
    """Store one provider's settings; an empty ``client_secret`` keeps the stored one.

    Raises ValueError (with a sentence for the form) for an unknown provider, a bad tenant,
    or enabling without a client id and secret.
    """
    provider = get_provider(key)
    client_id = (client_id or "").strip()
    # Real ids and secrets are short printable ASCII without spaces (a GUID, a
    # "…apps.googleusercontent.com" name, a 35-40 character secret). Anything else was
    # pasted wrongly, and a 300-character id would fail the database's column (a 500).
    if client_id and not _CREDENTIAL.fullmatch(client_id):
        raise ValueError(N_("The client id must be up to 255 letters, digits and signs, without "
                         "spaces or line breaks: copy it again from the provider's page."))
    if client_secret and not _CREDENTIAL.fullmatch(client_secret.strip()):
        raise ValueError(N_("The client secret must be up to 255 letters, digits and signs, "
                         "without spaces or line breaks: copy it again from the provider's "
                         "page."))
    tenant = (tenant or "").strip() or None
    if provider.has_tenant:
        if tenant is not None and not valid_tenant(tenant):
            raise ValueError(N_("The tenant must be common, organizations, consumers, your "
                             "tenant's id or its domain name."))
    else:
        tenant = None
    row = session.scalar(select(OAuthProviderSettings)
                         .where(OAuthProviderSettings.provider == key))
    if row is None:
        row = OAuthProviderSettings(provider=key)
        session.add(row)
    if client_secret:
        row.client_secret = box.encrypt(client_secret.strip())
    if enabled and not (client_id and row.client_secret):
        raise ValueError(N_("Enter the client id and secret of your %(provider)s app "
                            "before turning sign-in on.", provider=provider.name))
    row.enabled = enabled
    row.client_id = client_id or None
    row.tenant = tenant
    row.updated_at = utcnow()
    return row


def enabled_keys(session: Session) -> list[str]:
    """The providers users may sign in with, in the table's order."""
    rows = session.scalars(select(OAuthProviderSettings.provider)
                           .where(OAuthProviderSettings.enabled.is_(True))).all()
    return sorted(rows)


def client_for(session: Session, box: SecretBox, key: str, redirect_uri: str, *,
               overrides: Mapping[str, str | None] | None = None, ca_file: str | None = None,
               timeout: float = 10.0) -> tuple[OAuthProvider, ClientConfig] | None:
    """The configured provider and client credentials, or None when it is not enabled."""
    row = session.scalar(select(OAuthProviderSettings)
                         .where(OAuthProviderSettings.provider == key))
    if row is None or not row.enabled or not row.client_id or not row.client_secret:
        return None
    provider = configured(get_provider(key), overrides, tenant=row.tenant)
    return provider, ClientConfig(row.client_id, box.decrypt(row.client_secret), redirect_uri,
                                  ca_file=ca_file, timeout=timeout)


def stored(session: Session, key: str) -> OAuthProviderSettings | None:
    """The admin's row for provider ``key`` (None until first saved)."""
    return session.scalar(select(OAuthProviderSettings)
                          .where(OAuthProviderSettings.provider == key))
