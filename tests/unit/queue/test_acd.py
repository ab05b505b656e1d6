"""The ACD: strategies, VIP priority, FIFO, skills with widening, join/leave/overflow rules."""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicc.queue
from minicc.queue.acd import (
    Assignment,
    JoinRefusal,
    callback_offer_due,
    can_take,
    join_allowed,
    next_deadline,
    overflow_due,
    pick,
    position,
    requirements,
    should_leave,
    widen_steps,
)
from minicc.queue.agents import Agent, AgentState
from minicc.queue.models import (
    EmptyRule,
    Member,
    OverflowKind,
    OverflowTarget,
    QueueConfig,
    QueuedCall,
    Strategy,
)

Q = "sales"


def agent(
    agent_id: str,
    *,
    state: AgentState = AgentState.AVAILABLE,
    idle_since: float = 0.0,
    calls: int = 0,
    devices: int = 1,
    queues: frozenset[str] = frozenset({Q}),
) -> Agent:
    return Agent(
        agent_id=agent_id,
        state=state,
        idle_since=idle_since,
        calls_handled=calls,
        devices=devices,
        queues=queues,
    )


def call(
    call_id: str,
    seq: int,
    *,
    priority: int = 0,
    joined_at: float = 0.0,
    skills: Mapping[str, int] | None = None,
    excluded: frozenset[str] = frozenset(),
    callback: bool = False,
) -> QueuedCall:
    return QueuedCall(
        call_id=call_id,
        tenant="acme",
        caller="+15550100",
        joined_at=joined_at,
        sequence=seq,
        priority=priority,
        required_skills=skills or {},
        excluded=excluded,
        callback=callback,
    )


def agents_by_id(*records: Agent) -> dict[str, Agent]:
    return {record.agent_id: record for record in records}


def offers(result: Sequence[Assignment]) -> list[tuple[str, tuple[str, ...]]]:
    return [(a.call_id, a.agents) for a in result]


# -- strategies ---------------------------------------------------------------------


def test_longest_idle_goes_first() -> None:
    queue = QueueConfig(name=Q, strategy=Strategy.LONGEST_IDLE)
    members = [Member(agent_id=x) for x in ("a", "b", "c")]
    agents = agents_by_id(
        agent("a", idle_since=30.0), agent("b", idle_since=10.0), agent("c", idle_since=20.0)
    )
    result = pick(queue, [call("c1", 1), call("c2", 2)], agents, members, now=40.0)
    assert offers(result.assignments) == [("c1", ("b",)), ("c2", ("c",))]


def test_fewest_calls_then_longest_idle() -> None:
    queue = QueueConfig(name=Q, strategy=Strategy.FEWEST_CALLS)
    members = [Member(agent_id=x) for x in ("a", "b", "c")]
    agents = agents_by_id(
        agent("a", calls=3, idle_since=0.0),
        agent("b", calls=1, idle_since=20.0),
        agent("c", calls=1, idle_since=10.0),
    )
    result = pick(queue, [call("c1", 1), call("c2", 2), call("c3", 3)], agents, members, now=30.0)
    assert offers(result.assignments) == [("c1", ("c",)), ("c2", ("b",)), ("c3", ("a",))]


def test_round_robin_continues_after_the_cursor_and_wraps() -> None:
    queue = QueueConfig(name=Q, strategy=Strategy.ROUND_ROBIN)
    members = [Member(agent_id=x) for x in ("a", "b", "c", "d")]
    agents = agents_by_id(agent("a"), agent("b"), agent("c", state=AgentState.PAUSED), agent("d"))
    first = pick(queue, [call("c1", 1)], agents, members, now=0.0, rr_cursor=None)
    assert offers(first.assignments) == [("c1", ("a",))]
    assert first.rr_cursor == "a"
    second = pick(queue, [call("c2", 2), call("c3", 3)], agents, members, 0.0, first.rr_cursor)
    assert offers(second.assignments) == [("c2", ("b",)), ("c3", ("d",))]  # c is paused
    third = pick(queue, [call("c4", 4)], agents, members, 0.0, second.rr_cursor)
    assert offers(third.assignments) == [("c4", ("a",))]
    # A cursor naming a member who left starts over from the first member.
    assert pick(queue, [call("c5", 5)], agents, members, 0.0, "gone").assignments[0].agents == (
        "a",
    )


def test_skills_best_lowest_level_wins_ties_by_longest_idle() -> None:
    queue = QueueConfig(name=Q, strategy=Strategy.SKILLS)
    members = [
        Member(agent_id="a", skills={"en": 9, "billing": 3}),  # weakest skill 3
        Member(agent_id="b", skills={"en": 5, "billing": 6}),  # weakest 5
        Member(agent_id="c", skills={"en": 6, "billing": 5}),  # weakest 5, idle longer
        Member(agent_id="d", skills={"en": 10}),  # lacks billing
    ]
    agents = agents_by_id(
        agent("a"), agent("b", idle_since=20.0), agent("c", idle_since=10.0), agent("d")
    )
    needs = {"en": 3, "billing": 3}
    result = pick(queue, [call("c1", 1, skills=needs)], agents, members, now=30.0)
    assert offers(result.assignments) == [("c1", ("c",))]
    # Without required skills, skills-based falls back to longest idle.
    plain = pick(queue, [call("c2", 2)], agents, members, now=30.0)
    assert plain.assignments[0].agents == ("a",)


def test_ring_all_offers_one_call_to_every_able_agent() -> None:
    queue = QueueConfig(name=Q, strategy=Strategy.RING_ALL)
    members = [Member(agent_id=x) for x in ("a", "b", "c")]
    agents = agents_by_id(agent("a"), agent("b", state=AgentState.ON_CALL), agent("c"))
    result = pick(queue, [call("c1", 1), call("c2", 2)], agents, members, now=0.0)
    assert offers(result.assignments) == [("c1", ("a", "c"))]


def test_penalty_tiers() -> None:
    queue = QueueConfig(name=Q, strategy=Strategy.RING_ALL)
    members = [
        Member(agent_id="a", penalty=1),
        Member(agent_id="b", penalty=0),
        Member(agent_id="c", penalty=0),
    ]
    agents = agents_by_id(agent("a"), agent("b"), agent("c"))
    assert pick(queue, [call("c1", 1)], agents, members, 0.0).assignments[0].agents == ("b", "c")
    agents["b"].state = agents["c"].state = AgentState.ON_CALL
    assert pick(queue, [call("c1", 1)], agents, members, 0.0).assignments[0].agents == ("a",)


# -- order, exclusions, eligibility --------------------------------------------------


def test_vip_goes_ahead_and_fifo_within_priority() -> None:
    queue = QueueConfig(name=Q)
    members = [Member(agent_id="a")]
    agents = agents_by_id(agent("a"))
    waiting = [call("n1", 1), call("n2", 2), call("vip", 3, priority=10), call("n0", 0)]
    assert offers(pick(queue, waiting, agents, members, 0.0).assignments) == [("vip", ("a",))]
    assert [position(c, waiting) for c in waiting] == [3, 4, 1, 2]
    with pytest.raises(ValueError, match="not waiting"):
        position(call("other", 9), waiting)


def test_an_excluded_agent_is_never_offered_that_call_again() -> None:
    queue = QueueConfig(name=Q, strategy=Strategy.RING_ALL)
    members = [Member(agent_id="a"), Member(agent_id="b")]
    agents = agents_by_id(agent("a"), agent("b"))
    first = call("c1", 1).exclude("a")
    result = pick(queue, [first, call("c2", 2)], agents, members, 0.0)
    assert offers(result.assignments) == [("c1", ("b",)), ("c2", ("a",))]
    both = first.exclude("b")
    assert both.excluded == frozenset({"a", "b"}) and both.sequence == 1
    assert offers(pick(queue, [both], agents, members, 0.0).assignments) == []


def test_agents_without_device_or_not_logged_into_the_queue_are_skipped() -> None:
    queue = QueueConfig(name=Q)
    members = [Member(agent_id="a"), Member(agent_id="b"), Member(agent_id="c")]
    agents = agents_by_id(
        agent("a", devices=0),
        agent("b", queues=frozenset({"support"})),
        agent("c", idle_since=99.0),
    )
    assert offers(pick(queue, [call("c1", 1)], agents, members, 100.0).assignments) == [
        ("c1", ("c",))
    ]
    # An agent record without membership of this queue is not offered its calls.
    assert offers(pick(queue, [call("c1", 1)], agents, members[:2], 100.0).assignments) == []


def test_bad_inputs_are_rejected() -> None:
    queue = QueueConfig(name=Q)
    with pytest.raises(ValueError, match="duplicate members"):
        pick(queue, [], {}, [Member(agent_id="a"), Member(agent_id="a")], 0.0)
    with pytest.raises(ValueError, match="duplicate waiting calls"):
        pick(queue, [call("c", 1), call("c", 2)], {}, [], 0.0)


# -- skills widening -----------------------------------------------------------------


def test_widening_lowers_required_levels_step_by_step_to_the_floor() -> None:
    queue = QueueConfig(
        name=Q, strategy=Strategy.SKILLS, required_skills={"en": 2}, widen_after=10.0, widen_floor=5
    )
    waiting_call = call("c1", 1, joined_at=100.0, skills={"billing": 8})
    assert requirements(queue, waiting_call, 109.9) == {"en": 2, "billing": 8}
    assert requirements(queue, waiting_call, 110.0) == {"en": 2, "billing": 7}
    assert requirements(queue, waiting_call, 200.0) == {"en": 2, "billing": 5}
    assert requirements(queue, waiting_call, None) == {"en": 2, "billing": 5}
    assert widen_steps(queue, waiting_call, 125.0) == 2

    members = [Member(agent_id="a", skills={"en": 3, "billing": 6})]
    agents = agents_by_id(agent("a"))
    assert pick(queue, [waiting_call], agents, members, 119.0).assignments == ()
    assert next_deadline(queue, [waiting_call], 119.0) == 120.0
    assert offers(pick(queue, [waiting_call], agents, members, 120.0).assignments) == [
        ("c1", ("a",))
    ]
    # Fully widened (8 -> 5): nothing more to wait for.
    assert next_deadline(queue, [waiting_call], 130.0) is None


def test_call_skills_override_the_queue_default_and_no_widening_without_setting() -> None:
    queue = QueueConfig(name=Q, required_skills={"en": 5})
    waiting_call = call("c1", 1, skills={"en": 7})
    assert requirements(queue, waiting_call, 10_000.0) == {"en": 7}
    assert widen_steps(queue, waiting_call, 10_000.0) == 0


def test_widening_step_boundaries_agree_with_next_deadline() -> None:
    queue = QueueConfig(name=Q, widen_after=0.3, widen_floor=1)
    waiting_call = call("c1", 1, joined_at=0.1, skills={"x": 10})
    for k in range(1, 9):
        deadline = next_deadline(queue, [waiting_call], 0.1 + (k - 1) * 0.3 + 1e-9)
        assert deadline is not None
        assert widen_steps(queue, waiting_call, deadline) == k


# -- join, leave, overflow, callback offer -------------------------------------------


def test_join_refused_when_full() -> None:
    queue = QueueConfig(name=Q, max_length=2)
    waiting = [call("c1", 1), call("c2", 2)]
    assert join_allowed(queue, {}, [], waiting) == (False, JoinRefusal.FULL)
    assert join_allowed(queue, {}, [], waiting[:1]) == (True, None)
    # The joining call itself is not counted against the length.
    assert join_allowed(queue, {}, [], waiting, waiting[1]).allowed


def test_join_and_leave_when_empty_rules() -> None:
    members = [Member(agent_id="a", skills={"fr": 5}), Member(agent_id="b")]
    agents = agents_by_id(
        agent("a", state=AgentState.PAUSED),
        agent("b", state=AgentState.LOGGED_OUT, queues=frozenset()),
    )
    fr_call = call("c1", 1, skills={"fr": 3})
    strict = QueueConfig(
        name=Q, join_empty=EmptyRule.NO_STAFFED, leave_when_empty=EmptyRule.NO_STAFFED
    )
    lenient = QueueConfig(name=Q, join_empty=EmptyRule.NO_LOGGED_IN)
    assert join_allowed(strict, agents, members, [], fr_call) == (False, JoinRefusal.EMPTY)
    assert join_allowed(lenient, agents, members, [], fr_call) == (True, None)  # a is paused
    assert should_leave(strict, fr_call, agents, members)
    assert not should_leave(strict, fr_call.as_callback(), agents, members)
    assert not should_leave(lenient, fr_call, agents, members)  # leave rule IGNORE
    agents["a"].state = AgentState.ON_CALL  # busy but staffed: not empty
    assert join_allowed(strict, agents, members, [], fr_call).allowed
    # ...unless the only staffed agent already declined this call.
    assert should_leave(strict, fr_call.exclude("a"), agents, members)
    # Skills matter: "b" has no French, so a French call finds the queue empty without "a".
    agents["a"].state = AgentState.LOGGED_OUT
    agents["a"].queues = frozenset()
    agents["b"].state = AgentState.AVAILABLE
    agents["b"].queues = frozenset({Q})
    assert not join_allowed(strict, agents, members, [], fr_call).allowed
    assert join_allowed(strict, agents, members, [], call("c2", 2)).allowed
    assert join_allowed(strict, agents, members, []).allowed


def test_empty_judged_at_the_widest_level() -> None:
    queue = QueueConfig(name=Q, join_empty=EmptyRule.NO_STAFFED, widen_after=30.0, widen_floor=4)
    members = [Member(agent_id="a", skills={"fr": 4})]
    agents = agents_by_id(agent("a", state=AgentState.ON_CALL))
    assert join_allowed(queue, agents, members, [], call("c1", 1, skills={"fr": 8})).allowed
    assert not join_allowed(
        queue, agents, members, [], call("c2", 2, skills={"fr": 8, "de": 1})
    ).allowed


def test_overflow_on_max_wait() -> None:
    target = OverflowTarget.parse("queue:support")
    queue = QueueConfig(name=Q, max_wait=120.0, overflow=target)
    waiting_call = call("c1", 1, joined_at=10.0)
    assert overflow_due(waiting_call, queue, 129.9) is None
    assert overflow_due(waiting_call, queue, 130.0) == target
    assert overflow_due(waiting_call.as_callback(), queue, 500.0) is None
    assert next_deadline(queue, [waiting_call, waiting_call.as_callback()], 0.0) == 130.0
    bare = QueueConfig(name=Q, max_wait=60.0)
    assert overflow_due(waiting_call, bare, 70.0) == OverflowTarget(kind=OverflowKind.NONE)
    assert overflow_due(waiting_call, QueueConfig(name=Q), 1e9) is None


def test_callback_offer_above_threshold_only() -> None:
    queue = QueueConfig(name=Q, callback_threshold=300.0)
    live = call("c1", 1)
    assert callback_offer_due(queue, live, 301.0)
    assert not callback_offer_due(queue, live, 300.0)
    assert not callback_offer_due(queue, live, None)
    assert not callback_offer_due(queue, live.as_callback(), 1000.0)
    assert not callback_offer_due(QueueConfig(name=Q), live, 1000.0)


# -- properties ----------------------------------------------------------------------

SKILLS = ("en", "fr", "billing")
AGENT_IDS = tuple(f"a{n}" for n in range(6))


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[QueueConfig, list[QueuedCall], dict[str, Agent], list[Member], float, str | None]:
    # Biased towards agents who can take calls, so that most examples assign something.
    has_skills = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=3)
    needs_skills = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 6), max_size=2)
    widen = draw(st.none() | st.sampled_from([5.0, 30.0]))
    queue = QueueConfig(
        name=Q,
        strategy=draw(st.sampled_from(Strategy)),
        required_skills=draw(
            st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 3), max_size=1)
        ),
        widen_after=widen,
        widen_floor=draw(st.integers(1, 5)),
    )
    ids = draw(st.permutations(AGENT_IDS))[: draw(st.integers(0, 6))]
    members = [
        Member(agent_id=x, skills=draw(has_skills), penalty=draw(st.integers(0, 1))) for x in ids
    ]
    agents = {
        x: Agent(
            agent_id=x,
            state=draw(st.sampled_from([AgentState.AVAILABLE] * 5 + list(AgentState))),
            idle_since=draw(st.floats(0, 100)),
            calls_handled=draw(st.integers(0, 5)),
            devices=draw(st.sampled_from([1, 1, 1, 2, 0])),
            queues=draw(st.sampled_from([frozenset({Q})] * 3 + [frozenset({Q, "x"}), frozenset()])),
        )
        for x in AGENT_IDS
        if draw(st.integers(0, 4)) > 0
    }
    count = draw(st.integers(0, 8))
    sequences = draw(st.lists(st.integers(0, 1000), unique=True, min_size=count, max_size=count))
    waiting = [
        QueuedCall(
            call_id=f"c{n}",
            tenant="acme",
            caller="x",
            joined_at=draw(st.floats(0, 100)),
            sequence=seq,
            priority=draw(st.integers(0, 2)),
            required_skills=draw(needs_skills),
            excluded=frozenset(draw(st.lists(st.sampled_from(AGENT_IDS), max_size=3))),
            callback=draw(st.booleans()),
        )
        for n, seq in enumerate(sequences)
    ]
    now = draw(st.floats(100, 200))
    cursor = draw(st.none() | st.sampled_from(AGENT_IDS))
    return queue, waiting, agents, members, now, cursor


@settings(max_examples=400)
@given(scenarios())
def test_pick_properties(
    scenario: tuple[
        QueueConfig, list[QueuedCall], dict[str, Agent], list[Member], float, str | None
    ],
) -> None:
    queue, waiting, agents, members, now, cursor = scenario
    result = pick(queue, waiting, agents, members, now, cursor)
    by_id = {c.call_id: c for c in waiting}
    member_of = {m.agent_id: m for m in members}

    def able(c: QueuedCall, agent_id: str) -> bool:
        return can_take(
            queue, c, member_of[agent_id], agents.get(agent_id), requirements(queue, c, now)
        )

    offered = [x for a in result.assignments for x in a.agents]
    # No agent is offered two calls, and no call is offered twice.
    assert len(offered) == len(set(offered))
    assert len({a.call_id for a in result.assignments}) == len(result.assignments)
    # Every offer is to an idle, matching, logged-in member who has not declined the call.
    for assignment in result.assignments:
        c = by_id[assignment.call_id]
        assert assignment.agents
        if queue.strategy is not Strategy.RING_ALL:
            assert len(assignment.agents) == 1
        for x in assignment.agents:
            assert x not in c.excluded
            assert able(c, x)
    free = [m.agent_id for m in members if m.agent_id not in offered]
    assigned = {a.call_id: a.agents for a in result.assignments}
    for c in waiting:
        if c.call_id in assigned:
            continue
        # No call waits while a matching agent is idle.
        assert not [x for x in free if able(c, x)], c
        # Nobody served ahead of it could have taken it: VIP before normal, FIFO within.
        for other_id, chosen in assigned.items():
            other = by_id[other_id]
            if other.order_key > c.order_key:
                assert not any(able(c, x) for x in chosen)
    if queue.strategy is Strategy.ROUND_ROBIN and result.assignments:
        assert result.rr_cursor == result.assignments[-1].agents[0]
    elif queue.strategy is not Strategy.ROUND_ROBIN:
        assert result.rr_cursor == cursor


# -- models validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "name"),
        ({"ring_timeout": 0}, "ring_timeout"),
        ({"wrap_up": -1}, "wrap_up"),
        ({"max_wait": float("inf")}, "max_wait"),
        ({"max_length": 0}, "max_length"),
        ({"service_level_target": 120}, "service_level_target"),
        ({"required_skills": {"en": 11}}, "required_skills"),
        ({"required_skills": {"": 1}}, "required_skills"),
        ({"widen_floor": 0}, "widen_floor"),
        ({"max_misses": 0}, "max_misses"),
        ({"overflow": OverflowTarget.parse("queue:sales")}, "overflow"),
        ({"announce_interval": True}, "announce_interval"),
    ],
)
def test_queue_config_errors_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"name": Q, **kwargs}
    with pytest.raises(ValueError, match=rf"QueueConfig\.{field}:"):
        QueueConfig(**args)  # type: ignore[arg-type]


def test_member_and_call_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"Member\.skills:.*'en'"):
        Member(agent_id="a", skills={"en": 0})
    with pytest.raises(ValueError, match=r"Member\.penalty"):
        Member(agent_id="a", penalty=-1)
    with pytest.raises(ValueError, match=r"QueuedCall\.sequence"):
        QueuedCall(call_id="c", tenant="t", caller="x", joined_at=0.0, sequence=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"QueuedCall\.joined_at"):
        QueuedCall(call_id="c", tenant="t", caller="x", joined_at=float("nan"), sequence=1)
    with pytest.raises(ValueError, match=r"QueuedCall\.excluded"):
        QueuedCall(call_id="c", tenant="t", caller="x", joined_at=0, sequence=1, excluded={"a"})  # type: ignore[arg-type]


def test_overflow_targets_parse_and_print() -> None:
    for text in ("queue:support", "voicemail", "callback-offer", "none"):
        assert str(OverflowTarget.parse(text)) == text
    with pytest.raises(ValueError, match="expected queue:NAME"):
        OverflowTarget.parse("mars")
    with pytest.raises(ValueError, match=r"OverflowTarget\.queue"):
        OverflowTarget.parse("queue:")


def test_skills_are_copied_read_only() -> None:
    source = {"en": 5}
    member = Member(agent_id="a", skills=source)
    source["en"] = 1
    assert member.skills["en"] == 5
    with pytest.raises(TypeError):
        member.skills["en"] = 2  # type: ignore[index]


def test_the_core_modules_do_no_io() -> None:
    """models, agents, acd, ewt and stats take time and randomness as arguments."""
    forbidden = {"asyncio", "socket", "time", "sqlite3", "threading", "os", "datetime"}
    package = Path(minicc.queue.__file__).parent
    for name in ("models", "agents", "acd", "ewt", "stats"):
        tree = ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not imported & forbidden, f"{name}.py imports {imported & forbidden}"
