"""Estimated wait time: handle-time window, per-agent free times, position simulation."""

from __future__ import annotations

import random
from itertools import repeat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicc.queue.agents import Agent, AgentState
from minicc.queue.ewt import (
    HandleTimes,
    announce_minutes,
    estimate_wait,
    free_time_sampler,
    wait_at_position,
)
from minicc.queue.models import Member, QueueConfig, QueuedCall

Q = "support"
NOW = 1000.0


def handle_times() -> HandleTimes:
    window = HandleTimes(size=10)
    for talk in (100.0, 200.0, 300.0, 400.0):
        window.record(talk, 20.0)
    return window  # mean talk 250, mean wrap-up 20, AHT 270


def steady_times() -> HandleTimes:
    """Every recent call 250 s of talk and 20 s of wrap-up: estimates are exact numbers."""
    window = HandleTimes(size=10)
    for _ in range(5):
        window.record(250.0, 20.0)
    return window


def staffed(agent_id: str, state: AgentState, **fields: float) -> Agent:
    record = Agent(agent_id=agent_id, state=state, queues=frozenset({Q}), since=0.0)
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def waiting_call(call_id: str, seq: int, **skills: int) -> QueuedCall:
    return QueuedCall(
        call_id=call_id,
        tenant="acme",
        caller="+15550100",
        joined_at=NOW - 60,
        sequence=seq,
        required_skills=skills,
    )


def test_handle_time_window() -> None:
    window = HandleTimes(size=3, min_samples=2)
    assert window.aht is None
    window.record(60.0, 10.0)
    assert window.aht is None and not window.ready
    window.record(120.0, 20.0)
    assert window.aht == 105.0
    window.record(180.0, 30.0)
    window.record(240.0, 40.0)  # the first call drops out of the window
    assert len(window) == 3
    assert window.mean_talk == 180.0
    assert window.aht == 210.0
    with pytest.raises(ValueError, match="talk"):
        window.record(-1.0, 0.0)
    with pytest.raises(ValueError, match="min_samples"):
        HandleTimes(size=2, min_samples=3)


def test_residual_talks_are_the_recent_calls_that_were_longer() -> None:
    window = handle_times()
    assert window.residual_talks(0.0) == [100.0, 200.0, 300.0, 400.0]
    assert window.residual_talks(150.0) == [50.0, 150.0, 250.0]
    assert window.residual_talks(350.0) == [50.0]
    # Longer than every recent call: a floor of 10% of the mean talk time.
    assert window.residual_talks(500.0) == [25.0]
    assert HandleTimes().residual_talks(0.0) == []


def draws(sampler: object, n: int = 200) -> set[float]:
    assert callable(sampler)
    rng = random.Random(3)
    return {sampler(rng) for _ in range(n)}


def test_free_time_per_state() -> None:
    window = handle_times()
    assert draws(free_time_sampler(staffed("a", AgentState.AVAILABLE), NOW, window)) == {0.0}
    wrapping = staffed("a", AgentState.WRAP_UP, wrap_up_until=NOW + 12)
    assert draws(free_time_sampler(wrapping, NOW, window)) == {12.0}
    ringing = free_time_sampler(staffed("a", AgentState.RESERVED), NOW, window)
    assert draws(ringing) == {120.0, 220.0, 320.0, 420.0}  # a whole recent call
    on_call = staffed("a", AgentState.ON_CALL, call_started_at=NOW - 150)
    # The calls longer than 150 s, less 150, plus a wrap-up.
    assert draws(free_time_sampler(on_call, NOW, window)) == {70.0, 170.0, 270.0}
    assert free_time_sampler(staffed("a", AgentState.PAUSED), NOW, window) is None
    assert free_time_sampler(staffed("a", AgentState.LOGGED_OUT), NOW, window) is None
    assert free_time_sampler(staffed("a", AgentState.AVAILABLE), NOW, HandleTimes()) is None


def test_wait_at_position_simulates_assignments() -> None:
    assert wait_at_position(1, [0.0, 100.0], []) == 0.0
    assert wait_at_position(2, [0.0, 100.0], repeat(300.0)) == 100.0
    assert wait_at_position(3, [0.0, 100.0], repeat(300.0)) == 300.0
    assert wait_at_position(4, [0.0, 100.0], repeat(300.0)) == 400.0
    assert wait_at_position(3, [0.0, 100.0], [50.0, 500.0]) == 100.0  # 0+50, then 50+500
    with pytest.raises(ValueError):
        wait_at_position(0, [0.0], [])
    with pytest.raises(ValueError):
        wait_at_position(1, [], [])
    with pytest.raises(ValueError, match="handle times needed"):
        wait_at_position(3, [0.0], [1.0])


def test_estimate_uses_the_staffed_pool_and_the_place_in_line() -> None:
    queue = QueueConfig(name=Q)
    members = [
        Member(agent_id="a", skills={"en": 5}),
        Member(agent_id="b", skills={"en": 5}),
        Member(agent_id="c", skills={"en": 5}),  # paused: not staffed
        Member(agent_id="d", skills={"fr": 5}),  # cannot serve English calls
    ]
    agents = {
        "a": staffed("a", AgentState.ON_CALL, call_started_at=NOW - 150),  # free in 100 + 20
        "b": staffed("b", AgentState.WRAP_UP, wrap_up_until=NOW + 12),  # free in 12
        "c": staffed("c", AgentState.PAUSED),
        "d": staffed("d", AgentState.AVAILABLE),
    }
    ahead = [waiting_call("w1", 1, en=3), waiting_call("w2", 2, en=1)]
    french = waiting_call("w0", 0, fr=2)  # ahead in line, but served by "d" alone
    me = waiting_call("me", 3, en=2)

    def estimate(waiting: list[QueuedCall], call: QueuedCall = me) -> float | None:
        return estimate_wait(
            call,
            queue=queue,
            waiting=waiting,
            agents=agents,
            members=members,
            handle_times=steady_times(),
            now=NOW,
            rng=random.Random(1),
        )

    # Third for {a, b}: w1 takes b at 12 (busy until 282), w2 takes a at 120, me: 282.
    assert estimate([*ahead, french]) == 282.0
    assert estimate([*ahead, french, me]) == 282.0  # already in line: the same
    assert estimate([]) == 12.0
    # More staff, shorter wait (the estimate follows who is staffed, not total/n).
    # With "c" available: w1 takes c at once, w2 takes b at 12, me gets a at 120.
    agents["c"].state = AgentState.AVAILABLE
    assert estimate([*ahead, french]) == 120.0
    assert estimate([ahead[0]]) == 12.0
    # An agent who declined this call does not count for it.
    assert estimate([], me.exclude("c").exclude("b")) == 120.0


def test_estimate_is_the_median_of_simulated_futures() -> None:
    """Ten agents who all just answered: the first is free long before the mean call ends."""
    window = HandleTimes(size=10)
    for talk in (10.0, 20.0, 30.0, 40.0, 400.0):
        window.record(talk, 0.0)  # mean 100, heavily skewed
    queue = QueueConfig(name=Q)
    members = [Member(agent_id=f"a{n}") for n in range(10)]
    agents = {
        m.agent_id: staffed(m.agent_id, AgentState.ON_CALL, call_started_at=NOW) for m in members
    }
    estimate = estimate_wait(
        waiting_call("me", 1),
        queue=queue,
        waiting=[],
        agents=agents,
        members=members,
        handle_times=window,
        now=NOW,
        rng=random.Random(5),
    )
    # Each agent is free after one of the five talk times; the first of ten is almost
    # surely the 10 s one (chance it is not: 0.8 ** 10, about 11%).
    assert estimate == 10.0
    again = estimate_wait(
        waiting_call("me", 1),
        queue=queue,
        waiting=[],
        agents=agents,
        members=members,
        handle_times=window,
        now=NOW,
        rng=random.Random(5),
    )
    assert again == estimate  # reproducible with the same generator


def test_no_honest_estimate_gives_none() -> None:
    queue = QueueConfig(name=Q)
    members = [Member(agent_id="a")]
    paused = {"a": staffed("a", AgentState.PAUSED)}
    busy = {"a": staffed("a", AgentState.ON_CALL, call_started_at=NOW)}
    call = waiting_call("me", 1)
    common = {
        "queue": queue,
        "waiting": [],
        "members": members,
        "now": NOW,
        "rng": random.Random(0),
    }
    assert estimate_wait(call, agents=paused, handle_times=handle_times(), **common) is None  # type: ignore[arg-type]
    assert estimate_wait(call, agents=busy, handle_times=HandleTimes(), **common) is None  # type: ignore[arg-type]
    no_device = {"a": staffed("a", AgentState.AVAILABLE, devices=0)}
    assert estimate_wait(call, agents=no_device, handle_times=handle_times(), **common) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(None, None), (0.0, 1), (29.0, 1), (89.9, 1), (90.0, 2), (150.0, 3), (3600.0, 60)],
)
def test_announce_minutes(seconds: float | None, minutes: int | None) -> None:
    assert announce_minutes(seconds) == minutes


def test_announce_minutes_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        announce_minutes(-1.0)


@given(
    st.lists(st.floats(0, 1000), min_size=1, max_size=10),
    st.floats(1, 600),
    st.integers(1, 30),
)
def test_wait_grows_with_position_and_is_bounded(free: list[float], aht: float, k: int) -> None:
    here = wait_at_position(k, free, repeat(aht))
    assert here <= wait_at_position(k + 1, free, repeat(aht))
    # At most: wait for the slowest agent, then k-1 full handle times on one agent.
    bound = max(free) + (k - 1) * aht
    assert min(free) <= here <= bound + 1e-9 * bound
