"""RIFF/WAVE headers for G.711 and PCM audio. Pure, no IO.

Python's ``wave`` module reads only PCM (format tag 1); recordings and prompts in minicc are
mu-law (tag 7) or A-law (tag 6) so that RTP payloads go to and from disk without transcoding.
The layout follows the Microsoft RIFF/WAVE specification: non-PCM formats carry an 18-byte
``fmt`` chunk (with ``cbSize`` = 0) and a ``fact`` chunk holding the sample frame count.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "WAVE_FORMAT_ALAW",
    "WAVE_FORMAT_MULAW",
    "WAVE_FORMAT_PCM",
    "WavError",
    "WavFormat",
    "parse_wav",
    "wav_header",
]

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7

_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")


class WavError(ValueError):
    """The file is not a RIFF/WAVE file minicc can read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WavFormat:
    """The ``fmt`` chunk fields minicc uses."""

    format_tag: int
    """1 PCM, 6 A-law, 7 mu-law."""
    channels: int
    sample_rate: int
    bits_per_sample: int

    @property
    def block_align(self) -> int:
        """Bytes per sample frame (all channels)."""
        return self.channels * self.bits_per_sample // 8


def wav_header(fmt: WavFormat, data_size: int) -> bytes:
    """Return everything before the audio bytes, for ``data_size`` bytes of audio.

    The length depends only on whether the format is PCM, so a writer can put a placeholder
    first and overwrite it with the final sizes when it closes.
    """
    pcm = fmt.format_tag == WAVE_FORMAT_PCM
    fmt_body = _FMT.pack(
        fmt.format_tag,
        fmt.channels,
        fmt.sample_rate,
        fmt.sample_rate * fmt.block_align,
        fmt.block_align,
        fmt.bits_per_sample,
    )
    if not pcm:
        fmt_body += struct.pack("<H", 0)  # cbSize: no extra format bytes
    chunks = _CHUNK.pack(b"fmt ", len(fmt_body)) + fmt_body
    if not pcm:
        frames = data_size // fmt.block_align if fmt.block_align else 0
        chunks += _CHUNK.pack(b"fact", 4) + struct.pack("<I", frames)
    chunks += _CHUNK.pack(b"data", data_size)
    pad = data_size & 1  # RIFF chunks are word aligned
    riff_size = 4 + len(chunks) + data_size + pad
    return _CHUNK.pack(b"RIFF", riff_size) + b"WAVE" + chunks


def parse_wav(data: bytes | bytearray | memoryview) -> tuple[WavFormat, bytes]:
    """Parse a whole WAV file held in memory.

    Returns:
        The format and the audio bytes of the ``data`` chunk.

    Raises:
        WavError: not RIFF/WAVE, or the ``fmt`` or ``data`` chunk is missing or truncated.
    """
    view = memoryview(data)
    if len(view) < 12 or bytes(view[0:4]) != b"RIFF" or bytes(view[8:12]) != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    offset = 12
    fmt: WavFormat | None = None
    while offset + 8 <= len(view):
        chunk_id, size = _CHUNK.unpack_from(view, offset)
        body = offset + 8
        if chunk_id == b"fmt ":
            if size < _FMT.size or body + size > len(view):
                raise WavError("WAV fmt chunk is truncated")
            tag, channels, rate, _byte_rate, _align, bits = _FMT.unpack_from(view, body)
            fmt = WavFormat(
                format_tag=tag, channels=channels, sample_rate=rate, bits_per_sample=bits
            )
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError("WAV data chunk comes before the fmt chunk")
            if body + size > len(view):
                raise WavError("WAV data chunk is truncated")
            return fmt, bytes(view[body : body + size])
        offset = body + size + (size & 1)
    raise WavError("WAV file has no data chunk")
