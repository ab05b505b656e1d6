"""The event bus: publishers never wait, each subscriber has its own bounded queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from minicc.events import Event

log = logging.getLogger(__name__)


class Subscription:
    """One subscriber's view of the bus: an async iterator of events."""

    def __init__(self, bus: EventBus, name: str, maxsize: int) -> None:
        self.name = name
        self.dropped = 0
        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)

    def offer(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # A slow subscriber must not hold up calls: it loses its oldest event instead,
            # and the loss is counted and logged once per hundred.
            self._queue.get_nowait()
            self._queue.put_nowait(event)
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("subscriber %s is behind; %d events dropped", self.name, self.dropped)

    async def get(self) -> Event:
        return await self._queue.get()

    def get_nowait(self) -> Event | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []

    def subscribe(self, name: str, *, maxsize: int = 10_000) -> Subscription:
        sub = Subscription(self, name, maxsize)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def publish(self, event: Event) -> None:
        for sub in self._subscribers:
            sub.offer(event)
