"""How close announced waits come to actual waits: ``python benchmarks/ewt_simulation.py``.

A discrete-event simulation of one queue driven by minicc's own pure core: callers arrive
as a Poisson process, talk times are lognormal, every agent takes a fixed wrap-up, and
:func:`minicc.queue.acd.pick` (longest idle) with :class:`minicc.queue.agents.AgentBoard`
decides who answers what. When a caller joins, three estimates of their wait are taken:

- **minicc**: :func:`minicc.queue.ewt.estimate_wait` (recent handle times, staffed agents,
  place in line);
- **total hold / calls**: the mean wait of the callers answered so far (what Asterisk
  announces: total hold time divided by calls);
- **position x AHT / agents**: the textbook shortcut.

Each estimate is compared with the wait the caller then actually had. Errors are reported
for callers who found no idle agent (those who are announced a wait at all); callers who
abandon have no actual wait and are left out. Seeded, so the table is reproducible.

    python benchmarks/ewt_simulation.py [--calls 4000] [--seed 7] [--write]

``--write`` also stores the table in ``benchmarks/results/ewt.json``, from which
``python -m benchmarks.bench_switch report`` puts it into ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from minicc.queue.acd import pick
from minicc.queue.agents import AgentBoard, AgentStateChanged
from minicc.queue.ewt import HandleTimes, estimate_wait
from minicc.queue.models import Member, QueueConfig, QueuedCall, Strategy

QUEUE = "sim"
MEAN_TALK = 180.0
TALK_SIGMA = 0.8  # lognormal shape: coefficient of variation about 0.95
WRAP_UP = 15.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    agents: int
    load: float
    """Offered load per agent (arrival rate x mean handle time / agents)."""
    patience: float | None = None
    """Mean of the callers' exponential patience; None: nobody abandons."""


SCENARIOS = (
    Scenario(name="small team", agents=3, load=0.80),
    Scenario(name="busy team", agents=10, load=0.90),
    Scenario(name="near saturation", agents=10, load=0.97),
    Scenario(name="larger center", agents=25, load=0.95),
    Scenario(name="with abandons", agents=10, load=0.97, patience=180.0),
)


@dataclass(slots=True)
class Outcome:
    minicc: list[float] = field(default_factory=list)
    naive_hold: list[float] = field(default_factory=list)
    naive_position: list[float] = field(default_factory=list)
    actual: list[float] = field(default_factory=list)
    queued: int = 0
    measured: int = 0
    abandoned: int = 0
    no_estimate: int = 0


def simulate(scenario: Scenario, calls: int, seed: int) -> Outcome:
    """Run one scenario; return the estimates and actual waits of callers who queued."""
    rng = random.Random(seed)
    estimator_rng = random.Random(seed + 1_000)  # its own stream: estimating never changes the run
    mu = math.log(MEAN_TALK) - TALK_SIGMA**2 / 2
    rate = scenario.load * scenario.agents / (MEAN_TALK + WRAP_UP)
    queue = QueueConfig(name=QUEUE, strategy=Strategy.LONGEST_IDLE, wrap_up=WRAP_UP)
    board = AgentBoard()
    members = [Member(agent_id=f"a{n}") for n in range(scenario.agents)]
    for member in members:
        board.add(member.agent_id, now=0.0)
        board.login(member.agent_id, now=0.0, queues=[QUEUE])
    handle = HandleTimes(size=50)
    waiting: dict[str, QueuedCall] = {}
    talk_of: dict[str, float] = {}
    estimates: dict[str, tuple[float | None, float | None, float | None]] = {}
    hold_total, hold_count = 0.0, 0
    outcome = Outcome()
    warm_up = calls // 10
    heap: list[tuple[float, int, str, str]] = []
    counter = 0

    def schedule(at: float, kind: str, what: str) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(heap, (at, counter, kind, what))

    def dispatch(now: float) -> None:
        nonlocal hold_total, hold_count
        result = pick(queue, list(waiting.values()), board.agents, members, now)
        for assignment in result.assignments:
            call = waiting.pop(assignment.call_id)
            [agent_id] = assignment.agents
            board.offer(agent_id, call_id=call.call_id, queue=QUEUE, now=now)
            board.answered(agent_id, call_id=call.call_id, now=now)
            wait = now - call.joined_at
            hold_total += wait
            hold_count += 1
            ours, by_hold, by_position = estimates.pop(call.call_id)
            if call.sequence >= warm_up and call.call_id in queued_ids:
                outcome.measured += 1
                outcome.actual.append(wait)
                if ours is None:
                    outcome.no_estimate += 1
                else:
                    outcome.minicc.append(abs(ours - wait))
                outcome.naive_hold.append(abs((by_hold or 0.0) - wait))
                outcome.naive_position.append(abs((by_position or 0.0) - wait))
            talk = rng.lognormvariate(mu, TALK_SIGMA)
            talk_of[call.call_id] = talk
            schedule(now + talk, "end", f"{agent_id} {call.call_id}")

    queued_ids: set[str] = set()
    schedule(rng.expovariate(rate), "arrival", "0")
    while heap:
        now, _, kind, what = heapq.heappop(heap)
        if kind == "arrival":
            sequence = int(what)
            call = QueuedCall(
                call_id=f"c{sequence}", tenant="t", caller="x", joined_at=now, sequence=sequence
            )
            idle = any(board[m.agent_id].can_take_call for m in members)
            ours = estimate_wait(
                call,
                queue=queue,
                waiting=list(waiting.values()),
                agents=board.agents,
                members=members,
                handle_times=handle,
                now=now,
                rng=estimator_rng,
            )
            by_hold = hold_total / hold_count if hold_count else None
            aht = handle.aht
            by_position = (len(waiting) + 1) * aht / scenario.agents if aht is not None else None
            estimates[call.call_id] = (ours, by_hold, by_position)
            if not idle:
                queued_ids.add(call.call_id)
                if sequence >= warm_up:
                    outcome.queued += 1
            waiting[call.call_id] = call
            if scenario.patience is not None:
                schedule(now + rng.expovariate(1 / scenario.patience), "abandon", call.call_id)
            if sequence + 1 < calls:
                schedule(now + rng.expovariate(rate), "arrival", str(sequence + 1))
            dispatch(now)
        elif kind == "abandon":
            if waiting.pop(what, None) is not None:
                estimates.pop(what)
                if int(what[1:]) >= warm_up and what in queued_ids:
                    outcome.abandoned += 1
        elif kind == "end":
            agent_id, call_id = what.split()
            board.call_ended(agent_id, call_id=call_id, now=now, wrap_up=WRAP_UP)
            schedule(now + WRAP_UP, "wrap", call_id)
        else:  # wrap-up over
            for event in board.tick(now):
                if isinstance(event, AgentStateChanged) and event.call_id is not None:
                    handle.record(talk_of.pop(event.call_id), WRAP_UP)
            dispatch(now)
    return outcome


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def render(calls: int, seed: int) -> str:
    lines = [
        f"Seed {seed}, {calls} callers per scenario (the first 10% warm the queue up), talk "
        f"time lognormal with mean {MEAN_TALK:g} s (sigma {TALK_SIGMA}), wrap-up "
        f"{WRAP_UP:g} s, longest-idle. Errors are |announced - actual| in seconds over the "
        "callers who found no idle agent and were answered.",
        "",
        "| scenario | agents | load | queued callers | mean actual wait (s) "
        "| median error minicc | median error total hold / calls "
        "| median error position x AHT / agents | p90 error minicc "
        "| p90 error total hold / calls | p90 error position x AHT / agents |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for index, scenario in enumerate(SCENARIOS):
        result = simulate(scenario, calls, seed + index)
        lines.append(
            f"| {scenario.name} | {scenario.agents} | {scenario.load:.2f} "
            f"| {result.measured} | {statistics.fmean(result.actual or [math.nan]):.0f} "
            f"| {statistics.median(result.minicc or [math.nan]):.0f} "
            f"| {statistics.median(result.naive_hold or [math.nan]):.0f} "
            f"| {statistics.median(result.naive_position or [math.nan]):.0f} "
            f"| {_quantile(result.minicc, 0.9):.0f} "
            f"| {_quantile(result.naive_hold, 0.9):.0f} "
            f"| {_quantile(result.naive_position, 0.9):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=4000, help="callers per scenario")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--write", action="store_true", help="also write benchmarks/results/ewt.json"
    )
    args = parser.parse_args(argv)
    table = render(args.calls, args.seed)
    print(table)
    if args.write:
        flags = f"--calls {args.calls} --seed {args.seed} --write"
        result = {
            "benchmark": "ewt",
            "command": f"python benchmarks/ewt_simulation.py {flags}",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "table": table,
        }
        path = Path(__file__).resolve().parent / "results" / "ewt.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
