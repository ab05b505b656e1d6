"""RTP packets (RFC 3550 §5.1) and RTP/RTCP demultiplexing (RFC 5761 §4). Pure, no IO.

The relay's per-packet path does not build :class:`RtpPacket` objects; it reads and patches the
fixed 12-byte header in place with :data:`FIXED_HEADER` (see ``relay.py``). The dataclasses here
are for the slower paths: tests, the prompt player, DTMF generation, diagnostics.

Fixed header (RFC 3550 §5.1)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           timestamp                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           synchronization source (SSRC) identifier            |
    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
    |            contributing source (CSRC) identifiers             |
    |                             ....                              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "FIXED_HEADER",
    "RTP_HEADER_LENGTH",
    "RTP_VERSION",
    "RtpError",
    "RtpHeader",
    "RtpPacket",
    "is_rtcp",
    "payload_bounds",
]

RTP_VERSION = 2
RTP_HEADER_LENGTH = 12
#: byte 0, byte 1, sequence number, timestamp, SSRC
FIXED_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_CSRC = struct.Struct("!I")


class RtpError(ValueError):
    """A datagram is not a well-formed RTP packet. The message says what is wrong."""


def is_rtcp(data: bytes | bytearray | memoryview) -> bool:
    """Tell RTCP from RTP when both arrive on one port (RFC 5761 §4).

    RTCP packet types 192-223 (SR 200, RR 201, SDES 202, BYE 203, APP 204, RTPFB 205,
    PSFB 206...) occupy the second byte where RTP has the marker bit and payload type; with
    the marker set they read as RTP payload types 64-95, which RFC 5761 §4 reserves for that
    reason. So a version-2 packet whose second byte is 192-223 is RTCP.
    """
    return len(data) >= 2 and (data[0] >> 6) == RTP_VERSION and 192 <= data[1] <= 223


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpHeader:
    """The RTP header fields (RFC 3550 §5.1, §5.3.1)."""

    payload_type: int
    """PT, 0-127 (RFC 3551 table: 0 PCMU, 8 PCMA; 96-127 dynamic)."""
    sequence_number: int
    """16-bit, incremented by one per packet sent."""
    timestamp: int
    """32-bit sampling instant of the first octet of payload (8 kHz clock for G.711)."""
    ssrc: int
    """32-bit synchronization source identifier."""
    marker: bool = False
    """M bit: for audio, the first packet of a talkspurt (RFC 3551 §4.1)."""
    csrc: tuple[int, ...] = ()
    """Contributing sources, at most 15."""
    extension_profile: int | None = None
    """16-bit profile of the header extension (RFC 3550 §5.3.1); None when X=0."""
    extension_data: bytes = b""
    """Header extension body; a multiple of 4 bytes."""

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"RTP payload type {self.payload_type} is out of range 0-127")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise RtpError(f"RTP sequence number {self.sequence_number} is out of range")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise RtpError(f"RTP timestamp {self.timestamp} is out of range")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpError(f"RTP SSRC {self.ssrc} is out of range")
        if len(self.csrc) > 15:
            raise RtpError("RTP packet cannot carry more than 15 CSRC")
        if len(self.extension_data) % 4:
            raise RtpError("RTP header extension length must be a multiple of 4 bytes")
        if self.extension_data and self.extension_profile is None:
            raise RtpError("RTP header extension data needs an extension profile")

    @property
    def size(self) -> int:
        """Serialized length in bytes."""
        size = RTP_HEADER_LENGTH + 4 * len(self.csrc)
        if self.extension_profile is not None:
            size += 4 + len(self.extension_data)
        return size

    def serialize(self, *, padding: bool = False) -> bytes:
        """Return the wire form of the header (``padding`` sets the P bit)."""
        byte0 = (RTP_VERSION << 6) | len(self.csrc)
        if padding:
            byte0 |= 0x20
        if self.extension_profile is not None:
            byte0 |= 0x10
        byte1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [FIXED_HEADER.pack(byte0, byte1, self.sequence_number, self.timestamp, self.ssrc)]
        parts.extend(_CSRC.pack(c) for c in self.csrc)
        if self.extension_profile is not None:
            parts.append(
                _EXTENSION_HEADER.pack(self.extension_profile, len(self.extension_data) // 4)
            )
            parts.append(self.extension_data)
        return b"".join(parts)


def payload_bounds(data: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Return ``(start, end)`` of the payload inside an RTP datagram without copying it.

    Raises:
        RtpError: the datagram is not a well-formed RTP packet.
    """
    length = len(data)
    if length < RTP_HEADER_LENGTH:
        raise RtpError(f"RTP packet length is less than {RTP_HEADER_LENGTH} bytes")
    byte0 = data[0]
    version = byte0 >> 6
    if version != RTP_VERSION:
        raise RtpError(f"RTP packet has version {version}, expected {RTP_VERSION}")
    start = RTP_HEADER_LENGTH + 4 * (byte0 & 0x0F)
    if start > length:
        raise RtpError(f"RTP packet is too short for {byte0 & 0x0F} CSRC")
    if byte0 & 0x10:
        if start + 4 > length:
            raise RtpError("RTP packet is too short for its header extension")
        _profile, words = _EXTENSION_HEADER.unpack_from(data, start)
        start += 4 + 4 * words
        if start > length:
            raise RtpError("RTP packet is too short for its header extension")
    end = length
    if byte0 & 0x20:
        # RFC 3550 §5.1: the last octet of the padding counts the padding octets, itself
        # included, so zero is invalid.
        padding = data[-1]
        if padding == 0 or end - padding < start:
            raise RtpError(f"RTP padding length {padding} is invalid")
        end -= padding
    return start, end


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    """A parsed RTP packet: header, payload and padding length."""

    header: RtpHeader
    """The header fields."""
    payload: bytes = b""
    """The payload, padding removed."""
    padding_size: int = 0
    """Number of padding octets appended when serialized (0 = no P bit), at most 255."""

    def __post_init__(self) -> None:
        if not 0 <= self.padding_size <= 255:
            raise RtpError(f"RTP padding length {self.padding_size} is invalid")

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one RTP datagram.

        Raises:
            RtpError: with a message naming the defect (length, version, CSRC, extension,
                padding).
        """
        start, end = payload_bounds(data)
        byte0, byte1, seq, timestamp, ssrc = FIXED_HEADER.unpack_from(data, 0)
        cc = byte0 & 0x0F
        csrc = tuple(_CSRC.unpack_from(data, RTP_HEADER_LENGTH + 4 * i)[0] for i in range(cc))
        profile: int | None = None
        ext = b""
        if byte0 & 0x10:
            offset = RTP_HEADER_LENGTH + 4 * cc
            profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            ext = bytes(data[offset + 4 : offset + 4 + 4 * words])
        header = RtpHeader(
            payload_type=byte1 & 0x7F,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=ssrc,
            marker=bool(byte1 & 0x80),
            csrc=csrc,
            extension_profile=profile,
            extension_data=ext,
        )
        return cls(header=header, payload=bytes(data[start:end]), padding_size=len(data) - end)

    def serialize(self) -> bytes:
        """Return the wire form; padding octets are zero with the count in the last one."""
        head = self.header.serialize(padding=self.padding_size > 0)
        if not self.padding_size:
            return head + self.payload
        pad = bytes(self.padding_size - 1) + bytes((self.padding_size,))
        return head + self.payload + pad
