"""Tenant settings (time zone, once-only markers) and the engine's statistics snapshot."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, fields
from typing import Any

from minicc.queue.hours import HoursError, load_timezone
from minicc.queue.stats import StatsSnapshot
from minicc.store.ccbase import TIMEZONE_KEY, CallCenterBase, OptionError
from minicc.store.queues import _plain

__all__ = ["SavedStats", "SettingsTables", "stats_to_json"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedStats:
    """The engine's latest statistics snapshot."""

    taken_at: float
    """Unix time the engine took it."""
    data: Mapping[str, Any]
    """As written by :func:`stats_to_json` (or whatever mapping the engine saved)."""


def stats_to_json(snapshot: StatsSnapshot) -> dict[str, Any]:
    """A statistics snapshot as JSON-ready values.

    Engine-clock times mean nothing outside the engine, so they become durations:
    ``period_seconds`` and each agent's ``in_state_seconds``.
    """
    return {
        "period_seconds": max(0.0, snapshot.at - snapshot.period_start),
        "queues": {
            name: {
                **{f.name: _plain(getattr(q, f.name)) for f in fields(q) if f.name != "left"},
                "left": {reason.value: count for reason, count in q.left.items()},
            }
            for name, q in snapshot.queues.items()
        },
        "agents": {
            agent_id: {
                "state": a.state.value,
                "reason": a.reason,
                "in_state_seconds": max(0.0, snapshot.at - a.since),
                "calls_handled": a.calls_handled,
                "occupancy": a.occupancy,
                "time_in": [
                    {"state": state.value, "reason": reason, "seconds": seconds}
                    for (state, reason), seconds in a.time_in.items()
                ],
            }
            for agent_id, a in snapshot.agents.items()
        },
    }


class SettingsTables(CallCenterBase):
    """Settings and statistics (a mixin of :class:`~minicc.store.callcenter.CallCenterStore`)."""

    def get_setting(self, key: str) -> str | None:
        rows = self.db.query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_setting(self, key: str, value: str) -> None:
        self.db.execute_write(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def claim_once(self, key: str) -> bool:
        """Set setting ``key`` if it is unset; True for the one caller that set it.

        Atomic across processes: for "do this once per tenant" steps such as the demo set-up.
        """
        return (
            self.db.execute_write(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, self._now_text()),
            )
            == 1
        )

    def delete_setting(self, key: str) -> None:
        self.db.execute_write("DELETE FROM settings WHERE key = ?", (key,))

    def timezone(self) -> str:
        """The tenant's IANA time zone for business hours (UTC unless set)."""
        return self.db.read(self._timezone)

    def set_timezone(self, name: str) -> str:
        """Set the tenant's time zone.

        Raises:
            OptionError: not an IANA zone name.
        """
        try:
            load_timezone(name)
        except HoursError as exc:
            raise OptionError(f"tenant {self.tenant}", "timezone", str(exc)) from None
        self.set_setting(TIMEZONE_KEY, name)
        return name

    # -- statistics ------------------------------------------------------------------------

    def save_stats_snapshot(
        self, snapshot: StatsSnapshot | Mapping[str, Any], *, taken_at: float | None = None
    ) -> Future[None]:
        """Replace the stored statistics with this snapshot, without waiting.

        Args:
            snapshot: the engine's snapshot, or an already JSON-ready mapping.
            taken_at: unix time of the snapshot; now by default.
        """
        data = stats_to_json(snapshot) if isinstance(snapshot, StatsSnapshot) else snapshot
        text = json.dumps(data, sort_keys=True, allow_nan=False)
        when = self._clock() if taken_at is None else taken_at

        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO queue_stats (id, taken_at, data) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET taken_at = excluded.taken_at,"
                " data = excluded.data",
                (when, text),
            )

        return self.db.submit(upsert)

    def latest_stats(self) -> SavedStats | None:
        """The last snapshot saved, or None before the engine saved one."""
        rows = self.db.query("SELECT taken_at, data FROM queue_stats WHERE id = 1")
        if not rows:
            return None
        return SavedStats(taken_at=float(rows[0][0]), data=json.loads(rows[0][1]))
