"""RFC 3261 timer values and a heap of named deadlines with lazy deletion.

Time is a plain ``float`` (seconds, monotonic) handed in by the caller; nothing here reads a
clock. The heap lets the transaction layer answer ``get_timer()`` and ``handle_timer(now)`` in
O(log n) for any number of live transactions: cancelling a timer only forgets it in a dict, and
its stale heap entry is dropped when it reaches the top (or when stale entries outnumber live
ones, by one O(n) rebuild).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """Timer base values, RFC 3261 §17.1.1.1 and Table 4 (Appendix A)."""

    T1: float = 0.5
    """RTT estimate: the first retransmission interval of A, E, G and of 2xx (§13.3.1.4)."""
    T2: float = 4.0
    """The cap on the retransmission interval of non-INVITE requests and INVITE responses."""
    T4: float = 5.0
    """The longest a message may stay in the network: Timers I and K on UDP."""
    D: float = 32.0
    """Timer D on UDP (Table 4: "> 32 s"); it does not scale with T1."""

    def __post_init__(self) -> None:
        if not 0 < self.T1 <= self.T2:
            raise ValueError(f"need 0 < T1 <= T2, got T1={self.T1} T2={self.T2}")
        if self.T4 < 0 or self.D < 0:
            raise ValueError("T4 and D must not be negative")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J (on UDP), L and M and the 2xx give-up (§13.3.1.4)."""
        return 64 * self.T1


class Timer(Enum):
    """The named timers of RFC 3261 §17 and RFC 6026 §8, plus two of the layer's own."""

    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    A = "A"
    """INVITE client: request retransmission (UDP), T1 doubling."""
    B = "B"
    """INVITE client: give up in Calling after 64*T1 (and in Proceeding 64*T1 after a CANCEL)."""
    D = "D"
    """INVITE client: linger in Completed to absorb final response retransmissions."""
    E = "E"
    """Non-INVITE client: request retransmission (UDP), T1 doubling up to T2."""
    F = "F"
    """Non-INVITE client: give up after 64*T1."""
    G = "G"
    """INVITE server: non-2xx final response retransmission (UDP), T1 doubling up to T2."""
    H = "H"
    """INVITE server: give up waiting for the ACK of a non-2xx final after 64*T1."""
    I = "I"  # noqa: E741 - the RFC's name
    """INVITE server: linger in Confirmed to absorb ACK retransmissions."""
    J = "J"
    """Non-INVITE server: linger in Completed to absorb request retransmissions."""
    K = "K"
    """Non-INVITE client: linger in Completed to absorb response retransmissions."""
    L = "L"
    """INVITE server (RFC 6026): leave Accepted after 64*T1; the 2xx give-up too."""
    M = "M"
    """INVITE client (RFC 6026): leave Accepted after 64*T1."""
    RETRANSMIT_2XX = "2xx"
    """INVITE server in Accepted: re-send the 2xx until its ACK arrives (§13.3.1.4)."""
    ACK_CACHE = "ack-cache"
    """Forget an ACK kept to answer 2xx retransmissions (not a transaction timer)."""


class TimerHeap:
    """Deadlines for (owner, timer) pairs; at most one deadline per pair.

    Each heap entry is ``(deadline, seq, owner, timer)``; ``seq`` breaks ties in arming order
    and tells a live entry from a stale one (re-armed or cancelled).
    """

    __slots__ = ("_armed", "_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable, Timer]] = []
        self._armed: dict[tuple[Hashable, Timer], int] = {}
        self._seq = 0

    def __len__(self) -> int:
        """Number of armed timers (stale heap entries not counted)."""
        return len(self._armed)

    def arm(self, owner: Hashable, timer: Timer, deadline: float) -> None:
        """Set (or move) ``timer`` of ``owner`` to fire at ``deadline``."""
        self._seq += 1
        self._armed[(owner, timer)] = self._seq
        heapq.heappush(self._heap, (deadline, self._seq, owner, timer))
        # Cancelled entries stay in the heap until they surface; rebuild when they dominate
        # so a burst of cancellations cannot grow it without bound.
        if len(self._heap) > 64 and len(self._heap) > 3 * len(self._armed):
            self._compact()

    def cancel(self, owner: Hashable, *timers: Timer) -> None:
        """Forget the given timers of ``owner`` (absent ones are ignored)."""
        for timer in timers:
            self._armed.pop((owner, timer), None)

    def is_armed(self, owner: Hashable, timer: Timer) -> bool:
        return (owner, timer) in self._armed

    def next_deadline(self) -> float | None:
        """The earliest live deadline, dropping stale entries on the way."""
        heap = self._heap
        while heap:
            deadline, seq, owner, timer = heap[0]
            if self._armed.get((owner, timer)) == seq:
                return deadline
            heapq.heappop(heap)
        return None

    def pop_due(self, now: float) -> tuple[Hashable, Timer] | None:
        """Remove and return the earliest live timer whose deadline is ``<= now``, if any."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, owner, timer = heapq.heappop(heap)
            if self._armed.get((owner, timer)) == seq:
                del self._armed[(owner, timer)]
                return owner, timer
        return None

    def _compact(self) -> None:
        armed = self._armed
        self._heap = [e for e in self._heap if armed.get((e[2], e[3])) == e[1]]
        heapq.heapify(self._heap)
