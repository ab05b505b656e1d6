"""Rate limits for webcall signaling: a sliding one-minute window per key.

Pure logic with ``now`` passed in; the router keeps one :class:`RateLimiter` for visitor
addresses and one for tenants. Memory is bounded: keys idle for a window are dropped.
"""

from __future__ import annotations

from collections import deque

__all__ = ["RateLimiter"]

WINDOW = 60.0
MAX_KEYS = 100_000


class RateLimiter:
    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str, limit: int, now: float) -> bool:
        """Count one request for ``key``; False (and not counted) past ``limit`` per window."""
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= MAX_KEYS:
                self._prune(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        return True

    def retry_after(self, key: str, now: float) -> float:
        hits = self._hits.get(key)
        if not hits:
            return 0.0
        return max(0.0, hits[0] + self.window - now)

    def _prune(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]
