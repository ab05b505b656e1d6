"""The pure parts: the numbered event log with its replay window, and the login guard."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from minicc.api.auth import LoginGuard
from minicc.api.eventlog import EventLog, event_type, jsonable
from minicc.events import AgentStateChanged, CallQueued


def change(tenant: str, reason: str) -> AgentStateChanged:
    return AgentStateChanged(
        tenant=tenant,
        agent="1001",
        state="paused",
        reason=reason,
        previous="available",
        call_id=None,
        queue=None,
    )


def test_event_types_are_dotted_names() -> None:
    assert event_type(change("t", "x")) == "agent.state_changed"
    assert CallQueued.__name__ == "CallQueued"
    assert jsonable({("a", None): frozenset({2, 1})}) == {"a:": [1, 2]}


def test_numbers_are_per_tenant_and_the_tenant_is_not_repeated() -> None:
    log = EventLog()
    first = log.append(change("acme", "a"), at=1.0)
    other = log.append(change("other", "b"), at=2.0)
    second = log.append(change("acme", "c"), at=3.0)
    assert (first["seq"], other["seq"], second["seq"]) == (1, 1, 2)
    assert "tenant" not in first["data"]
    assert [m["data"]["reason"] for m in log.since("acme", 0).events] == ["a", "c"]


@given(
    window=st.integers(min_value=1, max_value=20),
    count=st.integers(min_value=0, max_value=60),
    since=st.integers(min_value=0, max_value=70),
)
def test_replay_is_exact_or_says_gap(window: int, count: int, since: int) -> None:
    log = EventLog(window=window)
    for i in range(count):
        log.append(change("acme", str(i)), at=float(i))
    replay = log.since("acme", since)
    assert replay.last == count
    if since > count:
        assert replay.gap  # a number from another life of the server
    elif since >= count - window:
        # Everything missed is still there: exactly the events after `since`, in order.
        assert not replay.gap
        assert [m["seq"] for m in replay.events] == list(range(since + 1, count + 1))
    else:
        assert replay.gap


def test_guard_locks_after_the_free_failures_and_doubles() -> None:
    guard = LoginGuard(free=3, first_lock=10.0, max_lock=35.0)
    keys = [("ip", "192.0.2.1"), ("user", "acme", "1001")]
    for _ in range(2):
        guard.failed(keys, now=0.0)
    assert guard.retry_after(keys, now=0.0) == 0.0
    guard.failed(keys, now=0.0)
    assert guard.retry_after(keys, now=0.0) == 10.0
    guard.failed(keys, now=10.0)
    assert guard.retry_after(keys, now=10.0) == 20.0
    guard.failed(keys, now=30.0)
    assert guard.retry_after(keys, now=30.0) == 35.0  # capped
    # A success clears the user's count, not the address's.
    guard.succeeded(keys[1:])
    assert guard.retry_after([keys[1]], now=30.0) == 0.0
    assert guard.retry_after([keys[0]], now=30.0) == 35.0
