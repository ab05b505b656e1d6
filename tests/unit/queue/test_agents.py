"""The agent state machine: the table, auto-pause, wrap-up once across queues, timers."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicc.queue.agents import (
    MISSED_CALLS,
    TRANSITIONS,
    Agent,
    AgentBoard,
    AgentInput,
    AgentState,
    AgentStateChanged,
    AgentStateError,
    HoldExpired,
)

S = AgentState
I = AgentInput  # noqa: E741 - mirrors the module's own alias


def board_with(*agent_ids: str, queues: tuple[str, ...] = ("sales",)) -> AgentBoard:
    board = AgentBoard()
    for agent_id in agent_ids:
        board.add(agent_id, now=0.0)
        board.login(agent_id, now=0.0, queues=queues)
    return board


def states(events: list[AgentStateChanged]) -> list[tuple[AgentState, AgentState]]:
    return [(e.old, e.new) for e in events]


def test_a_call_from_offer_to_wrap_up_end() -> None:
    board = board_with("1001")
    assert states(board.offer("1001", call_id="c1", queue="sales", now=5.0)) == [
        (S.AVAILABLE, S.RESERVED)
    ]
    [answered] = board.answered("1001", call_id="c1", now=8.0)
    assert (answered.old, answered.new, answered.call_id, answered.queue) == (
        S.RESERVED,
        S.ON_CALL,
        "c1",
        "sales",
    )
    [ended] = board.call_ended("1001", call_id="c1", now=68.0, wrap_up=30.0)
    assert (ended.new, ended.old_since) == (S.WRAP_UP, 8.0)
    agent = board["1001"]
    assert agent.calls_handled == 1
    assert agent.last_call_ended_at == 68.0
    assert board.get_timer() == 98.0
    assert board.tick(97.9) == []
    [done] = board.tick(98.0)
    assert isinstance(done, AgentStateChanged)
    assert (done.old, done.new, done.call_id, done.input) == (
        S.WRAP_UP,
        S.AVAILABLE,
        "c1",
        I.WRAP_UP_DONE,
    )
    assert agent.call_id is None
    assert agent.idle_since == 98.0
    assert board.get_timer() is None


def test_wrap_up_runs_once_for_an_agent_in_several_queues() -> None:
    board = board_with("1001", queues=("sales", "support", "billing"))
    board.offer("1001", call_id="c1", queue="support", now=0.0)
    board.answered("1001", call_id="c1", now=1.0)
    events = board.call_ended("1001", call_id="c1", now=11.0, wrap_up=20.0)
    assert states(events) == [(S.ON_CALL, S.WRAP_UP)]
    assert board.get_timer() == 31.0
    # Busy everywhere during wrap-up: there is one state per agent, not per queue.
    assert not board["1001"].can_take_call
    assert states(board.tick(31.0)) == [(S.WRAP_UP, S.AVAILABLE)]  # type: ignore[arg-type]
    assert board.tick(31.0) == []


def test_zero_wrap_up_is_available_at_once() -> None:
    board = board_with("1001")
    board.offer("1001", call_id="c1", queue="sales", now=0.0)
    board.answered("1001", call_id="c1", now=1.0)
    events = board.call_ended("1001", call_id="c1", now=2.0, wrap_up=0.0)
    assert states(events) == [(S.ON_CALL, S.WRAP_UP), (S.WRAP_UP, S.AVAILABLE)]
    assert board["1001"].state is S.AVAILABLE


def test_agent_ends_wrap_up_early() -> None:
    board = board_with("1001")
    board.offer("1001", call_id="c1", queue="sales", now=0.0)
    board.answered("1001", call_id="c1", now=1.0)
    board.call_ended("1001", call_id="c1", now=2.0, wrap_up=60.0)
    assert states(board.ready("1001", now=5.0)) == [(S.WRAP_UP, S.AVAILABLE)]
    assert board.get_timer() is None


@pytest.mark.parametrize("method", ["rejected", "missed"])
def test_auto_pause_after_consecutive_misses(method: str) -> None:
    board = board_with("1001")
    for n, call in enumerate(("c1", "c2"), start=1):
        board.offer("1001", call_id=call, queue="sales", now=float(n))
        events = getattr(board, method)("1001", call_id=call, now=n + 0.5, max_misses=3)
        assert states(events) == [(S.RESERVED, S.AVAILABLE)]
    board.offer("1001", call_id="c3", queue="sales", now=3.0)
    events = getattr(board, method)("1001", call_id="c3", now=3.5, max_misses=3)
    assert states(events) == [(S.RESERVED, S.AVAILABLE), (S.AVAILABLE, S.PAUSED)]
    assert events[1].reason == MISSED_CALLS
    assert board["1001"].pause_reason == MISSED_CALLS
    # Unpausing gives a fresh count: the next miss does not pause again at once.
    board.unpause("1001", now=10.0)
    board.offer("1001", call_id="c4", queue="sales", now=11.0)
    assert states(board.missed("1001", call_id="c4", now=12.0, max_misses=3)) == [
        (S.RESERVED, S.AVAILABLE)
    ]


def test_rejects_and_misses_count_together_and_an_answer_resets_them() -> None:
    board = board_with("1001")
    board.offer("1001", call_id="c1", queue="sales", now=0.0)
    board.rejected("1001", call_id="c1", now=1.0, max_misses=2)
    board.offer("1001", call_id="c2", queue="sales", now=2.0)
    board.answered("1001", call_id="c2", now=3.0)
    assert board["1001"].consecutive_misses == 0
    board.call_ended("1001", call_id="c2", now=4.0, wrap_up=0.0)
    board.offer("1001", call_id="c3", queue="sales", now=5.0)
    assert board.missed("1001", call_id="c3", now=6.0, max_misses=2)[-1].new is S.AVAILABLE
    board.offer("1001", call_id="c4", queue="sales", now=7.0)
    assert board.rejected("1001", call_id="c4", now=8.0, max_misses=2)[-1].new is S.PAUSED


def test_no_auto_pause_when_the_queue_disables_it() -> None:
    board = board_with("1001")
    for n in range(20):
        board.offer("1001", call_id=f"c{n}", queue="sales", now=float(n))
        board.missed("1001", call_id=f"c{n}", now=n + 0.5, max_misses=None)
    assert board["1001"].state is S.AVAILABLE
    assert board["1001"].consecutive_misses == 20


def test_a_cancelled_offer_counts_nothing_and_keeps_the_idle_place() -> None:
    board = board_with("1001")
    board.offer("1001", call_id="c1", queue="sales", now=10.0)
    assert states(board.cancel("1001", call_id="c1", now=12.0)) == [(S.RESERVED, S.AVAILABLE)]
    agent = board["1001"]
    assert agent.consecutive_misses == 0
    assert agent.idle_since == 0.0  # still idle since login
    assert agent.call_id is None


def test_ring_all_withdraw_keeps_the_winner() -> None:
    board = board_with("a", "b", "c", "d")
    for agent_id in ("a", "b", "c"):
        board.offer(agent_id, call_id="c1", queue="sales", now=1.0)
    board.offer("d", call_id="c2", queue="sales", now=1.0)
    board.answered("b", call_id="c1", now=2.0)
    events = board.withdraw("c1", now=2.0, keep="b")
    assert sorted(e.agent_id for e in events) == ["a", "c"]
    assert [board[x].state for x in "abcd"] == [S.AVAILABLE, S.ON_CALL, S.AVAILABLE, S.RESERVED]


def test_pause_asked_during_a_call_applies_after_wrap_up() -> None:
    board = board_with("1001")
    board.offer("1001", call_id="c1", queue="sales", now=0.0)
    assert board.pause("1001", now=0.5, reason="lunch") == []  # pending while reserved
    board.answered("1001", call_id="c1", now=1.0)
    board.call_ended("1001", call_id="c1", now=10.0, wrap_up=5.0)
    events = board.tick(15.0)
    assert states(events) == [(S.WRAP_UP, S.AVAILABLE), (S.AVAILABLE, S.PAUSED)]  # type: ignore[arg-type]
    assert board["1001"].pause_reason == "lunch"


def test_pending_pause_applies_when_an_offer_is_missed_and_unpause_drops_it() -> None:
    board = board_with("1001", "1002")
    board.offer("1001", call_id="c1", queue="sales", now=0.0)
    board.pause("1001", now=1.0, reason="break")
    events = board.missed("1001", call_id="c1", now=2.0, max_misses=5)
    assert states(events) == [(S.RESERVED, S.AVAILABLE), (S.AVAILABLE, S.PAUSED)]
    assert events[1].reason == "break"
    board.offer("1002", call_id="c2", queue="sales", now=0.0)
    board.pause("1002", now=1.0, reason="break")
    assert board.unpause("1002", now=1.5) == []
    assert states(board.cancel("1002", call_id="c2", now=2.0)) == [(S.RESERVED, S.AVAILABLE)]


def test_pause_in_wrap_up_ends_it_and_reason_changes_are_accounted() -> None:
    board = board_with("1001")
    board.offer("1001", call_id="c1", queue="sales", now=0.0)
    board.answered("1001", call_id="c1", now=1.0)
    board.call_ended("1001", call_id="c1", now=11.0, wrap_up=60.0)
    [event] = board.pause("1001", now=20.0, reason="coaching")
    assert (event.old, event.new, event.call_id) == (S.WRAP_UP, S.PAUSED, "c1")
    assert board.get_timer() is None
    assert board.pause("1001", now=30.0, reason="coaching") == []  # same reason: nothing
    [change] = board.pause("1001", now=40.0, reason="lunch")
    assert (change.old_reason, change.reason, change.old_since) == ("coaching", "lunch", 20.0)
    board.unpause("1001", now=100.0)
    agent = board["1001"]
    assert agent.time_in_state(110.0) == {
        (S.LOGGED_OUT, None): 0.0,
        (S.AVAILABLE, None): 10.0,
        (S.RESERVED, None): 1.0,
        (S.ON_CALL, None): 10.0,
        (S.WRAP_UP, None): 9.0,
        (S.PAUSED, "coaching"): 20.0,
        (S.PAUSED, "lunch"): 60.0,
    }


def test_hold_timeout_rings_the_agent_back_once() -> None:
    board = board_with("1001")
    board.offer("1001", call_id="c1", queue="sales", now=0.0)
    board.answered("1001", call_id="c1", now=1.0)
    board.hold("1001", now=10.0, timeout=60.0)
    assert board.get_timer() == 70.0
    assert board.tick(69.0) == []
    assert board.tick(70.0) == [HoldExpired(agent_id="1001", call_id="c1", at=70.0)]
    assert board.tick(80.0) == []
    assert board["1001"].on_hold  # still holding: the agent is rung, the caller hears music
    board.hold("1001", now=90.0, timeout=30.0)
    board.resume("1001", now=100.0)
    assert board.get_timer() is None
    assert board["1001"].since == 1.0  # hold does not restart the ON_CALL interval


def test_hang_up_clears_a_hold() -> None:
    board = board_with("1001")
    board.offer("1001", call_id="c1", queue="sales", now=0.0)
    board.answered("1001", call_id="c1", now=1.0)
    board.hold("1001", now=2.0, timeout=5.0)
    board.call_ended("1001", call_id="c1", now=3.0, wrap_up=100.0)
    assert board.get_timer() == 103.0
    assert all(isinstance(e, AgentStateChanged) for e in board.tick(103.0))


def test_logout_clears_queues_and_a_withdrawn_offer() -> None:
    board = board_with("1001", queues=("sales", "support"))
    board.offer("1001", call_id="c1", queue="sales", now=1.0)
    [event] = board.logout("1001", now=2.0)
    assert (event.old, event.new, event.call_id, event.queues) == (
        S.RESERVED,
        S.LOGGED_OUT,
        "c1",
        frozenset({"sales", "support"}),
    )
    agent = board["1001"]
    assert agent.queues == frozenset()
    assert agent.call_id is None
    board.remove("1001")
    assert "1001" not in board


def test_errors_name_the_state_and_the_input() -> None:
    board = board_with("1001")
    with pytest.raises(AgentStateError, match=r"agent 1001: answer in state available"):
        board.answered("1001", call_id="c1", now=1.0)
    board.offer("1001", call_id="c1", queue="sales", now=1.0)
    with pytest.raises(AgentStateError, match="not the agent's current call"):
        board.answered("1001", call_id="other", now=2.0)
    board.answered("1001", call_id="c1", now=2.0)
    with pytest.raises(AgentStateError) as info:
        board.logout("1001", now=3.0)
    assert (info.value.state, info.value.input) == (S.ON_CALL, I.LOGOUT)
    with pytest.raises(AgentStateError):
        board.remove("1001")
    with pytest.raises(ValueError, match="time went backwards"):
        board.call_ended("1001", call_id="c1", now=1.0, wrap_up=0.0)
    with pytest.raises(KeyError, match="unknown agent"):
        board.pause("nobody", now=5.0, reason="x")
    with pytest.raises(ValueError, match="already exists"):
        board.add("1001", now=5.0)


def test_devices_decide_whether_an_agent_can_take_calls() -> None:
    board = board_with("1001")
    assert board["1001"].can_take_call
    board.set_devices("1001", 0)
    assert not board["1001"].can_take_call
    board.set_devices("1001", 2)
    assert board["1001"].can_take_call
    with pytest.raises(ValueError):
        board.set_devices("1001", -1)


def test_reset_daily_zeroes_calls_handled() -> None:
    board = board_with("1001")
    board.offer("1001", call_id="c1", queue="sales", now=0.0)
    board.answered("1001", call_id="c1", now=1.0)
    board.reset_daily()
    assert board["1001"].calls_handled == 0


# -- every (state, input) pair, h2 style ----------------------------------------------

_CALL_STATES = {S.RESERVED, S.ON_CALL, S.WRAP_UP}


def _agent_in(state: AgentState) -> AgentBoard:
    board = AgentBoard()
    agent = board.add("a", now=0.0)
    agent.state = state
    agent.since = 0.0
    agent.queues = frozenset() if state is S.LOGGED_OUT else frozenset({"q"})
    if state in _CALL_STATES:
        agent.call_id = "c"
        agent.call_queue = "q"
    if state is S.ON_CALL:
        agent.call_started_at = 0.0
    if state is S.WRAP_UP:
        agent.wrap_up_until = 10.0
    if state is S.PAUSED:
        agent.pause_reason = "break"
    return board


def _apply(board: AgentBoard, event: AgentInput, now: float) -> list[object]:
    """Drive one input through the board's public method for it."""
    out: list[object]
    if event is I.LOGIN:
        out = list(board.login("a", now=now, queues=["q"]))
    elif event is I.LOGOUT:
        out = list(board.logout("a", now=now))
    elif event is I.OFFER:
        out = list(board.offer("a", call_id="c", queue="q", now=now))
    elif event is I.ANSWER:
        out = list(board.answered("a", call_id="c", now=now))
    elif event is I.REJECT:
        out = list(board.rejected("a", call_id="c", now=now, max_misses=3))
    elif event is I.MISS:
        out = list(board.missed("a", call_id="c", now=now, max_misses=3))
    elif event is I.CANCEL:
        out = list(board.cancel("a", call_id="c", now=now))
    elif event is I.HANG_UP:
        out = list(board.call_ended("a", call_id="c", now=now, wrap_up=30.0))
    elif event is I.WRAP_UP_DONE:
        out = list(board.ready("a", now=now))
    elif event is I.PAUSE:
        out = list(board.pause("a", now=now, reason="lunch"))
    elif event is I.UNPAUSE:
        out = list(board.unpause("a", now=now))
    elif event is I.HOLD:
        board.hold("a", now=now, timeout=5.0)
        out = []
    elif event is I.RESUME:
        board.resume("a", now=now)
        out = []
    else:  # HOLD_TIMEOUT is raised by the timer, not by a method
        board.hold("a", now=now, timeout=0.0)
        out = list(board.tick(now))
    return out


def _consistent(agent: Agent) -> None:
    assert (agent.call_id is not None) == (agent.state in _CALL_STATES)
    assert (agent.pause_reason is not None) == (agent.state is S.PAUSED)
    assert (agent.wrap_up_until is not None) == (agent.state is S.WRAP_UP)
    if agent.state is not S.ON_CALL:
        assert agent.held_until is None and not agent.on_hold
    assert agent.logged_in == bool(agent.queues)


@given(st.sampled_from(AgentState), st.sampled_from(AgentInput))
def test_every_state_input_pair_follows_the_table(state: AgentState, event: AgentInput) -> None:
    board = _agent_in(state)
    agent = board["a"]
    if event is I.HOLD_TIMEOUT and state is not S.ON_CALL:
        # Only the timer raises this input, and it fires for agents on a call only.
        agent.held_until = 0.5
        assert not [e for e in board.tick(1.0) if isinstance(e, HoldExpired)]
        assert agent.state is state
        return
    if (state, event) not in TRANSITIONS:
        before = (agent.state, agent.call_id, agent.pause_reason, agent.since)
        with pytest.raises(AgentStateError) as info:
            _apply(board, event, 1.0)
        assert (info.value.state, info.value.input) == (state, event)
        assert (agent.state, agent.call_id, agent.pause_reason, agent.since) == before
        return
    events = _apply(board, event, 1.0)
    changes = [e for e in events if isinstance(e, AgentStateChanged)]
    if changes:
        assert changes[0].old is state
        assert changes[0].new is TRANSITIONS[(state, event)]
        for first, second in pairwise(changes):
            assert first.new is second.old
        assert agent.state is changes[-1].new
    else:
        assert agent.state is state  # a self-loop that changes no state or reason
    _consistent(agent)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(AgentInput), st.floats(0, 50)), max_size=40))
def test_random_walks_keep_the_record_consistent_and_time_exact(
    steps: list[tuple[AgentInput, float]],
) -> None:
    board = AgentBoard()
    agent = board.add("a", now=0.0)
    now = 0.0
    for event, gap in steps:
        now += gap
        before = (agent.state, agent.since)
        try:
            _apply(board, event, now)
        except AgentStateError:
            assert (agent.state, agent.since) == before
        _consistent(agent)
    assert sum(agent.time_in_state(now).values()) == pytest.approx(now)
