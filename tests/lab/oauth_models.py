"""In-memory records of the lab provider (Authlib's client, code and token mixins)."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: the client id/secret the lab's mail servers (Dovecot, SMTP) use to introspect any token
MAIL_SERVERS_CLIENT = "lab-mail-servers"
CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]


@dataclass
class LabClient:
    """A registered OAuth client (Authlib ClientMixin, in memory)."""

    client_id: str
    client_secret: str = field(repr=False)
    #: exact redirect URIs allowed; empty = any http(s) URI on 127.0.0.1 / localhost
    redirect_uris: tuple[str, ...] = ()

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if self.redirect_uris:
            return redirect_uri in self.redirect_uris
        parts = urlsplit(redirect_uri)
        return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost")

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(self.client_secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in CLIENT_AUTH

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class LabUser:
    email: str

    def get_user_id(self) -> str:
        return self.email


@dataclass
class LabCode:
    code: str
    client_id: str
    email: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class LabToken:
    """One issued access token and (maybe) its refresh token (Authlib TokenMixin)."""

    client_id: str
    email: str
    scope: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    issued_at: float
    expires_in: int
    #: every token descending from one consent shares it; revoking one revokes the grant
    grant_id: str
    refresh_expires_at: float | None = None
    access_revoked: bool = False
    refresh_revoked: bool = False

    def check_client(self, client: LabClient) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.access_revoked

    def get_user(self) -> LabUser:
        return LabUser(self.email)

    def get_client(self) -> LabClient:
        raise NotImplementedError  # not needed by the endpoints used here

    def refresh_usable(self) -> bool:
        if self.refresh_token is None or self.refresh_revoked:
            return False
        return self.refresh_expires_at is None or time.time() < self.refresh_expires_at
