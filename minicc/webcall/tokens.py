"""Short-lived signed session tokens for the widget (HMAC-SHA256, no server state).

``POST /webcall/session`` checks the page's origin against the tenant's list and hands the
widget a token binding tenant, origin and expiry; every later signaling request must carry it
and come from the same origin. The tenant's secret signs it, so a token from one tenant is
worthless at another, and rotating the secret voids all tokens at once.

Format: ``base64url(json payload) "." base64url(hmac)``. Pure functions; ``now`` is passed in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

__all__ = ["TOKEN_LIFETIME", "SessionClaims", "TokenError", "sign_session", "verify_session"]

TOKEN_LIFETIME = 600.0
"""Seconds a widget session token is good for (a new page view gets a new one)."""


class TokenError(ValueError):
    """The token is malformed, forged, expired or for another tenant/origin."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionClaims:
    tenant: str
    origin: str
    expires: float
    nonce: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def sign_session(claims: SessionClaims, secret: str) -> str:
    payload = {"t": claims.tenant, "o": claims.origin, "e": round(claims.expires, 3)}
    if claims.nonce:
        payload["n"] = claims.nonce
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_mac(secret, body)}"


def peek_tenant(token: str) -> str:
    """The tenant a token claims (unverified: only to pick the secret to verify it with).

    Raises:
        TokenError: not a token.
    """
    try:
        body, _ = token.split(".", 1)
        tenant = json.loads(_unb64(body))["t"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError("session token is malformed: ask /webcall/session for a new one") from exc
    if not isinstance(tenant, str):
        raise TokenError("session token is malformed: ask /webcall/session for a new one")
    return tenant


def verify_session(token: str, secret: str, *, now: float, origin: str) -> SessionClaims:
    """Check signature, expiry and origin.

    Raises:
        TokenError: naming what is wrong.
    """
    try:
        body, mac = token.split(".", 1)
    except ValueError:
        raise TokenError("session token is malformed: ask /webcall/session for a new one") from None
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise TokenError("session token signature is invalid: ask /webcall/session for a new one")
    try:
        payload = json.loads(_unb64(body))
        claims = SessionClaims(
            tenant=str(payload["t"]),
            origin=str(payload["o"]),
            expires=float(payload["e"]),
            nonce=str(payload.get("n", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError("session token is malformed: ask /webcall/session for a new one") from exc
    if now >= claims.expires:
        raise TokenError("session token has expired: ask /webcall/session for a new one")
    if claims.origin != origin:
        raise TokenError("session token was issued to another origin")
    return claims
