"""The agent state machine, as a table, and the board that holds every agent of a tenant. Pure.

Rule 1: every state and every legal move is in :data:`TRANSITIONS`; a (state, input) pair
missing from it raises :class:`AgentStateError` naming both. Rule 2: nothing here keeps time:
every input carries the engine's monotonic ``now``, and :meth:`AgentBoard.get_timer` /
:meth:`AgentBoard.tick` are how wrap-up and hold timers fire (the sans-IO timer pattern).

An agent is one person, whatever number of queues they are logged into and devices they
have, so there is one state per agent: a call from any queue makes them busy everywhere, and
the wrap-up after it runs once, for the wrap-up time of the queue the call came from.

Choices the table alone does not show:

- Reject (busy, decline) and miss (no answer before the ring timeout) both count towards
  auto-pause: a phone on do-not-disturb rejects everything and must not be rung forever.
  When the count reaches the queue's ``max_misses`` the agent goes AVAILABLE -> PAUSED with
  reason :data:`MISSED_CALLS` in the same step. Answering resets the count, and so do
  unpausing and logging in (otherwise the first miss after an auto-pause re-pauses).
  Keeping the agent away from that same call is the call's business: the engine adds them
  to :attr:`QueuedCall.excluded <minicc.queue.models.QueuedCall.excluded>`.
- A cancelled offer (ring-all lost to another agent, the caller hung up) is nobody's fault
  and counts nothing.
- Pausing while reserved or on a call is remembered as a pending pause that takes effect
  the moment the agent would become available again; pausing in wrap-up ends the wrap-up.
- ``idle_since`` (what longest-idle compares) is set when the agent becomes available by
  login, unpause or the end of wrap-up; an offer that comes to nothing does not reset it,
  so the agent keeps their place in the idle order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "MISSED_CALLS",
    "TRANSITIONS",
    "Agent",
    "AgentBoard",
    "AgentEvent",
    "AgentInput",
    "AgentState",
    "AgentStateChanged",
    "AgentStateError",
    "HoldExpired",
]

logger = logging.getLogger(__name__)

MISSED_CALLS = "missed calls"
"""The pause reason of an auto-pause after too many consecutive misses."""


class AgentState(Enum):
    LOGGED_OUT = "logged out"
    AVAILABLE = "available"
    RESERVED = "reserved"
    """An offer is ringing the agent's device(s)."""
    ON_CALL = "on call"
    WRAP_UP = "wrap-up"
    PAUSED = "paused"


class AgentInput(Enum):
    LOGIN = "login"
    LOGOUT = "logout"
    OFFER = "offer"
    ANSWER = "answer"
    REJECT = "reject"
    MISS = "miss"
    CANCEL = "cancel"
    """The offer was withdrawn (another agent answered, the caller left)."""
    HANG_UP = "hang up"
    WRAP_UP_DONE = "wrap-up done"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    HOLD = "hold"
    RESUME = "resume"
    HOLD_TIMEOUT = "hold timeout"


_S = AgentState
_I = AgentInput

TRANSITIONS: dict[tuple[AgentState, AgentInput], AgentState] = {
    (_S.LOGGED_OUT, _I.LOGIN): _S.AVAILABLE,
    (_S.AVAILABLE, _I.LOGOUT): _S.LOGGED_OUT,
    (_S.PAUSED, _I.LOGOUT): _S.LOGGED_OUT,
    (_S.WRAP_UP, _I.LOGOUT): _S.LOGGED_OUT,
    # Logging out while rung withdraws the offer; the engine puts the call back in line.
    (_S.RESERVED, _I.LOGOUT): _S.LOGGED_OUT,
    (_S.AVAILABLE, _I.OFFER): _S.RESERVED,
    (_S.RESERVED, _I.ANSWER): _S.ON_CALL,
    (_S.RESERVED, _I.REJECT): _S.AVAILABLE,
    (_S.RESERVED, _I.MISS): _S.AVAILABLE,
    (_S.RESERVED, _I.CANCEL): _S.AVAILABLE,
    (_S.ON_CALL, _I.HANG_UP): _S.WRAP_UP,
    (_S.WRAP_UP, _I.WRAP_UP_DONE): _S.AVAILABLE,
    (_S.AVAILABLE, _I.PAUSE): _S.PAUSED,
    (_S.PAUSED, _I.PAUSE): _S.PAUSED,  # a new reason
    (_S.WRAP_UP, _I.PAUSE): _S.PAUSED,  # wrap-up ends, the agent stays away
    (_S.RESERVED, _I.PAUSE): _S.RESERVED,  # pending until the offer ends
    (_S.ON_CALL, _I.PAUSE): _S.ON_CALL,  # pending until the wrap-up ends
    (_S.PAUSED, _I.UNPAUSE): _S.AVAILABLE,
    (_S.RESERVED, _I.UNPAUSE): _S.RESERVED,  # drops a pending pause
    (_S.ON_CALL, _I.UNPAUSE): _S.ON_CALL,
    (_S.WRAP_UP, _I.UNPAUSE): _S.WRAP_UP,
    (_S.ON_CALL, _I.HOLD): _S.ON_CALL,
    (_S.ON_CALL, _I.RESUME): _S.ON_CALL,
    (_S.ON_CALL, _I.HOLD_TIMEOUT): _S.ON_CALL,  # the engine rings the agent back
}


class AgentStateError(Exception):
    """The engine asked an agent to do something their state forbids (a local error)."""

    def __init__(
        self, agent_id: str, state: AgentState, event: AgentInput, detail: str = ""
    ) -> None:
        message = f"agent {agent_id}: {event.value} in state {state.value}"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.agent_id = agent_id
        self.state = state
        self.input = event


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged:
    """An agent moved to another state, or to another pause reason."""

    agent_id: str
    """The agent."""
    at: float
    """Engine-clock time of the change."""
    input: AgentInput
    """What moved the agent."""
    old: AgentState
    """State left."""
    old_reason: str | None
    """Pause reason of the state left (None unless ``old`` is PAUSED)."""
    old_since: float
    """When the agent entered ``old``: ``at - old_since`` is the time spent in it."""
    new: AgentState
    """State entered."""
    reason: str | None
    """Pause reason of the state entered (None unless ``new`` is PAUSED)."""
    call_id: str | None
    """The call this change concerns (offered, answered, ended, wrapped up), if any."""
    queue: str | None
    """The queue of that call."""
    queues: frozenset[str]
    """Queues the agent is logged into at the time of the change."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldExpired:
    """An agent left a caller on hold past the hold timeout: ring the agent back."""

    agent_id: str
    """The agent to ring back."""
    call_id: str | None
    """The held call."""
    at: float
    """Engine-clock time the hold timer fired."""


AgentEvent = AgentStateChanged | HoldExpired


@dataclass(slots=True, kw_only=True)
class Agent:
    """One agent's live record. The board mutates it; everyone else only reads it."""

    agent_id: str
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    """When the current state (and pause reason) began."""
    pause_reason: str | None = None
    pending_pause: str | None = None
    """A pause asked for while busy, applied when the agent would become available."""
    call_id: str | None = None
    """The call offered, in progress or being wrapped up."""
    call_queue: str | None = None
    call_started_at: float | None = None
    """When the current call was answered."""
    wrap_up_until: float | None = None
    held_until: float | None = None
    """When the hold timer rings the agent back; None when not on hold or no timeout."""
    on_hold: bool = False
    calls_handled: int = 0
    """Calls answered since the last :meth:`AgentBoard.reset_daily`."""
    consecutive_misses: int = 0
    idle_since: float | None = None
    """Start of the current wait for work (what longest-idle compares)."""
    last_call_ended_at: float | None = None
    queues: frozenset[str] = frozenset()
    """Queues the agent is logged into."""
    devices: int = 1
    """Registered devices that ring for this agent; with none, no call is offered."""
    time_in: dict[tuple[AgentState, str | None], float] = field(default_factory=dict)
    """Seconds spent in each (state, pause reason), up to ``since``."""

    @property
    def can_take_call(self) -> bool:
        """Idle with something to ring: the only agents the ACD offers calls to."""
        return self.state is AgentState.AVAILABLE and self.devices > 0

    @property
    def logged_in(self) -> bool:
        return self.state is not AgentState.LOGGED_OUT

    @property
    def staffed(self) -> bool:
        """Logged in and not paused: working the queues, busy or not."""
        return self.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED)

    def time_in_state(self, now: float) -> dict[tuple[AgentState, str | None], float]:
        """Seconds per (state, pause reason), counting the running state up to ``now``."""
        totals = dict(self.time_in)
        key = (self.state, self.pause_reason)
        totals[key] = totals.get(key, 0.0) + max(0.0, now - self.since)
        return totals


class AgentBoard:
    """Every agent of one tenant, moved only through the transition table.

    Each method returns the :class:`AgentStateChanged` events it caused (possibly two, as in
    miss-then-auto-pause), for the stats accumulator and the event bus.
    """

    def __init__(self) -> None:
        self._agents: dict[str, Agent] = {}

    # -- the collection ---------------------------------------------------------------
    def add(self, agent_id: str, *, now: float, devices: int = 1) -> Agent:
        """Provision an agent, logged out. Raises ValueError if the id is taken."""
        if agent_id in self._agents:
            raise ValueError(f"agent {agent_id!r} already exists")
        agent = Agent(agent_id=agent_id, since=now, devices=devices)
        self._agents[agent_id] = agent
        return agent

    def remove(self, agent_id: str) -> None:
        """Forget a logged-out agent. Raises AgentStateError if they are logged in."""
        agent = self[agent_id]
        if agent.logged_in:
            raise AgentStateError(agent_id, agent.state, _I.LOGOUT, "log the agent out first")
        del self._agents[agent_id]

    def __getitem__(self, agent_id: str) -> Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise KeyError(f"unknown agent {agent_id!r}") from None

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._agents

    def __iter__(self) -> Iterator[str]:
        return iter(self._agents)

    def __len__(self) -> int:
        return len(self._agents)

    @property
    def agents(self) -> dict[str, Agent]:
        """The live records by id (a mapping for :func:`minicc.queue.acd.pick`)."""
        return self._agents

    def set_devices(self, agent_id: str, count: int) -> None:
        """How many registered devices ring for the agent (from the registrar)."""
        if count < 0:
            raise ValueError(f"devices of {agent_id!r} must be >= 0, got {count}")
        self[agent_id].devices = count

    def reset_daily(self) -> None:
        """Start a new day for "calls handled today"."""
        for agent in self._agents.values():
            agent.calls_handled = 0

    # -- inputs -----------------------------------------------------------------------
    def login(self, agent_id: str, *, now: float, queues: Iterable[str]) -> list[AgentStateChanged]:
        """Log in to the given queues, available at once."""
        agent = self[agent_id]
        self._check(agent, _I.LOGIN, now)
        agent.queues = frozenset(queues)
        agent.consecutive_misses = 0
        agent.idle_since = now
        return [self._move(agent, _I.LOGIN, now)]

    def logout(self, agent_id: str, *, now: float) -> list[AgentStateChanged]:
        agent = self[agent_id]
        self._check(agent, _I.LOGOUT, now)
        event = self._move(agent, _I.LOGOUT, now)
        agent.queues = frozenset()
        agent.pending_pause = None
        self._clear_call(agent)
        return [event]

    def offer(
        self, agent_id: str, *, call_id: str, queue: str, now: float
    ) -> list[AgentStateChanged]:
        """Reserve the agent for a call while their device(s) ring."""
        agent = self[agent_id]
        self._check(agent, _I.OFFER, now)
        agent.call_id = call_id
        agent.call_queue = queue
        return [self._move(agent, _I.OFFER, now)]

    def answered(self, agent_id: str, *, call_id: str, now: float) -> list[AgentStateChanged]:
        agent = self[agent_id]
        self._check(agent, _I.ANSWER, now, call_id)
        agent.consecutive_misses = 0
        agent.calls_handled += 1
        agent.call_started_at = now
        return [self._move(agent, _I.ANSWER, now)]

    def rejected(
        self, agent_id: str, *, call_id: str, now: float, max_misses: int | None
    ) -> list[AgentStateChanged]:
        """The agent declined (busy, decline). Counts towards auto-pause like a miss."""
        return self._not_taken(agent_id, _I.REJECT, call_id, now, max_misses)

    def missed(
        self, agent_id: str, *, call_id: str, now: float, max_misses: int | None
    ) -> list[AgentStateChanged]:
        """Nobody answered within the ring timeout."""
        return self._not_taken(agent_id, _I.MISS, call_id, now, max_misses)

    def cancel(self, agent_id: str, *, call_id: str, now: float) -> list[AgentStateChanged]:
        """Withdraw an offer through no fault of the agent."""
        agent = self[agent_id]
        self._check(agent, _I.CANCEL, now, call_id)
        event = self._move(agent, _I.CANCEL, now)
        self._clear_call(agent)
        return [event, *self._apply_pending_pause(agent, now)]

    def withdraw(
        self, call_id: str, *, now: float, keep: str | None = None
    ) -> list[AgentStateChanged]:
        """Cancel every offer of ``call_id`` except ``keep``'s (ring-all after an answer)."""
        events: list[AgentStateChanged] = []
        for agent in list(self._agents.values()):
            if (
                agent.state is AgentState.RESERVED
                and agent.call_id == call_id
                and agent.agent_id != keep
            ):
                events += self.cancel(agent.agent_id, call_id=call_id, now=now)
        return events

    def call_ended(
        self, agent_id: str, *, call_id: str, now: float, wrap_up: float
    ) -> list[AgentStateChanged]:
        """The agent's call ended: wrap-up for ``wrap_up`` seconds (the call's queue's)."""
        agent = self[agent_id]
        self._check(agent, _I.HANG_UP, now, call_id)
        agent.last_call_ended_at = now
        agent.on_hold = False
        agent.held_until = None
        agent.wrap_up_until = now + max(0.0, wrap_up)
        events = [self._move(agent, _I.HANG_UP, now)]
        if wrap_up <= 0:
            events += self._end_wrap_up(agent, now)
        return events

    def ready(self, agent_id: str, *, now: float) -> list[AgentStateChanged]:
        """The agent ends wrap-up early."""
        agent = self[agent_id]
        self._check(agent, _I.WRAP_UP_DONE, now)
        return self._end_wrap_up(agent, now)

    def pause(self, agent_id: str, *, now: float, reason: str) -> list[AgentStateChanged]:
        """Pause with a reason code; while reserved or on a call, after that call."""
        agent = self[agent_id]
        self._check(agent, _I.PAUSE, now)
        if agent.state in (AgentState.RESERVED, AgentState.ON_CALL):
            agent.pending_pause = reason
            return []
        if agent.state is AgentState.PAUSED and agent.pause_reason == reason:
            return []
        was_wrapping = agent.state is AgentState.WRAP_UP
        event = self._move(agent, _I.PAUSE, now, reason=reason)
        if was_wrapping:
            self._clear_call(agent)
        return [event]

    def unpause(self, agent_id: str, *, now: float) -> list[AgentStateChanged]:
        """Back to available, or drop a pending pause."""
        agent = self[agent_id]
        self._check(agent, _I.UNPAUSE, now)
        agent.pending_pause = None
        if agent.state is not AgentState.PAUSED:
            return []
        agent.consecutive_misses = 0
        agent.idle_since = now
        return [self._move(agent, _I.UNPAUSE, now)]

    def hold(self, agent_id: str, *, now: float, timeout: float | None) -> None:
        """The agent put the caller on hold; ring them back after ``timeout`` seconds."""
        agent = self[agent_id]
        self._check(agent, _I.HOLD, now)
        agent.on_hold = True
        agent.held_until = None if timeout is None else now + timeout

    def resume(self, agent_id: str, *, now: float) -> None:
        agent = self[agent_id]
        self._check(agent, _I.RESUME, now)
        agent.on_hold = False
        agent.held_until = None

    # -- timers -----------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """The earliest wrap-up end or hold timeout, for the engine's timer loop."""
        times = [
            t
            for agent in self._agents.values()
            for t in (
                agent.wrap_up_until if agent.state is AgentState.WRAP_UP else None,
                agent.held_until if agent.state is AgentState.ON_CALL else None,
            )
            if t is not None
        ]
        return min(times, default=None)

    def tick(self, now: float) -> list[AgentEvent]:
        """Fire due timers: wrap-ups that ended (-> available, or paused if pending) and
        holds that timed out (:class:`HoldExpired`: ring the agent back)."""
        events: list[AgentEvent] = []
        for agent in list(self._agents.values()):
            if (
                agent.state is AgentState.WRAP_UP
                and agent.wrap_up_until is not None
                and agent.wrap_up_until <= now
            ):
                events += self._end_wrap_up(agent, now)
            elif (
                agent.state is AgentState.ON_CALL
                and agent.held_until is not None
                and agent.held_until <= now
            ):
                self._check(agent, _I.HOLD_TIMEOUT, now)
                agent.held_until = None  # rung back once; a new hold re-arms it
                events.append(HoldExpired(agent_id=agent.agent_id, call_id=agent.call_id, at=now))
        return events

    # -- internals --------------------------------------------------------------------
    def _not_taken(
        self, agent_id: str, event: AgentInput, call_id: str, now: float, max_misses: int | None
    ) -> list[AgentStateChanged]:
        agent = self[agent_id]
        self._check(agent, event, now, call_id)
        agent.consecutive_misses += 1
        events = [self._move(agent, event, now)]
        self._clear_call(agent)
        if max_misses is not None and agent.consecutive_misses >= max_misses:
            logger.info(
                "agent %s auto-paused after %d consecutive missed offers",
                agent_id,
                agent.consecutive_misses,
            )
            agent.pending_pause = None
            events.append(self._move(agent, _I.PAUSE, now, reason=MISSED_CALLS))
        else:
            events += self._apply_pending_pause(agent, now)
        return events

    def _end_wrap_up(self, agent: Agent, now: float) -> list[AgentStateChanged]:
        event = self._move(agent, _I.WRAP_UP_DONE, now)
        agent.idle_since = now
        self._clear_call(agent)
        return [event, *self._apply_pending_pause(agent, now)]

    def _apply_pending_pause(self, agent: Agent, now: float) -> list[AgentStateChanged]:
        reason = agent.pending_pause
        if reason is None or agent.state is not AgentState.AVAILABLE:
            return []
        agent.pending_pause = None
        return [self._move(agent, _I.PAUSE, now, reason=reason)]

    @staticmethod
    def _clear_call(agent: Agent) -> None:
        agent.call_id = None
        agent.call_queue = None
        agent.call_started_at = None
        agent.wrap_up_until = None
        agent.held_until = None
        agent.on_hold = False

    @staticmethod
    def _check(agent: Agent, event: AgentInput, now: float, call_id: str | None = None) -> None:
        if now < agent.since:
            raise ValueError(f"agent {agent.agent_id}: time went backwards ({now} < {agent.since})")
        if (agent.state, event) not in TRANSITIONS:
            raise AgentStateError(agent.agent_id, agent.state, event)
        if call_id is not None and agent.call_id != call_id:
            raise AgentStateError(
                agent.agent_id,
                agent.state,
                event,
                f"call {call_id} is not the agent's current call {agent.call_id}",
            )

    @staticmethod
    def _move(
        agent: Agent, event: AgentInput, now: float, *, reason: str | None = None
    ) -> AgentStateChanged:
        new = TRANSITIONS[(agent.state, event)]
        new_reason = reason if new is AgentState.PAUSED else None
        old_key = (agent.state, agent.pause_reason)
        agent.time_in[old_key] = agent.time_in.get(old_key, 0.0) + (now - agent.since)
        changed = AgentStateChanged(
            agent_id=agent.agent_id,
            at=now,
            input=event,
            old=agent.state,
            old_reason=agent.pause_reason,
            old_since=agent.since,
            new=new,
            reason=new_reason,
            call_id=agent.call_id,
            queue=agent.call_queue,
            queues=agent.queues,
        )
        agent.state = new
        agent.pause_reason = new_reason
        agent.since = now
        logger.debug(
            "agent %s: %s -> %s (%s)", agent.agent_id, changed.old.value, new.value, event.value
        )
        return changed
