"""A tenant's voicemail: the messages callers left, with a link to their call record.

The switch writes the WAV (under the data folder's ``recordings/<tenant>/voicemail/``) and
the engine publishes a :class:`~minicc.events.VoicemailLeft`; the server's store subscriber
queues the row here (:meth:`VoicemailTables.save_voicemail`), so the call path never waits.
The CLI lists them (``minicc voicemail list``), copies one out (``minicc voicemail export``)
and marks it heard.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from minicc.events import VoicemailLeft
from minicc.store.ccbase import CallCenterBase
from minicc.store.database import StoreError

__all__ = ["Voicemail", "VoicemailTables"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Voicemail:
    """One message."""

    id: int
    """Row id: what ``minicc voicemail export ID`` takes."""
    box: str
    """The box: a queue's name, an extension, or an IVR node's box."""
    caller: str
    """The caller's number or extension."""
    caller_name: str | None
    """The display name the caller sent."""
    call_id: str
    """The caller leg's SIP Call-ID: the call record's ``call_id``."""
    call_key: str
    """minicc's id for the call."""
    left_at: float
    """Unix time the message ended."""
    duration: float
    """Seconds of audio."""
    path: str
    """The WAV, relative to the data folder."""
    heard: bool
    """Whether someone listened to it (exported it)."""

    def file(self, data_dir: Path) -> Path:
        """The WAV's full path under ``data_dir``."""
        return data_dir / self.path


def _row(row: sqlite3.Row) -> Voicemail:
    return Voicemail(
        id=row["id"],
        box=row["box"],
        caller=row["caller"],
        caller_name=row["caller_name"],
        call_id=row["call_id"],
        call_key=row["call_key"],
        left_at=row["left_at"],
        duration=row["duration"],
        path=row["path"],
        heard=bool(row["heard"]),
    )


class VoicemailTables(CallCenterBase):
    """Voicemail messages (a mixin of :class:`~minicc.store.callcenter.CallCenterStore`)."""

    def save_voicemail(self, event: VoicemailLeft) -> Future[int]:
        """Queue a message's row; the future gives its id. Never blocks."""

        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO voicemails (box, caller, caller_name, call_id, call_key, left_at,"
                " duration, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.box,
                    event.caller,
                    event.caller_name,
                    event.call_id,
                    event.call_key,
                    event.left_at,
                    event.duration,
                    event.path,
                ),
            )
            return int(cur.lastrowid or 0)

        return self.db.submit(insert)

    def list_voicemails(self, box: str | None = None) -> list[Voicemail]:
        """Messages, oldest first; only ``box``'s if given."""
        rows = self.db.query(
            "SELECT * FROM voicemails WHERE (?1 IS NULL OR box = ?1) ORDER BY left_at, id", (box,)
        )
        return [_row(row) for row in rows]

    def get_voicemail(self, voicemail_id: int) -> Voicemail:
        """One message.

        Raises:
            StoreError: no such id (the message says where to look).
        """
        rows = self.db.query("SELECT * FROM voicemails WHERE id = ?", (voicemail_id,))
        if not rows:
            raise StoreError(
                f"no voicemail {voicemail_id} in tenant {self.tenant}: see 'minicc voicemail list'"
            )
        return _row(rows[0])

    def mark_heard(self, voicemail_id: int, heard: bool = True) -> None:
        """Mark a message heard (or not).

        Raises:
            StoreError: no such id.
        """
        changed = self.db.execute_write(
            "UPDATE voicemails SET heard = ? WHERE id = ?", (int(heard), voicemail_id)
        )
        if changed == 0:
            raise StoreError(f"no voicemail {voicemail_id} in tenant {self.tenant}")
