"""The tenant engine's shared state and plumbing: options, dependencies, playback, agents.

The engine is sans-IO in time: every method takes ``now``, the engine's monotonic clock (the
event loop's time), and asks :meth:`get_timer` when it next wants :meth:`handle_timer`. It
does talk to the switch directly, through the injected
:class:`~minicc.switch.control.CallControl` (its calls return ids the engine needs at once),
so a test drives it with a scripted double of the switch and a number for a clock.

The layers: :class:`EngineCore` (here) -> :class:`~minicc.queue.engine_acd.AcdEngine`
(queues, announcements, offers, overflow) -> :class:`~minicc.queue.engine_callbacks.
CallbackEngine` (callbacks that keep their place) -> :class:`~minicc.queue.engine_tenant.
TenantEngine` (routing, the IVR, the observer entry points, setup updates).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from minicc.events import AgentStateChanged as AgentStateEvent
from minicc.events import Event
from minicc.queue.agents import Agent, AgentBoard, AgentState, AgentStateChanged, HoldExpired
from minicc.queue.engine_calls import CallbackJob, CallInput, LiveCall, PlayKind
from minicc.queue.engine_media import PromptFiles
from minicc.queue.engine_queues import QueueRuntime, Sequencer
from minicc.queue.ivr import Lookup
from minicc.queue.prompts import PromptCatalogue
from minicc.queue.setup import AgentSetting, CallCenterSetup, PendingCallback, new_callback_id
from minicc.queue.stats import LiveStats, QueueEvent
from minicc.switch.control import CallControl

__all__ = [
    "VIP_PRIORITY",
    "CallbackOutcome",
    "EngineCore",
    "EngineDeps",
    "EngineOptions",
    "LookupHook",
    "PersistAgent",
    "PersistCallback",
]

log = logging.getLogger(__name__)

VIP_PRIORITY = 10
"""Queue priority of a caller on the tenant's VIP list: above every priority a flow can set
(0-9), so a VIP never waits behind a normal caller."""


class CallbackOutcome(Enum):
    """How a stored callback ended (what :data:`PersistCallback` is told)."""

    CONNECTED = "connected"
    FAILED = "failed"
    """No answer after every attempt."""
    CANCELLED = "cancelled"
    """Its queue went away or it was withdrawn."""


PersistCallback = Callable[[str, PendingCallback, CallbackOutcome | None], None]
"""``persist(tenant, callback, outcome)``: store a pending callback (``outcome`` None; the
first time for its ``callback.id`` inserts, later ones update, e.g. ``attempts``), or record
how it ended (``outcome`` set) and drop it from the pending list. Must not block: the engine
made the id itself, so nothing waits for the database."""

PersistAgent = Callable[[str, AgentSetting], None]
"""``persist(tenant, setting)``: remember an agent's available / paused / logged-out state."""

LookupHook = Callable[[str, str, Lookup], None]
"""``lookup(tenant, call_key, request)``: start a plugin lookup; its answer comes back
through ``TenantEngine.lookup_done``. Must not block."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    """Engine-wide knobs (seconds unless said otherwise)."""

    extension_ring_timeout: float = 30.0
    """How long an IVR transfer to an extension rings."""
    callback_dial_timeout: float = 30.0
    """How long a callback rings the caller once the agent answered."""
    callback_attempts: int = 3
    """Dial-back attempts before a callback is given up."""
    callback_retry_spacing: float = 300.0
    """Time between dial-back attempts."""
    ring_grace: float = 5.0
    """Beyond a ring timeout, how long the engine waits for the switch's result before it
    withdraws the attempt itself (so an agent is never stuck RESERVED)."""
    close_grace: float = 60.0
    """Longest a closing prompt may take before the engine hangs up anyway."""
    callback_offer_window: float = 8.0
    """After "press 1 to be called back" (queue full or empty), how long a 1 is awaited."""
    max_overflow_hops: int = 3
    """Queue-to-queue overflows one call may take."""
    ewt_samples: int = 64
    """Simulated futures per estimate."""
    hold_ring_backs: int = 3
    """Ring-backs per hold when the queue's hold timeout passes (docs/hold.md)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineDeps:
    """What a tenant engine is given: the switch, the prompts, persistence, clocks."""

    control: CallControl
    catalogue: PromptCatalogue
    wall: Callable[[float], float]
    """Unix time at engine time ``now`` (hours nodes and stored callbacks use unix time)."""
    publish: Callable[[Event], None] = lambda event: None
    persist_callback: PersistCallback | None = None
    persist_agent: PersistAgent | None = None
    lookup: LookupHook | None = None
    is_extension: Callable[[str], bool] | None = None
    """Whether a dialled number is one of the tenant's extensions; None: let the switch
    decide (it answers 404 for an unknown extension)."""
    rng: random.Random = field(default_factory=random.Random)
    options: EngineOptions = field(default_factory=EngineOptions)


def durable_state(agent: Agent) -> tuple[str, str | None]:
    """What survives a restart: ``available``, ``paused`` (with reason) or ``logged-out``."""
    if agent.state is AgentState.LOGGED_OUT:
        return ("logged-out", None)
    if agent.state is AgentState.PAUSED:
        return ("paused", agent.pause_reason)
    if agent.pending_pause is not None:
        return ("paused", agent.pending_pause)
    return ("available", None)


class EngineCore:
    """State and helpers shared by the engine layers (module docstring)."""

    def __init__(self, setup: CallCenterSetup, deps: EngineDeps, now: float) -> None:
        self.tenant = setup.tenant
        self.setup = setup
        self._deps = deps
        self._control = deps.control
        self._opts = deps.options
        self._prompts = PromptFiles(deps.catalogue)
        self.calls: dict[str, LiveCall] = {}
        self.queues: dict[str, QueueRuntime] = {}
        self.board = AgentBoard()
        self.stats = LiveStats(period_start=now)
        self.callbacks: dict[str, CallbackJob] = {}
        self._origins: dict[str, str] = {}
        """Originate key -> the callback's call id."""
        self._seq = Sequencer()
        self._talk: dict[tuple[str, str], float] = {}
        """(Call id, agent) -> talk seconds, from the end of ON_CALL to the end of its
        wrap-up (per agent: a transferred call is talked on by two)."""
        self._served: set[str] = set()
        """Calls an agent talked to a caller on (their handle time feeds the estimates)."""
        self._persisted: dict[str, tuple[str, str | None]] = {
            ext: (s.state, s.reason) for ext, s in setup.agents.items()
        }

    # -- clocks -------------------------------------------------------------------------------

    def _wall(self, now: float) -> float:
        return self._deps.wall(now)

    def _to_engine(self, wall: float, now: float) -> float:
        """A unix time as engine time."""
        return wall - (self._wall(now) - now)

    # -- events out ---------------------------------------------------------------------------

    def _publish(self, event: Event) -> None:
        try:
            self._deps.publish(event)
        except Exception:  # a broken subscriber must never break a call
            log.exception("publishing %s failed", type(event).__name__)

    def _count(self, event: QueueEvent) -> None:
        self.stats.apply(event)

    def _agents(self, events: Iterable[AgentStateChanged | HoldExpired], now: float) -> None:
        """Account for agent state changes: stats, handle times, the bus, persistence."""
        touched: set[str] = set()
        for event in events:
            if isinstance(event, HoldExpired):
                self._hold_expired(event, now)
                continue
            self.stats.apply(event)
            self._handle_times(event)
            touched.add(event.agent_id)
            self._publish(
                AgentStateEvent(
                    tenant=self.tenant,
                    agent=event.agent_id,
                    state=event.new.value,
                    reason=event.reason,
                    previous=event.old.value,
                    call_id=event.call_id,
                    queue=event.queue,
                )
            )
        for agent_id in sorted(touched):
            self._persist_agent(agent_id)

    def _hold_expired(self, event: HoldExpired, now: float) -> None:
        """A hold timer fired: the hold layer (:mod:`minicc.queue.engine_hold`) rings back."""
        log.warning("agent %s: hold timed out on %s", event.agent_id, event.call_id)

    def _handle_times(self, event: AgentStateChanged) -> None:
        if event.call_id is None:
            return
        if event.old is AgentState.ON_CALL:
            self._talk[(event.call_id, event.agent_id)] = event.at - event.old_since
        elif event.old is AgentState.WRAP_UP:
            talk = self._talk.pop((event.call_id, event.agent_id), None)
            runtime = self.queues.get(event.queue or "")
            if talk is not None and runtime is not None and event.call_id in self._served:
                runtime.handle_times.record(talk, event.at - event.old_since)
            self._served.discard(event.call_id)

    def _persist_agent(self, agent_id: str) -> None:
        if agent_id not in self.board:
            return
        state = durable_state(self.board[agent_id])
        if self._persisted.get(agent_id) == state:
            return
        self._persisted[agent_id] = state
        persist = self._deps.persist_agent
        if persist is None:
            return
        try:
            persist(self.tenant, AgentSetting(extension=agent_id, state=state[0], reason=state[1]))
        except Exception:
            log.exception("storing agent %s state failed", agent_id)

    def _new_callback_id(self, now: float) -> str:
        return new_callback_id(self._wall(now), self._deps.rng)

    def _persist_callback(
        self, job: CallbackJob, priority: int, outcome: CallbackOutcome | None
    ) -> None:
        """Hand a callback to the store (queued there; nothing here waits for it)."""
        persist = self._deps.persist_callback
        if persist is None:
            return
        pending = PendingCallback(
            id=job.callback_id,
            queue=job.queue,
            number=job.number,
            name=job.name,
            joined_at=job.joined_wall,
            priority=priority,
            attempts=job.attempts,
        )
        try:
            persist(self.tenant, pending, outcome)
        except Exception:
            log.exception("storing callback %s failed", job.call_id)

    # -- what the caller hears ----------------------------------------------------------------

    def _play(
        self, call: LiveCall, files: list[Path], kind: PlayKind, *, loop: bool = False
    ) -> bool:
        if not files:
            return False
        call.playback = self._control.play(call.key, files, loop=loop)
        call.play_kind = kind
        return True

    def _moh(self, call: LiveCall) -> None:
        """Music on hold, looped; "please hold" looped if the tenant has no music at all."""
        if self._play(call, self._prompts.moh(), PlayKind.MOH, loop=True):
            return
        files = self._prompts.files(call.language, ["please_hold"])
        if not self._play(call, files, PlayKind.MOH, loop=True):
            log.error("call %s: neither music on hold nor please_hold can be played", call.key)

    def _lead_in(self, call: LiveCall, names: list[str]) -> None:
        """A short prompt, music after it."""
        if not self._play(call, self._prompts.files(call.language, names), PlayKind.LEAD_IN):
            self._moh(call)

    def _close(self, call: LiveCall, names: list[str], now: float) -> None:
        """Say the last words, then hang up (at once if there is nothing to say)."""
        self._cancel_attempts(call)
        call.move(CallInput.CLOSE)
        call.next_announce = None
        call.window_until = None
        call.callback_offer_open = False
        if self._play(call, self._prompts.files(call.language, names), PlayKind.FINAL):
            call.close_by = now + self._opts.close_grace
        else:
            self._hangup(call)

    def _hangup(self, call: LiveCall) -> None:
        if call.hangup_sent:
            return
        call.hangup_sent = True
        call.close_by = None
        call.playback = None
        self._control.hangup(call.key)

    def _cancel_attempts(self, call: LiveCall) -> None:
        """Withdraw every ring still out for the call (the board is the caller's job)."""
        for attempt, extension in list(call.attempts.items()):
            self._control.cancel_ring(call.key, attempt)
            call.withdrawn[attempt] = extension
        call.attempts.clear()

    def _queue_calls(self, runtime: QueueRuntime) -> list[LiveCall]:
        return [self.calls[c] for c in runtime.waiting if c in self.calls]

    def _new_runtime(self, runtime: QueueRuntime) -> None:
        self.queues[runtime.name] = runtime
        self.stats.add_queue(
            runtime.name, service_level_threshold=runtime.config.service_level_threshold
        )
