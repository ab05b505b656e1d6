"""What changes while calls run: agent states, VIP callers and callbacks.

The engine's writes here have future-returning forms (``submit_agent_state``,
``add_callback``, ``update_callback``) so the call path never waits on SQLite.
"""

from __future__ import annotations

import logging
import random
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum

from minicc.queue.setup import AgentSetting, PendingCallback, new_callback_id
from minicc.store.ccbase import CallCenterBase, OptionError, _choice, normalize_number
from minicc.store.database import StoreError

__all__ = ["AgentPresence", "AgentTables", "CallbackRecord", "CallbackStatus"]

logger = logging.getLogger(__name__)

_IDS = random.SystemRandom()
"""Ids of callbacks made outside the engine (the CLI, tests)."""

MAX_REASON_LENGTH = 64


class AgentPresence(Enum):
    """The agent states an administrator sets; the engine keeps the finer ones itself."""

    AVAILABLE = "available"
    PAUSED = "paused"
    LOGGED_OUT = "logged-out"


class CallbackStatus(Enum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRecord:
    """A callback row, finished or not."""

    callback: PendingCallback
    """Queue, number, place in the queue and attempts."""
    status: CallbackStatus
    """Pending, done or failed."""
    result: str | None
    """What the last attempt ended in (free text from the engine)."""
    updated_at: float
    """Unix time of the last change."""


class AgentTables(CallCenterBase):
    """Agent states, VIP numbers, callbacks (a mixin of
    :class:`~minicc.store.callcenter.CallCenterStore`)."""

    def _agent_write(
        self, extension: str, state: AgentPresence | str, reason: str | None
    ) -> Callable[[sqlite3.Connection], AgentSetting]:
        subject = f"agent {extension}"
        try:
            presence = _choice(AgentPresence)(state)
        except ValueError as exc:
            raise OptionError(subject, "state", str(exc)) from None
        reason = reason.strip() if reason is not None and reason.strip() else None
        if reason is not None and presence is not AgentPresence.PAUSED:
            raise OptionError(subject, "reason", "only a paused agent has a reason")
        if reason is not None and len(reason) > MAX_REASON_LENGTH:
            raise OptionError(subject, "reason", f"keep it to {MAX_REASON_LENGTH} characters")
        setting = AgentSetting(extension=extension, state=presence.value, reason=reason)

        def upsert(conn: sqlite3.Connection) -> AgentSetting:
            self._require_extension(conn, extension, subject, "extension")
            conn.execute(
                "INSERT INTO agent_states (extension, state, reason, changed_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (extension) DO UPDATE SET"
                " state = excluded.state, reason = excluded.reason,"
                " changed_at = excluded.changed_at",
                (extension, presence.value, reason, self._now_text()),
            )
            return setting

        return upsert

    def set_agent_state(
        self, extension: str, state: AgentPresence | str, reason: str | None = None
    ) -> AgentSetting:
        """Persist an agent's state (blocking; for the CLI and start-up).

        Raises:
            OptionError: unknown state, a reason for a state that is not paused, or no such
                extension.
        """
        setting = self.db.write(self._agent_write(extension, state, reason))
        logger.info("tenant %s: agent %s is %s", self.tenant, extension, setting.state)
        return setting

    def submit_agent_state(
        self, extension: str, state: AgentPresence | str, reason: str | None = None
    ) -> Future[AgentSetting]:
        """Like :meth:`set_agent_state` without waiting (for the engine's event loop).

        Raises:
            OptionError: a bad state or reason (checked before queueing); a missing
                extension arrives through the future.
        """
        return self.db.submit(self._agent_write(extension, state, reason))

    def agent_states(self) -> dict[str, AgentSetting]:
        """Extension -> persisted state."""
        return self.db.read(self._agents)

    @staticmethod
    def _agents(conn: sqlite3.Connection) -> dict[str, AgentSetting]:
        rows = conn.execute(
            "SELECT extension, state, reason FROM agent_states"
            " ORDER BY length(extension), extension"
        )
        return {
            ext: AgentSetting(extension=ext, state=state, reason=reason)
            for ext, state, reason in rows
        }

    # -- VIP callers -----------------------------------------------------------------------

    def add_vip(self, number: str, note: str | None = None) -> bool:
        """Serve callers from ``number`` ahead of others; True if the number is new.

        Raises:
            OptionError: not a number.
        """
        number = normalize_number(number)

        def upsert(conn: sqlite3.Connection) -> bool:
            existed = conn.execute("SELECT 1 FROM vip_numbers WHERE number = ?", (number,))
            new = existed.fetchone() is None
            conn.execute(
                "INSERT INTO vip_numbers (number, note) VALUES (?, ?)"
                " ON CONFLICT (number) DO UPDATE SET note = excluded.note",
                (number, note or None),
            )
            return new

        return self.db.write(upsert)

    def remove_vip(self, number: str) -> None:
        """Raises StoreError when the number is not on the VIP list."""
        number = normalize_number(number)
        if self.db.execute_write("DELETE FROM vip_numbers WHERE number = ?", (number,)) == 0:
            raise StoreError(f"number {number} is not on the VIP list: see 'minicc vip list'")

    def list_vips(self) -> dict[str, str | None]:
        """VIP number -> note."""
        rows = self.db.query("SELECT number, note FROM vip_numbers ORDER BY number")
        return {row[0]: row[1] for row in rows}

    # -- callbacks -------------------------------------------------------------------------

    def add_callback(
        self,
        queue: str,
        number: str,
        *,
        joined_at: float,
        name: str | None = None,
        priority: int = 0,
        attempts: int = 0,
        callback_id: str | None = None,
    ) -> Future[PendingCallback]:
        """Queue a callback request; it keeps the place of ``joined_at`` (unix time).

        The queue engine names its callbacks itself (``callback_id``) so it never waits for
        this write; storing the same id again updates the pending row's priority and
        attempts (the engine's "store or update", without a read first).

        Args:
            queue: the queue whose virtual line it waits in.
            number: where to call back.
            joined_at: the place it keeps (unix time).
            name: the caller's name, if known.
            priority: queue priority.
            attempts: dial-back attempts made so far.
            callback_id: its id; a fresh one when None.

        Returns:
            A future with the stored callback; an :class:`OptionError` through it when the
            queue does not exist.

        Raises:
            OptionError: a bad number or attempts (checked before queueing).
        """
        number = normalize_number(number)
        subject = f"callback to {number}"
        if attempts < 0:
            raise OptionError(subject, "attempts", "must be >= 0")
        callback = PendingCallback(
            id=callback_id or new_callback_id(self._clock(), _IDS),
            queue=queue,
            number=number,
            name=name,
            joined_at=joined_at,
            priority=priority,
            attempts=attempts,
        )

        def upsert(conn: sqlite3.Connection) -> PendingCallback:
            self._require_queue(conn, queue, subject, "queue")
            conn.execute(
                "INSERT INTO callbacks"
                " (id, queue, number, name, joined_at, priority, attempts, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " priority = excluded.priority, attempts = excluded.attempts,"
                " updated_at = excluded.updated_at",
                (
                    callback.id,
                    queue,
                    number,
                    name,
                    joined_at,
                    priority,
                    attempts,
                    self._clock(),
                ),
            )
            return callback

        return self.db.submit(upsert)

    def update_callback(
        self,
        callback_id: str,
        *,
        status: CallbackStatus | str | None = None,
        attempts: int | None = None,
        result: str | None = None,
    ) -> Future[None]:
        """Record an attempt or the end of a callback; unchanged fields stay.

        Returns:
            A future; a :class:`StoreError` through it for an unknown id.
        """
        new_status = None if status is None else _choice(CallbackStatus)(status)
        if attempts is not None and attempts < 0:
            raise OptionError(f"callback {callback_id}", "attempts", "must be >= 0")

        def update(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE callbacks SET status = coalesce(?, status),"
                " attempts = coalesce(?, attempts), result = coalesce(?, result),"
                " updated_at = ? WHERE id = ?",
                (
                    None if new_status is None else new_status.value,
                    attempts,
                    result,
                    self._clock(),
                    callback_id,
                ),
            )
            if cur.rowcount == 0:
                raise StoreError(f"no callback with id {callback_id}")

        return self.db.submit(update)

    def pending_callbacks(self, queue: str | None = None) -> list[PendingCallback]:
        """Callbacks still to be made, oldest place first."""
        return [r.callback for r in self.list_callbacks(CallbackStatus.PENDING, queue=queue)]

    def list_callbacks(
        self, status: CallbackStatus | None = None, *, queue: str | None = None
    ) -> list[CallbackRecord]:
        """Callback rows, oldest place first, optionally of one status and queue."""
        return self.db.read(lambda conn: self._callbacks(conn, status, queue))

    @staticmethod
    def _callbacks(
        conn: sqlite3.Connection, status: CallbackStatus | None, queue: str | None
    ) -> list[CallbackRecord]:
        rows = conn.execute(
            "SELECT * FROM callbacks WHERE (?1 IS NULL OR status = ?1)"
            " AND (?2 IS NULL OR queue = ?2) ORDER BY joined_at, rowid",
            (None if status is None else status.value, queue),
        )
        return [
            CallbackRecord(
                callback=PendingCallback(
                    id=str(row["id"]),
                    queue=row["queue"],
                    number=row["number"],
                    name=row["name"],
                    joined_at=row["joined_at"],
                    priority=row["priority"],
                    attempts=row["attempts"],
                ),
                status=CallbackStatus(row["status"]),
                result=row["result"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]
