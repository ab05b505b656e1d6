"""Parsed header values shared by every message: each distinct text is parsed once.

The same header text keeps coming back. A response repeats its request's Via, From, To and
CSeq; every request of a dialog repeats its From and To; a peer's response carries the very
Via we sent; CSeq values like ``1 INVITE`` recur across calls. Under load a SIP switch spends
much of its time parsing those again, so the typed accessors of
:class:`~minicc.switch.sip.message.Message` go through one :class:`ParseCache` per kind of
value instead of parsing on each read.

Cached values are shared between messages and must never be changed: the accessors hand
out copies of the mutable ones (Via, name-addr, URI), and the code that reads them in place
(branch, tags) only reads. Only successful parses are kept; malformed text raises every time.

Bounded in entries and in size: two generations of at most ``size`` entries each (a hit in
the old one moves the value to the new one, so what is in use survives a turnover), and texts
longer than :data:`MAX_CACHED_TEXT` are parsed without being kept, so that peers sending
large or endless distinct values cannot grow it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["MAX_CACHED_TEXT", "ParseCache"]

_T = TypeVar("_T")

MAX_CACHED_TEXT = 512
"""Longest header text kept; real Via, From, To and CSeq values are well below it."""


class ParseCache(Generic[_T]):
    """``cache(text)`` is ``parse(text)``, remembered (see the module doc).

    Args:
        parse: the parser; it raises on malformed text (nothing is cached then).
        size: entries per generation.
    """

    __slots__ = ("_new", "_old", "_parse", "_size")

    def __init__(self, parse: Callable[[str], _T], size: int) -> None:
        if size < 1:
            raise ValueError("a cache needs room for at least one entry")
        self._parse = parse
        self._size = size
        self._new: dict[str, _T] = {}
        self._old: dict[str, _T] = {}

    def __call__(self, text: str) -> _T:
        found = self._new.get(text)
        if found is not None:
            return found
        found = self._old.get(text)
        if found is None:
            found = self._parse(text)
            if len(text) > MAX_CACHED_TEXT:
                return found
        self._store(text, found)
        return found

    def seed(self, text: str, value: _T) -> None:
        """Remember ``value`` as the parse of ``text`` (for text just made from ``value``).

        ``value`` is shared from then on: the caller must not change it afterwards.
        """
        if len(text) <= MAX_CACHED_TEXT:
            self._store(text, value)

    def _store(self, text: str, value: _T) -> None:
        new = self._new
        if len(new) >= self._size:
            self._old = new
            self._new = new = {}
        new[text] = value

    def __len__(self) -> int:
        return len(self._new) + len(self._old)

    def clear(self) -> None:
        self._new = {}
        self._old = {}
