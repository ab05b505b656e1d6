"""The audit log: every administrative change, with who made it, when and from where.

Changes come from two doors. The management CLI records each command that changed
something (its words, with secrets masked) under the operating-system user who ran it,
from ``cli@<host>``. The API records what supervisors and admins change under their token's
subject, from ``api@<client address>``. The log lives in the control database, so it
survives any tenant's deletion (a deleted tenant's history of changes is evidence too).
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future
from dataclasses import dataclass

from minicc.store.database import Database

__all__ = ["AuditEntry", "AuditLog", "mask_secrets"]

SECRET_FLAGS = ("--password", "--secret", "--token")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    id: int
    at: float
    """Unix time."""
    actor: str
    """OS user (CLI) or token subject (API)."""
    source: str
    """``cli@<host>`` or ``api@<address>``."""
    tenant: str | None
    action: str
    """What was done, e.g. ``tenant suspend`` or ``PUT /api/agents/1002/state``."""
    detail: str


def mask_secrets(words: list[str]) -> list[str]:
    """Command words with the values of secret flags replaced by ``***``."""
    masked: list[str] = []
    hide_next = False
    for word in words:
        if hide_next:
            masked.append("***")
            hide_next = False
            continue
        flag, eq, _ = word.partition("=")
        if flag in SECRET_FLAGS:
            if eq:
                masked.append(f"{flag}=***")
            else:
                masked.append(word)
                hide_next = True
            continue
        masked.append(word)
    return masked


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        *,
        at: float,
        actor: str,
        source: str,
        action: str,
        tenant: str | None = None,
        detail: str = "",
    ) -> Future[None]:
        """Queue an entry; never blocks (the writer thread stores it)."""

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO audit_log (at, actor, source, tenant, action, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (at, actor, source, tenant, action, detail[:2000]),
            )

        return self._db.submit(insert)

    def entries(
        self, *, tenant: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Newest first."""
        clauses, params = [], []
        if tenant is not None:
            clauses.append("tenant = ?")
            params.append(tenant)
        if since is not None:
            clauses.append("at >= ?")
            params.append(since)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.query(
            f"SELECT * FROM audit_log{where} ORDER BY at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [
            AuditEntry(
                id=r["id"],
                at=r["at"],
                actor=r["actor"],
                source=r["source"],
                tenant=r["tenant"],
                action=r["action"],
                detail=r["detail"],
            )
            for r in rows
        ]
