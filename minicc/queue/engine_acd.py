"""Queues at run time: joining, music and announcements, offers to agents, overflow.

The decisions are the pure ones of :mod:`minicc.queue.acd` and :mod:`minicc.queue.ewt`;
this layer applies them to calls and to the switch:

- **Join**: :func:`~minicc.queue.acd.join_allowed` (full / empty), VIP priority, music.
- **Announcements** every ``announce_interval``: position, the honest estimate (none when
  there is none), and "press 1 to be called back" when the estimate is above the queue's
  threshold. Music resumes after; the switch cuts whatever plays when an agent answers.
- **ACD**: :meth:`AcdEngine._dispatch` runs :func:`~minicc.queue.acd.pick` after every change
  and makes the best offer across all queues first (priority, then join order, so a shared
  agent goes to the longest-waiting caller whatever queue they are in), then picks again.
- **Ring results**: an answer bridges (ring-all: the other phones are cancelled); a miss,
  busy, decline or failure counts towards the agent's auto-pause and excludes the agent from
  this call; UNAVAILABLE (no registered device) is nobody's fault: the agent keeps their
  state but is marked as having no device (``devices = 0``), so they are not offered calls
  until the registrar reports a device again (:meth:`set_devices`).
- **Overflow** on max wait, a refused join, or leave-when-empty.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from minicc.events import (
    CallAbandoned,
    CallAnsweredByAgent,
    CallLeftQueue,
    CallOffered,
    CallQueued,
)
from minicc.queue import acd
from minicc.queue import stats as qstats
from minicc.queue.acd import Assignment, JoinRefusal
from minicc.queue.agents import AgentState, AgentStateChanged
from minicc.queue.engine_calls import CallbackJob, CallInput, LiveCall, PlayKind
from minicc.queue.engine_core import VIP_PRIORITY, EngineCore
from minicc.queue.engine_media import Announcement
from minicc.queue.engine_queues import Offer, QueueRuntime
from minicc.queue.ewt import estimate_wait
from minicc.queue.models import OverflowKind, QueuedCall, Strategy
from minicc.switch.control import RingResult

__all__ = ["AcdEngine"]

log = logging.getLogger(__name__)

_REJECTS = frozenset({RingResult.BUSY, RingResult.REJECTED, RingResult.FAILED})


class AcdEngine(EngineCore):
    """Queues, offers and overflow (module docstring)."""

    # -- joining and leaving ------------------------------------------------------------------

    def _join(
        self,
        call: LiveCall,
        queue: str,
        priority: int,
        skills: dict[str, int] | None,
        now: float,
        *,
        front: bool = False,
    ) -> None:
        """Put a call in a queue (``front``: ahead of every caller of its priority, for a
        call an agent transferred back into a queue)."""
        runtime = self.queues.get(queue)
        if runtime is None or runtime.retired:
            log.warning("call %s: queue %r does not exist (any more)", call.key, queue)
            self._close(call, ["all_agents_busy", "goodbye"], now)
            return
        if call.caller in self.setup.vip_numbers:
            priority = max(priority, VIP_PRIORITY)
        call.priority = priority
        call.skills = dict(skills or {})
        sequence = self._seq.at(0.0) if front else self._seq.next(self._wall(now))
        entry = QueuedCall(
            call_id=call.key,
            tenant=self.tenant,
            caller=call.caller,
            joined_at=now,
            sequence=sequence,
            priority=priority,
            required_skills=call.skills,
        )
        decision = acd.join_allowed(
            runtime.config,
            self.board.agents,
            runtime.members,
            list(runtime.waiting.values()),
            entry,
        )
        if not decision.allowed:
            self._seq.release(sequence)
            refusal = decision.reason or JoinRefusal.FULL
            log.info("call %s: join %s refused (%s)", call.key, queue, refusal.value)
            self._overflow(call, runtime, refusal.value, now, joined=False)
            return
        runtime.waiting[call.key] = entry
        call.move(CallInput.JOIN)
        call.queue = queue
        call.callback_offer_open = False
        call.max_wait_offered = False
        interval = runtime.config.announce_interval
        call.next_announce = None if interval is None else now + interval
        transferred = call.transferred_by is not None
        self._count(
            qstats.CallJoined(queue=queue, call_id=call.key, at=now, transferred=transferred)
        )
        self._publish(
            CallQueued(
                tenant=self.tenant,
                call_id=call.key,
                queue=queue,
                caller=call.caller,
                priority=priority,
                position=runtime.position(call.key),
            )
        )
        log.info("call %s joined %s (priority %d)", call.key, queue, priority)
        self._moh(call)

    def _remove(self, runtime: QueueRuntime, call_id: str, now: float) -> QueuedCall | None:
        """Take a call out of a queue, withdrawing any offer of it (nobody's fault)."""
        entry = runtime.waiting.pop(call_id, None)
        offer = runtime.offers.pop(call_id, None)
        if offer is not None:
            self._agents(self.board.withdraw(call_id, now=now), now)
        if entry is not None:
            self._seq.release(entry.sequence)
        return entry

    def _abandon(self, call: LiveCall, now: float) -> None:
        runtime = self.queues.get(call.queue or "")
        if runtime is None or call.key not in runtime.waiting:
            return
        entry = self._remove(runtime, call.key, now)
        call.attempts.clear()  # the switch withdraws the rings of a call that ended
        if entry is None:
            return
        self._count(qstats.CallAbandoned(queue=runtime.name, call_id=call.key, at=now))
        self._publish(
            CallAbandoned(
                tenant=self.tenant,
                call_id=call.key,
                queue=runtime.name,
                waited=now - entry.joined_at,
            )
        )

    # -- overflow -----------------------------------------------------------------------------

    def _overflow(
        self, call: LiveCall, runtime: QueueRuntime, reason: str, now: float, *, joined: bool
    ) -> None:
        """Send a call out of ``runtime`` by its overflow rule.

        ``reason`` is a :class:`~minicc.queue.stats.LeaveReason` value or a join refusal.
        """
        target = runtime.config.overflow
        if joined:
            self._cancel_attempts(call)
            self._remove(runtime, call.key, now)
            leave = {r.value: r for r in qstats.LeaveReason}.get(reason, qstats.LeaveReason.OTHER)
            self._count(qstats.CallLeft(queue=runtime.name, call_id=call.key, at=now, reason=leave))
            call.queue = None
        self._publish(
            CallLeftQueue(
                tenant=self.tenant,
                call_id=call.key,
                queue=runtime.name,
                reason=reason,
                destination=str(target),
            )
        )
        log.info("call %s leaves %s (%s) -> %s", call.key, runtime.name, reason, target)
        if target.kind is OverflowKind.QUEUE and target.queue is not None:
            if call.overflow_hops < self._opts.max_overflow_hops:
                call.overflow_hops += 1
                self._join(call, target.queue, call.priority, dict(call.skills), now)
                return
            log.warning("call %s: too many overflows, giving up", call.key)
        elif target.kind is OverflowKind.VOICEMAIL:
            self._voicemail(call, runtime.name, now)
            return
        elif target.kind is OverflowKind.CALLBACK_OFFER:
            self._open_callback_offer(call, runtime.name, now)
            return
        self._close(call, ["all_agents_busy", "goodbye"], now)

    def _open_callback_offer(self, call: LiveCall, queue: str, now: float) -> None:
        """Not in the queue: "all agents are busy, press 1 to be called back", then music
        until the window ends (then goodbye)."""
        call.move(CallInput.OFFER_CALLBACK)
        call.refused_queue = queue
        call.next_announce = None
        call.callback_offer_open = True
        call.window_until = None  # armed when the offer has been heard
        self._lead_in(call, ["all_agents_busy", "press_1_to_be_called_back"])
        if call.play_kind is not PlayKind.LEAD_IN:
            call.window_until = now + self._opts.callback_offer_window

    def _voicemail(self, call: LiveCall, box: str, now: float) -> None:
        raise NotImplementedError  # FeatureEngine (engine_features)

    def _recording_on_answer(self, call_key: str, switch_key: str, queue: str, agent: str) -> None:
        raise NotImplementedError  # FeatureEngine (engine_features)

    def _max_wait(self, runtime: QueueRuntime, now: float) -> None:
        for entry in list(runtime.candidates()):
            call = self.calls.get(entry.call_id)
            if call is None or call.max_wait_offered:
                continue
            target = acd.overflow_due(entry, runtime.config, now)
            if target is None:
                continue
            if target.kind is OverflowKind.CALLBACK_OFFER:
                # The caller keeps the place; the offer is made once, then the wait goes on.
                call.max_wait_offered = True
                self._announce(call, now, force_offer=True)
            else:
                self._overflow(call, runtime, qstats.LeaveReason.MAX_WAIT.value, now, joined=True)

    def _leave_empty(self, runtime: QueueRuntime, now: float) -> None:
        for entry in list(runtime.candidates()):
            call = self.calls.get(entry.call_id)
            if call is None:
                continue
            if acd.should_leave(runtime.config, entry, self.board.agents, runtime.members):
                self._overflow(call, runtime, qstats.LeaveReason.EMPTY.value, now, joined=True)

    # -- announcements ------------------------------------------------------------------------

    def _estimate(self, runtime: QueueRuntime, entry: QueuedCall, now: float) -> float | None:
        return estimate_wait(
            entry,
            queue=runtime.config,
            waiting=list(runtime.waiting.values()),
            agents=self.board.agents,
            members=runtime.members,
            handle_times=runtime.handle_times,
            now=now,
            rng=self._deps.rng,
            samples=self._opts.ewt_samples,
        )

    def _announce(self, call: LiveCall, now: float, *, force_offer: bool = False) -> None:
        runtime = self.queues.get(call.queue or "")
        if runtime is None or call.key not in runtime.waiting:
            return
        config = runtime.config
        entry = runtime.waiting[call.key]
        interval = config.announce_interval
        call.next_announce = None if interval is None else now + interval
        ewt = self._estimate(runtime, entry, now)
        # A max-wait offer stands for the rest of the wait: the periodic announcement after
        # it repeats it rather than silently withdrawing what the caller was just told
        # (otherwise a 1 pressed one announcement later is ignored).
        offer = force_offer or call.max_wait_offered or acd.callback_offer_due(config, entry, ewt)
        names = Announcement.names(
            call.language,
            position=runtime.position(call.key) if config.announce_position else None,
            ewt=ewt if config.announce_ewt else None,
            offer_callback=offer,
        )
        if force_offer:
            names.insert(0, "all_agents_busy")
        call.callback_offer_open = offer
        files = self._prompts.files(call.language, names)
        if files:
            log.debug("call %s: announcing %s", call.key, " ".join(names))
            self._play(call, files, PlayKind.ANNOUNCEMENT)

    # -- the ACD ------------------------------------------------------------------------------

    def _blocked(self, runtime: QueueRuntime, now: float) -> list[str]:
        """Callbacks in the queue that may not be offered yet."""
        return [
            call_id
            for call_id, entry in runtime.waiting.items()
            if entry.callback
            and (call_id not in self.callbacks or not self.callbacks[call_id].offerable(now))
        ]

    def _dispatch(self, now: float) -> None:
        """Make every offer the ACD allows now, best-placed call first across queues."""
        for _ in range(len(self.board) + 1):  # each offer reserves an agent
            best: tuple[tuple[int, int], QueueRuntime, Assignment] | None = None
            for runtime in self.queues.values():
                candidates = runtime.candidates(self._blocked(runtime, now))
                if not candidates:
                    continue
                picked = acd.pick(
                    runtime.config,
                    candidates,
                    self.board.agents,
                    runtime.members,
                    now,
                    runtime.rr_cursor,
                )
                if not picked.assignments:
                    continue
                first = picked.assignments[0]
                order = runtime.waiting[first.call_id].order_key
                if best is None or order < best[0]:
                    best = (order, runtime, first)
            if best is None:
                return
            _, runtime, assignment = best
            if runtime.config.strategy is Strategy.ROUND_ROBIN:
                runtime.rr_cursor = assignment.agents[-1]
            self._offer(runtime, assignment, now)

    def _offer(self, runtime: QueueRuntime, assignment: Assignment, now: float) -> None:
        entry = runtime.waiting[assignment.call_id]
        if entry.callback:
            job = self.callbacks[entry.call_id]
            # One agent per callback, even for ring-all: the agent's answer dials the caller,
            # and two agents answering would dial them twice.
            self._offer_callback(runtime, job, assignment.agents[0], now)
            return
        call = self.calls[entry.call_id]
        config = runtime.config
        offer = Offer(call_id=call.key, deadline=now + config.ring_timeout + self._opts.ring_grace)
        runtime.offers[call.key] = offer
        for agent in assignment.agents:
            self._agents(
                self.board.offer(agent, call_id=call.key, queue=runtime.name, now=now), now
            )
            attempt = self._control.ring(call.key, agent, timeout=config.ring_timeout)
            offer.attempts[attempt] = agent
            call.attempts[attempt] = agent
            self._publish(
                CallOffered(tenant=self.tenant, call_id=call.key, queue=runtime.name, agent=agent)
            )
            log.info("call %s offered to %s (attempt %d)", call.key, agent, attempt)

    def _offer_callback(
        self, runtime: QueueRuntime, job: CallbackJob, agent: str, now: float
    ) -> None:
        raise NotImplementedError  # CallbackEngine

    def _release(
        self, runtime: QueueRuntime, call_id: str, agent_id: str, result: RingResult, now: float
    ) -> None:
        """An offer to ``agent_id`` ended without an answer: free the agent, and keep them
        from this call if it was their doing."""
        agent = self.board.agents.get(agent_id)
        if agent is None or agent.state is not AgentState.RESERVED or agent.call_id != call_id:
            return  # already released (withdrawn, logged out)
        events: list[AgentStateChanged]
        max_misses = runtime.config.max_misses
        if result is RingResult.NO_ANSWER:
            events = self.board.missed(agent_id, call_id=call_id, now=now, max_misses=max_misses)
        elif result in _REJECTS:
            events = self.board.rejected(agent_id, call_id=call_id, now=now, max_misses=max_misses)
        else:
            events = self.board.cancel(agent_id, call_id=call_id, now=now)
            if result is RingResult.UNAVAILABLE:
                log.info("agent %s has no registered device: not offered calls", agent_id)
                self.board.set_devices(agent_id, 0)
        self._agents(events, now)
        if result is RingResult.NO_ANSWER or result in _REJECTS:
            entry = runtime.waiting.get(call_id)
            if entry is not None:
                runtime.replace(entry.exclude(agent_id))

    def _queue_ring_result(
        self, call: LiveCall, attempt: int, result: RingResult, now: float
    ) -> None:
        runtime = self.queues.get(call.queue or "")
        agent_id = call.attempts.pop(attempt, None)
        if runtime is None or agent_id is None:
            return
        offer = runtime.offers.get(call.key)
        if offer is not None:
            offer.attempts.pop(attempt, None)
        if result is RingResult.ANSWERED:
            self._answered(runtime, call, agent_id, now)
            return
        log.info("call %s: agent %s %s", call.key, agent_id, result.value)
        self._release(runtime, call.key, agent_id, result, now)
        if offer is not None and not offer.attempts:
            del runtime.offers[call.key]
        if call.playback is None and not call.attempts:
            self._moh(call)  # cut for a bridge that did not happen after all

    def _answered(
        self,
        runtime: QueueRuntime,
        call: LiveCall,
        agent_id: str,
        now: float,
        *,
        track_agent: bool = True,
    ) -> None:
        self._cancel_attempts(call)  # ring-all: the other phones stop
        runtime.offers.pop(call.key, None)
        if track_agent:
            self._agents(self.board.answered(agent_id, call_id=call.key, now=now), now)
        self._agents(self.board.withdraw(call.key, now=now, keep=agent_id), now)
        entry = runtime.waiting.pop(call.key)
        self._seq.release(entry.sequence)
        self._served.add(call.key)
        call.move(CallInput.BRIDGE)
        call.agent = agent_id
        call.answered_at = now
        if call.playback is not None:
            # The switch cut what played when it bridged and reports that first; music the
            # engine restarted in between (an announcement that ended on the same turn)
            # must not play over the agent.
            self._control.stop_playback(call.key)
        call.playback = None
        call.play_kind = None
        call.next_announce = None
        call.callback_offer_open = False
        self._count(
            qstats.CallAnswered(queue=runtime.name, call_id=call.key, at=now, agent_id=agent_id)
        )
        self._publish(
            CallAnsweredByAgent(
                tenant=self.tenant,
                call_id=call.key,
                queue=runtime.name,
                agent=agent_id,
                waited=now - entry.joined_at,
            )
        )
        self._recording_on_answer(call.key, call.key, runtime.name, agent_id)
        log.info("call %s answered by %s", call.key, agent_id)

    def _offer_timeouts(self, runtime: QueueRuntime, now: float) -> None:
        """Attempts the switch never reported: withdraw them and count them as no answer."""
        for call_id, offer in list(runtime.offers.items()):
            call = self.calls.get(call_id)
            if call is None or offer.deadline > now or not offer.attempts:
                continue
            log.warning("call %s: ring results overdue, withdrawing", call_id)
            for attempt, agent_id in list(offer.attempts.items()):
                self._control.cancel_ring(call_id, attempt)
                call.attempts.pop(attempt, None)
                self._release(runtime, call_id, agent_id, RingResult.NO_ANSWER, now)
            del runtime.offers[call_id]

    def _queue_deadline(self, runtime: QueueRuntime, now: float) -> float | None:
        """When overflow or widening next needs a look (calls being offered wait for the
        offer's result; a max-wait callback offer is made once)."""
        plain: list[QueuedCall] = []
        offered: list[QueuedCall] = []
        for entry in runtime.candidates():
            call = self.calls.get(entry.call_id)
            (offered if call is not None and call.max_wait_offered else plain).append(entry)
        times = [acd.next_deadline(runtime.config, plain, now)]
        if offered:
            relaxed = replace(runtime.config, max_wait=None)
            times.append(acd.next_deadline(relaxed, offered, now))
        due = [t for t in times if t is not None]
        return min(due, default=None)
