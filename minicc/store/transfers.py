"""Transfers of calls, kept beside the call-detail records of a tenant's database.

A call record (``cdrs``) is written once, when the call ends, and says nothing about what
happened during it. A transfer is such a thing: the queue engine publishes a
:class:`~minicc.events.CallTransferred` for every attempt, and the server's CDR writer hands
it here. ``minicc cdr export`` then shows each record's transfers (see
:func:`transfers_by_call`).

The table is created on the first write with ``CREATE TABLE IF NOT EXISTS`` instead of a
numbered migration in :mod:`minicc.store.tenant`: several features add tables to the tenant
database in parallel, and a second "migration 3" would silently skip one of them on a
database that already ran the other. Fold it into the numbered migrations when they settle.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from concurrent.futures import Future

from minicc.events import CallTransferred
from minicc.store.database import Database

__all__ = ["record_transfer", "transfers_by_call"]

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS call_transfers (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,          -- SIP Call-ID of the caller's leg, as in cdrs.call_id
        at REAL NOT NULL,               -- unix seconds (UTC)
        kind TEXT NOT NULL CHECK (kind IN ('blind', 'attended')),
        by_extension TEXT,
        target TEXT NOT NULL,
        status INTEGER NOT NULL,
        destination TEXT NOT NULL,
        queue TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS call_transfers_call ON call_transfers(call_id)",
)


def record_transfer(db: Database, event: CallTransferred, at: float) -> Future[int]:
    """Queue the transfer for the writer thread (never blocks); the future gives the row id.

    Args:
        db: the tenant's database (``TenantStore.db``).
        event: the transfer; its ``sip_call_id`` links it to the call's record.
        at: unix time of the transfer.
    """

    def write(conn: sqlite3.Connection) -> int:
        for statement in _SCHEMA:
            conn.execute(statement)
        cursor = conn.execute(
            "INSERT INTO call_transfers"
            " (call_id, at, kind, by_extension, target, status, destination, queue)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.sip_call_id,
                at,
                event.kind,
                event.by,
                event.target,
                event.status,
                event.destination,
                event.queue,
            ),
        )
        return int(cursor.lastrowid or 0)

    return db.submit(write)


def transfers_by_call(db: Database, call_ids: Iterable[str]) -> dict[str, str]:
    """A one-line summary of the transfers of each call that had any, by SIP Call-ID.

    The summary lists the attempts in order as ``KIND BY->DESTINATION STATUS``, separated by
    ``"; "``, e.g. ``blind 2002->ext:2003 200``. Calls without transfers are left out.
    """
    wanted = set(call_ids)
    if not wanted:
        return {}
    try:
        rows = db.query(
            "SELECT call_id, kind, by_extension, destination, status FROM call_transfers"
            " ORDER BY at, id"
        )
    except sqlite3.OperationalError:  # no transfer was ever stored: no table yet
        return {}
    out: dict[str, list[str]] = {}
    for call_id, kind, by, destination, status in rows:
        if call_id in wanted:
            out.setdefault(call_id, []).append(f"{kind} {by or '?'}->{destination} {status}")
    return {call_id: "; ".join(items) for call_id, items in out.items()}
