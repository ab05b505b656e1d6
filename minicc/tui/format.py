"""Pure helpers the consoles share: how durations, states and figures are written, and the
small bits of arithmetic behind the screens (time in state, wrap-up left, calls per interval).
No Textual and no IO, so they are tested on their own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

STATES = ("logged-out", "available", "reserved", "on-call", "wrap-up", "paused")

STATE_LABELS = {
    "logged-out": "LOGGED OUT",
    "available": "AVAILABLE",
    "reserved": "RINGING",
    "on-call": "ON CALL",
    "wrap-up": "WRAP-UP",
    "paused": "PAUSED",
}

PAUSE_REASONS = ("break", "lunch", "meeting", "training", "admin")
"""Offered in the pause picker; the server takes any short reason."""


def state_slug(state: str) -> str:
    """Event data spells states with spaces (``on call``), REST with dashes (``on-call``)."""
    return state.replace(" ", "-")


def duration(seconds: float | None) -> str:
    """``0:07``, ``12:03``, ``1:02:03``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def fraction(value: float | None) -> str:
    """Occupancy arrives as 0-1."""
    return "-" if value is None else f"{value * 100:.0f}%"


def wrap_up_left(wrap_up: float | None, started: float, now: float) -> float | None:
    """Seconds of wrap-up left (never below 0); None when the queue's wrap-up is unknown."""
    if wrap_up is None:
        return None
    return max(0.0, wrap_up - (now - started))


def service_level_alert(queue: Mapping[str, Any], default_target: float) -> str | None:
    """One line when the queue's service level is under its target, else None."""
    level = queue.get("service_level")
    target = queue.get("service_level_target", default_target)
    if level is None or target is None or level >= target:
        return None
    return (
        f"service level of {queue['name']} is {level:.0f}%, under the {target:.0f}% target "
        f"({queue.get('service_level_threshold', 0):.0f} s)"
    )


def staffing(agents: Iterable[Mapping[str, Any]], queue: str) -> tuple[int, int, int]:
    """(available, on a call, paused) among the queue's members."""
    available = on_call = paused = 0
    for agent in agents:
        if queue not in agent.get("queues", ()):
            continue
        state = agent.get("state")
        if state == "available":
            available += 1
        elif state in ("on-call", "reserved", "wrap-up"):
            on_call += 1
        elif state == "paused":
            paused += 1
    return available, on_call, paused


def per_interval(times: Iterable[float], now: float, *, interval: float, count: int) -> list[int]:
    """How many of ``times`` fall in each of the last ``count`` intervals, oldest first."""
    buckets = [0] * count
    for at in times:
        age = now - at
        if age < 0:
            continue
        index = count - 1 - int(age // interval)
        if 0 <= index < count:
            buckets[index] += 1
    return buckets


def over_threshold(state: str, seconds: float, threshold: float) -> bool:
    """Time in state worth a red mark: any state but available/logged out past ``threshold``."""
    return state not in ("available", "logged-out") and seconds > threshold
