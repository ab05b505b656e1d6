"""A tiny RTP receiver for tests: what reached a port, per payload type, and what it sounded like.

Point an SDP at :attr:`RtpSink.port` (e.g. ``uas_answer.xml`` with ``-set rtpport``) and the
sink records every packet: counts per payload type, G.711 audio decoded in arrival order, and
RFC 4733 telephone-events (DTMF digits, counted once per event).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np

from tests.interop.audio import Samples, decode_g711
from tests.interop.ports import LOOPBACK, free_udp_port

RTP_HEADER_LEN = 12
PT_PCMU = 0
PT_PCMA = 8
# RFC 4733 section 3.2: event codes 0-9, *, #, A-D.
DTMF_EVENTS = "0123456789*#ABCD"


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    """The parts of an RTP packet (RFC 3550 section 5.1) the tests look at."""

    payload_type: int
    """7-bit payload type."""
    marker: bool
    """Marker bit."""
    sequence: int
    """Sequence number."""
    timestamp: int
    """RTP timestamp."""
    ssrc: int
    """Synchronisation source."""
    payload: bytes
    """Payload after the header, CSRCs and any extension; padding removed."""
    source: tuple[str, int]
    """Address the packet came from."""


def parse_rtp(data: bytes, source: tuple[str, int]) -> RtpPacket:
    """Parse one RTP datagram.

    Raises:
        ValueError: too short, or not RTP version 2.
    """
    if len(data) < RTP_HEADER_LEN:
        raise ValueError(f"RTP packet length is less than {RTP_HEADER_LEN} bytes")
    first, second, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
    if first >> 6 != 2:
        raise ValueError(f"RTP version is {first >> 6}, not 2")
    offset = RTP_HEADER_LEN + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
        if len(data) < offset + 4:
            raise ValueError("RTP header extension is truncated")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if first & 0x20 and end > offset:  # padding: last byte counts the padding bytes
        end -= data[-1]
    if end < offset:
        raise ValueError("RTP header longer than the packet")
    return RtpPacket(
        payload_type=second & 0x7F,
        marker=bool(second & 0x80),
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=data[offset:end],
        source=source,
    )


class RtpSink:
    """Receive RTP on 127.0.0.1 in a background thread.

    Args:
        port: UDP port to bind; a free one if None.
        telephone_event_pt: payload type carrying RFC 4733 events (101 in the scenarios).
    """

    def __init__(self, port: int | None = None, *, telephone_event_pt: int = 101) -> None:
        self.port = port if port is not None else free_udp_port()
        self.telephone_event_pt = telephone_event_pt
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((LOOPBACK, self.port))
        self._sock.settimeout(0.1)
        self._lock = threading.Lock()
        self._packets: list[RtpPacket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rtp-sink-{self.port}", daemon=True)

    def start(self) -> Self:
        """Start receiving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop receiving and close the socket."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            # Anything that is not RTP (RTCP on a shared port, stray probes) is skipped.
            with contextlib.suppress(ValueError):
                packet = parse_rtp(data, (str(addr[0]), int(addr[1])))
                with self._lock:
                    self._packets.append(packet)

    @property
    def packets(self) -> list[RtpPacket]:
        """A snapshot of the packets received so far."""
        with self._lock:
            return list(self._packets)

    def counts(self) -> Counter[int]:
        """Packets received per payload type."""
        return Counter(p.payload_type for p in self.packets)

    def wait_for_packets(self, count: int, timeout: float, payload_type: int | None = None) -> bool:
        """Wait until ``count`` packets (of ``payload_type``, if given) have arrived.

        Returns:
            True if they did within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            packets = self.packets
            got = sum(1 for p in packets if payload_type is None or p.payload_type == payload_type)
            if got >= count:
                return True
            time.sleep(0.02)
        return False

    def audio(self) -> Samples:
        """G.711 payloads (PCMU and PCMA) decoded in arrival order, as float samples."""
        chunks = []
        for p in self.packets:
            if p.payload_type == PT_PCMU:
                chunks.append(decode_g711(p.payload, "ulaw"))
            elif p.payload_type == PT_PCMA:
                chunks.append(decode_g711(p.payload, "alaw"))
        return np.concatenate(chunks) if chunks else np.zeros(0)

    def dtmf_digits(self) -> str:
        """RFC 4733 digits received, one per event (an event's end packets are repeated)."""
        digits: list[str] = []
        seen: set[tuple[int, int]] = set()
        for p in self.packets:
            if p.payload_type != self.telephone_event_pt or len(p.payload) < 4:
                continue
            event, flags = p.payload[0], p.payload[1]
            # RFC 4733 section 2.3: E bit set on the final packets; one event per timestamp.
            key = (p.ssrc, p.timestamp)
            if flags & 0x80 and key not in seen:
                seen.add(key)
                digits.append(DTMF_EVENTS[event] if event < len(DTMF_EVENTS) else "?")
        return "".join(digits)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
