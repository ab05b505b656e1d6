"""Estimated wait time from recent handle times and the agents actually staffed. Pure.

Asterisk divides the total hold time by the number of calls, so its estimate describes
callers who already left and ignores who is staffed now. This module estimates the wait of
*this* caller from the state of the queue at this moment:

1. The pool: members who could serve the call (skills at its current requirement, not
   excluded), logged into the queue, staffed (not paused) and with a device.
2. When each pool agent will be free, as a distribution drawn from the queue's recent
   calls (:class:`HandleTimes`):

   - AVAILABLE: now;
   - WRAP_UP: exactly when the wrap-up ends;
   - RESERVED (ringing): after one whole handle time (talk + wrap-up) of a recent call;
   - ON_CALL for ``e`` seconds: after ``T - e`` for a recent talk time ``T > e`` (so a
     call that has run long is expected to run on, as skewed talk times do), then a
     recent wrap-up; when no recent call lasted ``e``, 10% of the mean talk time is left.

3. The caller is at place ``k`` among the calls this pool serves (calls ahead in queue
   order that some pool agent could take, plus one). One simulated future draws a free
   time for each agent and gives the ``k`` callers, in order, the agent free first, each
   call keeping them busy for a drawn handle time (:func:`wait_at_position`).
4. The estimate is the median over ``samples`` simulated futures: half the callers are
   expected to wait less, half more, and it is the value with the least expected absolute
   error. Simulating matters: the first of ten busy agents frees up far sooner than the
   average remaining call, which a formula on averages (``AHT - e`` per agent) misses.

Randomness comes from an injected :class:`random.Random`, so an estimate is reproducible.
``benchmarks/ewt_simulation.py`` measures the error against simulated actual waits.

When there are no recent handle times or no staffed agent, there is no honest estimate and
the functions return None; the announcement then says nothing about the wait.

Not modelled: callers ahead who abandon (the estimate errs long), calls of other queues
competing for shared agents (it errs short), and ring-all (one agent per call is assumed).
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from minicc.queue.acd import matches, requirements
from minicc.queue.agents import Agent, AgentState
from minicc.queue.models import Member, QueueConfig, QueuedCall

__all__ = [
    "HandleTimes",
    "announce_minutes",
    "estimate_wait",
    "free_time_sampler",
    "wait_at_position",
]

# Share of the mean talk time assumed left on a call longer than every recent one.
_RESIDUAL_FLOOR = 0.1

FreeTime = Callable[[random.Random], float]
"""Draws the seconds until one agent is free."""


class HandleTimes:
    """The last ``size`` handled calls of a queue: talk and wrap-up seconds.

    Feed it with :meth:`record` when an agent's wrap-up for a call of this queue ends.
    An estimate needs at least ``min_samples`` calls.
    """

    def __init__(self, size: int = 100, min_samples: int = 3) -> None:
        if size < 1:
            raise ValueError(f"HandleTimes.size must be >= 1, got {size}")
        if not 1 <= min_samples <= size:
            raise ValueError(f"HandleTimes.min_samples must be 1-{size}, got {min_samples}")
        self._talk: deque[float] = deque(maxlen=size)
        self._wrap: deque[float] = deque(maxlen=size)
        self.min_samples = min_samples

    def record(self, talk: float, wrap_up: float) -> None:
        """One handled call: seconds on the call and seconds of wrap-up after it."""
        for name, value in (("talk", talk), ("wrap_up", wrap_up)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"HandleTimes.record: {name} must be >= 0 seconds, got {value}")
        self._talk.append(talk)
        self._wrap.append(wrap_up)

    def __len__(self) -> int:
        return len(self._talk)

    @property
    def ready(self) -> bool:
        """Enough recent calls for an estimate."""
        return len(self._talk) >= self.min_samples

    @property
    def talks(self) -> tuple[float, ...]:
        return tuple(self._talk)

    @property
    def wrap_ups(self) -> tuple[float, ...]:
        return tuple(self._wrap)

    @property
    def mean_talk(self) -> float | None:
        return statistics.fmean(self._talk) if self.ready else None

    @property
    def mean_wrap_up(self) -> float | None:
        return statistics.fmean(self._wrap) if self.ready else None

    @property
    def aht(self) -> float | None:
        """Average handle time (talk + wrap-up) of the window; None before ``min_samples``."""
        talk, wrap = self.mean_talk, self.mean_wrap_up
        return None if talk is None or wrap is None else talk + wrap

    def residual_talks(self, elapsed: float) -> list[float]:
        """Talk seconds left on a call ``elapsed`` long, one per recent call that was longer.

        When no recent call was that long: a single value, 10% of the mean talk time.
        Empty before ``min_samples``.
        """
        mean = self.mean_talk
        if mean is None:
            return []
        return [t - elapsed for t in self._talk if t > elapsed] or [_RESIDUAL_FLOOR * mean]

    def draw_handle(self, rng: random.Random) -> float:
        """One recent call's talk + wrap-up, picked at random."""
        index = rng.randrange(len(self._talk))
        return self._talk[index] + self._wrap[index]

    def draw_wrap_up(self, rng: random.Random) -> float:
        return self._wrap[rng.randrange(len(self._wrap))]


def free_time_sampler(agent: Agent, now: float, handle_times: HandleTimes) -> FreeTime | None:
    """How to draw the seconds until a staffed agent is free; None when not staffed or
    without handle times. See the module docstring for the rule per state."""
    if not handle_times.ready:
        return None
    state = agent.state
    if state is AgentState.AVAILABLE:
        return lambda rng: 0.0
    if state is AgentState.WRAP_UP:
        left = 0.0 if agent.wrap_up_until is None else max(0.0, agent.wrap_up_until - now)
        return lambda rng: left
    if state is AgentState.RESERVED:
        return handle_times.draw_handle
    if state is AgentState.ON_CALL:
        started = agent.since if agent.call_started_at is None else agent.call_started_at
        residuals = handle_times.residual_talks(max(0.0, now - started))

        def on_call(rng: random.Random) -> float:
            return residuals[rng.randrange(len(residuals))] + handle_times.draw_wrap_up(rng)

        return on_call
    return None  # logged out or paused: not staffed


def wait_at_position(position: int, free: Sequence[float], handles: Iterable[float]) -> float:
    """When the ``position``-th caller (1-based) gets an agent, in one simulated future.

    Args:
        position: the caller's place among the calls the agents serve.
        free: seconds until each agent is free.
        handles: handle times of the calls ahead, in order (``position - 1`` are used).

    Raises:
        ValueError: position < 1, no agents, or too few handle times.
    """
    if position < 1:
        raise ValueError(f"position must be >= 1, got {position}")
    if not free:
        raise ValueError("no agents to wait for")
    heap = list(free)
    heapq.heapify(heap)
    durations = iter(handles)
    for _ in range(position - 1):
        try:
            duration = next(durations)
        except StopIteration:
            raise ValueError(f"{position - 1} handle times needed") from None
        heapq.heappush(heap, heapq.heappop(heap) + duration)
    return heap[0]


def estimate_wait(
    call: QueuedCall,
    *,
    queue: QueueConfig,
    waiting: Sequence[QueuedCall],
    agents: Mapping[str, Agent],
    members: Sequence[Member],
    handle_times: HandleTimes,
    now: float,
    rng: random.Random,
    samples: int = 64,
) -> float | None:
    """Estimated seconds until ``call`` is offered to an agent, or None without an honest one.

    ``call`` need not be in ``waiting`` yet (an estimate at join); the calls ahead of it
    are those of ``waiting`` before it in queue order. The estimate is the median of
    ``samples`` simulated futures drawn with ``rng``.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if not handle_times.ready:
        return None
    required = requirements(queue, call, now)
    pool: list[Member] = []
    samplers: list[FreeTime] = []
    for member in members:
        agent = agents.get(member.agent_id)
        if (
            agent is None
            or not agent.staffed
            or agent.devices <= 0
            or queue.name not in agent.queues
            or member.agent_id in call.excluded
            or not matches(member, required)
        ):
            continue
        sampler = free_time_sampler(agent, now, handle_times)
        if sampler is not None:
            pool.append(member)
            samplers.append(sampler)
    if not pool:
        return None
    ahead = 0
    for other in waiting:
        if other.call_id == call.call_id or other.order_key >= call.order_key:
            continue
        other_required = requirements(queue, other, now)
        if any(
            matches(member, other_required) and member.agent_id not in other.excluded
            for member in pool
        ):
            ahead += 1
    futures = [
        wait_at_position(
            ahead + 1,
            [draw(rng) for draw in samplers],
            (handle_times.draw_handle(rng) for _ in range(ahead)),
        )
        for _ in range(samples)
    ]
    return statistics.median(futures)


def announce_minutes(ewt: float | None) -> int | None:
    """Whole minutes to announce: rounded to the nearest, never 0 (1 reads "about a minute").

    None (no honest estimate) stays None: the announcement leaves the wait out.
    """
    if ewt is None:
        return None
    if not math.isfinite(ewt) or ewt < 0:
        raise ValueError(f"estimated wait must be >= 0 seconds, got {ewt}")
    return max(1, math.floor(ewt / 60 + 0.5))
