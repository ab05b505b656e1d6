"""A message (voicemail) recorded from one party: mono G.711, copied, not transcoded.

:class:`MessageRecorder` is fed the caller's RTP payloads as they arrive (a tap on the
relay's caller endpoint) and keeps them in memory: a two-minute message is under 1 MB. It
tells voice from silence per packet (mean absolute level of the decoded samples above
:data:`VOICE_LEVEL`), so the switch can end a message after a stretch of silence and can
drop a "message" in which nobody spoke. Arrival order is kept; a lost packet shortens the
message by 20 ms instead of leaving a gap (nothing is aligned with it).

Nothing here does IO: :meth:`MessageRecorder.wav` returns the file's bytes for whoever
writes them (off the event loop).
"""

from __future__ import annotations

from typing import Literal

from minicc.switch.media.g711 import (
    ALAW_TO_ULAW_TABLE,
    ULAW_TO_ALAW_TABLE,
    alaw_decode,
    ulaw_decode,
)
from minicc.switch.media.wav import WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, WavFormat, wav_header

__all__ = ["VOICE_LEVEL", "MessageRecorder"]

RATE = 8000
VOICE_LEVEL = 300
"""Mean absolute 16-bit sample level above which a packet counts as voice. Line noise and
comfort noise sit well below (tens); speech and tones are in the thousands."""

_PT_PCMU = 0
_PT_PCMA = 8


class MessageRecorder:
    """One message being recorded (module doc).

    Args:
        codec: the law the file is written in (the call's codec: no conversion).
        now: time the recording starts (any monotonic clock, seconds).
    """

    def __init__(self, codec: Literal["PCMU", "PCMA"], now: float) -> None:
        if codec not in ("PCMU", "PCMA"):
            raise ValueError(f"cannot record codec {codec!r}; use PCMU or PCMA")
        self.codec = codec
        self._pt, self._other_pt = (_PT_PCMU, _PT_PCMA) if codec == "PCMU" else (_PT_PCMA, _PT_PCMU)
        self._convert = ALAW_TO_ULAW_TABLE if codec == "PCMU" else ULAW_TO_ALAW_TABLE
        self._decode = ulaw_decode if codec == "PCMU" else alaw_decode
        self._audio = bytearray()
        self.started = now
        self.last_voice = now
        """When voice was last heard (the start until someone speaks)."""
        self.voiced = False
        """Whether any packet so far was voice."""

    @property
    def duration(self) -> float:
        """Seconds of audio kept."""
        return len(self._audio) / RATE

    def feed(self, payload_type: int, payload: bytes | bytearray | memoryview, now: float) -> None:
        """Add one RTP payload; other payload types (telephone-event, comfort noise) are
        left out."""
        if payload_type == self._pt:
            data = bytes(payload)
        elif payload_type == self._other_pt:
            data = bytes(payload).translate(self._convert)
        else:
            return
        if not data:
            return
        self._audio += data
        samples = self._decode(data)
        if sum(abs(s) for s in samples) > VOICE_LEVEL * len(samples):
            self.voiced = True
            self.last_voice = now

    def wav(self) -> bytes:
        """The whole message as a mono 8 kHz G.711 WAV file."""
        tag = WAVE_FORMAT_MULAW if self.codec == "PCMU" else WAVE_FORMAT_ALAW
        fmt = WavFormat(format_tag=tag, channels=1, sample_rate=RATE, bits_per_sample=8)
        pad = b"\0" if len(self._audio) & 1 else b""  # RIFF chunks are word aligned
        return wav_header(fmt, len(self._audio)) + bytes(self._audio) + pad
