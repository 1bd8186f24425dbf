"""OAuth2 client calls for mailbox sign-in, over Authlib's requests client.

Authorization code flow with PKCE (S256), a random ``state`` and an OpenID ``nonce``;
code exchange, refresh (keeping a rotated refresh token), revocation. Each call is a
plain function of the provider's endpoints and the client's credentials: no Flask, no
database. Failures become :class:`OAuthFailure` with a fixed sentence per kind; the
provider's own error text, the tokens and the client secret never reach a message or a
log. TLS is verified against the system store plus an optional extra CA file.

The account's address is read from the ID token that comes straight from the token
endpoint over that verified TLS connection (OpenID Connect Core 3.1.3.7: the signature
check may then be skipped); its audience, expiry and nonce are checked.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable
import base64
import io
import json
import logging
import math
import re
import secrets
import ssl
import time
from dataclasses import dataclass, field

import requests
import urllib3
from authlib.integrations.base_client import OAuthError as _AuthlibError
from authlib.integrations.requests_client import OAuth2Session
from requests.adapters import HTTPAdapter

from plugin.mail.connect import ConnectionPolicy, ssl_context
from plugin.setup.oauth_providers import OAuthProvider
from plugin.words import N_

log = logging.getLogger("plugin.integrated_email.oauth")

SIGN_IN_AGAIN = "sign_in_again"
CLIENT_REJECTED = "client_rejected"
DENIED = "denied"
UNREACHABLE = "provider_unreachable"
TIMEOUT = "provider_timeout"
TLS = "provider_tls"
PROVIDER_ERROR = "provider_error"
BAD_ANSWER = "bad_answer"
NO_ADDRESS = "no_address"

SENTENCES: dict[str, str] = {
    SIGN_IN_AGAIN: N_("Your sign-in has expired or was withdrawn. Sign in again."),
    CLIENT_REJECTED: N_("The sign-in service refused this application's client id or secret. "
    "Ask your administrator to check the sign-in settings."),
    DENIED: N_("Access was not allowed, so nothing was connected. Sign in again and allow "
    "access to connect the mailbox."),
    UNREACHABLE: N_("The sign-in service could not be reached. Try again in a few minutes, or "
    "ask your administrator about the network."),
    TIMEOUT: N_("The sign-in service did not answer in time. Try again in a few minutes."),
    TLS: N_("The sign-in service's security certificate is not trusted. Ask your administrator."),
    PROVIDER_ERROR: N_("The sign-in service had a problem. Try again in a few minutes."),
    BAD_ANSWER: N_("The sign-in service answered in a way we did not expect. Try again, or ask "
    "your administrator to check the sign-in settings."),
    NO_ADDRESS: N_("The sign-in did not tell us the account's email address. Sign in again and "
    "allow access to your email address."),
}
#: kinds that trying again later will not cure: the mailbox waits for its owner or admin
PERMANENT = frozenset({SIGN_IN_AGAIN, CLIENT_REJECTED})

# RFC 6749 error codes are [\x20-\x21\x23-\x5B\x5D-\x7E]; only plain names are logged.
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
_ERROR_KINDS = {
    "invalid_grant": SIGN_IN_AGAIN,
    "invalid_client": CLIENT_REJECTED,
    "unauthorized_client": CLIENT_REJECTED,
    "access_denied": DENIED,
    "consent_required": DENIED,
    "interaction_required": DENIED,
    "login_required": DENIED,
    "server_error": PROVIDER_ERROR,
    "temporarily_unavailable": PROVIDER_ERROR,
}
_LEEWAY = 120  # seconds of clock skew tolerated on an ID token's expiry
#: longest answer read from the provider; real ones are a few KB
_MAX_ANSWER = 1024 * 1024
#: longest token kept; real ones are 0.2-4 KB (Microsoft's JWTs are the big ones)
_MAX_TOKEN = 64 * 1024
#: an access token's expiry is capped at a day ahead (real ones: about an hour)
_MAX_LIFETIME = 24 * 3600
# RFC 6750 b64token, as plugin.mail.auth sends it; a refresh token is printable ASCII
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


class OAuthFailure(Exception):
    """A sign-in failure with a stable ``kind`` and a user-facing ``sentence``."""

    def __init__(self, kind: str, *, error: str | None = None) -> None:
        if kind not in SENTENCES:
            raise ValueError(f"unknown OAuth failure kind {kind!r}")
        self.kind = kind
        self.sentence = SENTENCES[kind]
        #: the RFC 6749 error code when the provider sent a plain one (safe to log)
        self.error = error if error and _ERROR_CODE.fullmatch(error) else None
        super().__init__(self.sentence)

    @property
    def permanent(self) -> bool:
        """True when only signing in again (or an admin) can fix it."""
        return self.kind in PERMANENT

    def __repr__(self) -> str:
        return f"OAuthFailure(kind={self.kind!r}, error={self.error!r})"


@dataclass(frozen=True)
class ClientConfig:
    """The registered application: credentials, redirect URI, and how to reach the provider."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    #: PEM file of an extra CA to trust besides the system store
    ca_file: str | None = None
    #: seconds for connecting and for each read
    timeout: float = 10.0


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what the callback must be checked against."""

    url: str = field(repr=False)
    #: single-use, bound to the user's session by the caller
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    nonce: str = field(repr=False)


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint answered."""

    access_token: str = field(repr=False)
    #: epoch seconds
    expires_at: float
    #: the refresh token to keep: a rotated one when the provider sent it, else the old one
    refresh_token: str | None = field(repr=False)
    #: True when the provider sent a new refresh token (the old one may be dead now)
    rotated: bool = False
    scope: str = ""
    #: the signed-in account's address, when the answer said (code exchange only)
    account: str | None = None


class _TlsAdapter(HTTPAdapter):
    """Every connection verified with our one cached context (system store plus the admin's
    CA). requests would otherwise load a CA bundle into it again for each new connection
    (~0.3 s) and let ``verify=False`` or REQUESTS_CA_BUNDLE decide what is trusted."""

    def __init__(self, context: ssl.SSLContext, seconds: float = 10.0) -> None:
        self._context = context
        self._seconds = seconds
        super().__init__(max_retries=0)

    def send(self, request: Any, *args, **kwargs) -> requests.Response:
        """The answer read here, at most _MAX_ANSWER bytes within ``seconds`` in all:
        requests would read any size, and its timeout is per read, so a provider that
        streams without end, or drips a byte per read, would hold the request for ever."""
        resp = super().send(request, *args, **kwargs)
        raw, deadline, body = resp.raw, time.monotonic() + self._seconds, bytearray()
        try:
            while chunk := raw.read1(65536, decode_content=True):
                body += chunk
                if len(body) > _MAX_ANSWER:
                    raise requests.exceptions.ContentDecodingError("answer too large")
                if time.monotonic() > deadline:
                    raise requests.exceptions.ReadTimeout("answer too slow")
        except urllib3.exceptions.ReadTimeoutError:  # as requests would have said
            resp.close()
            raise requests.exceptions.ReadTimeout("answer too slow") from None
        except BaseException:
            resp.close()
            raise
        raw.release_conn()
        resp.raw = io.BytesIO(bytes(body))  # what requests then reads as the content
        return resp

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(*args, **kwargs)

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any=None):
        host, pool = super().build_connection_pool_key_attributes(request, True, cert)
        pool.pop("ca_certs", None)
        pool.pop("ca_cert_dir", None)
        return host, pool

    def cert_verify(self, conn: Any, url: Any, verify: Any, cert: Any) -> None:
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = conn.ca_cert_dir = None


def _session(provider: OAuthProvider, client: ClientConfig) -> OAuth2Session:
    session = OAuth2Session(
        client.client_id, client.client_secret, scope=provider.scope,
        redirect_uri=client.redirect_uri, code_challenge_method="S256",
        # Both Google and Microsoft take the secret in the form body.
        token_endpoint_auth_method="client_secret_post",
        revocation_endpoint_auth_method="client_secret_post",
        default_timeout=client.timeout)
    session.mount("https://", _TlsAdapter(ssl_context(ConnectionPolicy(ca_file=client.ca_file)),
                                          seconds=client.timeout))
    return session


def _failure(exc: BaseException) -> OAuthFailure:
    """Map what Authlib/requests raised to a failure (never keeping its text)."""
    if isinstance(exc, OAuthFailure):
        return exc
    if isinstance(exc, _AuthlibError):
        code = exc.error if isinstance(exc.error, str) else None
        return OAuthFailure(_ERROR_KINDS.get(code or "", BAD_ANSWER), error=code)
    if isinstance(exc, requests.exceptions.SSLError):
        return OAuthFailure(TLS)
    if isinstance(exc, requests.exceptions.Timeout):
        return OAuthFailure(TIMEOUT)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return OAuthFailure(UNREACHABLE)
    if isinstance(exc, requests.exceptions.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return OAuthFailure(PROVIDER_ERROR if status >= 500 or status == 429 else BAD_ANSWER)
    return OAuthFailure(BAD_ANSWER)


def _call(what: str, fn: Callable[..., Any], *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    # Not only the documented errors: a hostile answer makes Authlib or json raise anything
    # (a JSON list: AttributeError; expires_in 1e400: OverflowError; deep nesting:
    # RecursionError), and each must be a plain sentence, not a 500.
    except Exception as exc:
        failure = _failure(exc)
        log.warning("oauth %s failed: %s (%s)", what, failure.kind,
                    failure.error or type(exc).__name__)
        raise failure from None


def authorization_request(provider: OAuthProvider, client: ClientConfig,
                          login_hint: str | None = None) -> AuthorizationRequest:
    """The authorize URL with PKCE S256, a fresh state and nonce, and the provider's extras."""
    verifier = secrets.token_urlsafe(64)  # 86 characters: within RFC 7636's 43-128
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    extra = dict(provider.authorize_params)
    if login_hint:
        extra["login_hint"] = login_hint
    with _session(provider, client) as session:
        url, _ = session.create_authorization_url(provider.authorize_url, state=state,
                                                  code_verifier=verifier, nonce=nonce, **extra)
    return AuthorizationRequest(url, state, verifier, nonce)


def callback_failure(params: dict[str, str]) -> OAuthFailure | None:
    """The failure an authorize callback reports (``?error=...``), or None if it has none."""
    error = params.get("error")
    if error is None:
        return None if params.get("code") else OAuthFailure(BAD_ANSWER)
    return OAuthFailure(_ERROR_KINDS.get(error, BAD_ANSWER), error=error)


def _expires_at(token: dict) -> float:
    try:
        at = (float(token["expires_at"]) if token.get("expires_at")
              else time.time() + float(token.get("expires_in") or 3600))
    except (TypeError, ValueError, OverflowError):
        raise OAuthFailure(BAD_ANSWER) from None
    if not math.isfinite(at):
        raise OAuthFailure(BAD_ANSWER)
    # A lifetime past any real one (an hour at both providers) would overflow a datetime.
    return min(at, time.time() + _MAX_LIFETIME)


def _checked(token: Any) -> dict:
    """The token answer, refused (BAD_ANSWER) unless each field has a usable shape: the
    access token goes into SASL messages (only RFC 6750 b64token characters), both tokens
    are encrypted as text, and nothing huge is stored."""
    if not isinstance(token, dict):
        raise OAuthFailure(BAD_ANSWER)
    access, refresh = token.get("access_token"), token.get("refresh_token")
    id_token = token.get("id_token")
    if (not isinstance(access, str) or len(access) > _MAX_TOKEN or not _B64TOKEN.fullmatch(access)
            or (refresh is not None and (not isinstance(refresh, str) or len(refresh) > _MAX_TOKEN
                                          or not _PRINTABLE.fullmatch(refresh)))
            or (id_token is not None and (not isinstance(id_token, str)
                                          or len(id_token) > _MAX_TOKEN))):
        raise OAuthFailure(BAD_ANSWER)
    return token


def _b64url_json(part: str) -> dict:
    data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def id_token_claims(id_token: str, client_id: str, nonce: str | None) -> dict:
    """The checked claims of an ID token received directly from the token endpoint."""
    parts = id_token.split(".")
    if len(parts) != 3:
        raise OAuthFailure(BAD_ANSWER)
    try:
        claims = _b64url_json(parts[1])
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise OAuthFailure(BAD_ANSWER) from exc
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    exp = claims.get("exp")
    # isfinite: Python's json reads NaN, which no comparison would call expired
    if (client_id not in audiences or not isinstance(exp, (int, float))
            or not math.isfinite(exp) or exp + _LEEWAY < time.time()
            or (nonce is not None and claims.get("nonce") != nonce)):
        raise OAuthFailure(BAD_ANSWER)
    return claims


def _account(provider: OAuthProvider, claims: dict) -> str | None:
    for name in provider.address_claims:
        value = claims.get(name)
        if isinstance(value, str) and "@" in value and len(value) <= 320:
            return value.strip()
    return None


def _userinfo_address(provider: OAuthProvider, client: ClientConfig, token: dict) -> str | None:
    if not provider.userinfo_url:
        return None
    with _session(provider, client) as session:
        session.token = token
        resp = _call("userinfo", session.get, provider.userinfo_url)
        if resp.status_code != 200:
            return None
        try:
            data = resp.json()
        except (ValueError, RecursionError):
            return None
        # Only an object has claims: a list, a string or null there is no address.
        return _account(provider, data) if isinstance(data, dict) else None


def exchange_code(provider: OAuthProvider, client: ClientConfig, code: str,
                  request: AuthorizationRequest) -> TokenSet:
    """Trade the callback's code (with the PKCE verifier) for tokens and the account address."""
    if not code or len(code) > 2048:
        raise OAuthFailure(BAD_ANSWER)
    with _session(provider, client) as session:
        token = _call("code exchange", session.fetch_token, provider.token_url,
                      grant_type="authorization_code", code=code,
                      code_verifier=request.code_verifier)
    token = _checked(token)
    account = None
    if token.get("id_token"):
        account = _account(provider, id_token_claims(token["id_token"], client.client_id,
                                                     request.nonce))
    if account is None:
        account = _userinfo_address(provider, client, token)
    if account is None:
        raise OAuthFailure(NO_ADDRESS)
    return TokenSet(token["access_token"], _expires_at(token), token.get("refresh_token"),
                    rotated=False, scope=token.get("scope", ""), account=account)


def refresh(provider: OAuthProvider, client: ClientConfig, refresh_token: str) -> TokenSet:
    """A new access token; ``rotated`` tells whether a new refresh token came with it."""
    with _session(provider, client) as session:
        token = _call("refresh", session.refresh_token, provider.token_url,
                      refresh_token=refresh_token)
    token = _checked(token)
    new = token.get("refresh_token")
    return TokenSet(token["access_token"], _expires_at(token), new or refresh_token,
                    rotated=bool(new) and new != refresh_token, scope=token.get("scope", ""))


def revoke(provider: OAuthProvider, client: ClientConfig, token: str,
           token_type_hint: str = "refresh_token") -> bool:
    """Revoke at the provider (RFC 7009); False where the provider has no revocation."""
    if not provider.revoke_url:
        return False
    with _session(provider, client) as session:
        resp = _call("revoke", session.revoke_token, provider.revoke_url, token=token,
                     token_type_hint=token_type_hint)
    if resp.status_code == 200:
        return True
    if resp.status_code >= 500:
        raise OAuthFailure(PROVIDER_ERROR)
    try:
        error = resp.json().get("error")
    except (ValueError, AttributeError):
        error = None
    # RFC 7009 answers 200 for a token that is already invalid; Google answers 400.
    if error == "invalid_token":
        return True
    raise OAuthFailure(_ERROR_KINDS.get(error if isinstance(error, str) else "", BAD_ANSWER),
                       error=error if isinstance(error, str) else None)


def state_matches(expected: str | None, received: str | None) -> bool:
    """Constant-time check of the callback's ``state`` against the one sent."""
    if not expected or not received:
        return False
    return secrets.compare_digest(expected.encode(), received.encode())
