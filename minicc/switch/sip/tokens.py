"""Unguessable branches, tags and Call-IDs without one system call each.

``random.SystemRandom`` asks the kernel for a few bytes on every call, and a call through the
switch draws about ten such values (branches, tags, Call-ID, nonce), one ``getrandom``
system call each. :class:`BufferedSystemRandom` takes the same kernel randomness 4 KiB at a
time and hands it out in slices: the values are exactly as unpredictable, at a fraction of
the cost.

A forked child must not hand out its parent's remaining bytes a second time, so every
instance drops its buffer in the child (``os.register_at_fork``).
"""

from __future__ import annotations

import os
import random
import weakref

__all__ = ["BufferedSystemRandom"]

_CHUNK = 4096
_RECIP_BPF = 2.0**-53

_instances: weakref.WeakSet[BufferedSystemRandom] = weakref.WeakSet()
_fork_hook_installed = False


def _after_fork_in_child() -> None:
    for rng in list(_instances):
        rng._drop()


class BufferedSystemRandom(random.SystemRandom):
    """``random.SystemRandom`` reading ``os.urandom`` in 4 KiB chunks (see the module doc).

    ``getrandbits``, ``randbytes`` and ``random`` come from the buffer; every other method
    of ``random.Random`` is built on them. Like its parent it cannot be seeded.
    """

    def __init__(self) -> None:
        global _fork_hook_installed
        super().__init__()
        self._buffer = b""
        self._pos = 0
        _instances.add(self)
        if not _fork_hook_installed:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_installed = True

    def _drop(self) -> None:
        self._buffer = b""
        self._pos = 0

    def randbytes(self, n: int) -> bytes:
        """``n`` bytes from the kernel's generator (through the buffer when small)."""
        if n > _CHUNK // 4:
            return os.urandom(n)
        pos = self._pos
        end = pos + n
        if end > len(self._buffer):
            self._buffer = os.urandom(_CHUNK)
            pos, end = 0, n
        self._pos = end
        return self._buffer[pos:end]

    def getrandbits(self, k: int) -> int:
        """An int of ``k`` random bits."""
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        if k == 0:
            return 0
        nbytes = (k + 7) // 8
        value = int.from_bytes(self.randbytes(nbytes))
        return value >> (nbytes * 8 - k)

    def random(self) -> float:
        """A float in [0.0, 1.0), 53 random bits like ``SystemRandom.random``."""
        return (int.from_bytes(self.randbytes(7)) >> 3) * _RECIP_BPF
