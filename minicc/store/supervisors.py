"""Who may monitor calls: a per-extension supervisor flag, until roles arrive (issue 6).

A supervisor may listen to, whisper to and barge into the calls of their own tenant's
extensions (:mod:`minicc.queue.monitors`). The flag lives in a table of its own in the
tenant's database. It is created on first use (``CREATE TABLE IF NOT EXISTS``) instead of
by a numbered migration: the flag is a stop-gap the roles of issue 6 will replace, and a
table that needs no schema version cannot collide with the migrations other work adds in
the meantime. Reading never creates it: a tenant nobody was ever made supervisor of simply
has none.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime

from minicc.store.database import StoreError
from minicc.store.tenant import TenantStore, validate_extension

__all__ = ["read_supervisors", "set_supervisor"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS supervisors (
    extension TEXT PRIMARY KEY REFERENCES extensions(extension) ON DELETE CASCADE,
    since TEXT NOT NULL
)
"""


def set_supervisor(store: TenantStore, extension: str, supervisor: bool) -> None:
    """Grant or withdraw the supervisor flag of ``extension``.

    Raises:
        StoreError: the extension is malformed or does not exist in the tenant.
    """
    validate_extension(extension)

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(_SCHEMA)
        exists = conn.execute(
            "SELECT 1 FROM extensions WHERE extension = ?", (extension,)
        ).fetchone()
        if exists is None:
            raise StoreError(
                f"extension {extension} does not exist in tenant {store.tenant}: "
                "add it first with 'minicc user add'"
            )
        if supervisor:
            conn.execute(
                "INSERT OR IGNORE INTO supervisors (extension, since) VALUES (?, ?)",
                (extension, datetime.now(UTC).replace(microsecond=0).isoformat()),
            )
        else:
            conn.execute("DELETE FROM supervisors WHERE extension = ?", (extension,))

    store.db.write(write)
    logger.info(
        "extension %s of tenant %s: supervisor %s",
        extension,
        store.tenant,
        "granted" if supervisor else "withdrawn",
    )


def read_supervisors(store: TenantStore) -> frozenset[str]:
    """The tenant's supervisors' extensions (none when the table was never created)."""
    rows = store.db.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'supervisors'"
    )
    if not rows:
        return frozenset()
    return frozenset(
        row["extension"] for row in store.db.query("SELECT extension FROM supervisors")
    )
