"""G.711 tables against ITU-T G.711 values and round trips."""

from __future__ import annotations

import itertools
import math
from array import array

import pytest

from minicc.switch.media import g711

# G.711 Tables 5 and 6: one period of the 1 kHz "digital milliwatt" sequence.
DMW_ULAW = bytes([0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E])
DMW_ALAW = bytes([0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4])


def _dmw_samples(amplitude: float) -> list[int]:
    # Phases pi/8 + k*pi/4, starting on the negative half-wave as the tables do.
    return [round(-amplitude * math.sin(math.pi / 8 + k * math.pi / 4)) for k in range(8)]


def test_known_ulaw_values() -> None:
    assert g711.ulaw_to_linear(0xFF) == 0
    assert g711.ulaw_to_linear(0x7F) == 0  # negative zero
    assert g711.ulaw_to_linear(0x80) == 32124
    assert g711.ulaw_to_linear(0x00) == -32124
    assert g711.ulaw_to_linear(0xFE) == 8
    assert g711.linear_to_ulaw(0) == 0xFF == g711.ULAW_SILENCE
    assert g711.linear_to_ulaw(32767) == 0x80
    assert g711.linear_to_ulaw(-32768) == 0x00


def test_known_alaw_values() -> None:
    assert g711.alaw_to_linear(0xD5) == 8
    assert g711.alaw_to_linear(0x55) == -8
    assert g711.alaw_to_linear(0xAA) == 32256
    assert g711.alaw_to_linear(0x2A) == -32256
    assert g711.linear_to_alaw(0) == 0xD5 == g711.ALAW_SILENCE
    assert g711.linear_to_alaw(32767) == 0xAA
    assert g711.linear_to_alaw(-32768) == 0x2A


def test_digital_milliwatt_sequences() -> None:
    samples = _dmw_samples(22_800)
    assert g711.ulaw_encode(samples) == DMW_ULAW
    assert g711.alaw_encode(samples) == DMW_ALAW
    half = [8828, 20860, 20860, 8828]
    assert g711.ulaw_decode(DMW_ULAW).tolist() == [-v for v in half] + half
    assert g711.alaw_decode(DMW_ALAW).tolist()[:2] == [-8960, -20992]


@pytest.mark.parametrize(
    ("decode", "encode", "skip"),
    [
        (g711.ulaw_decode, g711.ulaw_encode, {0x7F}),  # -0 encodes back as +0
        (g711.alaw_decode, g711.alaw_encode, set()),
    ],
)
def test_round_trip_every_code(decode, encode, skip) -> None:  # type: ignore[no-untyped-def]
    codes = bytes(c for c in range(256) if c not in skip)
    assert encode(decode(codes)) == codes


def test_decode_returns_int16_array() -> None:
    out = g711.ulaw_decode(b"\x00\x80\xff")
    assert isinstance(out, array) and out.typecode == "h"
    assert g711.alaw_decode(memoryview(b"\xd5")).tolist() == [8]


def test_encode_is_monotonic_in_magnitude() -> None:
    # Decoding the encoding of a rising ramp never goes down: the segment tables are ordered.
    ramp = array("h", range(-32768, 32768, 7))
    for decode, encode in (
        (g711.ulaw_decode, g711.ulaw_encode),
        (g711.alaw_decode, g711.alaw_encode),
    ):
        values = decode(encode(ramp)).tolist()
        assert all(b >= a for a, b in itertools.pairwise(values))
        # quantisation error stays within half the largest step (1024 mu-law, 1024 A-law)
        assert max(abs(v - s) for v, s in zip(values, ramp, strict=True)) <= 1024


def test_law_conversion_tables() -> None:
    every = bytes(range(256))
    to_alaw = g711.ulaw_to_alaw(every)
    # conversion goes through the linear value, so it matches decode-then-encode
    assert to_alaw == g711.alaw_encode(g711.ulaw_decode(every))
    # A-law has no zero code: its silence is +8, which mu-law represents exactly (0xFE)
    assert g711.alaw_to_ulaw(bytes([g711.ALAW_SILENCE])) == b"\xfe"
    assert g711.ulaw_to_alaw(bytearray([g711.ULAW_SILENCE])) == bytes([g711.ALAW_SILENCE])
    # The laws' steps differ, so A -> mu -> A may move a sample by at most about one step:
    # well under 1/16 of its value (the 4-bit mantissa), sign always kept.
    loud = bytes(c for c in range(256) if abs(g711.alaw_to_linear(c)) >= 64)
    back = g711.ulaw_to_alaw(g711.alaw_to_ulaw(loud))
    for before, after in zip(g711.alaw_decode(loud), g711.alaw_decode(back), strict=True):
        assert (before > 0) == (after > 0)
        assert abs(after - before) <= abs(before) / 16
