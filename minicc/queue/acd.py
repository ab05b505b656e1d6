"""Automatic call distribution: which waiting call goes to which idle agent, now. Pure.

:func:`pick` is a pure function of the queue's config, its waiting calls, the agents'
records and the queue's members. It walks the calls in queue order -- priority descending,
then join sequence ascending, so a VIP goes first and each priority is first come, first
served -- and gives each call the best idle agent that can take it, by the queue's strategy.
An agent appears in at most one assignment; a call is left waiting only when no idle agent
that could take it is left. The greedy walk in queue order is what makes that true: an agent
skipped by an earlier call could not serve it, and a later call never takes an agent an
earlier one could have had.

An agent can take a call when all of these hold:

- they are AVAILABLE with at least one device (:attr:`Agent.can_take_call
  <minicc.queue.agents.Agent.can_take_call>`) and logged into this queue;
- they are a member of the queue and not in the call's ``excluded`` set (they rejected or
  missed it before);
- for every required skill (the queue's plus the call's own), their level is at least the
  required level, widened: after each full ``widen_after`` seconds of waiting a required
  level drops by one, never below ``widen_floor`` (a level already below the floor stays);
- no member with a lower penalty is also able to take it (penalty tiers, as in Asterisk).

Among those, by strategy:

- LONGEST_IDLE: the earliest ``idle_since`` (the agent's wait for work; see agents.py).
- FEWEST_CALLS: fewest calls handled today, ties by longest idle.
- SKILLS: the best match, scored as the agent's *lowest* level over the required skills
  (the weakest skill bounds how well the call is served), ties by longest idle.
- ROUND_ROBIN: the first able member after the cursor in member order, wrapping; the
  returned cursor is the last agent offered.
- RING_ALL: every able agent at once, in one assignment; the first to answer wins.

Remaining ties go to member order, so every decision is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from minicc.queue.agents import Agent
from minicc.queue.models import (
    EmptyRule,
    Member,
    OverflowTarget,
    QueueConfig,
    QueuedCall,
    Strategy,
)

__all__ = [
    "Assignment",
    "JoinDecision",
    "JoinRefusal",
    "Pick",
    "callback_offer_due",
    "can_take",
    "join_allowed",
    "matches",
    "next_deadline",
    "ordered",
    "overflow_due",
    "pick",
    "position",
    "requirements",
    "should_leave",
    "widen_steps",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    """Offer one call to one agent, or to several at once (ring-all)."""

    call_id: str
    """The call to offer."""
    agents: tuple[str, ...]
    """Agents to ring, in member order; more than one only for ring-all."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pick:
    """The outcome of one :func:`pick`."""

    assignments: tuple[Assignment, ...]
    """Offers to make now, in queue order of their calls."""
    rr_cursor: str | None
    """The round-robin cursor to pass to the next pick (unchanged for other strategies)."""


class JoinRefusal(Enum):
    FULL = "full"
    """``max_length`` callers are already waiting."""
    EMPTY = "empty"
    """The queue is empty by its ``join_empty`` rule."""


class JoinDecision(NamedTuple):
    allowed: bool
    reason: JoinRefusal | None


def ordered(waiting: Sequence[QueuedCall]) -> list[QueuedCall]:
    """The calls in queue order: priority descending, then sequence ascending."""
    return sorted(waiting, key=lambda call: call.order_key)


def position(call: QueuedCall, waiting: Sequence[QueuedCall]) -> int:
    """The call's 1-based place in queue order ("you are caller number N").

    Raises:
        ValueError: the call is not in ``waiting``.
    """
    for index, other in enumerate(ordered(waiting), start=1):
        if other.call_id == call.call_id:
            return index
    raise ValueError(f"call {call.call_id} is not waiting in this queue")


def widen_steps(queue: QueueConfig, call: QueuedCall, now: float) -> int:
    """How many whole ``widen_after`` periods the call has waited (0 without widening)."""
    step = queue.widen_after
    waited = now - call.joined_at
    if step is None or waited <= 0:
        return 0
    steps = math.floor(waited / step)
    # Agree exactly with next_deadline(), which computes joined_at + k * step.
    if call.joined_at + (steps + 1) * step <= now:
        steps += 1
    while steps > 0 and call.joined_at + steps * step > now:
        steps -= 1
    return steps


def _widened(level: int, steps: int, floor: int) -> int:
    return level if level <= floor else max(floor, level - steps)


def _widen_all(queue: QueueConfig, required: Mapping[str, int], steps: int) -> dict[str, int]:
    if queue.widen_after is None:
        steps = 0
    return {name: _widened(level, steps, queue.widen_floor) for name, level in required.items()}


# More steps than any level can drop: the most widened requirement.
_FULLY_WIDENED = 10**6


def requirements(queue: QueueConfig, call: QueuedCall, now: float | None) -> dict[str, int]:
    """The levels the call needs now: queue's and call's (the call's wins a clash), widened.

    ``now=None`` gives the most widened requirement the call can ever reach.
    """
    merged = {**queue.required_skills, **call.required_skills}
    steps = _FULLY_WIDENED if now is None else widen_steps(queue, call, now)
    return _widen_all(queue, merged, steps)


def matches(member: Member, required: Mapping[str, int]) -> bool:
    """True when the member has every required skill at the required level or above."""
    return all(member.skills.get(name, 0) >= level for name, level in required.items())


def can_take(
    queue: QueueConfig,
    call: QueuedCall,
    member: Member,
    agent: Agent | None,
    required: Mapping[str, int],
) -> bool:
    """Whether this member could be offered this call right now (penalty aside)."""
    return (
        agent is not None
        and agent.can_take_call
        and queue.name in agent.queues
        and member.agent_id not in call.excluded
        and matches(member, required)
    )


def _check_inputs(waiting: Sequence[QueuedCall], members: Sequence[Member]) -> None:
    ids = [member.agent_id for member in members]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate members in queue: {sorted(ids)}")
    call_ids = [call.call_id for call in waiting]
    if len(set(call_ids)) != len(call_ids):
        raise ValueError(f"duplicate waiting calls: {sorted(call_ids)}")


def pick(
    queue: QueueConfig,
    waiting: Sequence[QueuedCall],
    agents: Mapping[str, Agent],
    members: Sequence[Member],
    now: float,
    rr_cursor: str | None = None,
) -> Pick:
    """Decide the offers to make now.

    Args:
        queue: the queue's config (strategy, widening, required skills).
        waiting: calls waiting and not being offered at the moment (an offer in progress
            has its agents RESERVED; leave its call out until the offer fails).
        agents: the agents' live records by id (those not present count as logged out).
        members: the queue's members, in member order (round-robin and tie order).
        now: engine-clock time, for skill widening.
        rr_cursor: the cursor returned by the previous pick of this queue.

    Returns:
        The assignments, in queue order, and the new round-robin cursor.

    Raises:
        ValueError: duplicate member ids or duplicate call ids.
    """
    _check_inputs(waiting, members)
    taken: set[str] = set()
    assignments: list[Assignment] = []
    cursor = rr_cursor
    order = {member.agent_id: index for index, member in enumerate(members)}
    for call in ordered(waiting):
        required = requirements(queue, call, now)
        able = [
            member
            for member in members
            if member.agent_id not in taken
            and can_take(queue, call, member, agents.get(member.agent_id), required)
        ]
        if not able:
            continue
        best_penalty = min(member.penalty for member in able)
        able = [member for member in able if member.penalty == best_penalty]
        chosen = _choose(queue.strategy, able, agents, required, order, cursor)
        if queue.strategy is Strategy.ROUND_ROBIN:
            cursor = chosen[-1]
        taken.update(chosen)
        assignments.append(Assignment(call_id=call.call_id, agents=chosen))
    return Pick(assignments=tuple(assignments), rr_cursor=cursor)


def _idle_since(agent: Agent) -> float:
    return agent.since if agent.idle_since is None else agent.idle_since


def _choose(
    strategy: Strategy,
    able: list[Member],
    agents: Mapping[str, Agent],
    required: Mapping[str, int],
    order: Mapping[str, int],
    cursor: str | None,
) -> tuple[str, ...]:
    """The agent(s) to ring among ``able`` (non-empty, same penalty, in member order)."""
    if strategy is Strategy.RING_ALL:
        return tuple(member.agent_id for member in able)
    if strategy is Strategy.ROUND_ROBIN:
        size = len(order)
        start = order.get(cursor, -1) if cursor is not None else -1
        best = min(able, key=lambda m: (order[m.agent_id] - start - 1) % size)
        return (best.agent_id,)

    def idle(member: Member) -> tuple[float, int]:
        return (_idle_since(agents[member.agent_id]), order[member.agent_id])

    if strategy is Strategy.LONGEST_IDLE:
        best = min(able, key=idle)
    elif strategy is Strategy.FEWEST_CALLS:
        best = min(able, key=lambda m: (agents[m.agent_id].calls_handled, *idle(m)))
    else:  # Strategy.SKILLS

        def score(member: Member) -> int:
            return min((member.skills.get(name, 0) for name in required), default=0)

        best = min(able, key=lambda m: (-score(m), *idle(m)))
    return (best.agent_id,)


def _is_empty(
    rule: EmptyRule,
    queue: QueueConfig,
    call: QueuedCall | None,
    agents: Mapping[str, Agent],
    members: Sequence[Member],
) -> bool:
    """Whether no member who could ever serve the call is logged in / staffed here."""
    if rule is EmptyRule.IGNORE:
        return False
    if call is None:
        # Judge by the queue's own requirements, fully widened.
        required = _widen_all(queue, queue.required_skills, _FULLY_WIDENED)
        excluded: frozenset[str] = frozenset()
    else:
        required = requirements(queue, call, None)
        excluded = call.excluded
    for member in members:
        agent = agents.get(member.agent_id)
        if (
            agent is None
            or member.agent_id in excluded
            or queue.name not in agent.queues
            or not matches(member, required)
        ):
            continue
        if rule is EmptyRule.NO_LOGGED_IN and agent.logged_in:
            return False
        if rule is EmptyRule.NO_STAFFED and agent.staffed:
            return False
    return True


def join_allowed(
    queue: QueueConfig,
    agents: Mapping[str, Agent],
    members: Sequence[Member],
    waiting: Sequence[QueuedCall],
    call: QueuedCall | None = None,
) -> JoinDecision:
    """May a new caller join? Refused when full (``max_length``) or empty (``join_empty``).

    ``call`` is the joining call when known (its skills decide who counts for emptiness);
    it is not counted against ``max_length`` if it is already in ``waiting``. Callbacks in
    the queue count towards the length: they hold a place.
    """
    others = [c for c in waiting if call is None or c.call_id != call.call_id]
    if queue.max_length is not None and len(others) >= queue.max_length:
        return JoinDecision(False, JoinRefusal.FULL)
    if _is_empty(queue.join_empty, queue, call, agents, members):
        return JoinDecision(False, JoinRefusal.EMPTY)
    return JoinDecision(True, None)


def should_leave(
    queue: QueueConfig,
    call: QueuedCall,
    agents: Mapping[str, Agent],
    members: Sequence[Member],
) -> bool:
    """Whether a waiting caller leaves now by ``leave_when_empty``.

    A callback never leaves this way: the caller was promised a call and is not listening
    to music, so the place is kept until an agent comes back.
    """
    if call.callback:
        return False
    return _is_empty(queue.leave_when_empty, queue, call, agents, members)


def overflow_due(call: QueuedCall, queue: QueueConfig, now: float) -> OverflowTarget | None:
    """The overflow target if the call has reached ``max_wait``, else None.

    A target of kind NONE means the call leaves the queue with nowhere to go. Callbacks are
    exempt: their caller already chose to wait off the line.
    """
    if queue.max_wait is None or call.callback:
        return None
    if now - call.joined_at >= queue.max_wait:
        return queue.overflow
    return None


def callback_offer_due(queue: QueueConfig, call: QueuedCall, ewt: float | None) -> bool:
    """Whether to offer "press 1 to be called back": the estimate is above the threshold.

    With no honest estimate (``ewt`` None) nothing is offered on its account.
    """
    return (
        queue.callback_threshold is not None
        and not call.callback
        and ewt is not None
        and ewt > queue.callback_threshold
    )


def next_deadline(queue: QueueConfig, waiting: Sequence[QueuedCall], now: float) -> float | None:
    """The next time at which a call overflows or its skills widen (None: nothing pending).

    The engine re-runs :func:`overflow_due` and :func:`pick` then, since a widened call may
    match an agent who has been idle all along.
    """
    times: list[float] = []
    for call in waiting:
        if queue.max_wait is not None and not call.callback:
            times.append(call.joined_at + queue.max_wait)
        step = queue.widen_after
        if step is None:
            continue
        merged = {**queue.required_skills, **call.required_skills}
        widest = max(merged.values(), default=0)
        steps = widen_steps(queue, call, now)
        if widest - steps > queue.widen_floor:
            times.append(call.joined_at + (steps + 1) * step)
    # A time already passed means "now": the engine has a call to overflow.
    return min(times, default=None)
