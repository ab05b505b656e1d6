"""BufferedSystemRandom: kernel randomness handed out from a buffer."""

from __future__ import annotations

import pytest

from minicc.switch.sip import tokens
from minicc.switch.sip.tokens import BufferedSystemRandom


def test_bits_bytes_and_floats_are_in_range() -> None:
    rng = BufferedSystemRandom()
    for k in (1, 7, 8, 48, 64, 129):
        values = {rng.getrandbits(k) for _ in range(200)}
        assert all(0 <= v < 2**k for v in values)
        assert len(values) > 1
    assert rng.getrandbits(0) == 0
    assert all(len(rng.randbytes(n)) == n for n in (0, 1, 16, 1000, 5000))
    assert all(0.0 <= rng.random() < 1.0 for _ in range(100))
    assert 0 <= rng.randrange(10) < 10
    with pytest.raises(ValueError):
        rng.getrandbits(-1)


def test_consecutive_values_differ_across_buffer_refills() -> None:
    rng = BufferedSystemRandom()
    drawn = [rng.randbytes(8) for _ in range(2000)]  # several 4 KiB refills
    assert len(set(drawn)) == len(drawn)


def test_a_forked_child_does_not_reuse_the_parents_bytes() -> None:
    rng = BufferedSystemRandom()
    rng.randbytes(8)
    rest = rng._buffer[rng._pos :]
    tokens._after_fork_in_child()  # what os.register_at_fork runs in the child
    assert rng._buffer == b""
    assert rng.randbytes(len(rest)) != rest
