"""The sliding one-minute window behind the per-IP and per-tenant limits."""

from __future__ import annotations

from minicc.webcall.limits import RateLimiter


def test_the_n_plus_first_request_in_a_window_is_refused() -> None:
    limiter = RateLimiter(window=60.0)
    assert all(limiter.allow("1.2.3.4", 3, now=float(t)) for t in range(3))
    assert not limiter.allow("1.2.3.4", 3, now=10.0)
    assert limiter.retry_after("1.2.3.4", now=10.0) == 50.0
    assert limiter.allow("5.6.7.8", 3, now=10.0)  # another key has its own budget


def test_the_window_slides() -> None:
    limiter = RateLimiter(window=60.0)
    for t in (0.0, 30.0):
        assert limiter.allow("k", 2, now=t)
    assert not limiter.allow("k", 2, now=59.0)
    assert limiter.allow("k", 2, now=60.0)  # the first hit left the window
    assert not limiter.allow("k", 2, now=61.0)


def test_a_zero_limit_refuses_everything() -> None:
    assert not RateLimiter().allow("k", 0, now=0.0)
