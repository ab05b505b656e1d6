"""G.711 mu-law and A-law codecs as precomputed lookup tables (ITU-T G.711, RFC 3551 §4.5.14).

Pure Python: ``audioop`` is gone in Python 3.13, and a 256-entry decode table plus a
65,536-entry encode table (one byte per 16-bit sample) make both directions a single
indexing pass. The tables are built once at import from the segment (chord) rules of the
recommendation, the same arithmetic as the classic Sun reference implementation.

Linear samples are signed 16-bit integers (``array('h')``). Both laws work on the top 13
(A-law) or 14 (mu-law) bits; the low bits are discarded when encoding.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

__all__ = [
    "ALAW_SILENCE",
    "ALAW_TO_ULAW_TABLE",
    "ULAW_SILENCE",
    "ULAW_TO_ALAW_TABLE",
    "alaw_decode",
    "alaw_encode",
    "alaw_to_linear",
    "alaw_to_ulaw",
    "linear_to_alaw",
    "linear_to_ulaw",
    "ulaw_decode",
    "ulaw_encode",
    "ulaw_to_alaw",
    "ulaw_to_linear",
]

#: Encoded value of a zero sample. Filling gaps with these keeps a recording silent.
ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5

# mu-law: bias 0x84 (132) added to the magnitude before finding the segment, so that the
# segment boundaries fall on powers of two; magnitude clipped to 32635 (G.711 Table 2a).
_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def ulaw_to_linear(code: int) -> int:
    """Decode one mu-law byte to a 16-bit linear sample (range -32124..32124)."""
    code = ~code & 0xFF
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return -magnitude if sign else magnitude


def linear_to_ulaw(sample: int) -> int:
    """Encode one 16-bit linear sample to a mu-law byte."""
    if sample < 0:
        # One's complement, as in the ITU-T G.191 reference (``~x``): -32768 stays in range
        # and tiny negative values round toward zero like the positive ones.
        magnitude = ~sample
        sign = 0x80
    else:
        magnitude = sample
        sign = 0x00
    magnitude = min(magnitude, _ULAW_CLIP) + _ULAW_BIAS
    # Segment = position of the highest set bit above bit 7 (bias guarantees bit 7 is set).
    exponent = magnitude.bit_length() - 8
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def alaw_to_linear(code: int) -> int:
    """Decode one A-law byte to a 16-bit linear sample (range -32256..32256)."""
    # Even bits are inverted on the line (G.711 §3.2: "alternate digit inversion").
    code ^= 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    # Segment 0 is linear with step 16 (13-bit units of 2); the others add the implicit
    # leading one (0x100) before scaling.
    magnitude = (mantissa << 4) + 8
    if exponent:
        magnitude = (magnitude + 0x100) << (exponent - 1)
    # In A-law a set sign bit means positive.
    return magnitude if code & 0x80 else -magnitude


def linear_to_alaw(sample: int) -> int:
    """Encode one 16-bit linear sample to an A-law byte."""
    value = sample >> 3  # A-law works on 13-bit samples
    if value >= 0:
        mask = 0xD5  # sign bit set (positive) plus even-bit inversion
    else:
        mask = 0x55
        value = -value - 1
    if value >= 0x1000:  # beyond the last segment: clip to the largest code
        return 0x7F ^ mask
    segment = max(value.bit_length() - 5, 0)
    code = segment << 4
    code |= (value >> 1) & 0x0F if segment < 2 else (value >> segment) & 0x0F
    return code ^ mask


_ULAW_DECODE: tuple[int, ...] = tuple(ulaw_to_linear(c) for c in range(256))
_ALAW_DECODE: tuple[int, ...] = tuple(alaw_to_linear(c) for c in range(256))
# Indexed by the 16-bit two's complement pattern of the sample (sample & 0xFFFF).
_ULAW_ENCODE = bytes(linear_to_ulaw(s - 0x10000 if s & 0x8000 else s) for s in range(0x10000))
_ALAW_ENCODE = bytes(linear_to_alaw(s - 0x10000 if s & 0x8000 else s) for s in range(0x10000))

# Law conversion through the linear domain, as a bytes.translate() table. G.711 Tables 3
# and 4 define a direct mapping that differs from this for a handful of codes near zero by
# one step; going through linear keeps decode(convert(x)) closest to decode(x).
_ULAW_TO_ALAW = bytes(_ALAW_ENCODE[v & 0xFFFF] for v in _ULAW_DECODE)
_ALAW_TO_ULAW = bytes(_ULAW_ENCODE[v & 0xFFFF] for v in _ALAW_DECODE)


def ulaw_decode(data: bytes | bytearray | memoryview) -> array[int]:
    """Decode mu-law bytes to 16-bit linear samples.

    Args:
        data: mu-law encoded bytes, one per sample.

    Returns:
        ``array('h')`` of the same length.
    """
    table = _ULAW_DECODE
    return array("h", [table[b] for b in bytes(data)])


def alaw_decode(data: bytes | bytearray | memoryview) -> array[int]:
    """Decode A-law bytes to 16-bit linear samples (see :func:`ulaw_decode`)."""
    table = _ALAW_DECODE
    return array("h", [table[b] for b in bytes(data)])


def ulaw_encode(samples: Iterable[int]) -> bytes:
    """Encode signed 16-bit samples (e.g. ``array('h')``) to mu-law bytes.

    Args:
        samples: integers in -32768..32767; other values wrap modulo 2**16.

    Returns:
        One byte per sample.
    """
    table = _ULAW_ENCODE
    return bytes([table[s & 0xFFFF] for s in samples])


def alaw_encode(samples: Iterable[int]) -> bytes:
    """Encode signed 16-bit samples to A-law bytes (see :func:`ulaw_encode`)."""
    table = _ALAW_ENCODE
    return bytes([table[s & 0xFFFF] for s in samples])


def ulaw_to_alaw(data: bytes | bytearray) -> bytes:
    """Convert mu-law bytes to A-law bytes without a linear intermediate buffer."""
    return bytes(data).translate(_ULAW_TO_ALAW)


def alaw_to_ulaw(data: bytes | bytearray) -> bytes:
    """Convert A-law bytes to mu-law bytes without a linear intermediate buffer."""
    return bytes(data).translate(_ALAW_TO_ULAW)


#: translate() tables, exported for callers that convert in place on their own buffers.
ULAW_TO_ALAW_TABLE = _ULAW_TO_ALAW
ALAW_TO_ULAW_TABLE = _ALAW_TO_ULAW
