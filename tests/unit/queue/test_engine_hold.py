"""The engine's part of hold (minicc.queue.engine_hold): music, agent state, statistics,
events, and the hold timeout's ring-backs. The switch is the scripted FakeSwitch."""

from __future__ import annotations

import pytest

from minicc.events import CallHeld, CallResumed, HoldRingBack
from minicc.queue.engine_core import EngineOptions
from minicc.queue.models import QueueConfig
from minicc.switch.control import HoldBy, RingResult
from tests.unit.queue.engine_fakes import Rig, make_setup, members, queue


def _rig(*, hold_timeout: float | None = 30.0, ring_backs: int = 3) -> Rig:
    setup = make_setup(
        queues=[queue("sales", hold_timeout=hold_timeout, ring_timeout=15.0, wrap_up=10.0)],
        members={"sales": members("1001")},
        numbers={"8001": "queue:sales"},
    )
    return Rig(setup, options=EngineOptions(hold_ring_backs=ring_backs))


def _connected(rig: Rig) -> str:
    key = rig.call("8001")
    rig.answer(key, "1001")
    assert rig.state("1001") == "on call"
    return key


def test_hold_plays_music_keeps_the_agent_on_call_and_counts_the_hold() -> None:
    rig = _rig()
    key = _connected(rig)
    rig.advance(5)
    rig.held(key, HoldBy.API)
    assert rig.switch.now_playing(key) == ["moh"] and rig.switch.playing[key][2]  # looped
    assert rig.state("1001") == "on call" and rig.engine.board["1001"].on_hold
    [held] = rig.of(CallHeld)
    assert (held.call_id, held.queue, held.agent, held.by) == (key, "sales", "1001", "api")

    rig.advance(12)
    rig.resumed(key)
    assert not rig.engine.board["1001"].on_hold
    [resumed] = rig.of(CallResumed)
    assert resumed.held == pytest.approx(12)
    snap = rig.engine.stats_snapshot(rig.now)
    assert (snap.queues["sales"].holds, snap.queues["sales"].hold_total) == (1, pytest.approx(12))
    agent = snap.agents["1001"]
    assert (agent.holds, agent.hold_total) == (1, pytest.approx(12))
    assert rig.switch.of("ring_back") == []

    # Hold time is talk time: the handle time covers it.
    rig.advance(3)
    rig.hang_up(key)
    rig.advance(10)
    sales = rig.engine.stats_snapshot(rig.now).queues["sales"]
    assert sales.handled == 1 and sales.talk_total == pytest.approx(20)


def test_hold_timeout_rings_the_agent_back_and_the_answer_resumes() -> None:
    rig = _rig(hold_timeout=30.0)
    key = _connected(rig)
    rig.held(key)
    rig.advance(29.9)
    assert rig.switch.of("ring_back") == []
    rig.advance(0.2)
    [ring] = rig.switch.of("ring_back", key)
    assert ring.args == ("1001", 15.0)
    assert rig.switch.now_playing(key) == ["moh"]  # the caller keeps the music
    assert [(e.attempt, e.result) for e in rig.of(HoldRingBack)] == [(1, None)]

    rig.ring_back_result(key, RingResult.ANSWERED)
    rig.resumed(key)  # the switch reports the resume after the ANSWERED
    assert rig.state("1001") == "on call" and not rig.engine.board["1001"].on_hold
    assert [(e.attempt, e.result) for e in rig.of(HoldRingBack)] == [(1, None), (1, "answered")]
    rig.advance(300)
    assert len(rig.switch.of("ring_back")) == 1  # no more ring-backs once resumed
    rig.hang_up(key, by_caller=False)
    rig.advance(10)
    assert rig.state("1001") == "available"


def test_unanswered_ring_backs_are_bounded_and_the_caller_stays_held() -> None:
    rig = _rig(hold_timeout=30.0, ring_backs=3)
    key = _connected(rig)
    rig.held(key)
    for n in range(1, 4):
        rig.advance(30.0)
        assert len(rig.switch.of("ring_back", key)) == n
        rig.advance(15.0)
        rig.ring_back_result(key, RingResult.NO_ANSWER)
    rig.advance(600)
    assert len(rig.switch.of("ring_back", key)) == 3
    assert rig.switch.now_playing(key) == ["moh"]
    assert rig.state("1001") == "on call"
    # The agent comes back late: resume works, and the caller's hang-up frees them as ever.
    rig.resumed(key)
    rig.hang_up(key)
    assert rig.state("1001") == "wrap-up"
    rig.advance(10)
    assert rig.state("1001") == "available"


def test_resume_while_ringing_back_ignores_the_cancel_and_a_new_hold_rearms() -> None:
    rig = _rig(hold_timeout=20.0)
    key = _connected(rig)
    rig.held(key)
    rig.advance(20.0)
    assert len(rig.switch.of("ring_back", key)) == 1
    rig.resumed(key)
    rig.ring_back_result(key, RingResult.CANCELLED)  # the switch withdrew it
    rig.advance(100)
    assert len(rig.switch.of("ring_back", key)) == 1
    rig.held(key)  # a new hold starts its own timer and its own count
    rig.advance(20.0)
    assert len(rig.switch.of("ring_back", key)) == 2
    assert rig.of(HoldRingBack)[-1].attempt == 1


def test_no_hold_timeout_never_rings_back() -> None:
    rig = _rig(hold_timeout=0)
    key = _connected(rig)
    rig.held(key)
    rig.advance(3600)
    assert rig.switch.of("ring_back") == []
    assert rig.engine.get_timer(rig.now) is None


def test_caller_hangs_up_while_held_and_rung_back() -> None:
    rig = _rig(hold_timeout=10.0)
    key = _connected(rig)
    rig.held(key)
    rig.advance(10.0)
    attempt = rig.switch.of("ring_back", key)[0].id
    rig.advance(2.0)
    rig.switch.ring_backs.clear()
    rig.hang_up(key)
    assert isinstance(attempt, int)
    rig.engine.ring_result(key, attempt, RingResult.CANCELLED, rig.now)  # after the end
    assert rig.state("1001") == "wrap-up"
    snap = rig.engine.stats_snapshot(rig.now).queues["sales"]
    assert (snap.holds, snap.hold_total) == (1, pytest.approx(12))
    assert rig.of(CallResumed) == []  # the hold ended with the call, it was not resumed
    assert rig.engine.holds == {}
    rig.advance(10)
    assert rig.state("1001") == "available"


def test_hold_of_a_call_not_connected_is_ignored() -> None:
    rig = _rig()
    key = rig.call("8001")  # still ringing the agent
    rig.held(key)
    assert rig.engine.holds == {} and rig.of(CallHeld) == []
    rig.answer(key, "1001")
    rig.resumed(key)  # a resume without a hold changes nothing
    assert rig.of(CallResumed) == []


def test_hold_timeout_is_validated() -> None:
    with pytest.raises(ValueError, match="hold_timeout"):
        QueueConfig(name="q", hold_timeout=-1)
    assert QueueConfig(name="q").hold_timeout == 120.0
