"""Test doubles for the queue engine tests: a scripted switch and a rig with a fake clock.

:class:`FakeSwitch` stands in for the switch's :class:`~minicc.switch.control.CallControl`
(the real one is built in parallel): it hands out ids and records every request; the tests
play the switch's part by calling the engine's observer methods themselves. :class:`Rig`
drives one :class:`~minicc.queue.engine_tenant.TenantEngine` with a number for a clock and
checks after every step that no caller is left in silence and that timers make progress.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from minicc.events import Event
from minicc.queue.engine_core import CallbackOutcome, EngineDeps, EngineOptions
from minicc.queue.engine_tenant import TenantEngine
from minicc.queue.models import Member, QueueConfig
from minicc.queue.prompts import PromptCatalogue
from minicc.queue.setup import (
    AgentSetting,
    CallCenterSetup,
    FlowSource,
    PendingCallback,
    Target,
)
from minicc.switch.control import (
    HoldBy,
    IncomingCall,
    OriginateLeg,
    PlaybackOutcome,
    RecordOutcome,
    RecordResult,
    RingResult,
    Route,
)

# Monday 2026-03-02, 10:00 in Berlin: the demo flow's office is open.
MONDAY_10 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()

CATALOGUE = PromptCatalogue()


@dataclass
class Request:
    """One CallControl request the engine made."""

    method: str
    key: str
    args: tuple[Any, ...]
    id: int | str | None = None


@dataclass
class FakeSwitch:
    """Records requests; ids come from one counter, like the real switch's."""

    requests: list[Request] = field(default_factory=list)
    playing: dict[str, tuple[int, list[str], bool]] = field(default_factory=dict)
    rings: dict[tuple[str, int], str] = field(default_factory=dict)
    """Attempts not yet resolved by the test: (key, attempt) -> extension."""
    origins: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Originate key -> (agent, number)."""
    recording: dict[str, bool] = field(default_factory=dict)
    """Calls being recorded -> paused."""
    stopped: set[str] = field(default_factory=set)
    """Calls whose recording was stopped."""
    ring_backs: dict[tuple[str, int], str] = field(default_factory=dict)
    """Ring-backs not yet resolved by the test: (key, attempt) -> extension."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def play(self, key: str, files: Sequence[Path], *, loop: bool = False) -> int:
        pid = next(self._ids)
        names = [Path(f).stem for f in files]
        self.playing[key] = (pid, names, loop)
        self.requests.append(Request("play", key, (names, loop), pid))
        return pid

    def stop_playback(self, key: str) -> None:
        self.playing.pop(key, None)
        self.requests.append(Request("stop_playback", key, ()))

    def ring(self, key: str, extension: str, *, timeout: float) -> int:
        attempt = next(self._ids)
        self.rings[(key, attempt)] = extension
        self.requests.append(Request("ring", key, (extension, timeout), attempt))
        return attempt

    def cancel_ring(self, key: str, attempt: int) -> None:
        self.rings.pop((key, attempt), None)
        self.requests.append(Request("cancel_ring", key, (attempt,)))

    def hangup(self, key: str, *, status: int = 200) -> None:
        self.playing.pop(key, None)
        self.requests.append(Request("hangup", key, (status,)))

    def transfer(self, key: str, target: str) -> None:
        self.requests.append(Request("transfer", key, (target,)))

    def hold(self, key: str) -> bool:
        self.requests.append(Request("hold", key, ()))
        return True

    def resume(self, key: str) -> bool:
        self.requests.append(Request("resume", key, ()))
        return True

    def ring_back(self, key: str, extension: str, *, timeout: float) -> int:
        attempt = next(self._ids)
        self.ring_backs[(key, attempt)] = extension
        self.requests.append(Request("ring_back", key, (extension, timeout), attempt))
        return attempt

    def originate(
        self,
        tenant: str,
        agent: str,
        number: str,
        *,
        timeout: float,
        dial_timeout: float,
        caller_id: str | None = None,
    ) -> str:
        key = f"orig-{next(self._ids)}"
        self.origins[key] = (agent, number)
        self.requests.append(Request("originate", key, (agent, number, timeout), key))
        return key

    def record_call(self, key: str, on: bool) -> bool:
        self.requests.append(Request("record_call", key, (on,)))
        if on and key in self.stopped:
            return False
        if on:
            self.recording.setdefault(key, False)
        elif key in self.recording:
            del self.recording[key]
            self.stopped.add(key)
        return True

    def pause_recording(self, key: str) -> bool:
        self.requests.append(Request("pause_recording", key, ()))
        if self.recording.get(key) is not False:
            return False
        self.recording[key] = True
        return True

    def resume_recording(self, key: str) -> bool:
        self.requests.append(Request("resume_recording", key, ()))
        if not self.recording.get(key):
            return False
        self.recording[key] = False
        return True

    def record(
        self,
        key: str,
        box: str,
        *,
        max_seconds: float,
        stop_digits: str = "#",
        silence_timeout: float | None = None,
    ) -> int:
        rid = next(self._ids)
        self.playing.pop(key, None)
        self.requests.append(Request("record", key, (box, max_seconds, stop_digits), rid))
        return rid

    # -- for the tests ------------------------------------------------------------------------

    def of(self, method: str, key: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.method == method and key in (None, r.key)]

    def rung(self, key: str | None = None) -> list[str]:
        """Extensions rung (for ``key``), in order."""
        return [r.args[0] for r in self.of("ring", key)]

    def attempt(self, key: str, extension: str) -> int:
        """The open attempt ringing ``extension`` for ``key``."""
        for (k, attempt), ext in self.rings.items():
            if k == key and ext == extension:
                return attempt
        raise AssertionError(f"{extension} is not ringing for {key}; rings: {self.rings}")

    def now_playing(self, key: str) -> list[str]:
        return self.playing[key][1] if key in self.playing else []

    def hung_up(self, key: str) -> bool:
        return bool(self.of("hangup", key))


@dataclass
class Store:
    """The persistence callables, recording what they were given."""

    callbacks: list[tuple[PendingCallback, CallbackOutcome | None]] = field(default_factory=list)
    agents: list[AgentSetting] = field(default_factory=list)

    def persist_callback(
        self, tenant: str, callback: PendingCallback, outcome: CallbackOutcome | None
    ) -> None:
        assert tenant == "acme"
        self.callbacks.append((callback, outcome))

    def persist_agent(self, tenant: str, setting: AgentSetting) -> None:
        assert tenant == "acme"
        self.agents.append(setting)


def queue(name: str, **kwargs: Any) -> QueueConfig:
    kwargs.setdefault("announce_interval", None)
    kwargs.setdefault("wrap_up", 10.0)
    return QueueConfig(name=name, **kwargs)


def members(*ids: str, **skills: Mapping[str, int]) -> tuple[Member, ...]:
    return tuple(Member(agent_id=i, skills=skills.get(f"a{i}", {})) for i in ids)


def make_setup(
    *,
    queues: Sequence[QueueConfig] = (),
    members: Mapping[str, tuple[Member, ...]] | None = None,
    numbers: Mapping[str, str] | None = None,
    flows: Mapping[str, str] | None = None,
    agents: Mapping[str, AgentSetting] | None = None,
    vip: frozenset[str] = frozenset(),
    callbacks: tuple[PendingCallback, ...] = (),
) -> CallCenterSetup:
    return CallCenterSetup(
        tenant="acme",
        timezone="Europe/Berlin",
        numbers={n: Target.parse(t) for n, t in (numbers or {}).items()},
        queues={q.name: q for q in queues},
        members=dict(members or {}),
        flows={
            name: FlowSource(name=name, text=text, origin=f"{name}.toml")
            for name, text in (flows or {}).items()
        },
        agents=dict(agents or {}),
        vip_numbers=vip,
        callbacks=callbacks,
    )


class Rig:
    """One tenant engine, a fake switch, a fake clock, and the checks after every step."""

    def __init__(
        self,
        setup: CallCenterSetup,
        *,
        options: EngineOptions | None = None,
        lookup: Any = None,
        is_extension: Any = None,
        start: float = 1000.0,
    ) -> None:
        self.now = start
        self.switch = FakeSwitch()
        self.store = Store()
        self.events: list[Event] = []
        self._keys = itertools.count(1)
        deps = EngineDeps(
            control=self.switch,
            catalogue=CATALOGUE,
            wall=lambda now: MONDAY_10 + (now - start),
            publish=self.events.append,
            persist_callback=self.store.persist_callback,
            persist_agent=self.store.persist_agent,
            lookup=lookup,
            is_extension=is_extension,
            rng=random.Random(7),
            options=options or EngineOptions(),
        )
        self.engine = TenantEngine(setup, deps, self.now)
        self.check()

    # -- the switch's side --------------------------------------------------------------------

    def route(self, number: str, caller: str = "5550100", key: str | None = None) -> Route:
        key = key or f"call-{next(self._keys)}"
        incoming = IncomingCall(
            key=key,
            tenant="acme",
            number=number,
            caller=caller,
            caller_name=None,
            call_id=f"sip-{key}",
        )
        self.last_key = key
        return self.engine.route(incoming)

    def call(self, number: str, caller: str = "5550100") -> str:
        """An inbound call routed to the engine and answered; returns its key."""
        route = self.route(number, caller)
        assert route.kind.value == "application", route
        self.engine.call_answered(self.last_key, self.now)
        self.check()
        return self.last_key

    def finish(self, key: str, outcome: PlaybackOutcome = PlaybackOutcome.FINISHED) -> None:
        """The playback now playing to ``key`` ends."""
        pid, _, _ = self.switch.playing.pop(key)
        self.engine.playback_done(key, pid, outcome, self.now)
        self.check()

    def finish_until(self, key: str, names: str) -> None:
        """Finish playbacks until one containing prompt ``names`` was finished."""
        for _ in range(20):
            playing = self.switch.now_playing(key)
            self.finish(key)
            if names in playing:
                return
        raise AssertionError(f"{names} never played to {key}")

    def press(self, key: str, digits: str) -> None:
        for digit in digits:
            self.engine.dtmf(key, digit, self.now)
            self.check()

    def ring(self, key: str, extension: str, result: RingResult) -> None:
        attempt = self.switch.attempt(key, extension)
        del self.switch.rings[(key, attempt)]
        self.engine.ring_result(key, attempt, result, self.now)
        self.check()

    def answer(self, key: str, agent: str) -> None:
        # The switch cuts what plays to the caller, and reports that first.
        if key in self.switch.playing:
            self.finish(key, PlaybackOutcome.CANCELLED)
        self.ring(key, agent, RingResult.ANSWERED)
        # ...then withdraws the other phones of a ring-all.
        for k, attempt in [r for r in self.switch.rings if r[0] == key]:
            del self.switch.rings[(k, attempt)]
            self.engine.ring_result(key, attempt, RingResult.CANCELLED, self.now)
        self.check()

    def record_done(
        self,
        key: str,
        *,
        path: str | None,
        outcome: RecordOutcome = RecordOutcome.STOP_DIGIT,
        duration: float = 4.0,
    ) -> None:
        """The switch's last ``record`` for ``key`` ended."""
        record = self.switch.of("record", key)[-1]
        assert isinstance(record.id, int)
        result = RecordResult(outcome=outcome, path=path, duration=duration if path else 0.0)
        self.engine.record_done(key, record.id, result, self.now)
        self.check()

    def held(self, key: str, by: HoldBy = HoldBy.PHONE) -> None:
        self.engine.call_held(key, by, self.now)
        self.check()

    def resumed(self, key: str) -> None:
        """The switch ends the hold: it cuts the music (reported first), then says so."""
        if key in self.switch.playing:
            self.finish(key, PlaybackOutcome.CANCELLED)
        self.engine.call_resumed(key, self.now)
        self.check()

    def ring_back_result(self, key: str, result: RingResult) -> None:
        [attempt] = [a for (k, a) in self.switch.ring_backs if k == key]
        del self.switch.ring_backs[(key, attempt)]
        self.engine.ring_result(key, attempt, result, self.now)
        self.check()

    def hang_up(self, key: str, *, by_caller: bool = True) -> None:
        self.switch.playing.pop(key, None)
        for ring in [r for r in self.switch.rings if r[0] == key]:
            del self.switch.rings[ring]
        self.engine.call_ended(key, by_caller, self.now)
        self.check()

    def originated(self, agent: str) -> str:
        """The open originate ringing ``agent``."""
        for key, (who, _) in self.switch.origins.items():
            if who == agent:
                return key
        raise AssertionError(f"no originate to {agent}: {self.switch.origins}")

    def origin_result(self, key: str, leg: OriginateLeg, result: RingResult) -> None:
        self.engine.originate_result(key, leg, result, self.now)
        self.check()

    def origin_ended(self, key: str, *, by_caller: bool = True) -> None:
        self.switch.origins.pop(key, None)
        self.engine.call_ended(key, by_caller, self.now)
        self.check()

    # -- time ---------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing every timer on the way at its own time."""
        target = self.now + seconds
        for _ in range(10_000):
            due = self.engine.get_timer(self.now)
            if due is None or due > target:
                break
            self.now = max(self.now, due)
            self.engine.handle_timer(self.now)
            self.check()
            after = self.engine.get_timer(self.now)
            assert after is None or after > self.now, f"timer did not move on from {self.now}"
        else:
            raise AssertionError("timers never settled")
        self.now = target

    # -- checks -------------------------------------------------------------------------------

    def check(self) -> None:
        """Nobody on the line hears silence with nothing pending."""
        assert self.engine.silent_calls() == [], self.engine.silent_calls()
        for key, call in self.engine.calls.items():
            # What the engine thinks plays is what the switch plays.
            if call.playback is not None and not call.hangup_sent:
                assert self.switch.playing.get(key, (None,))[0] == call.playback, key

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def state(self, agent: str) -> str:
        return self.engine.board[agent].state.value
