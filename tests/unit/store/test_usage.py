"""The provider's usage summary: counts, minutes and peak concurrency per tenant and day."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from minicc.cli import cli
from minicc.store.control import ControlStore
from minicc.store.usage import peak_concurrency, summarise
from minicc.tenants.models import CallRecord, Disposition, HangupSide

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def call(start: datetime, seconds: float, answered: bool = True) -> CallRecord:
    return CallRecord(
        tenant="acme",
        call_id=f"c{start.timestamp()}-{seconds}",
        from_user="1001",
        to_user="8000",
        start=start,
        end=start + timedelta(seconds=seconds),
        disposition=Disposition.ANSWERED if answered else Disposition.NO_ANSWER,
        hangup_side=HangupSide.CALLER,
        answer=start if answered else None,
    )


def test_touching_calls_do_not_overlap_and_nested_ones_do() -> None:
    assert peak_concurrency([(0, 10), (10, 20)]) == 1
    assert peak_concurrency([(0, 10), (5, 20), (6, 7)]) == 3
    assert peak_concurrency([]) == 0


@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 30)), max_size=30))
def test_peak_matches_counting_every_instant(calls: list[tuple[int, int]]) -> None:
    spans = [(float(s), float(s + d)) for s, d in calls]
    brute = max(
        (sum(1 for s, e in spans if s <= t < e) for t in range(0, 131)),
        default=0,
    )
    assert peak_concurrency(spans) == brute


def test_days_count_calls_minutes_and_peaks() -> None:
    records = [
        call(DAY + timedelta(hours=9), 90),  # 2 billed minutes' worth: 90 s
        call(DAY + timedelta(hours=9, seconds=30), 30),  # overlaps the first
        call(DAY + timedelta(hours=10), 0, answered=False),
        call(DAY + timedelta(hours=23, minutes=59), 120),  # runs past midnight
    ]
    days = summarise("acme", records)
    assert [(d.day, d.calls, d.answered, d.minutes, d.peak_concurrent) for d in days] == [
        (date(2026, 11, 20), 4, 3, 4.0, 2),
        (date(2026, 11, 21), 0, 0, 0.0, 1),  # the call going on after midnight
    ]


def test_usage_command_reports_every_tenant(tmp_path: Path) -> None:
    with ControlStore(tmp_path) as control:
        for name in ("acme", "beta"):
            tenant = control.add_tenant(name, f"{name}.test")
            with control.open_tenant(tenant) as store:
                record = call(DAY + timedelta(hours=9), 60)
                store.insert_cdr(replace(record, tenant=name)).result(5.0)
    result = CliRunner().invoke(cli, ["usage", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(d["tenant"], d["day"], d["calls"], d["minutes"]) for d in report["days"]] == [
        ("acme", "2026-11-20", 1, 1.0),
        ("beta", "2026-11-20", 1, 1.0),
    ]
    assert report["storage_bytes"]["acme"] > 0
    result = CliRunner().invoke(cli, ["usage", "--tenant", "nope", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "no tenant named 'nope'" in result.output
