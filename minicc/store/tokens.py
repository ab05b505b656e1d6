"""API tokens in the control database: issued, checked, listed and revoked.

A token is shown once, when it is made; the database keeps only its SHA-256 digest, so a
copy of ``control.db`` holds nothing a client could present. Tokens are long random strings
(256 bits), which is why a plain digest is enough here: there is nothing to brute-force
that a salt or a slow hash would protect (unlike passwords).

Two kinds exist: *session* tokens from a login (``POST /api/sessions``, ``minicc login``),
which expire, and *long-lived* tokens an administrator makes for automation
(``minicc token create``), which last until revoked. Every token belongs to exactly one
tenant and one role.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from enum import Enum

from minicc.store.database import Database, StoreError

__all__ = ["Role", "TokenKind", "TokenRecord", "TokenStore", "digest_of"]

PREFIX = "mcc_"
"""Every token starts with this, so a leaked one is easy to recognise (secret scanners)."""


class Role(Enum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    """Tenant administrator."""

    def allows(self, needed: Role) -> bool:
        """A supervisor may do what an agent may; an admin what a supervisor may."""
        order = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
        return order.index(self) >= order.index(needed)


class TokenKind(Enum):
    SESSION = "session"
    LONG_LIVED = "long-lived"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    id: int
    tenant: str
    """Tenant name the token is scoped to."""
    role: Role
    subject: str
    """The extension that logged in (sessions) or the label given (long-lived tokens)."""
    kind: TokenKind
    created_at: float
    """Unix time."""
    expires_at: float | None
    """Unix time; None: until revoked."""
    revoked_at: float | None

    def valid_at(self, now: float) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        tenant=row["tenant"],
        role=Role(row["role"]),
        subject=row["subject"],
        kind=TokenKind(row["kind"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class TokenStore:
    """Tokens of one control database (see module doc).

    Writes go through the database's writer thread: :meth:`issue` and :meth:`revoke` return
    futures, so the server's event loop can await them instead of blocking.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def issue(
        self,
        *,
        tenant: str,
        role: Role,
        subject: str,
        kind: TokenKind,
        now: float,
        lifetime: float | None,
    ) -> tuple[str, TokenRecord]:
        """Make a token; returns it (the only time it is seen) and its record.

        Blocks until written: use from the CLI or a worker thread.

        Raises:
            StoreError: an empty subject or a lifetime that is not positive.
        """
        if not subject.strip():
            raise StoreError("token subject (label) must not be empty")
        if lifetime is not None and lifetime <= 0:
            raise StoreError("token lifetime must be positive (or none, for no expiry)")
        token = PREFIX + secrets.token_urlsafe(32)
        expires = None if lifetime is None else now + lifetime

        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO api_tokens (digest, tenant, role, subject, kind, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest_of(token), tenant, role.value, subject, kind.value, now, expires),
            )
            return int(cur.lastrowid or 0)

        token_id = self._db.write(insert)
        record = TokenRecord(
            id=token_id,
            tenant=tenant,
            role=role,
            subject=subject,
            kind=kind,
            created_at=now,
            expires_at=expires,
            revoked_at=None,
        )
        return token, record

    def find(self, token: str) -> TokenRecord | None:
        """The record of a presented token, valid or not; None if it was never issued."""
        if not token.startswith(PREFIX):
            return None
        rows = self._db.query("SELECT * FROM api_tokens WHERE digest = ?", (digest_of(token),))
        return _row(rows[0]) if rows else None

    def list(self, tenant: str | None = None) -> list[TokenRecord]:
        if tenant is None:
            rows = self._db.query("SELECT * FROM api_tokens ORDER BY id")
        else:
            rows = self._db.query(
                "SELECT * FROM api_tokens WHERE tenant = ? ORDER BY id", (tenant,)
            )
        return [_row(r) for r in rows]

    def revoke(self, token_id: int, *, now: float, tenant: str | None = None) -> TokenRecord:
        """Revoke a token by id (of ``tenant`` when given). Revoking twice is harmless.

        Raises:
            StoreError: no such token (in that tenant).
        """

        def update(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT tenant FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
            if row is None or (tenant is not None and row[0] != tenant):
                where = f" of tenant {tenant!r}" if tenant is not None else ""
                raise StoreError(f"no token with id {token_id}{where}: see `minicc token list`")
            conn.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now, token_id),
            )

        self._db.write(update)
        rows = self._db.query("SELECT * FROM api_tokens WHERE id = ?", (token_id,))
        return _row(rows[0])

    def purge_expired(self, *, now: float, grace: float = 7 * 86400.0) -> int:
        """Delete session tokens that expired more than ``grace`` seconds ago."""
        return self._db.execute_write(
            "DELETE FROM api_tokens WHERE kind = 'session' AND expires_at < ?", (now - grace,)
        )
