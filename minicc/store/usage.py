"""The provider's usage summary: per tenant and per day, what was used.

For billing a hosting provider wants, per tenant and UTC day: calls, answered calls, billed
minutes (the CDRs' billable seconds, which round every call up to the second), the peak
number of calls at the same time, and the storage the tenant holds (database + recordings
+ prompts, measured now: storage has no history).

Peak concurrency is computed from the CDRs' start and end times with a sweep: every start
is +1, every end -1, ends before starts at the same instant (a call that ended as another
began never overlapped it). A call that spans midnight counts on both days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from minicc.tenants.models import CallRecord, Disposition

__all__ = ["DayUsage", "folder_bytes", "peak_concurrency", "summarise"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DayUsage:
    tenant: str
    day: date
    """UTC day."""
    calls: int
    """Calls that started this day."""
    answered: int
    minutes: float
    """Billable minutes of the calls that started this day."""
    peak_concurrent: int
    """Most calls in progress at one instant during this day."""


def peak_concurrency(spans: Iterable[tuple[float, float]]) -> int:
    """The most intervals ``(start, end)`` open at one instant (``end`` exclusive)."""
    points: list[tuple[float, int]] = []
    for start, end in spans:
        points.append((start, 1))
        points.append((max(start, end), -1))
    points.sort(key=lambda p: (p[0], p[1]))  # -1 sorts first: ends before starts
    peak = current = 0
    for _, step in points:
        current += step
        peak = max(peak, current)
    return peak


def summarise(tenant: str, records: Iterable[CallRecord]) -> list[DayUsage]:
    """One row per UTC day with any call of ``tenant``, oldest first."""
    started: dict[date, list[CallRecord]] = defaultdict(list)
    spans: dict[date, list[tuple[float, float]]] = defaultdict(list)
    for record in records:
        start, end = record.start.astimezone(UTC), record.end.astimezone(UTC)
        started[start.date()].append(record)
        day = start.date()
        while day <= end.date():
            # The part of the call inside this day, for that day's peak.
            day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            lo = max(start, day_start)
            hi = min(end, day_start + timedelta(days=1))
            spans[day].append((lo.timestamp(), hi.timestamp()))
            day += timedelta(days=1)
    days = sorted(set(started) | set(spans))
    return [
        DayUsage(
            tenant=tenant,
            day=day,
            calls=len(started[day]),
            answered=sum(r.disposition is Disposition.ANSWERED for r in started[day]),
            minutes=round(sum(r.billable_seconds for r in started[day]) / 60.0, 2),
            peak_concurrent=peak_concurrency(spans[day]),
        )
        for day in days
    ]


def folder_bytes(*paths: Path) -> int:
    """Bytes of the files under ``paths`` (files or folders; missing ones count 0)."""
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total
