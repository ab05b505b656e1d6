"""Callbacks that keep the caller's place, made agent-first.

A caller who presses 1 after "press 1 to be called back" hangs up and their queue entry
becomes virtual (:meth:`QueuedCall.as_callback`): same sequence, same join time, so nobody
who joined later overtakes them. The entry is stored through the injected
:data:`~minicc.queue.engine_core.PersistCallback` and comes back from
:attr:`CallCenterSetup.callbacks` after a restart at its original place (sequences follow
join time: :class:`~minicc.queue.engine_queues.Sequencer`).

When the ACD picks the callback, the agent is reserved and rung first
(:meth:`CallControl.originate`); only when the agent answers does the switch dial the
caller, so a caller is never called back into a queue. A missed agent is excluded and the
callback waits for the next agent at the same place; a caller who does not answer is tried
again after ``callback_retry_spacing``, up to ``callback_attempts`` times, and every attempt's
result is published (:class:`~minicc.events.CallbackResult`) and stored.

Web callback requests (and the IVR's callback node) join through :meth:`request_callback`.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from minicc.events import (
    CallAnsweredByAgent,
    CallbackRequested,
    CallbackResult,
    CallLeftQueue,
    CallOffered,
    CallQueued,
)
from minicc.queue import acd
from minicc.queue import stats as qstats
from minicc.queue.agents import AgentState
from minicc.queue.engine_acd import AcdEngine
from minicc.queue.engine_calls import CallbackInput, CallbackJob, CallbackState, LiveCall
from minicc.queue.engine_core import VIP_PRIORITY, CallbackOutcome
from minicc.queue.engine_queues import Offer, QueueRuntime
from minicc.queue.models import QueuedCall
from minicc.queue.setup import PendingCallback
from minicc.switch.control import OriginateLeg, RingResult

__all__ = ["CallbackEngine"]

log = logging.getLogger(__name__)


class CallbackEngine(AcdEngine):
    """Callback requests, restores, agent-first dial-backs and retries (module docstring)."""

    # -- becoming a callback ------------------------------------------------------------------

    def _take_callback(self, call: LiveCall, now: float) -> None:
        """A waiting caller pressed 1: keep the place, confirm, hang up."""
        runtime = self.queues[call.queue or ""]
        entry = runtime.waiting[call.key]
        if call.key in runtime.offers:  # agents ringing for the live call: nobody's fault
            self._cancel_attempts(call)
            del runtime.offers[call.key]
            self._agents(self.board.withdraw(call.key, now=now), now)
        runtime.replace(entry.as_callback())
        job = CallbackJob(
            call_id=call.key,
            queue=runtime.name,
            number=call.caller,
            name=call.caller_name,
            callback_id=self._new_callback_id(now),
            joined_wall=self._wall(now) - (now - entry.joined_at),
            hold_for=call.key,
        )
        self._persist_callback(job, entry.priority, None)
        self.callbacks[call.key] = job
        self._count(qstats.CallbackRequested(queue=runtime.name, call_id=call.key, at=now))
        self._publish(
            CallbackRequested(
                tenant=self.tenant,
                call_id=call.key,
                queue=runtime.name,
                number=job.number,
                callback_id=job.callback_id,
            )
        )
        log.info("call %s: callback requested, keeps place in %s", call.key, runtime.name)
        call.queue = None  # the line is no longer waiting: its hang-up is not an abandon
        self._close(call, ["callback_confirmed", "goodbye"], now)

    def request_callback(
        self, queue: str, number: str, now: float, *, name: str | None = None
    ) -> str | None:
        """A web callback request: joins ``queue``'s virtual line now (see
        :meth:`_new_callback`); returns the entry's id, None when refused."""
        call_id = self._new_callback(queue, number, now, name=name)
        self._settle(now)
        return call_id

    def _settle(self, now: float) -> None:
        raise NotImplementedError  # TenantEngine

    def _new_callback(
        self,
        queue: str,
        number: str,
        now: float,
        *,
        name: str | None = None,
        priority: int = 0,
        hold_for: str | None = None,
        force: bool = False,
    ) -> str | None:
        """A new callback request (web widget, IVR callback node, a refused caller's 1).

        Args:
            queue: the queue whose virtual line it joins.
            number: where to call back.
            now: engine time.
            name: the caller's name, if known.
            priority: queue priority (VIP numbers are raised as for live callers).
            hold_for: a live call's key; the callback is not made while that call lasts.
            force: join even when the queue is full or empty (the callback *is* the
                overflow of a refused caller).

        Returns:
            The queue entry's id, or None when the queue does not exist or refused it.
        """
        runtime = self.queues.get(queue)
        if runtime is None or runtime.retired or not number:
            log.warning("callback to %r for queue %r refused: no such queue", number, queue)
            return None
        if number in self.setup.vip_numbers:
            priority = max(priority, VIP_PRIORITY)
        wall = self._wall(now)
        sequence = self._seq.next(wall)
        probe = QueuedCall(
            call_id="probe",
            tenant=self.tenant,
            caller=number,
            joined_at=now,
            sequence=sequence,
            priority=priority,
            callback=True,
        )
        if not force:
            decision = acd.join_allowed(
                runtime.config,
                self.board.agents,
                runtime.members,
                list(runtime.waiting.values()),
                probe,
            )
            if not decision.allowed:
                self._seq.release(sequence)
                log.info("callback for %s refused by %s", number, queue)
                return None
        callback_id = self._new_callback_id(now)
        job = CallbackJob(
            call_id=f"callback-{callback_id}",
            queue=queue,
            number=number,
            name=name,
            callback_id=callback_id,
            joined_wall=wall,
            hold_for=hold_for,
        )
        self._persist_callback(job, priority, None)
        self._enqueue(runtime, job, replace(probe, call_id=job.call_id), now)
        self._publish(
            CallbackRequested(
                tenant=self.tenant,
                call_id=job.call_id,
                queue=queue,
                number=number,
                callback_id=job.callback_id,
            )
        )
        return job.call_id

    def _restore(self, pending: PendingCallback, now: float) -> None:
        """A stored callback, back at its original place after a restart."""
        if any(job.callback_id == pending.id for job in self.callbacks.values()):
            return
        runtime = self.queues.get(pending.queue)
        if runtime is None:
            log.warning("callback %s: queue %r is gone; left stored", pending.id, pending.queue)
            return
        job = CallbackJob(
            call_id=f"callback-{pending.id}",
            queue=pending.queue,
            number=pending.number,
            name=pending.name,
            callback_id=pending.id,
            joined_wall=pending.joined_at,
            attempts=pending.attempts,
        )
        entry = QueuedCall(
            call_id=job.call_id,
            tenant=self.tenant,
            caller=pending.number,
            joined_at=self._to_engine(pending.joined_at, now),
            sequence=self._seq.at(pending.joined_at),
            priority=pending.priority,
            callback=True,
        )
        self._enqueue(runtime, job, entry, now)
        log.info("callback %s restored in %s", pending.id, pending.queue)

    def _enqueue(
        self, runtime: QueueRuntime, job: CallbackJob, entry: QueuedCall, now: float
    ) -> None:
        runtime.waiting[entry.call_id] = entry
        self.callbacks[entry.call_id] = job
        joined = None if entry.joined_at == now else entry.joined_at
        self._count(
            qstats.CallJoined(
                queue=runtime.name, call_id=entry.call_id, at=now, joined_at=joined, callback=True
            )
        )
        self._publish(
            CallQueued(
                tenant=self.tenant,
                call_id=entry.call_id,
                queue=runtime.name,
                caller=entry.caller,
                priority=entry.priority,
                position=runtime.position(entry.call_id),
                callback=True,
            )
        )

    def _release_holds(self, key: str) -> None:
        for job in self.callbacks.values():
            if job.hold_for == key:
                job.hold_for = None

    # -- making it ----------------------------------------------------------------------------

    def _offer_callback(
        self, runtime: QueueRuntime, job: CallbackJob, agent: str, now: float
    ) -> None:
        config = runtime.config
        job.move(CallbackInput.OFFER)
        job.agent = agent
        self._agents(self.board.offer(agent, call_id=job.call_id, queue=job.queue, now=now), now)
        job.ring_deadline = now + config.ring_timeout + self._opts.ring_grace
        runtime.offers[job.call_id] = Offer(call_id=job.call_id, deadline=job.ring_deadline)
        job.origin = self._control.originate(
            self.tenant,
            agent,
            job.number,
            timeout=config.ring_timeout,
            dial_timeout=self._opts.callback_dial_timeout,
            caller_id=job.number,
        )
        self._origins[job.origin] = job.call_id
        self._publish(
            CallOffered(
                tenant=self.tenant,
                call_id=job.call_id,
                queue=job.queue,
                agent=agent,
                callback=True,
            )
        )
        log.info("callback %s: agent %s rung first (%s)", job.call_id, agent, job.origin)

    def _origin_job(self, key: str) -> CallbackJob | None:
        call_id = self._origins.get(key)
        return None if call_id is None else self.callbacks.get(call_id)

    def _origin_result(self, key: str, leg: OriginateLeg, result: RingResult, now: float) -> None:
        job = self._origin_job(key)
        if job is None:
            log.debug("originate %s: %s %s for no callback", key, leg.value, result.value)
            return
        runtime = self.queues[job.queue]
        agent = job.agent or ""
        if leg is OriginateLeg.AGENT and job.state is CallbackState.AGENT_RINGING:
            job.ring_deadline = None
            if result is RingResult.ANSWERED:
                job.move(CallbackInput.AGENT_ANSWERED)
                self._agents(self.board.answered(agent, call_id=job.call_id, now=now), now)
                log.info("callback %s: agent %s answered, dialling %s", key, agent, job.number)
            else:
                self._agent_leg_failed(runtime, job, result, now)
        elif leg is OriginateLeg.CALLEE and job.state is CallbackState.DIALLING:
            if result is RingResult.ANSWERED:
                self._callee_answered(runtime, job, now)
            else:
                self._callee_failed(runtime, job, result.value, now)

    def _agent_leg_failed(
        self, runtime: QueueRuntime, job: CallbackJob, result: RingResult, now: float
    ) -> None:
        log.info("callback %s: agent %s %s", job.call_id, job.agent, result.value)
        job.move(CallbackInput.AGENT_FAILED)
        runtime.offers.pop(job.call_id, None)
        self._release(runtime, job.call_id, job.agent or "", result, now)
        self._forget_origin(job)

    def _callee_answered(self, runtime: QueueRuntime, job: CallbackJob, now: float) -> None:
        job.move(CallbackInput.CALLEE_ANSWERED)
        job.attempts += 1
        runtime.offers.pop(job.call_id, None)
        entry = runtime.waiting.pop(job.call_id)
        self._seq.release(entry.sequence)
        self._served.add(job.call_id)
        agent = job.agent or ""
        self._count(
            qstats.CallAnswered(queue=runtime.name, call_id=job.call_id, at=now, agent_id=agent)
        )
        self._publish(
            CallAnsweredByAgent(
                tenant=self.tenant,
                call_id=job.call_id,
                queue=runtime.name,
                agent=agent,
                waited=now - entry.joined_at,
                callback=True,
            )
        )
        self._result(job, "connected", agent, None)
        self._persist_callback(job, entry.priority, CallbackOutcome.CONNECTED)
        self._recording_on_answer(job.call_id, job.origin or "", runtime.name, agent)

    def _callee_failed(
        self, runtime: QueueRuntime, job: CallbackJob, detail: str, now: float
    ) -> None:
        job.move(CallbackInput.CALLEE_FAILED)
        job.attempts += 1
        runtime.offers.pop(job.call_id, None)
        entry = runtime.waiting[job.call_id]
        agent = job.agent
        if job.attempts >= self._opts.callback_attempts:
            log.info(
                "callback %s: %s after %d attempts, given up", job.call_id, detail, job.attempts
            )
            job.move(CallbackInput.GIVE_UP)
            runtime.waiting.pop(job.call_id)
            self._seq.release(entry.sequence)
            reason = qstats.LeaveReason.CALLBACK_FAILED
            self._count(
                qstats.CallLeft(queue=runtime.name, call_id=job.call_id, at=now, reason=reason)
            )
            self._publish(
                CallLeftQueue(
                    tenant=self.tenant,
                    call_id=job.call_id,
                    queue=runtime.name,
                    reason=reason.value,
                    destination="none",
                )
            )
            self._result(job, "failed", agent, detail)
            self._persist_callback(job, entry.priority, CallbackOutcome.FAILED)
        else:
            job.ready_at = now + self._opts.callback_retry_spacing
            log.info("callback %s: %s, retry %d later", job.call_id, detail, job.attempts + 1)
            self._result(job, "retry", agent, detail)
            self._persist_callback(job, entry.priority, None)

    def _result(
        self, job: CallbackJob, outcome: str, agent: str | None, detail: str | None
    ) -> None:
        self._publish(
            CallbackResult(
                tenant=self.tenant,
                call_id=job.call_id,
                queue=job.queue,
                number=job.number,
                callback_id=job.callback_id,
                outcome=outcome,
                attempts=job.attempts,
                agent=agent,
                detail=detail,
            )
        )

    def _origin_ended(self, key: str, now: float) -> None:
        """The originated call is over, whichever stage it reached."""
        job = self._origin_job(key)
        self._origins.pop(key, None)
        if job is None or job.origin != key:
            return
        runtime = self.queues[job.queue]
        if job.state is CallbackState.AGENT_RINGING:  # no result was reported
            self._agent_leg_failed(runtime, job, RingResult.FAILED, now)
            return
        if job.state is CallbackState.DIALLING:  # the agent gave up before the caller answered
            self._callee_failed(runtime, job, "ended", now)
        connected = job.state is CallbackState.CONNECTED
        agent = self.board.agents.get(job.agent or "")
        if agent is not None and agent.state is AgentState.ON_CALL and agent.call_id == job.call_id:
            # A dial-back nobody answered leaves nothing to wrap up.
            wrap = runtime.config.wrap_up if connected else 0.0
            self._agents(
                self.board.call_ended(agent.agent_id, call_id=job.call_id, now=now, wrap_up=wrap),
                now,
            )
        if connected:
            job.move(CallbackInput.ENDED)
        self._forget_origin(job)
        if job.state is CallbackState.DONE:
            self.callbacks.pop(job.call_id, None)

    def _forget_origin(self, job: CallbackJob) -> None:
        if job.origin is not None:
            self._origins.pop(job.origin, None)
        job.origin = None
        job.ring_deadline = None
        if job.state is CallbackState.WAITING:
            job.agent = None

    def _callback_timeouts(self, now: float) -> None:
        for job in list(self.callbacks.values()):
            if job.ring_deadline is None or job.ring_deadline > now or job.origin is None:
                continue
            log.warning("callback %s: agent leg result overdue, withdrawing", job.call_id)
            self._control.hangup(job.origin)
            self._agent_leg_failed(self.queues[job.queue], job, RingResult.NO_ANSWER, now)

    def _callback_timer(self, now: float) -> float | None:
        times = [
            t
            for job in self.callbacks.values()
            for t in (
                job.ring_deadline,
                job.ready_at
                if job.state is CallbackState.WAITING
                and job.hold_for is None
                and job.ready_at > now
                else None,
            )
            if t is not None
        ]
        return min(times, default=None)
