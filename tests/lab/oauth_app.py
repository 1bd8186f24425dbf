"""The lab provider's Flask app: Authlib's authorization server, wired to OAuthLab's
in-memory clients, codes and tokens (see tests/lab/oauth.py)."""
from __future__ import annotations

import html
import secrets
import time
from typing import TYPE_CHECKING

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

from .oauth_models import CLIENT_AUTH as _CLIENT_AUTH
from .oauth_models import MAIL_SERVERS_CLIENT, LabCode, LabToken, LabUser

if TYPE_CHECKING:
    from .oauth import OAuthLab


def introspection_payload(lab: OAuthLab, tok: LabToken) -> dict:
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


def build_app(lab: OAuthLab) -> Flask:
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
            return introspection_payload(lab, token)

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
        answer = server.create_token_response()
        if lab.token_rewrite is None or answer.status_code != 200:
            return answer
        body = lab.token_rewrite(answer.get_json())
        if isinstance(body, (str, bytes)) or hasattr(body, "__next__"):  # raw, or streamed
            return Response(body, status=200, mimetype=lab.token_rewrite_mimetype)
        return jsonify(body)

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
        if lab.userinfo_answer is not None:  # misbehaving on purpose
            return Response(lab.userinfo_answer, mimetype="application/json")
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
