"""Issue 12 attacked: the OAuth values a traceback, a debugger or an error reporter prints
(repr, str, exception chains) never show a token, a secret, the PKCE verifier or the
provider's own error text."""

from __future__ import annotations

import traceback

from plugin.setup import oauth_client as oc
from plugin.setup.oauth_providers import PROVIDERS
from plugin.setup.oauth_signin import SignIn

SECRET = "lab-secret-s3cr3t"
AT, RT = "lab-at-access", "lab-rt-refresh"


def test_oauth_reprs_hide_tokens_secrets_and_pkce():
    client = oc.ClientConfig("client-1", SECRET, "https://ats.test/cb")
    tokens = oc.TokenSet(AT, 1.0, RT, account="r@contoso.test")
    req = oc.AuthorizationRequest("https://idp.test/a?state=st4te", "st4te", "v3rifier", "n0nce")
    sign_in = SignIn(PROVIDERS["microsoft"], client, "settings")
    text = " ".join(repr(x) + str(x) for x in (client, tokens, req, sign_in))
    for hidden in (SECRET, AT, RT, "st4te", "v3rifier", "n0nce"):
        assert hidden not in text, hidden
    assert "client-1" in text and "r@contoso.test" in text  # not blank: only secrets go


def test_oauth_failure_keeps_only_plain_error_codes():
    for sent in ("invalid_grant lab-at-access", "x\r\ny", "<script>", "a" * 41, None):
        failure = oc.OAuthFailure(oc.BAD_ANSWER, error=sent)
        assert failure.error is None
        assert "lab-at" not in repr(failure) + str(failure)
    assert oc.OAuthFailure(oc.SIGN_IN_AGAIN, error="invalid_grant").error == "invalid_grant"


def test_oauth_failure_traceback_does_not_chain_the_library_error():
    """``raise … from None``: a logged traceback shows the sentence, not the request that
    failed (Authlib's errors carry the provider's description, requests' the URL)."""

    def boom():
        raise ValueError(f"token endpoint said {AT}")

    try:
        oc._call("code exchange", boom)
    except oc.OAuthFailure as failure:
        printed = "".join(traceback.format_exception(failure))
    assert AT not in printed and "did not expect" in printed
