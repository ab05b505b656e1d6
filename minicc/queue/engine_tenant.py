"""One tenant's call center: routing, the IVR, the switch's reports, setup updates, timers.

:class:`TenantEngine` is the sans-IO core the asyncio :class:`~minicc.queue.engine.CallCenter`
drives: each method mirrors a :class:`~minicc.switch.control.CallObserver` report (plus
``now``), acts on the switch through :class:`~minicc.switch.control.CallControl`, and the
engine says through :meth:`TenantEngine.get_timer` when :meth:`TenantEngine.handle_timer`
is next due. After every input the ACD runs (:meth:`_settle`), so an agent who becomes
free, a caller who joins or a widening deadline all lead straight to an offer.

IVR actions map to the switch like this: ``Play`` -> prompt names and say items resolved to
files -> ``play`` (a ``Play`` with nothing playable counts as finished at once);
``StopPlayback`` -> ``stop_playback``; ``Lookup`` -> the plugin hook, or
``LookupResult(error="no lookup hook")`` when none is registered, so the flow takes its
fallback; ``RouteToQueue`` -> join; ``RouteToExtension`` -> "transferring", music, ``ring``;
``Voicemail`` -> "leave a message", the beep and the caller's message
(:mod:`~minicc.queue.engine_features`); ``RequestCallback`` -> :meth:`request_callback`;
``HangUp`` -> ``hangup``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable

from minicc.queue.agents import TRANSITIONS, AgentInput, AgentState, AgentStateError
from minicc.queue.engine_calls import CallInput, CallPhase, LiveCall, PlayKind
from minicc.queue.engine_core import EngineDeps
from minicc.queue.engine_features import FeatureEngine
from minicc.queue.engine_hold import HoldEngine
from minicc.queue.engine_queues import QueueRuntime
from minicc.queue.engine_transfer import TransferEngine
from minicc.queue.ivr import (
    Action,
    CallerHungUp,
    CancelLookup,
    DigitPressed,
    Flow,
    FlowError,
    FlowRun,
    HangUp,
    Lookup,
    LookupResult,
    Play,
    PromptsFinished,
    RequestCallback,
    RouteToExtension,
    RouteToQueue,
    SetLanguage,
    StopPlayback,
    Voicemail,
    load_flow,
)
from minicc.queue.setup import CallCenterSetup, TargetKind
from minicc.queue.stats import StatsSnapshot
from minicc.switch.control import (
    IncomingCall,
    OriginateLeg,
    PlaybackOutcome,
    RingResult,
    Route,
    RouteKind,
)

__all__ = ["TenantEngine"]

log = logging.getLogger(__name__)

DEFAULT_PAUSE_REASON = "paused"


class TenantEngine(FeatureEngine, HoldEngine, TransferEngine):
    """A tenant's queue engine (module docstring). Every method takes engine time ``now``."""

    def __init__(self, setup: CallCenterSetup, deps: EngineDeps, now: float) -> None:
        super().__init__(setup, deps, now)
        self.flows: dict[str, Flow] = {}
        self.update(setup, now)

    # -- provisioning -------------------------------------------------------------------------

    def update(self, setup: CallCenterSetup, now: float) -> None:
        """Apply a fresh setup without dropping live calls.

        Flows that no longer load keep their previous valid version; a removed queue keeps
        serving the callers in it but takes no new ones; agents keep their live state (new
        agents start as their stored setting says, available when there is none); stored
        callbacks not yet known rejoin at their original place.
        """
        self.setup = setup
        self._load_flows(setup)
        for name, config in setup.queues.items():
            members = tuple(setup.members.get(name, ()))
            runtime = self.queues.get(name)
            if runtime is None:
                self._new_runtime(QueueRuntime(config=config, members=members))
            else:
                runtime.config, runtime.members, runtime.retired = config, members, False
                self.stats.add_queue(name, service_level_threshold=config.service_level_threshold)
        for name, runtime in list(self.queues.items()):
            if name not in setup.queues:
                runtime.retired = True
                if not runtime.waiting:
                    del self.queues[name]
        self._update_agents(setup, now)
        for pending in setup.callbacks:
            self._restore(pending, now)
        self._settle(now)

    def _load_flows(self, setup: CallCenterSetup) -> None:
        flows: dict[str, Flow] = {}
        for name, source in setup.flows.items():
            try:
                flows[name] = load_flow(
                    source.text,
                    prompt_exists=self._deps.catalogue.exists,
                    known_queues=set(setup.queues),
                    known_flows=set(setup.flows),
                    default_timezone=setup.timezone,
                    filename=source.origin,
                )
            except FlowError as exc:
                previous = self.flows.get(name)
                log.error(
                    "flow %s not loaded%s:\n%s",
                    name,
                    "; the previous version stays live" if previous else "",
                    exc,
                )
                if previous is not None:
                    flows[name] = previous
        self.flows = flows

    def _member_queues(self, agent_id: str) -> frozenset[str]:
        return frozenset(
            name
            for name, members in self.setup.members.items()
            if any(m.agent_id == agent_id for m in members)
        )

    def _update_agents(self, setup: CallCenterSetup, now: float) -> None:
        ids = set(setup.agents)
        for members in setup.members.values():
            ids.update(m.agent_id for m in members)
        for agent_id in self.board:
            if agent_id not in ids and self.board[agent_id].logged_in:
                self.board[agent_id].queues = frozenset()  # removed from every queue
        for agent_id in sorted(ids):
            queues = self._member_queues(agent_id)
            if agent_id in self.board:
                agent = self.board[agent_id]
                if agent.logged_in:
                    # Membership changed in the setup: no board input exists for that, and a
                    # logout/login would reset the agent's idle place and counters.
                    agent.queues = queues
                continue
            self.board.add(agent_id, now=now)
            setting = setup.agents.get(agent_id)
            state = "available" if setting is None else setting.state
            if state == "logged-out":
                continue
            self._agents(self.board.login(agent_id, now=now, queues=queues), now)
            if state == "paused":
                reason = (setting.reason if setting else None) or DEFAULT_PAUSE_REASON
                self._agents(self.board.pause(agent_id, now=now, reason=reason), now)

    def set_agent_state(
        self, agent_id: str, state: AgentState, now: float, *, reason: str | None = None
    ) -> None:
        """Set an agent available, paused (with a reason) or logged out (CLI and API).

        Pausing during a call takes effect after it; logging out while rung withdraws the
        offer (the caller keeps the place).

        Raises:
            ValueError: ``state`` is not AVAILABLE, PAUSED or LOGGED_OUT.
            AgentStateError: logging out during a call (end or wrap it up first).
        """
        if agent_id not in self.board:
            self.board.add(agent_id, now=now)
        agent = self.board[agent_id]
        if state is AgentState.AVAILABLE:
            if agent.state is AgentState.LOGGED_OUT:
                queues = self._member_queues(agent_id)
                self._agents(self.board.login(agent_id, now=now, queues=queues), now)
            elif (agent.state, AgentInput.UNPAUSE) in TRANSITIONS:
                self._agents(self.board.unpause(agent_id, now=now), now)
        elif state is AgentState.PAUSED:
            if agent.state is AgentState.LOGGED_OUT:
                queues = self._member_queues(agent_id)
                self._agents(self.board.login(agent_id, now=now, queues=queues), now)
            why = reason or DEFAULT_PAUSE_REASON
            self._agents(self.board.pause(agent_id, now=now, reason=why), now)
        elif state is AgentState.LOGGED_OUT:
            if agent.state is AgentState.ON_CALL:
                raise AgentStateError(agent_id, agent.state, AgentInput.LOGOUT, "after the call")
            if agent.state is AgentState.RESERVED and agent.call_id is not None:
                self._withdraw_offer_of(agent_id, agent.call_id, now)
            if agent.state is not AgentState.LOGGED_OUT:
                self._agents(self.board.logout(agent_id, now=now), now)
        else:
            raise ValueError(f"an agent can be set available, paused or logged out, not {state}")
        self._persist_agent(agent_id)
        self._settle(now)

    def _withdraw_offer_of(self, agent_id: str, call_id: str, now: float) -> None:
        """Stop ringing ``agent_id`` for ``call_id``; the call stays in line."""
        job = self.callbacks.get(call_id)
        if job is not None and job.origin is not None and job.agent == agent_id:
            self._control.hangup(job.origin)
            self._agent_leg_failed(self.queues[job.queue], job, RingResult.CANCELLED, now)
            return
        call = self.calls.get(call_id)
        runtime = self.queues.get(call.queue or "") if call is not None else None
        if call is None or runtime is None:
            return
        offer = runtime.offers.get(call_id)
        for attempt, ringing in list(call.attempts.items()):
            if ringing == agent_id:
                self._control.cancel_ring(call_id, attempt)
                call.withdrawn[attempt] = call.attempts.pop(attempt)
                if offer is not None:
                    offer.attempts.pop(attempt, None)
        if offer is not None and not offer.attempts:
            del runtime.offers[call_id]
        self._agents(self.board.cancel(agent_id, call_id=call_id, now=now), now)

    def set_devices(self, agent_id: str, count: int, now: float) -> None:
        """How many devices ring for an agent (from the registrar); 0 keeps calls away."""
        if agent_id in self.board:
            self.board.set_devices(agent_id, count)
            self._settle(now)

    def stats_snapshot(self, now: float) -> StatsSnapshot:
        """Live queue and agent statistics as of ``now``."""
        return self.stats.snapshot(now)

    # -- the switch's reports -----------------------------------------------------------------

    def route(self, incoming: IncomingCall) -> Route:
        """What an inbound call to one of this tenant's numbers becomes."""
        target = self.setup.numbers.get(incoming.number)
        if target is None:
            check = self._deps.is_extension
            if check is None or check(incoming.number):
                return Route(kind=RouteKind.EXTENSION, extension=incoming.number)
            return Route(kind=RouteKind.REJECT, status=404)
        if target.kind is TargetKind.EXTENSION:
            return Route(kind=RouteKind.EXTENSION, extension=target.name)
        if target.kind is TargetKind.IVR and target.name not in self.flows:
            log.error("number %s: flow %r is not loaded", incoming.number, target.name)
            return Route(kind=RouteKind.REJECT, status=503)
        runtime = self.queues.get(target.name)
        if target.kind is TargetKind.QUEUE and (runtime is None or runtime.retired):
            log.error("number %s: queue %r does not exist", incoming.number, target.name)
            return Route(kind=RouteKind.REJECT, status=503)
        self.calls[incoming.key] = LiveCall(
            key=incoming.key,
            tenant=self.tenant,
            number=incoming.number,
            caller=incoming.caller,
            caller_name=incoming.caller_name,
            sip_call_id=incoming.call_id,
            target=target,
        )
        return Route(kind=RouteKind.APPLICATION)

    def call_answered(self, key: str, now: float) -> None:
        call = self.calls.get(key)
        if call is None or call.phase is not CallPhase.ANSWERING:
            log.warning("call %s: answered, but not expected", key)
            return
        if call.target.kind is TargetKind.QUEUE:
            self._join(call, call.target.name, 0, None, now)
        else:
            flow = self.flows.get(call.target.name)
            if flow is None:
                self._close(call, ["all_agents_busy", "goodbye"], now)
            else:
                self._start_ivr(call, flow, now)
        self._settle(now)

    def dtmf(self, key: str, digit: str, now: float) -> None:
        call = self.calls.get(key)
        if call is None:
            return
        if call.phase is CallPhase.IVR and call.run is not None:
            try:
                event = DigitPressed(digit=digit)
            except ValueError:
                log.warning("call %s: ignoring key %r", key, digit)
                return
            self._run_actions(call, call.run.handle(event, self._wall(now)), now)
        elif digit == "1" and call.callback_offer_open:
            if call.phase is CallPhase.QUEUED:
                self._take_callback(call, now)
            elif call.phase is CallPhase.CALLBACK_OFFER and call.refused_queue is not None:
                self._new_callback(
                    call.refused_queue,
                    call.caller,
                    now,
                    name=call.caller_name,
                    priority=call.priority,
                    hold_for=call.key,
                    force=True,
                )
                self._close(call, ["callback_confirmed", "goodbye"], now)
        self._settle(now)

    def playback_done(self, key: str, playback: int, outcome: PlaybackOutcome, now: float) -> None:
        if self._voicemail_prompt_done(key, playback, outcome, now):
            return  # the beep: the message is being recorded
        call = self.calls.get(key)
        if call is None or playback != call.playback:
            return  # stale: replaced, stopped, or the call is gone
        kind = call.play_kind
        if (
            outcome is PlaybackOutcome.CANCELLED
            and call.attempts
            and call.phase in (CallPhase.QUEUED, CallPhase.RINGING_EXTENSION)
        ):
            # Cut by the switch to bridge a phone that answered: the answer follows.
            call.playback = None
            call.play_kind = None
            return
        call.playback = None
        call.play_kind = None
        if outcome is PlaybackOutcome.ABORTED:
            log.warning("call %s: %s playback aborted", key, kind.value if kind else "-")
        if call.phase is CallPhase.IVR and kind is PlayKind.IVR and call.run is not None:
            finished = PromptsFinished(play_id=call.ivr_play or 0)
            call.ivr_play = None
            self._run_actions(call, call.run.handle(finished, self._wall(now)), now)
        elif call.phase is CallPhase.CLOSING:
            self._hangup(call)
        elif call.phase in (CallPhase.QUEUED, CallPhase.RINGING_EXTENSION):
            self._moh(call)
        elif call.phase is CallPhase.CALLBACK_OFFER:
            self._moh(call)
            if call.window_until is None:
                call.window_until = now + self._opts.callback_offer_window
        self._settle(now)

    def ring_result(self, key: str, attempt: int, result: RingResult, now: float) -> None:
        call = self.calls.get(key)
        if call is None or self._hold_ring_result(key, attempt, result, now):
            return
        if attempt not in call.attempts:
            withdrawn = call.withdrawn.pop(attempt, None)
            if withdrawn is not None and result is RingResult.ANSWERED:
                self._late_answer(call, withdrawn, now)
                self._settle(now)
            return
        if call.phase is CallPhase.QUEUED:
            self._queue_ring_result(call, attempt, result, now)
        elif call.phase is CallPhase.RINGING_EXTENSION:
            extension = call.attempts.pop(attempt)
            call.window_until = None
            if result is RingResult.ANSWERED:
                call.move(CallInput.BRIDGE)
                if call.playback is not None:  # music restarted after the switch's cut
                    self._control.stop_playback(key)
                call.playback = None
                call.play_kind = None
                call.answered_at = now
            else:
                log.info("call %s: extension %s %s", key, extension, result.value)
                self._extension_failed(call, extension, now)
        else:
            call.attempts.pop(attempt)
        self._settle(now)

    def _late_answer(self, call: LiveCall, extension: str, now: float) -> None:
        """An attempt the engine had withdrawn was answered anyway (the answer crossed the
        cancel). A waiting caller is connected: the person answering talks to them (the
        agent's state follows only if they were free to be offered the call). Any other call
        is on its way out (a callback was chosen, it overflowed): the stray leg ends with it."""
        runtime = self.queues.get(call.queue or "")
        if call.phase is CallPhase.QUEUED and runtime is not None and call.key in runtime.waiting:
            log.info("call %s: %s answered a withdrawn ring; connecting", call.key, extension)
            agent = self.board.agents.get(extension)
            free = agent is not None and agent.state is AgentState.AVAILABLE
            if free:
                self._agents(
                    self.board.offer(extension, call_id=call.key, queue=runtime.name, now=now),
                    now,
                )
            self._answered(runtime, call, extension, now, track_agent=free)
            return
        log.warning("call %s: %s answered a withdrawn ring; ending the call", call.key, extension)
        if call.phase is not CallPhase.CLOSING:
            call.move(CallInput.CLOSE)
        self._hangup(call)

    def call_ended(self, key: str, by_caller: bool, now: float) -> None:
        call = self.calls.pop(key, None)
        if call is None:
            if key in self._origins:
                self._origin_ended(key, now)
                self._settle(now)
            return
        self._hold_call_ended(call, now)
        if call.phase is CallPhase.IVR and call.run is not None:
            call.run.handle(CallerHungUp(), self._wall(now))  # only a CancelLookup can come back
        elif call.phase is CallPhase.QUEUED:
            self._abandon(call, now)
        elif call.phase is CallPhase.CONNECTED and call.agent is not None:
            runtime = self.queues.get(call.queue or "")
            wrap = runtime.config.wrap_up if runtime is not None else 0.0
            agent = self.board.agents.get(call.agent)
            if agent is not None and agent.state is AgentState.ON_CALL and agent.call_id == key:
                self._agents(
                    self.board.call_ended(call.agent, call_id=key, now=now, wrap_up=wrap), now
                )
        call.move(CallInput.END)
        call.attempts.clear()
        self._release_holds(key)
        log.info("call %s ended (%s)", key, "caller hung up" if by_caller else "hung up")
        self._settle(now)

    def originate_result(self, key: str, leg: OriginateLeg, result: RingResult, now: float) -> None:
        self._origin_result(key, leg, result, now)
        self._settle(now)

    def lookup_done(self, key: str, result: LookupResult, now: float) -> None:
        """A plugin lookup answered (or failed); stale answers are ignored by the run."""
        call = self.calls.get(key)
        if call is not None and call.phase is CallPhase.IVR and call.run is not None:
            self._run_actions(call, call.run.handle(result, self._wall(now)), now)
            self._settle(now)

    # -- the IVR ------------------------------------------------------------------------------

    def _start_ivr(self, call: LiveCall, flow: Flow, now: float) -> None:
        call.move(CallInput.START_IVR)
        call.language = flow.language
        call.run = FlowRun(
            flow,
            variables={"caller": call.caller, "called": call.number},
            flows=self.flows.get,
            call_id=call.key,
        )
        self._run_actions(call, call.run.start(self._wall(now)), now)

    def _run_actions(self, call: LiveCall, actions: Iterable[Action], now: float) -> None:
        """Perform a run's actions; answers that are known at once go back in straight away."""
        todo: deque[Action] = deque(actions)
        while todo:
            action = todo.popleft()
            run = call.run
            if run is None or call.phase is not CallPhase.IVR:
                log.debug("call %s: %s after the IVR ended", call.key, action)
                continue
            follow: list[Action] = []
            match action:
                case Play():
                    call.ivr_play = action.play_id
                    if not self._play(call, self._prompts.ivr(action), PlayKind.IVR):
                        call.ivr_play = None
                        call.playback = None
                        follow = run.handle(
                            PromptsFinished(play_id=action.play_id), self._wall(now)
                        )
                case StopPlayback():
                    if call.ivr_play == action.play_id and call.playback is not None:
                        self._control.stop_playback(call.key)
                        call.playback = None
                        call.ivr_play = None
                case SetLanguage():
                    call.language = action.language
                case Lookup():
                    follow = self._lookup(call, action, now)
                case CancelLookup():
                    pass  # the run ignores a late answer by its request id
                case RequestCallback():
                    self._ivr_callback(call, action, now)
                case RouteToQueue():
                    self._leave_ivr(call, action.language)
                    self._join(call, action.queue, action.priority, dict(action.skills), now)
                case RouteToExtension():
                    self._leave_ivr(call, call.language)
                    self._ring_extension(call, action.number, now)
                case Voicemail():
                    self._leave_ivr(call, action.language)
                    self._voicemail(call, action.box, now)
                case HangUp():
                    self._leave_ivr(call, call.language)
                    log.info("call %s: flow hangs up (%s)", call.key, action.reason)
                    call.move(CallInput.CLOSE)
                    self._hangup(call)
            todo.extend(follow)

    def _leave_ivr(self, call: LiveCall, language: str) -> None:
        call.language = language
        if call.run is not None:
            call.variables = call.run.variables
        call.run = None
        call.ivr_play = None

    def _lookup(self, call: LiveCall, action: Lookup, now: float) -> list[Action]:
        hook = self._deps.lookup
        run = call.run
        if hook is None and run is not None:
            answer = LookupResult(request_id=action.request_id, error="no lookup hook")
            return run.handle(answer, self._wall(now))
        if hook is not None:
            try:
                hook(self.tenant, call.key, action)
            except Exception as exc:  # a plugin must never drop a call
                log.exception("lookup %s failed to start", action.hook)
                if run is not None:
                    answer = LookupResult(request_id=action.request_id, error=str(exc))
                    return run.handle(answer, self._wall(now))
        return []

    def _ivr_callback(self, call: LiveCall, action: RequestCallback, now: float) -> None:
        queue = action.queue or self._default_queue(call)
        if queue is None:
            log.warning("call %s: callback requested but the tenant has no queue", call.key)
            return
        self._new_callback(queue, action.number, now, name=call.caller_name, hold_for=call.key)

    def _default_queue(self, call: LiveCall) -> str | None:
        """The tenant's default queue: the number's own queue, else the first configured."""
        if call.target.kind is TargetKind.QUEUE:
            return call.target.name
        return next(iter(self.setup.queues), None)

    def _ring_extension(self, call: LiveCall, number: str, now: float) -> None:
        call.move(CallInput.RING_EXTENSION)
        self._lead_in(call, ["transferring"])
        timeout = self._opts.extension_ring_timeout
        attempt = self._control.ring(call.key, number, timeout=timeout)
        call.attempts[attempt] = number
        call.window_until = now + timeout + self._opts.ring_grace

    # -- time ---------------------------------------------------------------------------------

    def get_timer(self, now: float) -> float | None:
        """When :meth:`handle_timer` next wants to run (engine time), or None."""
        offset = self._wall(now) - now
        times: list[float | None] = [self.board.get_timer(), self._callback_timer(now)]
        for call in self.calls.values():
            if call.phase is CallPhase.IVR and call.run is not None:
                due = call.run.get_timer()
                times.append(None if due is None else due - offset)
            times += [call.next_announce, call.window_until, call.close_by]
        for runtime in self.queues.values():
            times.append(self._queue_deadline(runtime, now))
            times += [offer.deadline for offer in runtime.offers.values() if offer.attempts]
        return min((t for t in times if t is not None), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire everything due by ``now``; early calls do what is due and nothing else."""
        self._agents(self.board.tick(now), now)
        wall = self._wall(now)
        for call in list(self.calls.values()):
            if call.phase is CallPhase.IVR and call.run is not None:
                due = call.run.get_timer()
                if due is not None and due <= wall:
                    self._run_actions(call, call.run.handle_timer(wall), now)
            elif call.phase is CallPhase.QUEUED:
                if call.next_announce is not None and call.next_announce <= now:
                    self._announce(call, now)
            elif call.window_until is not None and call.window_until <= now:
                call.window_until = None
                if call.phase is CallPhase.CALLBACK_OFFER:
                    self._close(call, ["goodbye"], now)
                elif call.phase is CallPhase.RINGING_EXTENSION:
                    extension = next(iter(call.attempts.values()), call.target.name)
                    self._extension_failed(call, extension, now)
            if (
                call.phase is CallPhase.CLOSING
                and call.close_by is not None
                and call.close_by <= now
            ):
                self._hangup(call)
        for runtime in list(self.queues.values()):
            self._offer_timeouts(runtime, now)
            self._max_wait(runtime, now)
        self._callback_timeouts(now)
        self._settle(now)

    def _settle(self, now: float) -> None:
        """After any change: leave-when-empty, then every offer the ACD allows."""
        for runtime in list(self.queues.values()):
            self._leave_empty(runtime, now)
            if runtime.retired and not runtime.waiting:
                del self.queues[runtime.name]
        self._dispatch(now)

    # -- checks -------------------------------------------------------------------------------

    def owns(self, key: str) -> bool:
        """Whether ``key`` is one of this tenant's live or originated calls."""
        return key in self.calls or key in self._origins

    def silent_calls(self) -> list[str]:
        """Keys of live calls on which the caller hears nothing and nothing is pending.

        Always empty when the engine works as designed; tests assert it after every step.
        """
        return [key for key, call in self.calls.items() if call.silent()]
