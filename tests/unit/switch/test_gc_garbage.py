"""Whole calls through the switch leave no cyclic garbage (the premise of minicc.gcpolicy)
and, once hung up, nothing of the call alive.

``minicc serve`` runs the cyclic garbage collector rarely (its full collections stopped the
event loop for hundreds of milliseconds under load). That is safe only while the call path
frees its objects by reference counting alone; a reference cycle introduced in a call's
objects (a callback holding its owner, a stored exception with its traceback) would make
every call leave garbage that piles up between the now rare collections. These tests fail
when that happens.
"""

from __future__ import annotations

import gc

from benchmarks.bench_callflow import HOST, Bench, CallScript
from minicc import gcpolicy
from minicc.switch.b2bua import Call

CALLS = 40


def _live_calls() -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, Call))


async def test_calls_set_up_and_hung_up_leave_no_cyclic_garbage() -> None:
    bench = Bench(CALLS)
    await bench.switch.start()
    try:
        await bench.register_callee()
        calls = [
            CallScript(n=i, call_id=f"gc-{i}@{HOST}", from_tag=f"caller{i}") for i in range(CALLS)
        ]
        gc.collect()
        gc.disable()
        earlier = _live_calls()  # whatever earlier tests in this process left alive
        try:
            for call in calls:
                await bench.set_up(call)
            assert bench.switch.b2bua is not None
            assert _live_calls() == earlier + CALLS
            for call in calls:
                await bench.hang_up(call)
            assert bench.switch.b2bua.active_calls == 0
            # Freed by reference counting at hang-up, not kept for the 32 s during which a
            # late 2xx may still arrive (only the callee leg is kept for that).
            assert _live_calls() == earlier
            unreachable = gc.collect()
        finally:
            gc.enable()
    finally:
        await bench.switch.stop(grace=0.0)
    # Not one object per call: a cycle per call would show as >= CALLS.
    assert unreachable < CALLS // 4, (
        f"{unreachable} objects in reference cycles after {CALLS} calls"
    )


def test_tune_sets_the_thresholds_and_freeze_empties_the_generations() -> None:
    before = gc.get_threshold()
    try:
        gcpolicy.tune()
        assert gc.get_threshold() == gcpolicy.THRESHOLDS
        gcpolicy.freeze_startup_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_count()[2] == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
