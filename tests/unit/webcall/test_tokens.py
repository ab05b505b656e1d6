"""Widget session tokens: signed, short-lived, bound to tenant and origin."""

from __future__ import annotations

import pytest

from minicc.webcall.tokens import (
    SessionClaims,
    TokenError,
    peek_tenant,
    sign_session,
    verify_session,
)

SECRET = "s3cret-of-acme"
ORIGIN = "https://shop.example"


def _token(expires: float = 1000.0, tenant: str = "acme") -> str:
    return sign_session(SessionClaims(tenant=tenant, origin=ORIGIN, expires=expires), SECRET)


def test_a_token_verifies_until_it_expires() -> None:
    token = _token()
    claims = verify_session(token, SECRET, now=999.0, origin=ORIGIN)
    assert (claims.tenant, claims.origin) == ("acme", ORIGIN)
    assert peek_tenant(token) == "acme"
    with pytest.raises(TokenError, match="expired"):
        verify_session(token, SECRET, now=1000.0, origin=ORIGIN)


def test_another_origin_or_secret_is_refused() -> None:
    token = _token()
    with pytest.raises(TokenError, match="another origin"):
        verify_session(token, SECRET, now=0.0, origin="https://evil.example")
    with pytest.raises(TokenError, match="signature"):
        verify_session(token, "other-secret", now=0.0, origin=ORIGIN)


def test_a_changed_payload_breaks_the_signature() -> None:
    forged = _token(tenant="other").split(".")[0] + "." + _token().split(".")[1]
    with pytest.raises(TokenError, match="signature"):
        verify_session(forged, SECRET, now=0.0, origin=ORIGIN)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b", "!!!.???", "e30.x"])
def test_garbage_is_a_clear_error(garbage: str) -> None:
    with pytest.raises(TokenError):
        verify_session(garbage, SECRET, now=0.0, origin=ORIGIN)
    if "." not in garbage or garbage == "a.b":
        with pytest.raises(TokenError, match="malformed"):
            peek_tenant(garbage)
