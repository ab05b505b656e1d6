"""Hold in the queue engine: music for the held caller, hold time, and the ring-back.

The switch keeps a bridged call's hold to itself (:mod:`minicc.switch.hold`) and reports it
(``call_held`` / ``call_resumed``). The engine's part:

- **What the caller hears.** On ``call_held`` the caller gets the tenant's music on hold
  (looped, the same music as in the queue). The switch cuts it on resume.
- **The agent's state.** A held call is still the agent's call: the agent stays ON_CALL (the
  board's ``hold`` / ``resume`` inputs leave the state alone and arm the hold timer), so hold
  time counts in talk time and in the average handle time.
- **Statistics and events.** Every hold that ends (resumed, or the call ended while held)
  counts once per queue and agent with its seconds (:class:`~minicc.queue.stats.HoldEnded`);
  :class:`~minicc.events.CallHeld`, :class:`~minicc.events.CallResumed` and
  :class:`~minicc.events.HoldRingBack` go to the bus for the agent's screen and the wallboard.
- **The hold timeout** (``QueueConfig.hold_timeout``; 0 or None: off). When the agent's hold
  timer fires (:class:`~minicc.queue.agents.HoldExpired`), the engine asks the switch to ring
  the agent back (:meth:`CallControl.ring_back`, the queue's ``ring_timeout``). Answered: the
  new leg replaces the held one and the switch reports the resume. Not answered: the timer
  is armed again, for at most :attr:`EngineOptions.hold_ring_backs` ring-backs per hold.

  After the last one the caller **stays on hold** with music, not back in the queue: the
  agent still has the call on their phone and may be busy with it (looking something up),
  taking it from them would leave them holding a dead line, and the caller, who hears
  music rather than silence, can still hang up. The wallboard sees the long hold through the
  events. The agent is never stuck: resume, hang-up or a caller's hang-up end the hold, and
  the board's state for the call ends with the call as always.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from minicc.events import CallHeld, CallResumed, HoldRingBack
from minicc.queue import stats as qstats
from minicc.queue.agents import AgentState, HoldExpired
from minicc.queue.engine_calls import CallPhase, LiveCall
from minicc.queue.engine_core import EngineCore, EngineDeps
from minicc.queue.setup import CallCenterSetup
from minicc.switch.control import HoldBy, RingResult

__all__ = ["HeldCall", "HoldEngine"]

log = logging.getLogger(__name__)

DEFAULT_RING_BACK_TIMEOUT = 15.0
"""How long a ring-back rings when the call has no queue (a transfer to an extension)."""


@dataclass(slots=True, kw_only=True)
class HeldCall:
    """A bridged call on hold, from ``call_held`` to ``call_resumed`` or its end."""

    since: float
    """Engine time the hold began."""
    by: HoldBy
    agent: str | None
    """The agent holding the caller (None for a call to a plain extension)."""
    queue: str | None
    ring_backs: int = 0
    """Ring-backs started during this hold."""
    attempt: int | None = None
    """The ring-back ringing now."""


class HoldEngine(EngineCore):
    """The hold layer of a tenant engine (module docstring)."""

    def __init__(self, setup: CallCenterSetup, deps: EngineDeps, now: float) -> None:
        self.holds: dict[str, HeldCall] = {}
        """Held calls by key."""
        self._ring_back_ids: dict[int, str] = {}
        """Ring-back attempts not reported yet -> call key."""
        super().__init__(setup, deps, now)

    # -- switch reports ---------------------------------------------------------------------

    def call_held(self, key: str, by: HoldBy, now: float) -> None:
        """The switch put a bridged call on hold: music for the caller, the hold timer."""
        call = self.calls.get(key)
        if call is None or call.phase is not CallPhase.CONNECTED or key in self.holds:
            log.warning("call %s: held, but not a connected call (or held already)", key)
            return
        held = HeldCall(since=now, by=by, agent=call.agent, queue=call.queue)
        self.holds[key] = held
        self._moh(call)
        if self._tracked(held, key):
            assert held.agent is not None
            self.board.hold(held.agent, now=now, timeout=self._hold_timeout(held))
        log.info("call %s: on hold by %s (%s)", key, held.agent or "-", by.value)
        self._publish(
            CallHeld(
                tenant=self.tenant, call_id=key, queue=call.queue, agent=call.agent, by=by.value
            )
        )

    def call_resumed(self, key: str, now: float) -> None:
        """The hold ended; the switch already cut the music."""
        held = self.holds.pop(key, None)
        if held is None:
            return
        call = self.calls.get(key)
        if call is not None:
            # A playback_done still on its way for the music is stale from here on.
            call.playback = None
            call.play_kind = None
        if self._tracked(held, key):
            assert held.agent is not None
            self.board.resume(held.agent, now=now)
        self._hold_over(key, held, now)
        log.info("call %s: resumed after %.1f s", key, now - held.since)

    # -- hooks for the other layers -----------------------------------------------------------

    def _hold_expired(self, event: HoldExpired, now: float) -> None:
        """The agent's hold timer fired: ring them back (module doc)."""
        key = event.call_id or ""
        held = self.holds.get(key)
        call = self.calls.get(key)
        if held is None or call is None or call.phase is not CallPhase.CONNECTED:
            return
        if held.attempt is not None:
            return  # a ring-back is ringing already
        limit = self._opts.hold_ring_backs
        if held.ring_backs >= limit:
            log.info("call %s: %d ring-backs unanswered; the caller stays on hold", key, limit)
            return
        runtime = self.queues.get(held.queue or "")
        timeout = runtime.config.ring_timeout if runtime is not None else DEFAULT_RING_BACK_TIMEOUT
        attempt = self._control.ring_back(key, event.agent_id, timeout=timeout)
        held.attempt = attempt
        held.ring_backs += 1
        self._ring_back_ids[attempt] = key
        log.info(
            "call %s: hold timeout; ringing %s back (%d)", key, event.agent_id, held.ring_backs
        )
        self._publish(
            HoldRingBack(
                tenant=self.tenant,
                call_id=key,
                queue=held.queue,
                agent=event.agent_id,
                attempt=held.ring_backs,
            )
        )

    def _hold_ring_result(self, key: str, attempt: int, result: RingResult, now: float) -> bool:
        """A ring_result for a ring-back; False when ``attempt`` is not one."""
        if self._ring_back_ids.pop(attempt, None) is None:
            return False
        held = self.holds.get(key)
        if held is None or held.attempt != attempt:
            return True  # resumed or ended meanwhile
        held.attempt = None
        if held.agent is not None:
            self._publish(
                HoldRingBack(
                    tenant=self.tenant,
                    call_id=key,
                    queue=held.queue,
                    agent=held.agent,
                    attempt=held.ring_backs,
                    result=result.value,
                )
            )
        if result in (RingResult.ANSWERED, RingResult.CANCELLED):
            return True  # answered: call_resumed follows
        if held.ring_backs < self._opts.hold_ring_backs and self._tracked(held, key):
            assert held.agent is not None
            self.board.hold(held.agent, now=now, timeout=self._hold_timeout(held))
        else:
            log.info("call %s: ring-back %s; the caller stays on hold", key, result.value)
        return True

    def _hold_call_ended(self, call: LiveCall, now: float) -> None:
        """The call ended (any side) while perhaps held: count the hold."""
        for attempt, owner in list(self._ring_back_ids.items()):
            if owner == call.key:
                del self._ring_back_ids[attempt]
        held = self.holds.pop(call.key, None)
        if held is not None:
            self._hold_over(call.key, held, now, resumed=False)

    # -- internals ----------------------------------------------------------------------------

    def _tracked(self, held: HeldCall, key: str) -> bool:
        """Whether the board has the holding agent on this call (an agent the engine offered
        it to; a transfer to a plain extension has none)."""
        agent = self.board.agents.get(held.agent or "")
        return agent is not None and agent.state is AgentState.ON_CALL and agent.call_id == key

    def _hold_timeout(self, held: HeldCall) -> float | None:
        runtime = self.queues.get(held.queue or "")
        timeout = runtime.config.hold_timeout if runtime is not None else None
        return timeout or None

    def _hold_over(self, key: str, held: HeldCall, now: float, *, resumed: bool = True) -> None:
        seconds = max(0.0, now - held.since)
        if held.queue is not None and held.queue in self.queues:
            self._count(
                qstats.HoldEnded(
                    queue=held.queue, call_id=key, at=now, agent_id=held.agent, held=seconds
                )
            )
        if resumed:
            self._publish(
                CallResumed(
                    tenant=self.tenant,
                    call_id=key,
                    queue=held.queue,
                    agent=held.agent,
                    held=seconds,
                )
            )
