"""Statistics against the test's own call log, random call traffic (nobody left in silence,
no agent stuck), and the asyncio wrapper's single timer.

The switch is a scripted test double (the real CallControl is being built in parallel).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from minicc.bus import EventBus
from minicc.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnsweredByAgent,
    CallLeftQueue,
    CallQueued,
    Registered,
)
from minicc.queue.agents import AgentState
from minicc.queue.engine import CallCenter
from minicc.queue.engine_calls import CallPhase
from minicc.queue.models import OverflowTarget
from minicc.switch.control import IncomingCall, OriginateLeg, PlaybackOutcome, RingResult
from tests.unit.queue.engine_fakes import FakeSwitch, Rig, make_setup, members, queue
from tests.unit.queue.test_engine import DEMO_FLOW


def test_stats_equal_a_count_from_the_call_log() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales", wrap_up=10, service_level_threshold=20)],
            members={"sales": members("1001", "1002")},
            numbers={"8001": "queue:sales"},
        )
    )
    log: list[tuple[str, float]] = []  # (outcome, wait) as the test saw it
    talk_total = 0.0
    rig.engine.set_agent_state("1002", AgentState.PAUSED, rig.now, reason="x")

    a = rig.call("8001")
    rig.advance(5)
    rig.answer(a, "1001")
    log.append(("answered", 5))
    b = rig.call("8001")
    rig.advance(30)
    rig.hang_up(b)
    log.append(("abandoned", 30))
    c = rig.call("8001")
    rig.advance(30)  # a has talked 60 s
    rig.hang_up(a)
    talk_total += 60
    rig.advance(10)  # wrap-up ends: c is offered
    rig.answer(c, "1001")
    log.append(("answered", 40))
    d = rig.call("8001")
    rig.advance(3)
    rig.hang_up(d)
    log.append(("abandoned", 3))
    rig.advance(17)
    rig.hang_up(c, by_caller=False)
    talk_total += 20
    rig.advance(10)

    snap = rig.engine.stats_snapshot(rig.now).queues["sales"]
    answered = [w for what, w in log if what == "answered"]
    abandoned = [w for what, w in log if what == "abandoned"]
    assert snap.offered == len(log) == len(rig.of(CallQueued))
    assert snap.answered == len(answered) == len(rig.of(CallAnsweredByAgent))
    assert snap.abandoned == len(abandoned) == len(rig.of(CallAbandoned))
    assert snap.answer_wait_total == sum(answered)
    assert [e.waited for e in rig.of(CallAnsweredByAgent)] == answered
    assert [e.waited for e in rig.of(CallAbandoned)] == abandoned
    assert snap.answered_within == sum(1 for w in answered if w <= 20)
    assert snap.abandoned_within == sum(1 for w in abandoned if w <= 20)
    assert snap.asa == sum(answered) / len(answered)
    assert snap.handled == 2
    assert snap.talk_total == talk_total
    assert snap.wrap_up_total == 20
    assert snap.waiting == 0
    assert rig.engine.queues["sales"].handle_times.talks == (60, 20)
    agent = rig.engine.stats_snapshot(rig.now).agents["1001"]
    assert agent.calls_handled == 2
    assert agent.time_in[(AgentState.ON_CALL, None)] == talk_total


# -- random traffic -----------------------------------------------------------------------------


@dataclass
class Traffic:
    """A random mix of callers, keys, agents and a switch that reports back."""

    rig: Rig
    rng: random.Random
    ended: set[str] = field(default_factory=set)

    def step(self) -> None:
        rig, rng = self.rig, self.rng
        live = [k for k in rig.engine.calls if k not in self.ended]
        choice = rng.random()
        if choice < 0.12 or not live:
            rig.call(rng.choice(["8000", "8001", "8002"]), caller=rng.choice(["555", "777"]))
        elif choice < 0.27:
            offered = [k for k in live if rig.engine.calls[k].callback_offer_open]
            if offered and rng.random() < 0.5:
                rig.press(rng.choice(offered), "1")
            else:
                rig.press(rng.choice(live), rng.choice("0123456789*#"))
        elif choice < 0.45:
            key = rng.choice(live)
            if key in rig.switch.playing and not rig.switch.playing[key][2]:
                rig.finish(key)
        elif choice < 0.6 and rig.switch.rings:
            key, attempt = rng.choice(sorted(rig.switch.rings))
            extension = rig.switch.rings[(key, attempt)]
            if rng.random() < 0.5:
                rig.answer(key, extension)
            else:
                rig.ring(key, extension, rng.choice(list(RingResult)[1:5]))
        elif 0.6 <= choice < 0.73 and rig.switch.origins:
            self.originate_step()
        elif choice < 0.83:
            connected = [k for k in live if rig.engine.calls[k].phase is CallPhase.CONNECTED]
            key = rng.choice(connected) if connected and rng.random() < 0.7 else rng.choice(live)
            rig.hang_up(key, by_caller=rng.random() < 0.7)
        elif choice < 0.88:
            agent = rng.choice(["1001", "1002", "1003"])
            state = rng.choice([AgentState.AVAILABLE, AgentState.PAUSED, AgentState.LOGGED_OUT])
            if not (
                state is AgentState.LOGGED_OUT
                and rig.engine.board[agent].state is AgentState.ON_CALL
            ):
                rig.engine.set_agent_state(agent, state, rig.now, reason="r")
                rig.check()
        else:
            rig.advance(rng.choice([1, 5, 20]))
        self.switch_reports()

    def originate_step(self) -> None:
        rig, rng = self.rig, self.rng
        key = rng.choice(sorted(rig.switch.origins))
        job = rig.engine._origin_job(key)
        if job is None:
            rig.origin_ended(key)
            return
        result = rng.choice([RingResult.ANSWERED, RingResult.NO_ANSWER, RingResult.BUSY])
        leg = OriginateLeg.AGENT if job.state.value == "agent ringing" else OriginateLeg.CALLEE
        rig.origin_result(key, leg, result)
        if result is not RingResult.ANSWERED or rng.random() < 0.5:
            rig.origin_ended(key)

    def switch_reports(self) -> None:
        """The switch ends the calls the engine hung up."""
        for request in self.rig.switch.of("hangup"):
            key = request.key
            if key in self.rig.engine.calls and key not in self.ended:
                self.ended.add(key)
                self.rig.hang_up(key, by_caller=False)
            elif key in self.rig.switch.origins:
                self.rig.origin_ended(key, by_caller=False)

    def drain(self) -> None:
        """Everyone hangs up; the agents must all come back."""
        rig = self.rig
        for key in list(rig.engine.calls):
            rig.hang_up(key)
        for key in list(rig.switch.origins):
            rig.origin_ended(key)
        rig.advance(3600)


@pytest.mark.parametrize("seed", range(40))
def test_random_traffic_never_silent_never_stuck_and_counted(seed: int) -> None:
    sales = queue(
        "sales",
        announce_interval=5,
        callback_threshold=0,
        max_wait=120,
        overflow=OverflowTarget.parse("queue:support"),
        max_misses=2,
        wrap_up=2,
    )
    support = queue(
        "support",
        max_length=3,
        overflow=OverflowTarget.parse("callback-offer"),
        wrap_up=0,
        announce_interval=5,
    )
    rig = Rig(
        make_setup(
            queues=[sales, support],
            members={"sales": members("1001", "1002"), "support": members("1002", "1003")},
            numbers={"8000": "ivr:demo_main", "8001": "queue:sales", "8002": "queue:support"},
            flows={"demo_main": DEMO_FLOW},
            vip=frozenset({"777"}),
        )
    )
    for runtime in rig.engine.queues.values():
        for _ in range(3):  # a history, so that estimates (and callback offers) exist
            runtime.handle_times.record(60, 5)
    traffic = Traffic(rig, random.Random(seed))
    for _ in range(300):
        traffic.step()  # the rig checks silence and timer progress after every step
    traffic.drain()
    for agent_id in ("1001", "1002", "1003"):
        state = rig.engine.board[agent_id].state
        assert state in (AgentState.AVAILABLE, AgentState.PAUSED, AgentState.LOGGED_OUT)
    assert not rig.engine.calls
    snap = rig.engine.stats_snapshot(rig.now).queues
    left = [e for e in rig.of(CallLeftQueue) if e.reason not in ("full", "empty")]
    left_on_join = [e for e in rig.of(CallLeftQueue) if e.reason in ("full", "empty")]
    for name in ("sales", "support"):
        s = snap[name]
        assert s.offered == sum(1 for e in rig.of(CallQueued) if e.queue == name)
        assert s.answered == sum(1 for e in rig.of(CallAnsweredByAgent) if e.queue == name)
        assert s.abandoned == sum(1 for e in rig.of(CallAbandoned) if e.queue == name)
        queue_left = sum(1 for e in left if e.queue == name)
        # "empty" is also the leave-when-empty reason, but these queues never use it.
        assert sum(s.left.values()) == queue_left
        assert s.waiting == len(rig.engine.queues[name].waiting)
        assert s.offered - s.answered - s.abandoned - queue_left == s.waiting
    assert all(e.destination for e in left_on_join)
    assert rig.of(AgentStateChanged)


# -- the asyncio wrapper ------------------------------------------------------------------------


class FakeLoop:
    """Just enough of an event loop for CallCenter's clock and single timer."""

    def __init__(self) -> None:
        self.now = 500.0
        self.timers: list[tuple[float, Any]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any) -> Any:
        entry = (when, callback)
        self.timers.append(entry)
        loop = self

        class Handle:
            def cancel(self) -> None:
                if entry in loop.timers:
                    loop.timers.remove(entry)

        return Handle()

    def run_until(self, when: float) -> None:
        while self.timers and min(t for t, _ in self.timers) <= when:
            entry = min(self.timers, key=lambda t: t[0])
            self.timers.remove(entry)
            self.now = max(self.now, entry[0])
            entry[1]()
        self.now = when


def test_call_center_keeps_one_timer_at_the_earliest_deadline() -> None:
    loop = FakeLoop()
    switch = FakeSwitch()
    center = CallCenter(switch, loop=loop)  # type: ignore[arg-type]
    setup = make_setup(
        queues=[queue("sales", announce_interval=30)],
        members={"sales": members("1001")},
        numbers={"8001": "queue:sales"},
    )
    center.load(setup)
    center.set_agent_state("acme", "1001", AgentState.PAUSED, reason="x")
    assert loop.timers == []
    incoming = IncomingCall(
        key="k1", tenant="acme", number="8001", caller="555", caller_name=None, call_id="c1"
    )
    assert center.route(incoming).kind.value == "application"
    center.call_answered("k1")
    assert [t for t, _ in loop.timers] == [530.0]
    loop.run_until(530.0)
    assert switch.now_playing("k1") == ["you_are_caller_number", "1"]
    assert [t for t, _ in loop.timers] == [560.0]
    center.playback_done("k1", switch.playing["k1"][0], PlaybackOutcome.FINISHED)
    assert switch.now_playing("k1") == ["moh"]
    center.call_ended("k1", True)
    assert loop.timers == []
    assert center.stats_snapshot("acme").queues["sales"].abandoned == 1
    # A tenant without a call center is a plain PBX.
    other = IncomingCall(
        key="k2", tenant="other", number="1002", caller="1001", caller_name=None, call_id="c2"
    )
    assert center.route(other).extension == "1002"
    center.close()


def test_call_center_update_keeps_calls() -> None:
    loop = FakeLoop()
    switch = FakeSwitch()
    center = CallCenter(switch, loop=loop)  # type: ignore[arg-type]
    setup = make_setup(queues=[queue("sales")], numbers={"8001": "queue:sales"})
    center.load(setup)
    center.route(
        IncomingCall(
            key="k", tenant="acme", number="8001", caller="5", caller_name=None, call_id="c"
        )
    )
    center.call_answered("k")
    engine = center.load(
        make_setup(
            queues=[queue("sales")],
            members={"sales": members("1001")},
            numbers={"8001": "queue:sales"},
        )
    )
    assert engine.calls["k"].phase is CallPhase.QUEUED
    assert switch.rung("k") == ["1001"]


async def test_registration_brings_back_an_unreachable_agent() -> None:
    bus = EventBus()
    switch = FakeSwitch()
    center = CallCenter(switch, bus=bus)
    engine = center.load(
        make_setup(
            queues=[queue("sales")],
            members={"sales": members("1001")},
            numbers={"8001": "queue:sales"},
        )
    )
    task = center.watch_registrations(bus)
    await asyncio.sleep(0)  # let the watcher subscribe
    center.route(
        IncomingCall(
            key="k", tenant="acme", number="8001", caller="5", caller_name=None, call_id="c"
        )
    )
    center.call_answered("k")
    attempt = switch.attempt("k", "1001")
    center.ring_result("k", attempt, RingResult.UNAVAILABLE)
    assert engine.board["1001"].devices == 0
    bus.publish(Registered(tenant="acme", extension="1001", contact="sip:x", expires_at=0.0))
    for _ in range(5):
        await asyncio.sleep(0)
    assert engine.board["1001"].devices == 1
    assert switch.rung("k") == ["1001", "1001"]
    center.close()
    with pytest.raises(asyncio.CancelledError):
        await task
