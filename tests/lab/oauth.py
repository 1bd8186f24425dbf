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
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import parse_qsl, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, Response, jsonify, request
from joserfc.jwk import ECKey
from werkzeug.serving import WSGIRequestHandler, make_server

from .ca import LabCerts
from .servers import HOST, free_port

logging.getLogger("authlib").setLevel(logging.INFO)

#: the client id/secret the lab's mail servers (Dovecot, SMTP) use to introspect any token
MAIL_SERVERS_CLIENT = "lab-mail-servers"
_CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]


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
        return method in _CLIENT_AUTH

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

    def introspect(self, token_string: str) -> dict:
        """What the introspection endpoint would say (used by the lab SMTP server)."""
        tok = self._by_access.get(token_string)
        if tok is None or tok.is_expired() or tok.is_revoked():
            return {"active": False}
        return _introspection_payload(self, tok)

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
        self.authorize_requests.clear()
        self.token_requests.clear()

    # ------------------------------------------------------------ lifecycle
    def start(self, port: int | None = None) -> OAuthLab:
        self.port = port or free_port()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.certs.cert, self.certs.key)
        app = _build_app(self)
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


def _introspection_payload(lab: OAuthLab, tok: LabToken) -> dict:
    return {"active": True, "client_id": tok.client_id, "token_type": "Bearer",
            "username": tok.email, "email": tok.email, "sub": tok.email, "scope": tok.scope,
            "iss": lab.issuer, "iat": int(tok.issued_at),
            "exp": int(tok.issued_at + tok.expires_in)}


_PAGE = """<!doctype html><html><head><title>Lab sign-in</title></head><body>
<h1>Lab provider: sign in</h1>
<p><b>{client}</b> asks for: <code>{scope}</code></p>
<form method="post">
  <label>Account <input name="login" id="login" value="{login}"></label>
  <button type="submit" name="decision" value="approve" id="approve">Approve</button>
  <button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form></body></html>"""


def _build_app(lab: OAuthLab) -> Flask:
    app = Flask("lab_oauth")
    server = AuthorizationServer(app, query_client=lambda cid: lab.clients.get(cid),
                                 save_token=lambda token, req: None)

    def access_gen(client, grant_type, user, scope):
        return "lab-at-" + generate_token(32)

    def refresh_gen(client, grant_type, user, scope):
        return "lab-rt-" + generate_token(40)

    server.register_token_generator("default", BearerTokenGenerator(
        access_gen, refresh_gen, lambda client, grant_type: int(lab.access_token_lifetime)))

    def save_token(token: dict, req) -> None:
        old = getattr(req, "refresh_token", None)  # a LabToken when this is a refresh
        grant_id = old.grant_id if old is not None else secrets.token_hex(8)
        now = time.time()
        refresh = token.get("refresh_token")
        if refresh is None and old is not None and not lab.rotate_refresh_tokens:
            refresh = old.refresh_token  # Google: the refresh token stays the same
        rec = LabToken(client_id=req.client.client_id, email=req.user.email,
                       scope=token.get("scope", ""), access_token=token["access_token"],
                       refresh_token=refresh, issued_at=now, expires_in=int(token["expires_in"]),
                       grant_id=grant_id,
                       refresh_expires_at=(old.refresh_expires_at if old is not None and
                                           refresh == old.refresh_token else
                                           (now + lab.refresh_token_lifetime
                                            if lab.refresh_token_lifetime is not None else None)))
        lab._store(rec)

    server._save_token = save_token

    class StrictPKCE(CodeChallenge):
        """PKCE for every client, S256 only: a client that forgets it must fail here."""

        SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

        def validate_code_challenge(self, grant, redirect_uri):
            data = grant.request.payload.data
            if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
                raise InvalidRequestError("PKCE with S256 is required",
                                          redirect_uri=redirect_uri)
            super().validate_code_challenge(grant, redirect_uri)

        def validate_code_verifier(self, grant, result):
            if not grant.request.form.get("code_verifier"):
                raise InvalidRequestError("Missing 'code_verifier'")
            super().validate_code_verifier(grant, result)

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = _CLIENT_AUTH

        def save_authorization_code(self, code, req):
            data = req.payload.data
            with lab._lock:
                lab._codes[code] = LabCode(
                    code, req.client.client_id, req.user.email, req.payload.redirect_uri,
                    req.payload.scope, data.get("code_challenge"),
                    data.get("code_challenge_method"), data.get("nonce"), int(time.time()),
                    time.time() + 60)

        def query_authorization_code(self, code, client):
            with lab._lock:
                item = lab._codes.get(code)
                if item and item.client_id == client.client_id and time.time() < item.expires_at:
                    return item
            return None

        def delete_authorization_code(self, authorization_code):
            with lab._lock:
                lab._codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code):
            return LabUser(authorization_code.email)

    class RefreshGrant(grants.RefreshTokenGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = _CLIENT_AUTH

        @property
        def INCLUDE_NEW_REFRESH_TOKEN(self):
            return lab.rotate_refresh_tokens

        def authenticate_refresh_token(self, refresh_token):
            with lab._lock:
                tok = lab._by_refresh.get(refresh_token)
                if tok is None or not tok.refresh_usable():
                    return None
                if lab.rotate_refresh_tokens:
                    # Claimed at once, under the lock: of two concurrent refreshes with the
                    # same token exactly one wins, as at Microsoft.
                    tok.refresh_revoked = True
                return tok

        def authenticate_user(self, refresh_token):
            return LabUser(refresh_token.email)

        def revoke_old_credential(self, refresh_token):
            pass  # done in authenticate_refresh_token when rotating

    class LabOpenIDCode(OpenIDCode):
        def resolve_client_private_key(self, client):
            return lab._key

        def get_client_algorithm(self, client):
            return "ES256"

        def get_client_claims(self, client):
            return {"iss": lab.issuer, "aud": [client.get_client_id()]}

        def exists_nonce(self, nonce, req):
            return False

        def generate_user_info(self, user, scope):
            return UserInfo(sub=user.email, email=user.email, email_verified=True)

    class Revocation(RevocationEndpoint):
        CLIENT_AUTH_METHODS = _CLIENT_AUTH

        def query_token(self, token_string, token_type_hint):
            return lab.find(token_string)

        def revoke_token(self, token, req):
            lab.revoke_grant(token.access_token)

    class Introspection(IntrospectionEndpoint):
        CLIENT_AUTH_METHODS = _CLIENT_AUTH

        def query_token(self, token_string, token_type_hint):
            return lab._by_access.get(token_string)

        def check_permission(self, token, client, req):
            return client.client_id in (MAIL_SERVERS_CLIENT, token.client_id)

        def introspect_token(self, token):
            return _introspection_payload(lab, token)

    server.register_grant(CodeGrant, [StrictPKCE(required=True), LabOpenIDCode()])
    server.register_grant(RefreshGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)

    class Validator(BearerTokenValidator):
        def authenticate_token(self, token_string):
            return lab._by_access.get(token_string)

    protect = ResourceProtector()
    protect.register_token_validator(Validator())

    @app.get("/authorize")
    def authorize_page():
        with lab._lock:
            lab.authorize_requests.append(dict(request.args))
        try:
            grant = server.get_consent_grant(end_user=None)
        except Exception as exc:
            return server.handle_error_response(request, exc)
        login = request.args.get("login_hint") or lab.default_email
        return _PAGE.format(client=html.escape(grant.client.client_id),
                            scope=html.escape(grant.request.payload.scope or ""),
                            login=html.escape(login))

    @app.post("/authorize")
    def authorize_decision():
        login = request.form.get("login", "").strip()
        approve = request.form.get("decision") == "approve" and "@" in login
        user = LabUser(login) if approve else None
        try:
            grant = server.get_consent_grant(end_user=user)
        except Exception as exc:
            return server.handle_error_response(request, exc)
        return server.create_authorization_response(grant_user=user, grant=grant)

    @app.post("/token")
    def token():
        with lab._lock:
            lab.token_requests.append({"grant_type": request.form.get("grant_type", ""),
                                       "client_id": request.form.get("client_id", "")})
        if lab.token_delay:
            time.sleep(lab.token_delay)
        if lab.token_status:
            return Response("<html><body>Service Unavailable</body></html>",
                            status=lab.token_status, mimetype="text/html")
        return server.create_token_response()

    @app.post("/revoke")
    def revoke():
        return server.create_endpoint_response(Revocation.ENDPOINT_NAME)

    @app.post("/introspect")
    def introspect():
        return server.create_endpoint_response(Introspection.ENDPOINT_NAME)

    @app.get("/userinfo")
    @protect()
    def userinfo():
        tok = current_token
        return jsonify(sub=tok.email, email=tok.email, email_verified=True)

    @app.get("/jwks")
    def jwks():
        return jsonify(keys=[lab._key.as_dict(private=False)])

    @app.get("/.well-known/openid-configuration")
    def discovery():
        return jsonify(issuer=lab.issuer, authorization_endpoint=lab.authorize_url,
                       token_endpoint=lab.token_url, revocation_endpoint=lab.revoke_url,
                       introspection_endpoint=lab.introspect_url,
                       userinfo_endpoint=lab.userinfo_url, jwks_uri=lab.jwks_url,
                       code_challenge_methods_supported=["S256"])

    return app
