"""Web call records and page context, in the tenant's database.

Every web call leaves one row: when, from which page (URL, title, the site's customer id),
which origin, the SIP Call-ID the switch saw (joins the switch's CDR) and why it ended
(``remote-bye``, ``web-hangup``, ``browser-failed``, ``worker-crashed``, ``sip-403``...).
The switch's own CDR covers the SIP leg; this row covers the browser side, including calls
that never reached the switch. Like :mod:`minicc.webcall.settings`, the table is created on
first use.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from minicc.store.database import Database

__all__ = ["PageContext", "WebCallRecord", "insert_record", "list_records"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webcall_calls (
    id TEXT PRIMARY KEY,
    sip_call_id TEXT NOT NULL,
    number TEXT NOT NULL,
    origin TEXT NOT NULL,
    page_url TEXT NOT NULL DEFAULT '',
    page_title TEXT NOT NULL DEFAULT '',
    customer_id TEXT NOT NULL DEFAULT '',
    started REAL NOT NULL,
    ended REAL NOT NULL,
    reason TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class PageContext:
    """What the widget reports about the page the visitor calls from."""

    url: str = ""
    title: str = ""
    customer_id: str = ""
    """Set by the site (``data-customer-id`` or ``MiniccWebcall.setCustomerId``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WebCallRecord:
    id: str
    sip_call_id: str
    number: str
    origin: str
    page: PageContext
    started: float
    ended: float
    reason: str


def insert_record(db: Database, record: WebCallRecord) -> None:
    """Queue the row on the writer thread (the loop never waits on SQLite)."""

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(_SCHEMA)
        conn.execute(
            "INSERT OR REPLACE INTO webcall_calls (id, sip_call_id, number, origin, page_url,"
            " page_title, customer_id, started, ended, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.sip_call_id,
                record.number,
                record.origin,
                record.page.url,
                record.page.title,
                record.page.customer_id,
                record.started,
                record.ended,
                record.reason,
            ),
        )

    db.submit(write)


def list_records(db: Database, limit: int = 100) -> list[WebCallRecord]:
    def read(conn: sqlite3.Connection) -> list[WebCallRecord]:
        has = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='webcall_calls'"
        ).fetchone()
        if not has:
            return []
        rows = conn.execute(
            "SELECT * FROM webcall_calls ORDER BY ended DESC LIMIT ?", (limit,)
        ).fetchall()
        return [
            WebCallRecord(
                id=r["id"],
                sip_call_id=r["sip_call_id"],
                number=r["number"],
                origin=r["origin"],
                page=PageContext(
                    url=r["page_url"], title=r["page_title"], customer_id=r["customer_id"]
                ),
                started=r["started"],
                ended=r["ended"],
                reason=r["reason"],
            )
            for r in rows
        ]

    return db.read(read)
