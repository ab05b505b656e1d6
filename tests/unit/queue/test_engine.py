"""The queue engine with a scripted test double of the switch (the real CallControl is being
built in parallel) and a fake clock: routing, the IVR into queues, ACD strategies, misses,
overflow and announcements. Every step checks that no caller is left in silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from minicc.events import (
    AgentStateChanged,
    CallAnsweredByAgent,
    CallLeftQueue,
    CallOffered,
    CallQueued,
)
from minicc.queue.agents import MISSED_CALLS, AgentState, AgentStateError
from minicc.queue.engine_calls import CallPhase
from minicc.queue.engine_core import VIP_PRIORITY, EngineOptions
from minicc.queue.models import EmptyRule, OverflowTarget, Strategy
from minicc.queue.setup import AgentSetting
from minicc.switch.control import PlaybackOutcome, RingResult, RouteKind
from tests.unit.queue.engine_fakes import Rig, make_setup, members, queue

DEMO_FLOW = (
    Path(__file__).resolve().parents[3] / "minicc" / "queue" / "flows" / "demo_main.toml"
).read_text()

SKILLS_FLOW = """
[flow]
name = "lang"
start = "q"

[nodes.q]
type = "queue"
queue = "sales"
skills = { german = 5 }
"""


def demo(**overrides: object) -> Rig:
    sales = overrides.pop("sales", queue("sales"))
    support = overrides.pop("support", queue("support"))
    setup = make_setup(
        queues=[sales, support],  # type: ignore[list-item]
        members={"sales": members("1001", "1002"), "support": members("1003")},
        numbers={
            "8000": "ivr:demo_main",
            "8001": "queue:sales",
            "8002": "queue:support",
            "2000": "ext:1001",
        },
        flows={"demo_main": DEMO_FLOW},
        **overrides,  # type: ignore[arg-type]
    )
    return Rig(setup)


# -- routing ------------------------------------------------------------------------------------


def test_routes_by_number_plan() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales")],
            numbers={"8001": "queue:sales", "2000": "ext:1001", "8000": "ivr:nowhere"},
        ),
        is_extension=lambda number: number.startswith("1"),
    )
    assert rig.route("8001").kind is RouteKind.APPLICATION
    ext = rig.route("2000")
    assert (ext.kind, ext.extension) == (RouteKind.EXTENSION, "1001")
    plain = rig.route("1002")  # 1001 dialling 1002 still works
    assert (plain.kind, plain.extension) == (RouteKind.EXTENSION, "1002")
    unknown = rig.route("9999")
    assert (unknown.kind, unknown.status) == (RouteKind.REJECT, 404)
    broken = rig.route("8000")  # the flow never loaded: refused, not silence
    assert (broken.kind, broken.status) == (RouteKind.REJECT, 503)


# -- IVR into a queue ---------------------------------------------------------------------------


def test_press_1_sales_longest_idle_agent_rings_answered_bridged() -> None:
    rig = demo()
    # 1001 comes back from a break later: 1002 has been idle longest.
    rig.engine.set_agent_state("1001", AgentState.PAUSED, rig.now, reason="lunch")
    rig.advance(5)
    rig.engine.set_agent_state("1001", AgentState.AVAILABLE, rig.now)
    rig.advance(5)

    key = rig.call("8000")
    assert rig.switch.now_playing(key) == ["welcome"]
    rig.finish(key)
    assert rig.switch.now_playing(key) == ["press_1_for_sales", "press_2_for_support"]
    rig.press(key, "1")
    assert rig.switch.of("stop_playback", key)  # barge-in
    assert rig.switch.now_playing(key) == ["please_hold"]
    rig.finish(key)

    assert rig.engine.calls[key].phase is CallPhase.QUEUED
    assert rig.switch.now_playing(key) == ["moh"] and rig.switch.playing[key][2]  # looped
    assert rig.switch.rung(key) == ["1002"]
    assert rig.state("1002") == "reserved"
    rig.answer(key, "1002")

    assert rig.engine.calls[key].phase is CallPhase.CONNECTED
    assert rig.state("1002") == "on call"
    assert [e.queue for e in rig.of(CallQueued)] == ["sales"]
    assert [(e.agent, e.queue) for e in rig.of(CallOffered)] == [("1002", "sales")]
    answered = rig.of(CallAnsweredByAgent)
    assert [(e.agent, e.waited) for e in answered] == [("1002", 0.0)]
    assert rig.engine.stats_snapshot(rig.now).queues["sales"].answered == 1


def test_nothing_pressed_retries_then_default() -> None:
    rig = demo()
    key = rig.call("8000")
    rig.finish(key)  # welcome
    for _ in range(2):  # the first try and two retries: each ends in a timeout
        rig.finish(key)  # menu prompts end; the 5 s timeout runs
        rig.advance(5)
        assert rig.switch.now_playing(key)[0] == "no_input"
    rig.finish(key)
    rig.advance(5)  # retries used up: default is support
    assert rig.switch.now_playing(key) == ["please_hold"]
    rig.finish(key)
    assert rig.engine.calls[key].queue == "support"
    assert rig.switch.rung(key) == ["1003"]


def test_random_keys_end_somewhere_defined() -> None:
    rig = demo()
    key = rig.call("8000")
    rig.finish(key)
    for digits in ("9", "*"):
        rig.press(key, digits)  # invalid: "invalid option", the menu again
        assert rig.switch.now_playing(key)[0] == "invalid_option"
    rig.press(key, "#")  # third wrong key: retries used up, the default takes the caller
    assert rig.switch.now_playing(key) == ["please_hold"]
    rig.finish(key)
    assert rig.engine.calls[key].queue == "support"


def test_lookup_without_a_hook_takes_the_fallback() -> None:
    flow = """
[flow]
name = "orders"
start = "status"

[nodes.status]
type = "lookup"
hook = "order_status"
input = "{caller}"
timeout = 3
branches = { "shipped" = "bye" }
fallback = "agent"

[nodes.agent]
type = "queue"
queue = "sales"

[nodes.bye]
type = "hangup"
"""
    rig = Rig(
        make_setup(
            queues=[queue("sales")],
            members={"sales": members("1001")},
            numbers={"8000": "ivr:orders"},
            flows={"orders": flow},
        )
    )
    key = rig.call("8000")
    assert rig.engine.calls[key].phase is CallPhase.QUEUED
    assert rig.switch.rung(key) == ["1001"]


def test_lookup_hook_answer_branches() -> None:
    from minicc.queue.ivr import Lookup, LookupResult

    asked: list[Lookup] = []
    flow = """
[flow]
name = "orders"
start = "status"

[nodes.status]
type = "lookup"
hook = "order_status"
input = "{caller}"
timeout = 3
branches = { "shipped" = "bye" }
fallback = "agent"

[nodes.agent]
type = "queue"
queue = "sales"

[nodes.bye]
type = "hangup"
"""
    rig = Rig(
        make_setup(queues=[queue("sales")], numbers={"8000": "ivr:o"}, flows={"o": flow}),
        lookup=lambda tenant, key, request: asked.append(request),
    )
    key = rig.call("8000")
    assert asked and asked[0].input == "5550100"
    rig.engine.lookup_done(
        key, LookupResult(request_id=asked[0].request_id, result="shipped"), rig.now
    )
    assert rig.switch.hung_up(key)
    rig.hang_up(key, by_caller=False)
    assert key not in rig.engine.calls


def test_transfer_to_extension_and_no_answer_ends_defined() -> None:
    flow = """
[flow]
name = "x"
start = "e"

[nodes.e]
type = "extension"
number = "1005"
"""
    rig = Rig(make_setup(numbers={"8000": "ivr:x"}, flows={"x": flow}))
    key = rig.call("8000")
    assert rig.switch.now_playing(key) == ["transferring"]
    assert rig.switch.rung(key) == ["1005"]
    rig.finish(key)
    assert rig.switch.now_playing(key) == ["moh"]
    rig.ring(key, "1005", RingResult.NO_ANSWER)
    assert rig.switch.now_playing(key) == ["leave_message", "beep"]
    rig.finish(key)
    (record,) = rig.switch.of("record", key)
    assert record.args[0] == "1005"  # the extension's own box
    rig.record_done(key, path="recordings/acme/voicemail/1005/m.wav")
    assert rig.switch.now_playing(key) == ["goodbye"]
    rig.finish(key)
    assert rig.switch.hung_up(key)


# -- ACD ----------------------------------------------------------------------------------------


def test_vip_overtakes_a_normal_caller() -> None:
    rig = demo(vip=frozenset({"5559999"}))
    rig.engine.set_agent_state("1001", AgentState.PAUSED, rig.now, reason="x")
    rig.engine.set_agent_state("1002", AgentState.PAUSED, rig.now, reason="x")
    normal = rig.call("8001", caller="5550001")
    rig.advance(10)
    vip = rig.call("8001", caller="5559999")
    assert rig.engine.queues["sales"].waiting[vip].priority == VIP_PRIORITY
    assert rig.engine.queues["sales"].position(vip) == 1
    rig.engine.set_agent_state("1001", AgentState.AVAILABLE, rig.now)
    assert rig.switch.rung(vip) == ["1001"] and rig.switch.rung(normal) == []
    rig.engine.set_agent_state("1002", AgentState.AVAILABLE, rig.now)
    assert rig.switch.rung(normal) == ["1002"]


def test_skills_routing_picks_the_agent_with_the_skill() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales", strategy=Strategy.SKILLS)],
            members={"sales": members("1001", "1002", a1001={"english": 9}, a1002={"german": 7})},
            numbers={"8000": "ivr:lang"},
            flows={"lang": SKILLS_FLOW},
        )
    )
    key = rig.call("8000")
    assert rig.engine.queues["sales"].waiting[key].required_skills == {"german": 5}
    assert rig.switch.rung(key) == ["1002"]


def test_ring_all_rings_everyone_and_cancels_the_rest_on_answer() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales", strategy=Strategy.RING_ALL)],
            members={"sales": members("1001", "1002", "1003")},
            numbers={"8001": "queue:sales"},
        )
    )
    key = rig.call("8001")
    assert sorted(rig.switch.rung(key)) == ["1001", "1002", "1003"]
    assert {rig.state(a) for a in ("1001", "1002", "1003")} == {"reserved"}
    attempt_1003 = rig.switch.attempt(key, "1003")
    attempt_1001 = rig.switch.attempt(key, "1001")
    rig.ring(key, "1002", RingResult.ANSWERED)
    cancelled = {r.args[0] for r in rig.switch.of("cancel_ring", key)}
    assert cancelled == {attempt_1001, attempt_1003}
    assert (rig.state("1001"), rig.state("1002"), rig.state("1003")) == (
        "available",
        "on call",
        "available",
    )
    # The losers' late CANCELLED results change nothing.
    for attempt in (attempt_1001, attempt_1003):
        rig.engine.ring_result(key, attempt, RingResult.CANCELLED, rig.now)
    assert rig.state("1001") == "available"


def test_miss_goes_to_next_agent_never_back_and_auto_pauses() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales", max_misses=2)],
            members={"sales": members("1001", "1002")},
            numbers={"8001": "queue:sales"},
        )
    )
    first = rig.call("8001")
    assert rig.switch.rung(first) == ["1001"]
    rig.ring(first, "1001", RingResult.NO_ANSWER)
    assert rig.switch.rung(first) == ["1001", "1002"]
    rig.ring(first, "1002", RingResult.REJECTED)
    # Both declined this call: it waits (with music), nobody is rung again for it.
    assert rig.switch.rung(first) == ["1001", "1002"]
    assert rig.switch.now_playing(first) == ["moh"]
    rig.advance(60)
    assert rig.switch.rung(first) == ["1001", "1002"]

    # A new caller is offered to them; 1001's second miss in a row pauses them.
    second = rig.call("8001")
    assert rig.switch.rung(second) == ["1001"]
    rig.ring(second, "1001", RingResult.NO_ANSWER)
    agent = rig.engine.board["1001"]
    assert (agent.state, agent.pause_reason) == (AgentState.PAUSED, MISSED_CALLS)
    assert rig.store.agents[-1] == AgentSetting(
        extension="1001", state="paused", reason=MISSED_CALLS
    )
    paused = [e for e in rig.of(AgentStateChanged) if e.state == "paused"]
    assert [(e.agent, e.reason) for e in paused] == [("1001", MISSED_CALLS)]
    assert rig.switch.rung(second) == ["1001", "1002"]


def test_unavailable_agent_is_not_rung_until_a_device_registers() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales")],
            members={"sales": members("1001", "1002")},
            numbers={"8001": "queue:sales"},
        )
    )
    key = rig.call("8001")
    rig.ring(key, "1001", RingResult.UNAVAILABLE)
    assert rig.engine.board["1001"].devices == 0
    assert rig.state("1001") == "available"  # not blamed
    assert rig.switch.rung(key) == ["1001", "1002"]
    rig.ring(key, "1002", RingResult.BUSY)
    assert rig.switch.rung(key) == ["1001", "1002"]
    rig.engine.set_devices("1001", 1, rig.now)  # the phone registered again
    assert rig.switch.rung(key) == ["1001", "1002", "1001"]


def test_lost_ring_results_never_leave_an_agent_reserved() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales", ring_timeout=15)],
            members={"sales": members("1001", "1002")},
            numbers={"8001": "queue:sales"},
        )
    )
    key = rig.call("8001")
    rig.advance(15 + EngineOptions().ring_grace)
    assert rig.switch.of("cancel_ring", key)
    assert rig.state("1001") == "available"
    assert rig.switch.rung(key) == ["1001", "1002"]


def test_agent_who_answers_and_hangs_up_at_once_is_not_stuck() -> None:
    rig = demo(sales=queue("sales", wrap_up=10))
    key = rig.call("8001")
    rig.answer(key, "1001")
    rig.hang_up(key, by_caller=False)
    assert rig.state("1001") == "wrap-up"
    rig.advance(10)
    assert rig.state("1001") == "available"
    nxt = rig.call("8001")
    assert rig.switch.rung(nxt)[0] in ("1001", "1002")


def test_caller_hanging_up_while_rung_frees_the_agent() -> None:
    rig = demo()
    key = rig.call("8001")
    rig.hang_up(key)
    assert rig.state("1001") == "available"
    assert rig.engine.stats_snapshot(rig.now).queues["sales"].abandoned == 1


def test_logout_while_rung_withdraws_and_keeps_the_caller() -> None:
    rig = demo()
    key = rig.call("8001")
    attempt = rig.switch.attempt(key, "1001")
    rig.engine.set_agent_state("1001", AgentState.LOGGED_OUT, rig.now)
    assert [r.args[0] for r in rig.switch.of("cancel_ring", key)] == [attempt]
    assert rig.state("1001") == "logged out"
    assert rig.switch.rung(key) == ["1001", "1002"]
    rig.answer(key, "1002")
    with pytest.raises(AgentStateError):
        rig.engine.set_agent_state("1002", AgentState.LOGGED_OUT, rig.now)


# -- overflow -----------------------------------------------------------------------------------


def test_overflow_on_max_wait_to_another_queue_keeps_priority() -> None:
    rig = demo(
        sales=queue("sales", max_wait=30, overflow=OverflowTarget.parse("queue:support")),
        vip=frozenset({"5559999"}),
    )
    for agent in ("1001", "1002", "1003"):
        rig.engine.set_agent_state(agent, AgentState.PAUSED, rig.now, reason="x")
    key = rig.call("8001", caller="5559999")
    rig.advance(29)
    assert rig.engine.calls[key].queue == "sales"
    rig.advance(1)
    assert rig.engine.calls[key].queue == "support"
    assert rig.engine.queues["support"].waiting[key].priority == VIP_PRIORITY
    left = rig.of(CallLeftQueue)
    assert [(e.queue, e.reason, e.destination) for e in left] == [
        ("sales", "max wait", "queue:support")
    ]
    rig.engine.set_agent_state("1003", AgentState.AVAILABLE, rig.now)
    assert rig.switch.rung(key) == ["1003"]
    stats = rig.engine.stats_snapshot(rig.now).queues
    assert stats["sales"].left[next(iter(stats["sales"].left))] == 1


def test_overflow_to_nowhere_says_goodbye() -> None:
    rig = demo(sales=queue("sales", max_length=1))
    for agent in ("1001", "1002"):
        rig.engine.set_agent_state(agent, AgentState.PAUSED, rig.now, reason="x")
    rig.call("8001")
    full = rig.call("8001")
    assert rig.switch.now_playing(full) == ["all_agents_busy", "goodbye"]
    rig.finish(full)
    assert rig.switch.hung_up(full)


def test_leave_when_empty() -> None:
    rig = demo(
        sales=queue(
            "sales",
            leave_when_empty=EmptyRule.NO_STAFFED,
            overflow=OverflowTarget.parse("voicemail"),
        )
    )
    rig.engine.set_agent_state("1001", AgentState.PAUSED, rig.now, reason="x")
    busy = rig.call("8001")
    rig.answer(busy, "1002")
    key = rig.call("8001")
    rig.engine.set_agent_state("1002", AgentState.PAUSED, rig.now, reason="x")
    rig.hang_up(busy)
    rig.advance(5)
    assert rig.engine.calls[key].phase is CallPhase.QUEUED  # 1002 wraps up: still staffed
    rig.advance(5)  # wrap-up over, the pause applies: nobody is left to serve
    assert rig.switch.now_playing(key) == ["leave_message", "beep"]
    assert [e.reason for e in rig.of(CallLeftQueue)] == ["empty"]


# -- announcements ------------------------------------------------------------------------------


def _handle_history(rig: Rig, agent: str, calls: int, talk: float) -> None:
    """Let ``agent`` handle ``calls`` calls of ``talk`` seconds (for the estimates)."""
    for _ in range(calls):
        key = rig.call("8001")
        rig.answer(key, agent)
        rig.advance(talk)
        rig.hang_up(key)
        rig.advance(rig.engine.queues["sales"].config.wrap_up)


def test_announcements_say_position_and_estimate_and_stop_after_answer() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales", announce_interval=30, wrap_up=0)],
            members={"sales": members("1001")},
            numbers={"8001": "queue:sales"},
        )
    )
    _handle_history(rig, "1001", 3, talk=120)
    busy = rig.call("8001")
    rig.answer(busy, "1001")
    first = rig.call("8001")
    second = rig.call("8001")
    rig.advance(30)
    said = rig.switch.now_playing(second)
    assert said[:3] == ["you_are_caller_number", "2", "your_estimated_wait_is"]
    assert said[-1] == "minutes"
    assert rig.switch.now_playing(first)[:2] == ["you_are_caller_number", "1"]
    rig.finish(second)
    assert rig.switch.now_playing(second) == ["moh"]  # music resumes

    # The agent frees up while the first caller's announcement plays: it is cut by the
    # answer, and no announcement follows.
    rig.hang_up(busy)
    rig.answer(first, "1001")
    plays = len(rig.switch.of("play", first))
    rig.advance(120)
    assert len(rig.switch.of("play", first)) == plays
    assert rig.switch.now_playing(second)[:2] == ["you_are_caller_number", "1"]


def test_no_honest_estimate_no_wait_sentence() -> None:
    rig = demo(sales=queue("sales", announce_interval=20))
    for agent in ("1001", "1002"):
        rig.engine.set_agent_state(agent, AgentState.PAUSED, rig.now, reason="x")
    key = rig.call("8001")
    rig.advance(20)
    assert rig.switch.now_playing(key) == ["you_are_caller_number", "1"]


# -- setup updates ------------------------------------------------------------------------------


def test_update_keeps_live_calls_and_adds_members() -> None:
    setup = make_setup(
        queues=[queue("sales")],
        members={"sales": members("1001")},
        numbers={"8001": "queue:sales"},
        agents={"1001": AgentSetting(extension="1001", state="paused", reason="training")},
    )
    rig = Rig(setup)
    assert rig.engine.board["1001"].pause_reason == "training"
    key = rig.call("8001")
    assert rig.switch.rung(key) == []
    richer = make_setup(
        queues=[queue("sales")],
        members={"sales": members("1001", "1004")},
        numbers={"8001": "queue:sales"},
    )
    rig.engine.update(richer, rig.now)
    assert rig.engine.calls[key].phase is CallPhase.QUEUED
    assert rig.switch.rung(key) == ["1004"]


# -- races with the switch ----------------------------------------------------------------------


def test_answer_crossing_a_withdrawal_still_connects_the_caller() -> None:
    rig = demo()
    key = rig.call("8001")
    attempt = rig.switch.attempt(key, "1001")
    rig.engine.set_agent_state("1001", AgentState.LOGGED_OUT, rig.now)
    other = rig.switch.attempt(key, "1002")
    # The switch had bridged 1001 before the cancel arrived: it reports the answer.
    rig.engine.ring_result(key, attempt, RingResult.ANSWERED, rig.now)
    rig.check()
    assert rig.engine.calls[key].phase is CallPhase.CONNECTED
    assert other in {r.args[0] for r in rig.switch.of("cancel_ring", key)}
    assert rig.state("1002") == "available"
    assert rig.engine.stats_snapshot(rig.now).queues["sales"].answered == 1
    rig.hang_up(key)
    assert rig.state("1001") == "logged out"


def test_music_restarted_just_before_the_answer_is_stopped() -> None:
    rig = demo(sales=queue("sales", announce_interval=10))
    key = rig.call("8001")
    rig.advance(10)
    assert rig.switch.now_playing(key)[0] == "you_are_caller_number"
    rig.finish(key)  # the announcement ended on the very turn the agent answered
    assert rig.switch.now_playing(key) == ["moh"]
    rig.ring(key, "1001", RingResult.ANSWERED)
    assert rig.switch.of("stop_playback", key)
    assert key not in rig.switch.playing


def test_a_closing_prompt_that_is_cut_still_ends_the_call() -> None:
    rig = demo(sales=queue("sales", max_length=1))
    for agent in ("1001", "1002"):
        rig.engine.set_agent_state(agent, AgentState.PAUSED, rig.now, reason="x")
    rig.call("8001")
    full = rig.call("8001")
    rig.finish(full, PlaybackOutcome.CANCELLED)
    assert rig.switch.hung_up(full)


def test_closing_prompt_never_reported_still_hangs_up() -> None:
    rig = demo(sales=queue("sales", max_length=1))
    for agent in ("1001", "1002"):
        rig.engine.set_agent_state(agent, AgentState.PAUSED, rig.now, reason="x")
    rig.call("8001")
    full = rig.call("8001")
    rig.advance(EngineOptions().close_grace)
    assert rig.switch.hung_up(full)
