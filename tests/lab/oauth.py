"""A real OAuth2 / OpenID Connect authorization server for the lab (Authlib, on loopback TLS).

Why Authlib's server and not a hand-written imitation: the add-on's client must meet a
server that really checks PKCE, client secrets, redirect URIs, code reuse and refresh
token rotation, so a bug on our side fails here the way it would at Google or Microsoft.
What stands in for those providers' quirks is configurable per test: token lifetimes in
seconds, rotation on or off, a token endpoint that is down or slow.

The tokens carry the prefixes ``lab-at-`` / ``lab-rt-`` so leak tests can search captured
output for them. The provider's own debug log would print issued tokens; a real provider's
logs are not ours, so its logger is kept at INFO.
"""
from __future__ import annotations

import html
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from typing import Self
from urllib.parse import parse_qsl, urlsplit

import requests
from authlib.common.security import generate_token
from joserfc.jwk import ECKey
from werkzeug.serving import WSGIRequestHandler, make_server

from .ca import LabCerts
from .oauth_app import build_app, introspection_payload
from .oauth_models import MAIL_SERVERS_CLIENT, LabClient, LabCode, LabToken
from .servers import HOST, free_port

logging.getLogger("authlib").setLevel(logging.INFO)

class _QuietHandler(WSGIRequestHandler):
    """No request log: authorize URLs carry state and PKCE challenges."""

    def log_request(self, *args, **kwargs) -> None:
        pass


class OAuthLab:
    """The lab's OAuth2/OIDC provider; endpoints under ``base_url``."""

    def __init__(self, certs: LabCerts) -> None:
        self.certs = certs
        #: seconds an access token lives (tests set 1-3 s to make expiry happen)
        self.access_token_lifetime = 3600
        #: seconds a refresh token lives; None = until revoked
        self.refresh_token_lifetime: float | None = None
        #: issue a new refresh token on every refresh and kill the old one (Microsoft)
        self.rotate_refresh_tokens = True
        #: the token endpoint answers this HTTP status instead of working (e.g. 503)
        self.token_status: int | None = None
        #: seconds the token endpoint waits before answering
        self.token_delay = 0.0
        #: misbehaving on purpose: called with the JSON of each successful token answer,
        #: returns what to answer instead (a dict as JSON, str/bytes as the raw body, or an
        #: iterator of chunks streamed one by one)
        self.token_rewrite: Callable[[dict], object] | None = None
        #: the raw JSON body the userinfo endpoint answers instead of the account's
        self.userinfo_answer: str | None = None
        #: the Content-Type of a raw (str/bytes) rewritten answer
        self.token_rewrite_mimetype = "application/json"
        #: pre-filled account on the authorize page when no login_hint comes
        self.default_email = "someone@example.test"
        #: query parameters of every authorize request, in order
        self.authorize_requests: list[dict[str, str]] = []
        #: grant_type and client_id of every token request (never a secret)
        self.token_requests: list[dict[str, str]] = []
        self.port = 0
        self.clients: dict[str, LabClient] = {}
        self._codes: dict[str, LabCode] = {}
        self._by_access: dict[str, LabToken] = {}
        self._by_refresh: dict[str, LabToken] = {}
        self._lock = threading.RLock()
        self._key = ECKey.generate_key("P-256", private=True, auto_kid=True)
        self._server = None
        self._thread: threading.Thread | None = None
        #: the credentials Dovecot and the lab SMTP server introspect tokens with
        self.mail_servers_client = MAIL_SERVERS_CLIENT
        self.mail_servers_secret = secrets.token_urlsafe(16)
        self.add_client(MAIL_SERVERS_CLIENT, self.mail_servers_secret)

    # ------------------------------------------------------------------ URLs
    @property
    def base_url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base_url

    authorize_url = property(lambda self: self.base_url + "/authorize")
    token_url = property(lambda self: self.base_url + "/token")
    revoke_url = property(lambda self: self.base_url + "/revoke")
    introspect_url = property(lambda self: self.base_url + "/introspect")
    userinfo_url = property(lambda self: self.base_url + "/userinfo")
    jwks_url = property(lambda self: self.base_url + "/jwks")

    # ------------------------------------------------------------- clients
    def add_client(self, client_id: str | None = None, client_secret: str | None = None,
                   redirect_uris: tuple[str, ...] = ()) -> LabClient:
        """Register a client (random id and secret unless given)."""
        client = LabClient(client_id or f"client-{secrets.token_hex(4)}",
                           client_secret or secrets.token_urlsafe(18), tuple(redirect_uris))
        with self._lock:
            self.clients[client.client_id] = client
        return client

    # -------------------------------------------------------------- tokens
    def _new_token(self, client_id: str, email: str, scope: str, grant_id: str,
                   with_refresh: bool, lifetime: int | None = None) -> LabToken:
        now = time.time()
        return LabToken(
            client_id=client_id, email=email, scope=scope,
            access_token="lab-at-" + generate_token(32),
            refresh_token=("lab-rt-" + generate_token(40)) if with_refresh else None,
            issued_at=now,
            expires_in=int(self.access_token_lifetime if lifetime is None else lifetime),
            grant_id=grant_id,
            refresh_expires_at=(now + self.refresh_token_lifetime
                                if self.refresh_token_lifetime is not None else None))

    def _store(self, token: LabToken) -> None:
        with self._lock:
            self._by_access[token.access_token] = token
            if token.refresh_token:
                self._by_refresh[token.refresh_token] = token

    def mint_token(self, email: str, client: LabClient | None = None, lifetime: int | None = None,
                   scope: str = "https://mail.google.com/ openid email",
                   with_refresh: bool = True, access_token: str | None = None) -> LabToken:
        """A valid token for ``email`` without the browser dance (for mail-layer tests);
        ``access_token`` picks its value (e.g. a 2 KB one, the size of real ones)."""
        client = client or self.clients[MAIL_SERVERS_CLIENT]
        token = self._new_token(client.client_id, email, scope, secrets.token_hex(8),
                                with_refresh, lifetime)
        if access_token is not None:
            token.access_token = access_token
        self._store(token)
        return token

    def find(self, token_string: str) -> LabToken | None:
        """The token record for an access or refresh token string."""
        with self._lock:
            return self._by_access.get(token_string) or self._by_refresh.get(token_string)

    def expire(self, token_string: str) -> None:
        """Make the access token (and its refresh token) look past their lifetime."""
        with self._lock:
            tok = self.find(token_string)
            if tok is None:
                raise KeyError("unknown token")
            tok.issued_at -= tok.expires_in + 1
            if token_string == tok.refresh_token:
                tok.refresh_expires_at = time.time() - 1

    def revoke_grant(self, token_string: str) -> None:
        """Revoke every token of the consent this token belongs to (password change, user
        removed the app's access)."""
        with self._lock:
            tok = self.find(token_string)
            if tok is None:
                raise KeyError("unknown token")
            for t in self._by_access.values():
                if t.grant_id == tok.grant_id:
                    t.access_revoked = t.refresh_revoked = True

    def tokens_for(self, email: str) -> list[LabToken]:
        with self._lock:
            return [t for t in self._by_access.values() if t.email == email]

    def id_token(self, claims: dict) -> str:
        """An ID token with these claims, signed with the lab's key (for rewritten answers)."""
        from joserfc import jwt
        return jwt.encode({"alg": "ES256", "kid": self._key.kid}, claims, self._key)

    def id_claims(self, id_token: str) -> dict:
        """The claims of an ID token the lab issued."""
        from joserfc import jwt
        return dict(jwt.decode(id_token, self._key).claims)

    def introspect(self, token_string: str) -> dict:
        """What the introspection endpoint would say (used by the lab SMTP server)."""
        tok = self._by_access.get(token_string)
        if tok is None or tok.is_expired() or tok.is_revoked():
            return {"active": False}
        return introspection_payload(self, tok)

    def approve(self, authorize_url: str, login: str | None = None,
                decision: str = "approve") -> dict[str, str]:
        """Play the user at the authorize page without a browser: open it, then press
        Approve (or Deny) as ``login``. Returns the query of the redirect back to the app
        (``code`` and ``state``, or ``error``)."""
        with requests.Session() as http:
            http.trust_env = False
            http.verify = str(self.certs.ca_cert)
            page = http.get(authorize_url, allow_redirects=False, timeout=5)
            if page.status_code == 302:  # refused before any page (bad PKCE, redirect...)
                return _query(page.headers["Location"])
            page.raise_for_status()
            if login is None:
                login = html.unescape(page.text.split('id="login" value="', 1)[1].split('"')[0])
            answer = http.post(authorize_url, data={"login": login, "decision": decision},
                               allow_redirects=False, timeout=5)
        if answer.status_code != 302:
            raise RuntimeError(f"authorize answered {answer.status_code}")
        return _query(answer.headers["Location"])

    def reset(self) -> None:
        """Back to defaults between tests (tokens and clients are kept: they are unique)."""
        self.access_token_lifetime = 3600
        self.refresh_token_lifetime = None
        self.rotate_refresh_tokens = True
        self.token_status = None
        self.token_delay = 0.0
        self.token_rewrite = None
        self.userinfo_answer = None
        self.token_rewrite_mimetype = "application/json"
        self.authorize_requests.clear()
        self.token_requests.clear()

    # ------------------------------------------------------------ lifecycle
    def start(self, port: int | None = None) -> OAuthLab:
        self.port = port or free_port()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.certs.cert, self.certs.key)
        app = build_app(self)
        self._server = make_server(HOST, self.port, app, threaded=True, ssl_context=ctx,
                                   request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="lab-oauth",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread:
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))



__all__ = ["OAuthLab", "LabClient", "LabToken", "MAIL_SERVERS_CLIENT"]
