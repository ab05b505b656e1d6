"""Transfers in the queue engine (minicc.queue.engine_transfer), with the scripted switch and
a fake clock: where a transfer may go, the transferring agent's wrap-up, the caller's way
back into a queue, and statistics that count the call once."""

from __future__ import annotations

from minicc.events import AgentStateChanged, CallQueued, CallTransferred
from minicc.queue.agents import AgentState
from minicc.queue.engine_calls import CallPhase
from minicc.switch.control import (
    HoldBy,
    RingResult,
    Route,
    RouteKind,
    TransferKind,
    TransferReport,
)
from tests.unit.queue.engine_fakes import Rig, make_setup, members, queue

FLOW = """
[flow]
name = "menu"
start = "hello"

[nodes.hello]
type = "play"
prompts = ["welcome"]
next = "q"

[nodes.q]
type = "queue"
queue = "support"
"""


def rig() -> Rig:
    setup = make_setup(
        queues=[queue("sales", wrap_up=10), queue("support", wrap_up=5)],
        members={"sales": members("1001", "1002"), "support": members("1003")},
        numbers={"8001": "queue:sales", "8002": "queue:support", "8000": "ivr:menu"},
        flows={"menu": FLOW},
    )
    return Rig(setup, is_extension=lambda number: number.startswith("1"))


def answered(r: Rig, number: str = "8001", agent: str = "1001", caller: str = "5550100") -> str:
    key = r.call(number, caller)
    r.answer(key, agent)
    assert r.state(agent) == "on call"
    return key


def transfer(r: Rig, key: str, target: str, *, by: str = "1001") -> Route:
    """What the switch does for an agent's REFER: ask, then report the outcome."""
    route = r.engine.transfer_route(key, target)
    status = route.status if route.kind is RouteKind.REJECT else 200
    report = TransferReport(
        key=key,
        kind=TransferKind.BLIND,
        by=by,
        target=target,
        status=status,
        route=None if status != 200 else route,
    )
    r.engine.call_transferred(key, report, r.now)
    r.check()
    return route


def test_where_a_transfer_may_go() -> None:
    r = rig()
    key = answered(r)
    ext = r.engine.transfer_route(key, "1003")
    assert (ext.kind, ext.extension) == (RouteKind.EXTENSION, "1003")
    assert r.engine.transfer_route(key, "8002").kind is RouteKind.APPLICATION
    assert r.engine.transfer_route(key, "8000").kind is RouteKind.APPLICATION
    outside = r.engine.transfer_route(key, "+4930123456")
    assert (outside.kind, outside.status) == (RouteKind.REJECT, 403)
    gone = r.engine.transfer_route("nope", "1003")
    assert (gone.kind, gone.status) == (RouteKind.REJECT, 481)
    waiting = r.call("8001")  # not connected to anyone: nothing to transfer
    assert r.engine.transfer_route(waiting, "1003").kind is RouteKind.REJECT


def test_blind_to_an_extension_wraps_the_agent_up_and_rings_it() -> None:
    r = rig()
    key = answered(r)
    transfer(r, key, "1003")
    assert r.state("1001") == "wrap-up"
    assert r.engine.calls[key].phase is CallPhase.RINGING_EXTENSION
    assert r.switch.rung(key)[-1] == "1003"
    assert "transferring" in r.switch.now_playing(key)
    [event] = r.of(CallTransferred)
    assert (event.by, event.target, event.status, event.queue, event.destination) == (
        "1001",
        "1003",
        200,
        "sales",
        "ext:1003",
    )
    r.answer(key, "1003")
    assert r.engine.calls[key].phase is CallPhase.CONNECTED
    r.hang_up(key)
    snap = r.engine.stats_snapshot(r.now).queues["sales"]
    assert (snap.offered, snap.answered, snap.abandoned, snap.waiting) == (1, 1, 0, 0)
    r.advance(10)
    assert r.state("1001") == "available"
    assert r.engine.stats_snapshot(r.now).queues["sales"].handled == 1


def test_unanswered_transfer_goes_back_to_the_queue_at_the_front() -> None:
    r = rig()
    first = answered(r)
    other = r.call("8001", caller="5550199")  # rung to 1002 meanwhile
    r.answer(other, "1002")
    later = r.call("8001", caller="5550200")  # waits: both agents busy
    transfer(r, first, "1003")
    r.ring(first, "1003", RingResult.NO_ANSWER)
    call = r.engine.calls[first]
    assert call.phase is CallPhase.QUEUED
    runtime = r.engine.queues["sales"]
    assert runtime.position(first) == 1 and runtime.position(later) == 2
    # The statistics still count one offered and one answered call for it.
    snap = r.engine.stats_snapshot(r.now).queues["sales"]
    assert (snap.offered, snap.answered, snap.waiting) == (3, 2, 2)
    # The caller gives up in the queue: not an abandoned call (the agent handled it).
    r.hang_up(first)
    snap = r.engine.stats_snapshot(r.now).queues["sales"]
    assert (snap.offered, snap.answered, snap.abandoned, snap.waiting) == (3, 2, 0, 1)


def test_blind_to_a_queue_number_joins_at_the_front() -> None:
    r = rig()
    r.engine.set_agent_state("1003", AgentState.PAUSED, r.now)
    waiting = r.call("8002", caller="5550111")
    key = answered(r)
    transfer(r, key, "8002")
    assert r.state("1001") == "wrap-up"
    call = r.engine.calls[key]
    assert (call.phase, call.queue) == (CallPhase.QUEUED, "support")
    assert r.engine.queues["support"].position(key) == 1
    assert r.engine.queues["support"].position(waiting) == 2
    queued = [e for e in r.of(CallQueued) if e.call_id == key]
    assert [e.queue for e in queued] == ["sales", "support"]
    support = r.engine.stats_snapshot(r.now).queues["support"]
    assert (support.offered, support.waiting) == (1, 2)  # the transferred call only waits
    r.engine.set_agent_state("1003", AgentState.AVAILABLE, r.now)
    r.answer(key, "1003")  # front of the line: offered first
    support = r.engine.stats_snapshot(r.now).queues["support"]
    assert (support.offered, support.answered, support.waiting) == (1, 0, 1)


def test_blind_to_an_ivr_number_starts_the_flow() -> None:
    r = rig()
    key = answered(r)
    transfer(r, key, "8000")
    assert r.engine.calls[key].phase is CallPhase.IVR
    assert "welcome" in r.switch.now_playing(key)


def test_refused_transfer_changes_nothing() -> None:
    r = rig()
    key = answered(r)
    route = transfer(r, key, "+4930123456")
    assert route.status == 403
    assert r.state("1001") == "on call"
    assert r.engine.calls[key].phase is CallPhase.CONNECTED
    [event] = r.of(CallTransferred)
    assert event.status == 403
    r.hang_up(key)
    assert r.state("1001") == "wrap-up"


def test_attended_transfer_to_an_agent_of_a_consultation_queue_call() -> None:
    r = rig()
    key = answered(r)
    # The agent consults support: their own call to 8002 is answered by 1003.
    consult = r.call("8002", caller="1001")
    r.answer(consult, "1003")
    report = TransferReport(
        key=key,
        kind=TransferKind.ATTENDED,
        by="1001",
        target="1003",
        status=200,
        replaced=consult,
        party="1003",
    )
    r.engine.call_transferred(key, report, r.now)
    r.hang_up(consult, by_caller=False)  # the switch ends the consultation call
    assert r.state("1001") == "wrap-up"
    assert r.state("1003") == "on call"  # still talking, now to the caller
    assert r.engine.calls[key].agent == "1003"
    r.hang_up(key)
    assert r.state("1003") == "wrap-up"
    states = [(e.agent, e.state) for e in r.of(AgentStateChanged)]
    assert ("1003", "wrap-up") in states
    sales = r.engine.stats_snapshot(r.now).queues["sales"]
    assert (sales.offered, sales.answered, sales.abandoned) == (1, 1, 0)


def test_transfer_of_a_held_call_ends_the_hold_first() -> None:
    r = rig()
    key = answered(r)
    r.engine.call_held(key, HoldBy.PHONE, r.now)  # music for the caller
    r.check()
    r.advance(3)
    r.switch.playing.pop(key, None)  # the switch cuts the music when the transfer ends it
    r.engine.call_resumed(key, r.now)
    transfer(r, key, "8002")
    assert r.state("1001") == "wrap-up"
    assert r.engine.calls[key].phase is CallPhase.QUEUED
    r.advance(60)  # no hold ring-back for an agent who transferred the call away
    assert r.switch.of("ring_back") == []
