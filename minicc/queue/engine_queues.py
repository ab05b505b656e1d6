"""Runtime state of one queue inside the engine: who waits, who is being offered, to whom.

Pure bookkeeping; the decisions come from :mod:`minicc.queue.acd` and
:mod:`minicc.queue.ewt`. A call being offered stays in :attr:`QueueRuntime.waiting` (it
keeps its place and counts for positions and ``max_length``) but is left out of
:meth:`QueueRuntime.candidates`, as :func:`minicc.queue.acd.pick` asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from minicc.queue import acd
from minicc.queue.ewt import HandleTimes
from minicc.queue.models import Member, QueueConfig, QueuedCall

__all__ = ["Offer", "QueueRuntime", "Sequencer"]

_MICRO = 1_000_000


@dataclass(slots=True, kw_only=True)
class Offer:
    """One call ringing one agent (or several, ring-all)."""

    call_id: str
    attempts: dict[int, str] = field(default_factory=dict)
    """Ring attempt id -> agent, for live calls."""
    deadline: float
    """Safety net: attempts the switch has not reported by then count as no answer."""


@dataclass(slots=True, kw_only=True)
class QueueRuntime:
    config: QueueConfig
    members: tuple[Member, ...] = ()
    waiting: dict[str, QueuedCall] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)
    rr_cursor: str | None = None
    handle_times: HandleTimes = field(default_factory=HandleTimes)
    retired: bool = False
    """Removed from the setup: serves the callers already in it, takes no new ones."""

    @property
    def name(self) -> str:
        return self.config.name

    def ordered(self) -> list[QueuedCall]:
        return acd.ordered(list(self.waiting.values()))

    def position(self, call_id: str) -> int:
        """1-based place of a waiting call ("you are caller number N")."""
        return acd.position(self.waiting[call_id], list(self.waiting.values()))

    def candidates(self, blocked: Iterable[str] = ()) -> list[QueuedCall]:
        """Calls the ACD may offer now: waiting, not being offered, not ``blocked``."""
        skip = set(blocked)
        return [
            call
            for call in self.waiting.values()
            if call.call_id not in self.offers and call.call_id not in skip
        ]

    def replace(self, call: QueuedCall) -> None:
        """Store a changed value of a waiting call (excluded agent, callback)."""
        if call.call_id not in self.waiting:
            raise KeyError(f"call {call.call_id} is not waiting in {self.name}")
        self.waiting[call.call_id] = call


class Sequencer:
    """Hands out queue sequence numbers that follow wall-clock join time.

    A sequence is the join time in microseconds (bumped to stay unique and increasing), so
    a callback restored after a restart, which keeps its original join time, slots in
    ahead of everyone who joined after it, exactly where it stood.
    """

    def __init__(self) -> None:
        self._last = 0
        self._used: set[int] = set()

    def next(self, wall: float) -> int:
        """A sequence for a caller joining now (``wall`` is unix time)."""
        seq = max(self._last + 1, int(wall * _MICRO))
        while seq in self._used:
            seq += 1
        self._last = seq
        self._used.add(seq)
        return seq

    def at(self, wall: float) -> int:
        """A sequence for a caller who joined at ``wall`` (a restored callback)."""
        seq = int(wall * _MICRO)
        while seq in self._used:
            seq += 1
        self._used.add(seq)
        self._last = max(self._last, seq)
        return seq

    def release(self, seq: int) -> None:
        self._used.discard(seq)
