"""Callbacks that keep the caller's place, made agent-first, with retries and restarts.

Driven with the scripted test double of the switch (the real CallControl, and its
``originate``, are being built in parallel) and a fake clock.
"""

from __future__ import annotations

from minicc.events import CallAnsweredByAgent, CallbackRequested, CallbackResult, CallOffered
from minicc.queue.agents import AgentState
from minicc.queue.engine_calls import CallPhase
from minicc.queue.engine_core import CallbackOutcome, EngineOptions
from minicc.queue.models import OverflowTarget
from minicc.queue.setup import PendingCallback
from minicc.switch.control import OriginateLeg, RingResult
from tests.unit.queue.engine_fakes import MONDAY_10, Rig, make_setup, members, queue


def one_agent_rig(**queue_args: object) -> Rig:
    queue_args.setdefault("announce_interval", 30)
    queue_args.setdefault("callback_threshold", 60)
    queue_args.setdefault("wrap_up", 0)
    return Rig(
        make_setup(
            queues=[queue("sales", **queue_args)],
            members={"sales": members("1001")},
            numbers={"8001": "queue:sales"},
        ),
        options=EngineOptions(callback_attempts=2, callback_retry_spacing=120),
    )


def with_history(rig: Rig) -> str:
    """Three handled calls of 5 minutes (an honest estimate), then the agent busy again."""
    for _ in range(3):
        key = rig.call("8001")
        rig.answer(key, "1001")
        rig.advance(300)
        rig.hang_up(key)
    busy = rig.call("8001")
    rig.answer(busy, "1001")
    return busy


def test_press_1_keeps_the_place_and_the_agent_dials_back_first() -> None:
    rig = one_agent_rig()
    busy = with_history(rig)
    caller = rig.call("8001", caller="5551111")
    rig.advance(30)
    said = rig.switch.now_playing(caller)
    assert said[-1] == "press_1_to_be_called_back"
    assert "your_estimated_wait_is" in said
    rig.press(caller, "1")
    assert rig.switch.now_playing(caller) == ["callback_confirmed", "goodbye"]
    stored, outcome = rig.store.callbacks[-1]
    assert (stored.number, stored.queue, outcome) == ("5551111", "sales", None)
    assert len(stored.id) == 22  # the engine names it: storing it is never waited for
    assert stored.joined_at == MONDAY_10 + (
        rig.engine.queues["sales"].waiting[caller].joined_at - 1000.0
    )
    requested = rig.of(CallbackRequested)
    assert [(e.call_id, e.callback_id) for e in requested] == [(caller, stored.id)]
    rig.finish(caller)
    assert rig.switch.hung_up(caller)
    rig.hang_up(caller, by_caller=False)
    assert rig.engine.stats_snapshot(rig.now).queues["sales"].abandoned == 0

    # A later caller does not overtake the callback.
    later = rig.call("8001", caller="5552222")
    entry = rig.engine.queues["sales"].waiting[caller]
    assert entry.callback and rig.engine.queues["sales"].position(caller) == 1
    assert rig.engine.queues["sales"].position(later) == 2

    # The agent frees up: reserved and rung first for the callback.
    rig.hang_up(busy)
    origin = rig.originated("1001")
    assert rig.switch.origins[origin] == ("1001", "5551111")
    assert rig.state("1001") == "reserved"
    assert rig.switch.rung(later) == []
    assert [e.callback for e in rig.of(CallOffered)][-1] is True
    rig.origin_result(origin, OriginateLeg.AGENT, RingResult.ANSWERED)
    assert rig.state("1001") == "on call"
    rig.origin_result(origin, OriginateLeg.CALLEE, RingResult.ANSWERED)
    results = rig.of(CallbackResult)
    assert [(r.outcome, r.attempts, r.agent) for r in results] == [("connected", 1, "1001")]
    assert rig.store.callbacks[-1][1] is CallbackOutcome.CONNECTED
    assert rig.store.callbacks[-1][0].id == stored.id
    answered = [e for e in rig.of(CallAnsweredByAgent) if e.callback]
    assert [e.call_id for e in answered] == [caller]
    assert caller not in rig.engine.queues["sales"].waiting

    rig.advance(200)
    rig.origin_ended(origin)
    assert rig.switch.rung(later) == ["1001"]  # no wrap-up in this queue: next caller
    assert caller not in rig.engine.callbacks


def test_callback_not_offered_without_an_estimate_above_the_threshold() -> None:
    rig = one_agent_rig(callback_threshold=3600)
    with_history(rig)
    caller = rig.call("8001")
    rig.advance(30)
    assert "press_1_to_be_called_back" not in rig.switch.now_playing(caller)
    rig.press(caller, "1")
    assert rig.engine.calls[caller].phase is CallPhase.QUEUED


def test_missed_agent_leg_keeps_the_place_and_excludes_the_agent() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales")],
            members={"sales": members("1001", "1002")},
            numbers={"8001": "queue:sales"},
        )
    )
    for agent in ("1001", "1002"):
        rig.engine.set_agent_state(agent, AgentState.PAUSED, rig.now, reason="x")
    call_id = rig.engine.request_callback("sales", "5553333", rig.now)
    (stored, _) = rig.store.callbacks[-1]
    assert call_id == f"callback-{stored.id}"
    rig.engine.set_agent_state("1001", AgentState.AVAILABLE, rig.now)
    origin = rig.originated("1001")
    rig.origin_result(origin, OriginateLeg.AGENT, RingResult.NO_ANSWER)
    rig.origin_ended(origin, by_caller=False)
    assert rig.engine.queues["sales"].waiting[call_id].excluded == frozenset({"1001"})
    rig.engine.set_agent_state("1002", AgentState.AVAILABLE, rig.now)
    assert rig.switch.origins[rig.originated("1002")] == ("1002", "5553333")
    assert len(rig.switch.of("originate")) == 2


def test_caller_not_answering_is_retried_then_given_up() -> None:
    rig = one_agent_rig()
    call_id = rig.engine.request_callback("sales", "5554444", rig.now)
    assert call_id is not None
    for attempt in (1, 2):
        origin = rig.originated("1001")
        rig.origin_result(origin, OriginateLeg.AGENT, RingResult.ANSWERED)
        rig.origin_result(origin, OriginateLeg.CALLEE, RingResult.NO_ANSWER)
        rig.origin_ended(origin, by_caller=False)
        assert rig.state("1001") == "available"  # a dial-back nobody took has no wrap-up
        if attempt == 1:
            assert rig.switch.origins == {}
            rig.advance(119)
            assert rig.switch.origins == {}
            rig.advance(1)
    outcomes = [(r.outcome, r.attempts, r.detail) for r in rig.of(CallbackResult)]
    assert outcomes == [("retry", 1, "no-answer"), ("failed", 2, "no-answer")]
    assert [o for _, o in rig.store.callbacks] == [None, None, CallbackOutcome.FAILED]
    assert rig.store.callbacks[1][0].attempts == 1
    assert call_id not in rig.engine.queues["sales"].waiting
    snapshot = rig.engine.stats_snapshot(rig.now).queues["sales"]
    assert (snapshot.offered, snapshot.answered, snapshot.waiting) == (1, 0, 0)
    assert sum(snapshot.left.values()) == 1


def test_restart_pending_callbacks_rejoin_at_their_original_place() -> None:
    joined = MONDAY_10 - 600  # ten minutes before this engine started
    pending = (
        PendingCallback(id="7", queue="sales", number="5557777", name=None, joined_at=joined),
        PendingCallback(
            id="8", queue="sales", number="5558888", name="Ann", joined_at=joined + 60, attempts=1
        ),
    )
    setup = make_setup(
        queues=[queue("sales")],
        members={"sales": members("1001")},
        numbers={"8001": "queue:sales"},
        agents={},
        callbacks=pending,
    )
    rig = Rig(setup)
    # The agent is free at start: the oldest callback is offered at once.
    assert rig.switch.origins[rig.originated("1001")] == ("1001", "5557777")
    rig.engine.update(setup, rig.now)  # the same pending rows again: not duplicated
    assert len(rig.engine.queues["sales"].waiting) == 2
    live = rig.call("8001")
    assert rig.engine.queues["sales"].position("callback-8") == 2
    assert rig.engine.queues["sales"].position(live) == 3
    waited = rig.engine.stats_snapshot(rig.now).queues["sales"].longest_wait
    assert waited == 600.0


def test_restored_callback_slots_in_by_join_time() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales")],
            members={"sales": members("1001")},
            numbers={"8001": "queue:sales"},
        ),
    )
    rig.engine.set_agent_state("1001", AgentState.PAUSED, rig.now, reason="x")
    early = rig.call("8001")
    rig.advance(100)
    late = rig.call("8001")
    between = PendingCallback(
        id="9", queue="sales", number="5559999", name=None, joined_at=MONDAY_10 + 50
    )
    rig.engine.update(
        make_setup(
            queues=[queue("sales")],
            members={"sales": members("1001")},
            numbers={"8001": "queue:sales"},
            callbacks=(between,),
        ),
        rig.now,
    )
    runtime = rig.engine.queues["sales"]
    assert [runtime.position(c) for c in (early, "callback-9", late)] == [1, 2, 3]


def test_full_queue_offers_a_callback_instead() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales", max_length=1, overflow=OverflowTarget.parse("callback-offer"))],
            members={"sales": members("1001")},
            numbers={"8001": "queue:sales"},
        ),
        options=EngineOptions(callback_offer_window=8),
    )
    rig.engine.set_agent_state("1001", AgentState.PAUSED, rig.now, reason="x")
    rig.call("8001")
    refused = rig.call("8001", caller="5556666")
    assert rig.engine.calls[refused].phase is CallPhase.CALLBACK_OFFER
    assert rig.switch.now_playing(refused) == ["all_agents_busy", "press_1_to_be_called_back"]
    rig.finish(refused)
    assert rig.switch.now_playing(refused) == ["moh"]
    rig.press(refused, "1")
    assert rig.switch.now_playing(refused) == ["callback_confirmed", "goodbye"]
    assert len(rig.engine.queues["sales"].waiting) == 2  # the callback joined past the cap

    ignored = rig.call("8001", caller="5557777")
    rig.finish(ignored)
    rig.advance(8)
    assert rig.switch.now_playing(ignored) == ["goodbye"]
    rig.finish(ignored)
    assert rig.switch.hung_up(ignored)


def test_max_wait_callback_offer_keeps_the_caller_waiting() -> None:
    rig = Rig(
        make_setup(
            queues=[queue("sales", max_wait=60, overflow=OverflowTarget.parse("callback-offer"))],
            members={"sales": members("1001")},
            numbers={"8001": "queue:sales"},
        )
    )
    rig.engine.set_agent_state("1001", AgentState.PAUSED, rig.now, reason="x")
    key = rig.call("8001")
    rig.advance(60)
    said = rig.switch.now_playing(key)
    assert said[0] == "all_agents_busy" and said[-1] == "press_1_to_be_called_back"
    rig.finish(key)
    rig.advance(600)  # offered once; the caller keeps waiting with music
    assert rig.switch.now_playing(key) == ["moh"]
    rig.press(key, "1")
    assert rig.engine.queues["sales"].waiting[key].callback


def test_ivr_callback_node_waits_until_the_caller_hung_up() -> None:
    flow = """
[flow]
name = "cb"
start = "ask"

[nodes.ask]
type = "callback"
queue = "sales"
next = "thanks"

[nodes.thanks]
type = "play"
prompts = ["callback_confirmed"]
next = "bye"

[nodes.bye]
type = "hangup"
"""
    rig = Rig(
        make_setup(
            queues=[queue("sales")],
            members={"sales": members("1001")},
            numbers={"8000": "ivr:cb"},
            flows={"cb": flow},
        )
    )
    key = rig.call("8000", caller="5551212")
    assert rig.switch.origins == {}  # the caller is still on the line
    rig.finish(key)
    assert rig.switch.hung_up(key)
    rig.hang_up(key, by_caller=False)
    assert rig.switch.origins[rig.originated("1001")] == ("1001", "5551212")


def test_press_1_while_an_agent_rings_withdraws_the_ring_without_blame() -> None:
    rig = one_agent_rig(max_misses=1)
    busy = with_history(rig)
    caller = rig.call("8001", caller="5551111")
    rig.advance(30)
    rig.hang_up(busy)  # 1001 is free: rung for the caller, the offer still open
    attempt = rig.switch.attempt(caller, "1001")
    rig.press(caller, "1")
    assert [r.args[0] for r in rig.switch.of("cancel_ring", caller)] == [attempt]
    assert rig.engine.board["1001"].consecutive_misses == 0
    assert rig.switch.origins == {}  # not dialled while the caller hears the confirmation
    rig.finish(caller)
    rig.hang_up(caller, by_caller=False)
    assert rig.switch.origins[rig.originated("1001")] == ("1001", "5551111")
