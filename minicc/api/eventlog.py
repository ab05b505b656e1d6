"""The API's event log: every tenant's events, numbered, with a replay window.

A client of the event stream (the agent console, the wallboard) that loses its connection
must not lose events. Each tenant's events get consecutive sequence numbers and the last
``window`` of them are kept; a client that reconnects says the last number it saw and gets
everything after it. When it was away so long that the events it missed are gone, it is
told so (``gap``) and re-reads the state over REST instead of silently missing changes.

Numbers are per tenant, never global: a tenant's clients cannot learn from the numbering how
busy other tenants are. Pure: no IO, no clock (times are passed in).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from minicc.events import Event

__all__ = ["EventLog", "Replay", "event_type", "jsonable"]

DEFAULT_WINDOW = 2000


def event_type(event: Event) -> str:
    """``CallQueued`` → ``call.queued``: the name clients match on."""
    name = type(event).__name__
    words: list[str] = []
    for ch in name:
        if ch.isupper() and words:
            words.append(".")
        words.append(ch.lower())
    text = "".join(words)
    # Only the first dot separates the subject ("call", "agent"); the rest are words.
    head, _, tail = text.partition(".")
    return f"{head}.{tail.replace('.', '_')}" if tail else head


def jsonable(value: Any) -> Any:
    """Dataclasses, enums, datetimes, paths, sets and tuple keys made JSON-friendly."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    return value


def _key(key: Any) -> str:
    if isinstance(key, tuple):
        return ":".join("" if k is None else str(jsonable(k)) for k in key)
    return str(jsonable(key))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Replay:
    """What a (re)connecting client gets."""

    events: list[dict[str, Any]]
    """The events after the number it gave, oldest first."""
    last: int
    """The tenant's latest sequence number (0: none yet)."""
    gap: bool
    """Events it missed are no longer kept: it must re-read the state."""


class EventLog:
    """Per-tenant numbered events with a bounded replay window (see module doc)."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self._window = window
        self._events: dict[str, deque[dict[str, Any]]] = {}
        self._last: dict[str, int] = {}

    def append(self, event: Event, *, at: float) -> dict[str, Any]:
        """Number and keep ``event``; returns the message clients are sent."""
        tenant = event.tenant
        seq = self._last.get(tenant, 0) + 1
        self._last[tenant] = seq
        body = jsonable(event)
        body.pop("tenant", None)
        message = {"seq": seq, "type": event_type(event), "at": at, "data": body}
        kept = self._events.get(tenant)
        if kept is None:
            kept = self._events[tenant] = deque(maxlen=self._window)
        kept.append(message)
        return message

    def last(self, tenant: str) -> int:
        return self._last.get(tenant, 0)

    def since(self, tenant: str, seq: int | None) -> Replay:
        """Events of ``tenant`` after ``seq``; ``None``: a fresh client (no replay)."""
        last = self._last.get(tenant, 0)
        if seq is None or seq >= last:
            # A number from the future (the server restarted and numbering began again) is a
            # gap too: the client's picture is from another life of the server.
            return Replay(events=[], last=last, gap=seq is not None and seq > last)
        kept = self._events.get(tenant, deque())
        oldest = kept[0]["seq"] if kept else last + 1
        if seq < oldest - 1:
            return Replay(events=list(kept), last=last, gap=True)
        return Replay(events=[m for m in kept if m["seq"] > seq], last=last, gap=False)
