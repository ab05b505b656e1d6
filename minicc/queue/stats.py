"""Live queue and agent statistics, accumulated from events. Pure.

:class:`LiveStats` consumes the queue events defined here (join, answer, abandon, leave,
callback request) and the agents' :class:`~minicc.queue.agents.AgentStateChanged` events,
and :meth:`LiveStats.snapshot` turns them into frozen numbers for the wallboard and the
store. Every figure is a count or a sum of event time differences, so it can be checked
exactly against a call log. Definitions (per queue, over the period since the last
:meth:`LiveStats.reset`):

- **offered**: calls that joined. **waiting**: joined and not yet answered, abandoned or
  left (callbacks included), and **longest_wait** the oldest of them, up to ``now``.
- **wait** of a call: from joining this queue to its answer or abandon (a call that
  overflowed here from another queue starts again at zero; a callback's wait includes the
  time it waited off the line).
- **answered_within** / **abandoned_within**: answered / abandoned with wait <= the queue's
  service-level threshold.
- **service level** = answered_within / (answered + abandoned - abandoned_within), in
  percent: the common definition that leaves out callers who gave up within the threshold
  (they never gave the queue its chance) and counts later abandons as failures. None
  while the denominator is 0.
- **ASA** = total wait of answered calls / answered.
- **AHT** = (talk + wrap-up) / handled, where a call is *handled* once its wrap-up ended
  (an answered call still in talk or wrap-up is not in AHT yet). Talk is the agent's time
  ON_CALL, wrap-up the time in WRAP_UP after it (cut short by a pause or a logout).
- **occupancy** of an agent = time ON_CALL or in WRAP_UP / time staffed (AVAILABLE,
  RESERVED, ON_CALL, WRAP_UP); of a queue = time agents spent ON_CALL or in WRAP_UP on
  this queue's calls / staffed time of the agents logged into this queue. An agent in two
  queues counts as staffed in both, so queue occupancies do not add up to the agent's.
- **agent time in state** is per (state, pause reason); **calls handled** counts answers.
- **holds** / **hold_total** (per queue and agent): holds of answered calls counted when
  they end (resumed, or the call ended held), with their seconds. Hold time stays inside
  talk time and so inside AHT: the agent is still on the call.

Transfers: a call an agent transferred was offered, answered and handled once, by that
agent. If it joins a queue again it is *waiting* there (and in ``longest_wait``) but not
offered, answered, abandoned or left a second time; the next agent's talk and wrap-up are a
handled segment of their own (each agent's part counts in AHT and in their occupancy).

Intervals that began before the period are counted from its start; calls waiting across
a reset stay waiting and count as answered/abandoned in the period they end in, and a call
counts as handled (with all its talk and wrap-up) in the period its wrap-up ends in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from minicc.queue.agents import AgentInput, AgentState, AgentStateChanged

__all__ = [
    "AgentSnapshot",
    "CallAbandoned",
    "CallAnswered",
    "CallJoined",
    "CallLeft",
    "CallbackRequested",
    "HoldEnded",
    "LeaveReason",
    "LiveStats",
    "QueueEvent",
    "QueueSnapshot",
    "StatsSnapshot",
]

logger = logging.getLogger(__name__)

_STAFFED = frozenset(
    {AgentState.AVAILABLE, AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP}
)
_BUSY = frozenset({AgentState.ON_CALL, AgentState.WRAP_UP})
DEFAULT_SERVICE_LEVEL_THRESHOLD = 20.0


class LeaveReason(Enum):
    """Why a call left a queue without being answered or abandoned."""

    MAX_WAIT = "max wait"
    EMPTY = "empty"
    CALLBACK_FAILED = "callback failed"
    """A callback's dial-back to the caller failed after its retries."""
    OTHER = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEvent:
    queue: str
    """The queue's name."""
    call_id: str
    """minicc's id for the call."""
    at: float
    """Engine-clock time of the event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallJoined(QueueEvent):
    joined_at: float | None = None
    """When the wait began, if not ``at`` (a restored callback keeps its original time)."""
    callback: bool = False
    """True when the call joins as a callback (a web callback request)."""
    transferred: bool = False
    """True for a call an agent transferred into the queue: it waits (``waiting``,
    ``longest_wait``) but was offered and answered already, so it is not counted as
    offered, answered, abandoned or left again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(QueueEvent):
    agent_id: str
    """The agent who answered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAbandoned(QueueEvent):
    """The caller hung up while waiting."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallLeft(QueueEvent):
    reason: LeaveReason
    """Why the call left unanswered (it was not the caller's hang-up)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRequested(QueueEvent):
    """A waiting caller chose to be called back: the call stays, off the line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldEnded(QueueEvent):
    """An answered call came off hold (resumed, or ended while held)."""

    agent_id: str | None
    """The agent who held it."""
    held: float
    """Seconds on hold."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSnapshot:
    name: str
    """The queue's name."""
    waiting: int
    """Calls waiting now, callbacks included."""
    callbacks_waiting: int
    """Of those, callbacks."""
    longest_wait: float
    """Seconds the oldest waiting call has waited (0 with none)."""
    offered: int
    """Calls that joined."""
    answered: int
    """Calls answered."""
    abandoned: int
    """Callers who hung up while waiting."""
    left: Mapping[LeaveReason, int]
    """Calls that left unanswered for another reason, by reason."""
    callbacks_requested: int
    """Callers who chose a callback while waiting."""
    service_level_threshold: float
    """Seconds within which an answer meets the service level."""
    answered_within: int
    """Answered with wait <= threshold."""
    abandoned_within: int
    """Abandoned with wait <= threshold."""
    answer_wait_total: float
    """Sum of the waits of answered calls."""
    answer_wait_max: float
    """Longest wait of an answered call."""
    abandon_wait_total: float
    """Sum of the waits of abandoned calls."""
    abandon_wait_max: float
    """Longest wait of an abandoned call."""
    handled: int
    """Answered calls whose wrap-up has ended."""
    talk_total: float
    """Talk seconds of handled calls."""
    wrap_up_total: float
    """Wrap-up seconds of handled calls."""
    service_level: float | None
    """Percent; see the module docstring for the formula."""
    asa: float | None
    """Average speed of answer, seconds."""
    aht: float | None
    """Average handle time (talk + wrap-up), seconds."""
    avg_abandon_wait: float | None
    """Average wait of abandoned calls, seconds."""
    occupancy: float | None
    """0-1; see the module docstring."""
    holds: int = 0
    """Holds of answered calls that ended (resumed, or the call ended held)."""
    hold_total: float = 0.0
    """Seconds those holds lasted (inside talk time: a held call is still handled)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSnapshot:
    agent_id: str
    """The agent."""
    state: AgentState
    """Current state."""
    reason: str | None
    """Current pause reason."""
    since: float
    """When the current state began."""
    calls_handled: int
    """Calls answered in the period."""
    time_in: Mapping[tuple[AgentState, str | None], float]
    """Seconds per (state, pause reason) in the period, up to the snapshot."""
    occupancy: float | None
    """0-1: on call or wrap-up over staffed time."""
    holds: int = 0
    """Holds the agent ended in the period."""
    hold_total: float = 0.0
    """Seconds of those holds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsSnapshot:
    at: float
    """Engine-clock time of the snapshot."""
    period_start: float
    """When the counting period began."""
    queues: Mapping[str, QueueSnapshot]
    """Per queue, by name."""
    agents: Mapping[str, AgentSnapshot]
    """Per agent, by id."""


@dataclass(slots=True)
class _Queue:
    threshold: float
    waiting: dict[str, tuple[float, bool]] = field(default_factory=dict)
    transfers: set[str] = field(default_factory=set)
    """Waiting calls that joined by a transfer (counted in no total)."""
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    left: dict[LeaveReason, int] = field(default_factory=dict)
    callbacks_requested: int = 0
    answered_within: int = 0
    abandoned_within: int = 0
    answer_wait_total: float = 0.0
    answer_wait_max: float = 0.0
    abandon_wait_total: float = 0.0
    abandon_wait_max: float = 0.0
    handled: int = 0
    talk_total: float = 0.0
    wrap_up_total: float = 0.0
    busy: float = 0.0
    staffed: float = 0.0
    holds: int = 0
    hold_total: float = 0.0


@dataclass(slots=True)
class _Agent:
    state: AgentState
    reason: str | None
    since: float
    queues: frozenset[str]
    call_queue: str | None
    calls_handled: int = 0
    time_in: dict[tuple[AgentState, str | None], float] = field(default_factory=dict)
    holds: int = 0
    hold_total: float = 0.0


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


class LiveStats:
    """The accumulator: feed events with :meth:`apply`, read with :meth:`snapshot`."""

    def __init__(self, *, period_start: float = 0.0) -> None:
        self._period_start = period_start
        self._queues: dict[str, _Queue] = {}
        self._agents: dict[str, _Agent] = {}
        # (call id, agent) -> talk seconds, until that agent's wrap-up ends (per agent: a
        # transferred call is talked on by two agents)
        self._talk: dict[tuple[str, str], float] = {}

    def add_queue(self, name: str, *, service_level_threshold: float) -> None:
        """Declare a queue (and its threshold); changing the threshold keeps the counts."""
        queue = self._queues.get(name)
        if queue is None:
            self._queues[name] = _Queue(threshold=service_level_threshold)
        else:
            queue.threshold = service_level_threshold

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            logger.warning(
                "stats: event for undeclared queue %r; using a %gs threshold",
                name,
                DEFAULT_SERVICE_LEVEL_THRESHOLD,
            )
            queue = self._queues[name] = _Queue(threshold=DEFAULT_SERVICE_LEVEL_THRESHOLD)
        return queue

    def reset(self, now: float) -> None:
        """Start a new period (a new day): counts restart, waiting calls and states stay."""
        self._period_start = now
        for name, old in list(self._queues.items()):
            self._queues[name] = _Queue(
                threshold=old.threshold, waiting=old.waiting, transfers=old.transfers
            )
        for agent in self._agents.values():
            agent.calls_handled = 0
            agent.time_in = {}
            agent.holds, agent.hold_total = 0, 0.0

    def apply(self, event: QueueEvent | AgentStateChanged) -> None:
        """Account for one event. Events must come in time order."""
        if isinstance(event, AgentStateChanged):
            self._agent_event(event)
            return
        queue = self._queue(event.queue)
        if isinstance(event, HoldEnded):
            queue.holds += 1
            queue.hold_total += event.held
            agent = self._agents.get(event.agent_id or "")
            if agent is not None:
                agent.holds += 1
                agent.hold_total += event.held
            return
        if isinstance(event, CallJoined):
            start = event.at if event.joined_at is None else event.joined_at
            queue.waiting[event.call_id] = (start, event.callback)
            if event.transferred:
                queue.transfers.add(event.call_id)
            else:
                queue.offered += 1
            return
        entry = queue.waiting.get(event.call_id)
        if entry is None:
            logger.warning(
                "stats: %s for call %s not waiting in %r",
                type(event).__name__,
                event.call_id,
                event.queue,
            )
            return
        if isinstance(event, CallbackRequested):
            queue.waiting[event.call_id] = (entry[0], True)
            queue.callbacks_requested += 1
            return
        del queue.waiting[event.call_id]
        if event.call_id in queue.transfers:
            queue.transfers.discard(event.call_id)
            return  # handled by the agent who transferred it (CallJoined.transferred)
        wait = event.at - entry[0]
        if isinstance(event, CallAnswered):
            queue.answered += 1
            queue.answer_wait_total += wait
            queue.answer_wait_max = max(queue.answer_wait_max, wait)
            if wait <= queue.threshold:
                queue.answered_within += 1
        elif isinstance(event, CallAbandoned):
            queue.abandoned += 1
            queue.abandon_wait_total += wait
            queue.abandon_wait_max = max(queue.abandon_wait_max, wait)
            if wait <= queue.threshold:
                queue.abandoned_within += 1
        elif isinstance(event, CallLeft):
            queue.left[event.reason] = queue.left.get(event.reason, 0) + 1

    def _agent_event(self, event: AgentStateChanged) -> None:
        record = self._agents.get(event.agent_id)
        if record is None:
            record = self._agents[event.agent_id] = _Agent(
                state=event.old,
                reason=event.old_reason,
                since=event.old_since,
                queues=event.queues,
                call_queue=None,
            )
        seconds = event.at - max(event.old_since, self._period_start)
        if seconds > 0:
            self._count_interval(
                event.old, event.old_reason, event.queues, event.queue, seconds, record
            )
        if event.old is AgentState.ON_CALL and event.call_id is not None:
            talk_key = (event.call_id, event.agent_id)
            self._talk[talk_key] = self._talk.get(talk_key, 0.0) + event.at - event.old_since
        if event.old is AgentState.WRAP_UP and event.call_id is not None and event.queue:
            queue = self._queue(event.queue)
            queue.handled += 1
            queue.talk_total += self._talk.pop((event.call_id, event.agent_id), 0.0)
            queue.wrap_up_total += event.at - event.old_since
        if event.input is AgentInput.ANSWER:
            record.calls_handled += 1
        record.state = event.new
        record.reason = event.reason
        record.since = event.at
        record.queues = event.queues
        record.call_queue = event.queue if event.new in _BUSY | {AgentState.RESERVED} else None

    def _count_interval(
        self,
        state: AgentState,
        reason: str | None,
        queues: frozenset[str],
        call_queue: str | None,
        seconds: float,
        record: _Agent,
    ) -> None:
        key = (state, reason)
        record.time_in[key] = record.time_in.get(key, 0.0) + seconds
        if state in _STAFFED:
            for name in queues:
                self._queue(name).staffed += seconds
        if state in _BUSY and call_queue is not None:
            self._queue(call_queue).busy += seconds

    def snapshot(self, now: float) -> StatsSnapshot:
        """Frozen figures as of ``now``, running intervals and waits included."""
        staffed_now: dict[str, float] = {}
        busy_now: dict[str, float] = {}
        agents: dict[str, AgentSnapshot] = {}
        for agent_id, record in sorted(self._agents.items()):
            time_in = dict(record.time_in)
            running = max(0.0, now - max(record.since, self._period_start))
            key = (record.state, record.reason)
            time_in[key] = time_in.get(key, 0.0) + running
            if record.state in _STAFFED:
                for name in record.queues:
                    staffed_now[name] = staffed_now.get(name, 0.0) + running
            if record.state in _BUSY and record.call_queue is not None:
                busy_now[record.call_queue] = busy_now.get(record.call_queue, 0.0) + running
            staffed = sum(s for (state, _), s in time_in.items() if state in _STAFFED)
            busy = sum(s for (state, _), s in time_in.items() if state in _BUSY)
            agents[agent_id] = AgentSnapshot(
                agent_id=agent_id,
                state=record.state,
                reason=record.reason,
                since=record.since,
                calls_handled=record.calls_handled,
                time_in=MappingProxyType(time_in),
                occupancy=_ratio(busy, staffed),
                holds=record.holds,
                hold_total=record.hold_total,
            )
        queues = {
            name: self._queue_snapshot(
                name, queue, now, staffed_now.get(name, 0.0), busy_now.get(name, 0.0)
            )
            for name, queue in sorted(self._queues.items())
        }
        return StatsSnapshot(
            at=now,
            period_start=self._period_start,
            queues=MappingProxyType(queues),
            agents=MappingProxyType(agents),
        )

    @staticmethod
    def _queue_snapshot(
        name: str, queue: _Queue, now: float, staffed_extra: float, busy_extra: float
    ) -> QueueSnapshot:
        waits = [now - start for start, _ in queue.waiting.values()]
        failed = queue.answered + queue.abandoned - queue.abandoned_within
        sl = _ratio(100.0 * queue.answered_within, failed)
        return QueueSnapshot(
            name=name,
            waiting=len(queue.waiting),
            callbacks_waiting=sum(1 for _, cb in queue.waiting.values() if cb),
            longest_wait=max(waits, default=0.0),
            offered=queue.offered,
            answered=queue.answered,
            abandoned=queue.abandoned,
            left=MappingProxyType(dict(queue.left)),
            callbacks_requested=queue.callbacks_requested,
            service_level_threshold=queue.threshold,
            answered_within=queue.answered_within,
            abandoned_within=queue.abandoned_within,
            answer_wait_total=queue.answer_wait_total,
            answer_wait_max=queue.answer_wait_max,
            abandon_wait_total=queue.abandon_wait_total,
            abandon_wait_max=queue.abandon_wait_max,
            handled=queue.handled,
            talk_total=queue.talk_total,
            wrap_up_total=queue.wrap_up_total,
            service_level=sl,
            asa=_ratio(queue.answer_wait_total, queue.answered),
            aht=_ratio(queue.talk_total + queue.wrap_up_total, queue.handled),
            avg_abandon_wait=_ratio(queue.abandon_wait_total, queue.abandoned),
            occupancy=_ratio(queue.busy + busy_extra, queue.staffed + staffed_extra),
            holds=queue.holds,
            hold_total=queue.hold_total,
        )
