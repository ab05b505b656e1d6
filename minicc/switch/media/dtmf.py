"""RFC 4733 telephone-event DTMF: payload codec, a per-stream detector, a packet builder. Pure.

Payload (RFC 4733 §2.3)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     event     |E|R| volume    |          duration             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Every packet of one event carries the same RTP timestamp (the event's start, §2.5.1.1) and a
growing duration; the end packet has E set and is sent three times (§2.5.1.4). Start packets
may be lost, and so may some or all of the end packets. The detector therefore keys events on
(SSRC, RTP timestamp), not on the marker bit nor on the event code, which also separates two
presses of the same key.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from minicc.switch.media.rtp import RtpHeader, RtpPacket

__all__ = [
    "DTMF_EVENTS",
    "DtmfDetector",
    "DtmfDigit",
    "DtmfError",
    "DtmfFrame",
    "TelephoneEvent",
    "build_dtmf_rtp",
    "dtmf_frames",
]

_PAYLOAD = struct.Struct("!BBH")

#: Event codes 0-15 for the DTMF keys (RFC 4733 §3.2, table 1).
DTMF_EVENTS = "0123456789*#ABCD"
_EVENT_OF_DIGIT = {d: i for i, d in enumerate(DTMF_EVENTS)}
_EVENT_OF_DIGIT.update({d.lower(): i for i, d in enumerate(DTMF_EVENTS) if d.isalpha()})

#: How many ended events to remember, so the retransmitted end packets (§2.5.1.4) and late
#: reordered ones are not reported again. Three are sent back to back; a few extra cover
#: reordering against the next key press.
_ENDED_MEMORY = 8


class DtmfError(ValueError):
    """A telephone-event payload or a digit to send is invalid."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """One telephone-event payload (RFC 4733 §2.3)."""

    event: int
    """Event code 0-255; 0-15 are the DTMF keys."""
    end: bool = False
    """E bit: this packet ends the event."""
    volume: int = 10
    """Power level as attenuation below 0 dBm0, 0-63 (so 10 means -10 dBm0)."""
    duration: int = 0
    """Duration so far in RTP timestamp units (samples), 0-65535."""

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise DtmfError(f"telephone-event code {self.event} is out of range 0-255")
        if not 0 <= self.volume <= 63:
            raise DtmfError(f"telephone-event volume {self.volume} is out of range 0-63")
        if not 0 <= self.duration <= 0xFFFF:
            raise DtmfError(f"telephone-event duration {self.duration} is out of range")

    @classmethod
    def parse(cls, payload: bytes | bytearray | memoryview) -> TelephoneEvent:
        """Parse a 4-byte payload (extra bytes, as in §2.5.1.5 event lists, are ignored).

        Raises:
            DtmfError: the payload is shorter than 4 bytes.
        """
        if len(payload) < 4:
            raise DtmfError("telephone-event payload is shorter than 4 bytes")
        event, flags, duration = _PAYLOAD.unpack_from(payload, 0)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        """Return the 4-byte payload (R bit always zero, §2.3)."""
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        """The DTMF key for events 0-15, else None."""
        return DTMF_EVENTS[self.event] if self.event < 16 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfDigit:
    """A key press seen on a stream, reported once."""

    digit: str
    """One of ``0123456789*#ABCD``."""
    duration_ms: int
    """Longest duration seen for the event, in milliseconds."""
    volume: int
    """Attenuation below 0 dBm0 (0-63) of the last packet seen."""
    timestamp: int
    """RTP timestamp of the event start; identifies the event within its SSRC."""
    ssrc: int
    """SSRC of the stream that carried it."""
    ended: bool = True
    """False when no end packet arrived (all three lost) and the digit was reported because
    the next event started or the stream was flushed."""


class DtmfDetector:
    """Turns the telephone-event packets of one RTP stream into one :class:`DtmfDigit` per key.

    Feed every packet whose payload type is the negotiated telephone-event type. A digit is
    reported on the first end packet of its event; an event whose end packets were all lost is
    reported when the next event starts or on :meth:`flush`. Events outside 0-15 (flash hook,
    tones) are ignored.

    Limitation: an event held longer than 65535 samples (about 8 s) is split by the sender
    into segments with new timestamps (§2.5.1.3) and would be reported once per segment.
    """

    __slots__ = ("_clock_rate", "_current", "_ended", "malformed")

    def __init__(self, clock_rate: int = 8000) -> None:
        self._clock_rate = clock_rate
        # (ssrc, timestamp, event, max duration, volume) of an event still in progress
        self._current: tuple[int, int, int, int, int] | None = None
        self._ended: deque[tuple[int, int]] = deque(maxlen=_ENDED_MEMORY)
        self.malformed = 0
        """Payloads that could not be parsed (counted, never raised)."""

    def feed(
        self, payload: bytes | bytearray | memoryview, *, timestamp: int, ssrc: int
    ) -> tuple[DtmfDigit, ...]:
        """Process one telephone-event payload.

        Args:
            payload: the RTP payload (after the header).
            timestamp: the packet's RTP timestamp.
            ssrc: the packet's SSRC.

        Returns:
            The digits completed by this packet: usually none, at most two (an unfinished
            previous event and this one, when this packet starts and ends an event).
        """
        if len(payload) < 4:
            self.malformed += 1
            return ()
        event, flags, duration = _PAYLOAD.unpack_from(payload, 0)
        if event > 15:
            return ()
        key = (ssrc, timestamp)
        if key in self._ended:
            return ()  # a retransmitted or late end packet of an event already reported
        out: tuple[DtmfDigit, ...] = ()
        current = self._current
        if current is not None and (current[0], current[1]) != key:
            out = (self._digit(current, ended=False),)
            self._ended.append((current[0], current[1]))
            current = None
        if current is not None:
            duration = max(duration, current[3])
        state = (ssrc, timestamp, event, duration, flags & 0x3F)
        if flags & 0x80:
            self._current = None
            self._ended.append(key)
            return (*out, self._digit(state, ended=True))
        self._current = state
        return out

    def flush(self) -> DtmfDigit | None:
        """Report an event still in progress (no end packet seen), e.g. when the stream stops."""
        current = self._current
        if current is None:
            return None
        self._current = None
        self._ended.append((current[0], current[1]))
        return self._digit(current, ended=False)

    def _digit(self, state: tuple[int, int, int, int, int], *, ended: bool) -> DtmfDigit:
        ssrc, timestamp, event, duration, volume = state
        return DtmfDigit(
            digit=DTMF_EVENTS[event],
            duration_ms=duration * 1000 // self._clock_rate,
            volume=volume,
            timestamp=timestamp,
            ssrc=ssrc,
            ended=ended,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfFrame:
    """One telephone-event packet to send; all frames of a digit share one RTP timestamp."""

    payload: bytes
    """The 4-byte telephone-event payload."""
    marker: bool
    """M bit: set on the first packet of the event only (§2.5.1.1)."""
    end: bool
    """True for the end packet and its retransmissions."""


def dtmf_frames(
    digit: str,
    *,
    duration_ms: int = 100,
    volume: int = 10,
    packet_ms: int = 20,
    clock_rate: int = 8000,
) -> list[DtmfFrame]:
    """Build the telephone-event payloads that send one key press (RFC 4733 §2.5.1).

    The caller sends one frame every ``packet_ms`` with the same RTP timestamp (the event
    start) and consecutive sequence numbers, then resumes audio with a timestamp advanced by
    the event duration.

    Args:
        digit: one of ``0123456789*#ABCD`` (a-d accepted).
        duration_ms: how long the key is held.
        volume: attenuation below 0 dBm0, 0-63.
        packet_ms: update interval.
        clock_rate: RTP clock of the telephone-event payload type (8000 with G.711).

    Returns:
        Update frames with growing duration, the last one with E set, followed by two
        retransmissions of that end frame (three in total, §2.5.1.4).

    Raises:
        DtmfError: unknown digit or out-of-range duration/volume.
    """
    event = _EVENT_OF_DIGIT.get(digit)
    if event is None:
        raise DtmfError(f"cannot send DTMF digit {digit!r}")
    if duration_ms <= 0 or packet_ms <= 0:
        raise DtmfError("DTMF duration and packet interval must be positive")
    total = duration_ms * clock_rate // 1000
    if total > 0xFFFF:
        raise DtmfError(f"DTMF duration {duration_ms} ms does not fit one event")
    step = packet_ms * clock_rate // 1000
    frames: list[DtmfFrame] = []
    elapsed = step
    while elapsed < total:
        payload = TelephoneEvent(event=event, volume=volume, duration=elapsed).serialize()
        frames.append(DtmfFrame(payload=payload, marker=not frames, end=False))
        elapsed += step
    end_payload = TelephoneEvent(event=event, end=True, volume=volume, duration=total).serialize()
    for _ in range(3):
        frames.append(DtmfFrame(payload=end_payload, marker=not frames, end=True))
    return frames


def build_dtmf_rtp(
    digit: str,
    *,
    payload_type: int,
    ssrc: int,
    sequence_number: int,
    timestamp: int,
    duration_ms: int = 100,
    volume: int = 10,
    packet_ms: int = 20,
) -> list[bytes]:
    """Build complete RTP packets for one key press (see :func:`dtmf_frames`).

    Sequence numbers increase by one per packet, retransmissions included; every packet
    carries ``timestamp``.
    """
    out: list[bytes] = []
    frames = dtmf_frames(digit, duration_ms=duration_ms, volume=volume, packet_ms=packet_ms)
    for i, frame in enumerate(frames):
        header = RtpHeader(
            payload_type=payload_type,
            sequence_number=(sequence_number + i) & 0xFFFF,
            timestamp=timestamp,
            ssrc=ssrc,
            marker=frame.marker,
        )
        out.append(RtpPacket(header=header, payload=frame.payload).serialize())
    return out
