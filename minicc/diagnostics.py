"""Event-loop stall diagnostics for load tests: how late the loop runs, and why.

A call-setup time far above the median while the CPU is not saturated means the event loop
stopped for a while: a long callback, a garbage collection, the GIL held by a worker thread.
:class:`StallMonitor` measures both halves while the server runs:

- loop lag: a callback asks to run every ``interval`` seconds; how much later than asked it
  runs is the time the loop was busy elsewhere (the worst lag per report period is logged);
- garbage collection: ``gc.callbacks`` time every collection, by generation.

It is off by default; ``MINICC_STALL_REPORT=<seconds>`` in the environment of ``minicc
serve`` turns it on and logs one line per period (the benchmarks set it to find stalls).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

ENV = "MINICC_STALL_REPORT"


@dataclass(slots=True)
class _Period:
    lags: list[float] = field(default_factory=list)
    gc_ms: dict[int, list[float]] = field(default_factory=dict)


class StallMonitor:
    """Samples loop lag and GC pauses; logs a summary every ``report_s`` seconds."""

    def __init__(self, report_s: float, interval: float = 0.005) -> None:
        self.report_s = report_s
        self.interval = interval
        self._period = _Period()
        self._gc_start = 0.0
        self._task: asyncio.Task[None] | None = None
        self._cpu0 = self._t0 = 0.0

    @classmethod
    def from_env(cls) -> StallMonitor | None:
        value = os.environ.get(ENV, "").strip()
        try:
            seconds = float(value) if value else 0.0
        except ValueError:
            log.warning("%s=%r is not a number of seconds; stall reports off", ENV, value)
            return None
        return cls(seconds) if seconds > 0 else None

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            ms = (time.perf_counter() - self._gc_start) * 1000
            self._period.gc_ms.setdefault(info["generation"], []).append(ms)

    async def _run(self) -> None:
        next_report = time.monotonic() + self.report_s
        self._cpu0, self._t0 = time.process_time(), time.monotonic()
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self._period.lags.append(now - asked - self.interval)
            if now >= next_report:
                next_report = now + self.report_s
                self._report()

    def _report(self) -> None:
        period, self._period = self._period, _Period()
        cpu, now = time.process_time(), time.monotonic()
        cpu_pct = (cpu - self._cpu0) / max(now - self._t0, 1e-9) * 100
        self._cpu0, self._t0 = cpu, now
        lags = sorted(period.lags)
        if not lags:
            return
        gcs = " ".join(
            f"gen{g}:{len(v)}x max {max(v):.1f}ms sum {sum(v):.0f}ms"
            for g, v in sorted(period.gc_ms.items())
        )
        log.warning(
            "loop lag p50 %.1f ms p99 %.1f ms max %.1f ms over %d samples; over 50 ms: %d;"
            " process CPU %.0f %%; gc %s",
            lags[len(lags) // 2] * 1000,
            lags[int(len(lags) * 0.99)] * 1000,
            lags[-1] * 1000,
            len(lags),
            sum(1 for x in lags if x > 0.05),
            cpu_pct,
            gcs or "none",
        )
