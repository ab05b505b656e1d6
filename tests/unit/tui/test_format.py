"""The consoles' pure helpers: durations, wrap-up left, service-level alerts, staffing and
the calls-per-interval buckets of the sparkline."""

from __future__ import annotations

from minicc.tui.client import backoff_delay
from minicc.tui.format import (
    duration,
    over_threshold,
    per_interval,
    service_level_alert,
    staffing,
    state_slug,
    wrap_up_left,
)


def test_durations_read_like_clocks() -> None:
    shown = [duration(s) for s in (None, -3, 7, 63, 3723)]
    assert shown == ["-", "0:00", "0:07", "1:03", "1:02:03"]


def test_wrap_up_counts_down_to_zero_and_is_unknown_without_a_duration() -> None:
    assert wrap_up_left(10.0, started=100.0, now=103.5) == 6.5
    assert wrap_up_left(10.0, started=100.0, now=200.0) == 0.0
    assert wrap_up_left(None, started=100.0, now=103.0) is None


def test_an_alert_only_under_target() -> None:
    queue = {"name": "support", "service_level": 70.0, "service_level_threshold": 20}
    assert "support is 70%, under the 80% target" in (service_level_alert(queue, 80.0) or "")
    assert service_level_alert({**queue, "service_level": 85.0}, 80.0) is None
    assert service_level_alert({**queue, "service_level": None}, 80.0) is None
    assert service_level_alert({**queue, "service_level_target": 60.0}, 80.0) is None


def test_staffing_counts_members_only() -> None:
    agents = [
        {"queues": ["support"], "state": "available"},
        {"queues": ["support"], "state": "on-call"},
        {"queues": ["support", "sales"], "state": "wrap-up"},
        {"queues": ["support"], "state": "paused"},
        {"queues": ["sales"], "state": "available"},
    ]
    assert staffing(agents, "support") == (1, 2, 1)


def test_calls_per_interval_oldest_first() -> None:
    assert per_interval([99.0, 95.0, 45.0, 150.0, -500.0], 100.0, interval=10, count=6) == [
        1,
        0,
        0,
        0,
        0,
        2,
    ]


def test_red_marks_and_state_spelling() -> None:
    assert over_threshold("paused", 301, 300) and not over_threshold("available", 999, 300)
    assert state_slug("on call") == "on-call" and state_slug("wrap-up") == "wrap-up"


def test_backoff_doubles_to_a_cap_with_jitter() -> None:
    low = [backoff_delay(n, base=0.5, cap=30.0, rand=lambda: 0.0) for n in range(8)]
    high = [backoff_delay(n, base=0.5, cap=30.0, rand=lambda: 1.0) for n in range(8)]
    assert low == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert high == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
