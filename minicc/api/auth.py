"""Who is calling the API: logins, bearer tokens, roles and a guard against password guessing.

A login checks the extension's password the way the switch does, against the stored digest
HA1 of the tenant's realm (minicc never stores the password itself), and issues a session
token scoped to that tenant and to the user's role. Every other request carries a token in
``Authorization: Bearer``; the token alone decides the tenant, so no request can name
another tenant's data.

:class:`LoginGuard` is the lockout: failed logins are counted per (tenant, extension) and
per client address; past the limit further attempts are refused without checking the
password, for a time that doubles with each further failure (capped). It is pure, with the
clock passed in.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from minicc.store.tokens import Role, TokenKind, TokenRecord
from minicc.switch.sip.auth import DigestAlgorithm, compute_ha1
from minicc.tenants.directory import TenantEntry

__all__ = ["LoginGuard", "Principal", "check_password"]

FREE_FAILURES = 5
"""Failed logins allowed before the lockout starts."""
FIRST_LOCK = 30.0
MAX_LOCK = 900.0
FORGET_AFTER = 3600.0
"""A key with no failure for this long starts again from zero."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """The caller of a request, from its token."""

    tenant: str
    role: Role
    subject: str
    """The extension (session tokens) or the token's label (long-lived tokens)."""
    token_id: int
    kind: TokenKind

    @classmethod
    def of(cls, record: TokenRecord) -> Principal:
        return cls(
            tenant=record.tenant,
            role=record.role,
            subject=record.subject,
            token_id=record.id,
            kind=record.kind,
        )

    @property
    def extension(self) -> str | None:
        """The agent's extension, for tokens a login made."""
        return self.subject if self.kind is TokenKind.SESSION else None


def check_password(entry: TenantEntry, extension: str, password: str) -> bool:
    """True if ``password`` is ``extension``'s in the tenant (constant-time comparison)."""
    stored = entry.extensions.get(extension)
    # Compute the digest even for an unknown extension, so the answer takes as long.
    realm = stored.realm if stored is not None else entry.realm
    ha1 = compute_ha1(extension, realm, password, DigestAlgorithm.SHA256)
    expected = stored.ha1_sha256 if stored is not None else "0" * len(ha1)
    return hmac.compare_digest(ha1, expected) and stored is not None


@dataclass(slots=True)
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


@dataclass(slots=True)
class LoginGuard:
    """Counts failed logins and says when to refuse (see module doc)."""

    free: int = FREE_FAILURES
    first_lock: float = FIRST_LOCK
    max_lock: float = MAX_LOCK
    _keys: dict[tuple[str, ...], _Failures] = field(default_factory=dict)

    def retry_after(self, keys: list[tuple[str, ...]], now: float) -> float:
        """Seconds until any of ``keys`` may try again (0: go ahead)."""
        wait = 0.0
        for key in keys:
            entry = self._keys.get(key)
            if entry is not None:
                wait = max(wait, entry.locked_until - now)
        return max(0.0, wait)

    def failed(self, keys: list[tuple[str, ...]], now: float) -> None:
        self._forget_old(now)
        for key in keys:
            entry = self._keys.setdefault(key, _Failures())
            entry.count += 1
            entry.last = now
            over = entry.count - self.free
            if over >= 0:
                entry.locked_until = now + min(self.max_lock, self.first_lock * 2**over)

    def succeeded(self, keys: list[tuple[str, ...]]) -> None:
        for key in keys:
            self._keys.pop(key, None)

    def _forget_old(self, now: float) -> None:
        if len(self._keys) < 1000:
            return
        for key in [k for k, v in self._keys.items() if now - v.last > FORGET_AFTER]:
            del self._keys[key]
