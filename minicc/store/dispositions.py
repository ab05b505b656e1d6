"""A tenant's wrap-up disposition codes (``resolved``, ``callback-promised``...) and the
dispositions agents set on calls.

The codes are provisioning (the CLI, later the API); the engine gets them through
:attr:`CallCenterSetup.dispositions <minicc.queue.setup.CallCenterSetup.dispositions>`.
A disposition set on a call arrives as a :class:`~minicc.events.DispositionSet` event and
is queued for the writer thread (:meth:`DispositionTables.save_call_disposition`): the
call path never waits. ``minicc cdr export`` joins them to the call records by Call-ID
(:meth:`DispositionTables.call_dispositions`).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection
from concurrent.futures import Future
from dataclasses import dataclass

from minicc.events import DispositionSet
from minicc.store.ccbase import CallCenterBase, OptionError
from minicc.store.database import StoreError

__all__ = ["CallDisposition", "DispositionTables"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDisposition:
    """The wrap-up an agent recorded for a call."""

    call_key: str
    """minicc's id for the call."""
    call_id: str | None
    """The caller leg's SIP Call-ID (the call record's ``call_id``); None for a callback."""
    agent: str
    """The agent's extension."""
    queue: str
    """The queue the call came from."""
    code: str
    """The disposition code."""
    note: str | None
    """The agent's note."""
    set_at: float
    """Unix time it was set."""


_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
END_WRAP_UP_KEY = "disposition_ends_wrap_up"
"""Tenant setting: "on" when setting a disposition during wrap-up ends the wrap-up."""


class DispositionTables(CallCenterBase):
    """Disposition codes (a mixin of :class:`~minicc.store.callcenter.CallCenterStore`)."""

    def add_disposition(self, code: str, label: str | None = None) -> None:
        """Add (or relabel) a wrap-up disposition code such as ``resolved``.

        Raises:
            OptionError: a code that is not lowercase letters, digits, '-' or '_'.
        """
        if not _CODE.fullmatch(code):
            raise OptionError(
                f"disposition {code!r}", "code", "use 1-32 lowercase letters, digits, '-' or '_'"
            )
        self.db.execute_write(
            "INSERT INTO dispositions (code, label) VALUES (?, ?)"
            " ON CONFLICT (code) DO UPDATE SET label = excluded.label",
            (code, label or code.replace("-", " ").capitalize()),
        )

    def remove_disposition(self, code: str) -> None:
        """Remove a code; calls that have it keep it.

        Raises:
            StoreError: an unknown code; the message lists the known ones.
        """
        if self.db.execute_write("DELETE FROM dispositions WHERE code = ?", (code,)) == 0:
            known = ", ".join(c for c, _ in self.list_dispositions()) or "none yet"
            raise StoreError(
                f"no disposition code {code!r} in tenant {self.tenant} (known: {known}): "
                "see 'minicc disposition list'"
            )

    def set_end_wrap_up(self, on: bool) -> None:
        """Whether a disposition set during wrap-up ends the wrap-up (off by default)."""
        self.db.execute_write(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (END_WRAP_UP_KEY, "on" if on else "off"),
        )

    def ends_wrap_up(self) -> bool:
        """See :meth:`set_end_wrap_up`."""
        return self.db.read(self._ends_wrap_up)

    @staticmethod
    def _ends_wrap_up(conn: sqlite3.Connection) -> bool:
        row = conn.execute("SELECT value FROM settings WHERE key = ?", (END_WRAP_UP_KEY,))
        found = row.fetchone()
        return found is not None and found[0] == "on"

    def save_call_disposition(self, event: DispositionSet) -> Future[None]:
        """Queue the disposition an agent set on a call (replacing an earlier one of the
        call). Never blocks; failures come through the future."""

        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO call_dispositions"
                " (call_key, call_id, agent, queue, code, note, set_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_key) DO UPDATE SET"
                " agent = excluded.agent, code = excluded.code, note = excluded.note,"
                " set_at = excluded.set_at",
                (
                    event.call_key,
                    event.call_id,
                    event.agent,
                    event.queue,
                    event.code,
                    event.note,
                    event.set_at,
                ),
            )

        return self.db.submit(upsert)

    def call_dispositions(self, call_ids: Collection[str] | None = None) -> list[CallDisposition]:
        """Dispositions set on calls, oldest first; only those of ``call_ids`` if given."""
        rows = self.db.query("SELECT * FROM call_dispositions ORDER BY set_at, rowid")
        found = [
            CallDisposition(
                call_key=row["call_key"],
                call_id=row["call_id"],
                agent=row["agent"],
                queue=row["queue"],
                code=row["code"],
                note=row["note"],
                set_at=row["set_at"],
            )
            for row in rows
        ]
        if call_ids is None:
            return found
        wanted = set(call_ids)
        return [d for d in found if d.call_id in wanted]

    def list_dispositions(self) -> list[tuple[str, str]]:
        """(code, label) in the order they were added."""
        rows = self.db.query("SELECT code, label FROM dispositions ORDER BY rowid")
        return [(row[0], row[1]) for row in rows]
