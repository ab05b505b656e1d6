"""The call-center engine on the event loop: the switch's :class:`CallObserver`.

:class:`CallCenter` holds one :class:`~minicc.queue.engine_tenant.TenantEngine` per tenant
(built, and later updated without dropping live calls, from a
:class:`~minicc.queue.setup.CallCenterSetup`), hands each switch report to the tenant that
owns the call with the loop's time, and keeps a single ``loop.call_at`` armed at the earliest
timer of all tenants (the aioquic pattern): IVR timeouts, announcements, overflow and
widening deadlines, wrap-ups, callback retries and the safety nets behind ring timeouts.

Everything here runs on the switch's loop and never blocks: persistence and plugins are
injected callables that must hand work off (the store's writer thread, a task).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from minicc.bus import EventBus
from minicc.events import Event, Registered
from minicc.queue.agents import AgentState
from minicc.queue.engine_calls import CallbackJob, LiveCall
from minicc.queue.engine_core import (
    VIP_PRIORITY,
    CallbackOutcome,
    EngineDeps,
    EngineOptions,
    LookupHook,
    PersistAgent,
    PersistCallback,
)
from minicc.queue.engine_tenant import TenantEngine
from minicc.queue.ivr import LookupResult
from minicc.queue.monitors import MonitorDesk
from minicc.queue.prompts import ClipCache, PromptCatalogue
from minicc.queue.setup import CallCenterSetup
from minicc.queue.stats import StatsSnapshot
from minicc.switch.control import (
    CallControl,
    HoldBy,
    IncomingCall,
    MonitorEnd,
    MonitorMode,
    OriginateLeg,
    PlaybackOutcome,
    RecordResult,
    RingResult,
    Route,
    RouteKind,
    TransferReport,
)

__all__ = [
    "VIP_PRIORITY",
    "CallCenter",
    "CallbackOutcome",
    "EngineOptions",
    "LookupHook",
    "PersistAgent",
    "PersistCallback",
    "TenantEngine",
]

log = logging.getLogger(__name__)


class CallCenter:
    """Every tenant's queue engine behind one :class:`~minicc.switch.control.CallObserver`.

    Args:
        control: the switch.
        bus: where queue and agent events go (None: nowhere).
        persist_callback: stores pending callbacks (see :data:`PersistCallback`).
        persist_agent: stores agents' available / paused / logged-out state.
        catalogue_for: a tenant's prompt catalogue (its uploads over the shipped prompts);
            default: shipped prompts only, one shared clip cache.
        lookup: starts a plugin lookup for an IVR lookup node; answers come back through
            :meth:`lookup_done`. None: every lookup takes its node's fallback.
        is_extension: ``is_extension(tenant, number)`` for numbers not in a tenant's
            number plan; None lets the switch decide (it refuses unknown extensions).
        is_supervisor: ``is_supervisor(tenant, extension)``: who may monitor
            (:mod:`minicc.queue.monitors`); None: nobody.
        options: engine knobs.
        rng: randomness for the wait estimates.
        loop: the event loop; default: the running loop at first use.
    """

    def __init__(
        self,
        control: CallControl,
        *,
        bus: EventBus | None = None,
        persist_callback: PersistCallback | None = None,
        persist_agent: PersistAgent | None = None,
        catalogue_for: Callable[[str], PromptCatalogue] | None = None,
        lookup: LookupHook | None = None,
        is_extension: Callable[[str, str], bool] | None = None,
        is_supervisor: Callable[[str, str], bool] | None = None,
        options: EngineOptions | None = None,
        rng: random.Random | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._control = control
        self._bus = bus
        self._persist_callback = persist_callback
        self._persist_agent = persist_agent
        cache = ClipCache()
        self._catalogue_for = catalogue_for or (lambda tenant: PromptCatalogue(cache=cache))
        self._lookup = lookup
        self._is_extension = is_extension
        self._options = options or EngineOptions()
        self._rng = rng or random.Random()
        self._loop = loop
        self._engines: dict[str, TenantEngine] = {}
        self._owners: dict[str, str] = {}
        """Call key -> tenant, for the calls seen so far."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._watch: asyncio.Task[None] | None = None
        self.desk = MonitorDesk(
            control,
            is_supervisor=is_supervisor,
            is_extension=is_extension,
            publish=self._publish,
            wall=time.time,
        )
        """Supervisor monitors (feature codes, the registry) and conferences."""

    # -- clocks and the timer -----------------------------------------------------------------

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _now(self) -> float:
        return self._get_loop().time()

    def _wall(self, now: float) -> float:
        return now + (time.time() - self._get_loop().time())

    def _rearm(self) -> None:
        now = self._now()
        times = [t for e in self._engines.values() if (t := e.get_timer(now)) is not None]
        when = min(times, default=None)
        if when == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = self._get_loop().call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self._now()
        for engine in list(self._engines.values()):
            try:
                engine.handle_timer(now)
            except Exception:
                log.exception("tenant %s: timer handling failed", engine.tenant)
        self._rearm()

    # -- tenants ------------------------------------------------------------------------------

    def load(self, setup: CallCenterSetup) -> TenantEngine:
        """Build a tenant's engine, or update it in place (live calls go on)."""
        now = self._now()
        engine = self._engines.get(setup.tenant)
        if engine is None:
            tenant = setup.tenant

            def is_extension(number: str) -> bool:
                check = self._is_extension
                return True if check is None else check(tenant, number)

            deps = EngineDeps(
                control=self._control,
                catalogue=self._catalogue_for(tenant),
                wall=self._wall,
                publish=self._publish,
                persist_callback=self._persist_callback,
                persist_agent=self._persist_agent,
                lookup=self._lookup,
                is_extension=is_extension,
                rng=self._rng,
                options=self._options,
            )
            engine = self._engines[tenant] = TenantEngine(setup, deps, now)
        else:
            engine.update(setup, now)
        self._rearm()
        return engine

    def remove(self, tenant: str) -> None:
        """Forget a tenant (its calls are the switch's to end)."""
        self._engines.pop(tenant, None)
        self._rearm()

    def engine(self, tenant: str) -> TenantEngine:
        """A tenant's engine. Raises KeyError for a tenant never loaded."""
        return self._engines[tenant]

    def set_agent_state(
        self, tenant: str, extension: str, state: AgentState, *, reason: str | None = None
    ) -> None:
        """Available, paused (with a reason) or logged out; see
        :meth:`TenantEngine.set_agent_state` for the errors."""
        self._engines[tenant].set_agent_state(extension, state, self._now(), reason=reason)
        self._rearm()

    def set_devices(self, tenant: str, extension: str, count: int) -> None:
        engine = self._engines.get(tenant)
        if engine is not None:
            engine.set_devices(extension, count, self._now())
            self._rearm()

    def request_callback(
        self, tenant: str, queue: str, number: str, *, name: str | None = None
    ) -> str | None:
        """A web callback request; returns the queue entry's id, None if refused."""
        call_id = self._engines[tenant].request_callback(queue, number, self._now(), name=name)
        self._rearm()
        return call_id

    # -- recording and wrap-up (the API of issue 4 calls these; see engine_features) ----------

    def record_call(self, tenant: str, key: str, on: bool) -> None:
        """Start or stop recording a call an agent is on, as its queue's policy allows.

        Raises:
            KeyError: no such tenant.
            FeatureError: no such call, the policy forbids it, or the switch could not.
        """
        self._engines[tenant].record_call(key, on, self._now())

    def pause_recording(self, tenant: str, key: str) -> None:
        """Leave the call out of its recording (silence) until :meth:`resume_recording`.

        Raises:
            KeyError: no such tenant.
            FeatureError: no such call, or nothing to pause.
        """
        self._engines[tenant].pause_recording(key, self._now())

    def resume_recording(self, tenant: str, key: str) -> None:
        """Record the call again after :meth:`pause_recording`.

        Raises:
            KeyError: no such tenant.
            FeatureError: no such call, or the recording is not paused.
        """
        self._engines[tenant].resume_recording(key, self._now())

    def set_disposition(
        self, tenant: str, extension: str, key: str, code: str, note: str | None = None
    ) -> None:
        """An agent's wrap-up code (and note) for a call, during it or its wrap-up.

        Raises:
            KeyError: no such tenant.
            FeatureError: an unknown code (listing the valid ones), a note too long, or the
                agent is neither on that call nor wrapping it up.
        """
        self._engines[tenant].set_disposition(extension, key, code, note, self._now())
        self._rearm()  # the wrap-up may have ended

    def stats_snapshot(self, tenant: str) -> StatsSnapshot:
        return self._engines[tenant].stats_snapshot(self._now())

    def live_call(self, tenant: str, key: str) -> LiveCall | None:
        """A call of ``tenant`` the engine handles now (for the agent's screen pop), or None.

        The object is the engine's own: read it, never change it.
        """
        engine = self._engines.get(tenant)
        return engine.calls.get(key) if engine is not None else None

    def callbacks(self, tenant: str) -> list[CallbackJob]:
        """The tenant's callbacks waiting or being made, oldest place first (read only)."""
        engine = self._engines.get(tenant)
        if engine is None:
            return []
        return sorted(engine.callbacks.values(), key=lambda job: job.joined_wall)

    def waited(self, tenant: str, key: str) -> float | None:
        """Seconds the call has waited in its queue so far (None: not queued or unknown)."""
        engine = self._engines.get(tenant)
        call = engine.calls.get(key) if engine is not None else None
        if engine is None or call is None or call.queue is None:
            return None
        runtime = engine.queues.get(call.queue)
        entry = runtime.waiting.get(key) if runtime is not None else None
        return None if entry is None else max(0.0, self._now() - entry.joined_at)

    def lookup_done(self, tenant: str, key: str, result: LookupResult) -> None:
        engine = self._engines.get(tenant)
        if engine is not None:
            engine.lookup_done(key, result, self._now())
            self._rearm()

    def watch_registrations(self, bus: EventBus) -> asyncio.Task[None]:
        """Follow REGISTERs on the bus: an agent marked as having no device (an attempt
        came back UNAVAILABLE) is offered calls again once a phone registers."""

        async def follow() -> None:
            subscription = bus.subscribe("queue-engine-registrations", maxsize=1000)
            try:
                async for event in subscription:
                    if isinstance(event, Registered):
                        engine = self._engines.get(event.tenant)
                        if (
                            engine is not None
                            and event.extension in engine.board
                            and engine.board[event.extension].devices == 0
                        ):
                            self.set_devices(event.tenant, event.extension, 1)
            finally:
                subscription.close()

        self._watch = self._get_loop().create_task(follow())
        return self._watch

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _publish(self, event: Event) -> None:
        if self._bus is not None:
            self._bus.publish(event)

    # -- CallObserver -------------------------------------------------------------------------

    def _owner(self, key: str) -> TenantEngine | None:
        tenant = self._owners.get(key)
        engine = self._engines.get(tenant) if tenant is not None else None
        if engine is not None and engine.owns(key):
            return engine
        for engine in self._engines.values():  # originated calls are learnt on first sight
            if engine.owns(key):
                self._owners[key] = engine.tenant
                return engine
        self._owners.pop(key, None)
        return None

    def _failed(self, key: str) -> None:
        """An engine bug on a call: end the call rather than leave the caller in silence."""
        log.exception("call %s: engine failure; hanging up", key)
        try:
            self._control.hangup(key)
        except Exception:
            log.exception("call %s: hang-up failed too", key)

    def route(self, call: IncomingCall) -> Route:
        try:
            feature = self.desk.route(call)
        except Exception:
            log.exception("call %s: feature code routing failed", call.key)
            return Route(kind=RouteKind.REJECT, status=500)
        if feature is not None:
            return feature
        engine = self._engines.get(call.tenant)
        if engine is None:  # no call center for this tenant: a plain PBX call
            return Route(kind=RouteKind.EXTENSION, extension=call.number)
        try:
            route = engine.route(call)
        except Exception:
            log.exception("call %s: routing failed", call.key)
            return Route(kind=RouteKind.REJECT, status=500)
        if route.kind is RouteKind.APPLICATION:
            self._owners[call.key] = call.tenant
        return route

    def call_answered(self, key: str) -> None:
        if self.desk.call_answered(key):
            return
        engine = self._owner(key)
        if engine is not None:
            try:
                engine.call_answered(key, self._now())
            except Exception:
                self._failed(key)
            self._rearm()

    def dtmf(self, key: str, digit: str) -> None:
        engine = self._owner(key)
        if engine is not None:
            try:
                engine.dtmf(key, digit, self._now())
            except Exception:
                self._failed(key)
            self._rearm()

    def playback_done(self, key: str, playback: int, outcome: PlaybackOutcome) -> None:
        engine = self._owner(key)
        if engine is not None:
            try:
                engine.playback_done(key, playback, outcome, self._now())
            except Exception:
                self._failed(key)
            self._rearm()

    def ring_result(self, key: str, attempt: int, result: RingResult) -> None:
        engine = self._owner(key)
        if engine is not None:
            try:
                engine.ring_result(key, attempt, result, self._now())
            except Exception:
                self._failed(key)
            self._rearm()

    def call_ended(self, key: str, by_caller: bool) -> None:
        if self.desk.call_ended(key):
            return
        engine = self._owner(key)
        if engine is not None:
            try:
                engine.call_ended(key, by_caller, self._now())
            except Exception:
                log.exception("call %s: end handling failed", key)
            self._owners.pop(key, None)
            self._rearm()

    def transfer_route(self, key: str, number: str) -> Route:
        engine = self._owner(key)
        if engine is None:
            return Route(kind=RouteKind.REJECT, status=481)
        try:
            return engine.transfer_route(key, number)
        except Exception:
            log.exception("call %s: transfer routing failed", key)
            return Route(kind=RouteKind.REJECT, status=500)

    def call_transferred(self, key: str, report: TransferReport) -> None:
        engine = self._owner(key)
        if engine is not None:
            try:
                engine.call_transferred(key, report, self._now())
            except Exception:
                self._failed(key)
            self._rearm()

    def agent_dtmf(self, key: str, digit: str) -> None:
        engine = self._owner(key)
        if engine is not None:
            try:
                engine.agent_dtmf(key, digit, self._now())
            except Exception:
                log.exception("call %s: agent digit handling failed", key)

    def record_done(self, key: str, record: int, result: RecordResult) -> None:
        # Also after call_ended (the caller hung up while speaking): by tenant, not owner.
        tenant = self._owners.get(key)
        engines = [self._engines[tenant]] if tenant in self._engines else self._engines.values()
        for engine in list(engines):
            try:
                engine.record_done(key, record, result, self._now())
            except Exception:
                log.exception("call %s: message handling failed", key)
        self._rearm()

    def call_held(self, key: str, by: HoldBy) -> None:
        engine = self._owner(key)
        if engine is not None:
            try:
                engine.call_held(key, by, self._now())
            except Exception:
                self._failed(key)
            self._rearm()

    def call_resumed(self, key: str) -> None:
        engine = self._owner(key)
        if engine is not None:
            try:
                engine.call_resumed(key, self._now())
            except Exception:
                self._failed(key)
            self._rearm()

    def originate_result(self, key: str, leg: OriginateLeg, result: RingResult) -> None:
        engine = self._owner(key)
        if engine is not None:
            try:
                engine.originate_result(key, leg, result, self._now())
            except Exception:
                self._failed(key)
            self._rearm()

    # Monitors and conferences: the registry is the desk's (minicc.queue.monitors).

    def monitor_started(self, monitor: str, key: str, mode: MonitorMode) -> None:
        self.desk.monitor_started(monitor, key, mode)

    def monitor_mode_changed(self, monitor: str, mode: MonitorMode) -> None:
        self.desk.monitor_mode_changed(monitor, mode)

    def monitor_ended(self, monitor: str, reason: MonitorEnd) -> None:
        self.desk.monitor_ended(monitor, reason)

    def conference_result(self, key: str, attempt: int, result: RingResult) -> None:
        self.desk.conference_result(key, attempt, result)

    def conference_ended(self, key: str, attempt: int) -> None:
        self.desk.conference_ended(key, attempt)
