"""One continuous outgoing RTP stream toward a phone, whatever feeds it. Pure, no IO.

A phone sees the relay as its single RTP peer. Behind the relay the source changes: the
other phone restarts its stream with a new SSRC after a hold/resume re-INVITE, a transfer
connects a different phone, a prompt or music player takes over. RFC 3550 receivers key
jitter buffers and loss statistics on SSRC, sequence number and timestamp (§5.1, §8.2,
appendix A.1), and many phones mishandle an SSRC change mid-dialog. :class:`StreamRewriter`
therefore rewrites each packet's header in place so that toward the phone there is one SSRC,
sequence numbers continue by one, and the timestamp continues by the wall-clock time that
passed, whenever the source changes. The marker bit is set on the first packet after a switch
so the receiver resynchronises its playout (RFC 3551 §4.1).
"""

from __future__ import annotations

import struct

__all__ = ["MAX_DROPOUT", "MAX_MISORDER", "StreamRewriter"]

_FIXED = struct.Struct("!BBHII")
_SEQ_TS_SSRC = struct.Struct("!HII")

#: Same-SSRC sequence jumps treated as a restarted source rather than loss or reordering
#: (the thresholds of RFC 3550 appendix A.1).
MAX_DROPOUT = 3000
MAX_MISORDER = 100


class StreamRewriter:
    """Maps input packets from any source onto one output stream (see module doc).

    Within one input source the mapping is a constant offset on sequence number and
    timestamp, so loss, reordering and silence-suppression gaps pass through unchanged. A
    source switch is an SSRC change, a same-SSRC sequence jump beyond RFC 3550 A.1 limits,
    or an explicit :meth:`resync`.
    """

    __slots__ = (
        "_clock_rate",
        "_in_seq",
        "_in_ssrc",
        "_last_seq",
        "_last_time",
        "_last_ts",
        "_resync",
        "_seq_off",
        "_ts_off",
        "packets",
        "ssrc",
        "switches",
    )

    def __init__(
        self, *, ssrc: int, sequence_number: int, timestamp: int, clock_rate: int = 8000
    ) -> None:
        """Args:
        ssrc: the output SSRC (random, RFC 3550 §8.1).
        sequence_number: output sequence number of the first packet (random, §5.1).
        timestamp: output timestamp of the first packet (random, §5.1).
        clock_rate: RTP clock of the payloads (8000 for G.711 and telephone-event).
        """
        self.ssrc = ssrc & 0xFFFFFFFF
        self._clock_rate = clock_rate
        self._in_ssrc: int | None = None
        self._in_seq = 0
        self._seq_off = 0
        self._ts_off = 0
        # The first output packet is numbered as if it followed (seq - 1, ts); the one-sample
        # gap term is then zero because _last_time is unset.
        self._last_seq = (sequence_number - 1) & 0xFFFF
        self._last_ts = timestamp & 0xFFFFFFFF
        self._last_time: float | None = None
        self._resync = True
        self.packets = 0
        """Packets rewritten."""
        self.switches = 0
        """Source switches seen, the first packet included."""

    @property
    def last_sequence_number(self) -> int:
        """Highest output sequence number sent (or one before the first)."""
        return self._last_seq

    @property
    def last_timestamp(self) -> int:
        """Output timestamp of the newest packet sent (or the initial one)."""
        return self._last_ts

    def resync(self) -> None:
        """Treat the next packet as a new source even if its SSRC is unchanged.

        For a caller that knows the source changed (e.g. a player hands back to the bridge).
        """
        self._resync = True

    def rewrite(self, packet: bytearray, now: float) -> None:
        """Rewrite sequence number, timestamp and SSRC of one RTP packet in place.

        Args:
            packet: a complete RTP packet of at least 12 bytes (the caller has checked).
            now: monotonic time in seconds at which the packet is sent.
        """
        _b0, b1, seq, ts, ssrc = _FIXED.unpack_from(packet, 0)
        newest = True
        if ssrc != self._in_ssrc or self._resync:
            self._switch(seq, ts, ssrc, now)
            b1 |= 0x80
            packet[1] = b1
        else:
            delta = (seq - self._in_seq) & 0xFFFF
            if delta >= 0x8000:  # older than the newest packet seen
                if 0x10000 - delta > MAX_MISORDER:
                    self._switch(seq, ts, ssrc, now)
                    packet[1] = b1 | 0x80
                else:
                    newest = False
            elif delta > MAX_DROPOUT:
                self._switch(seq, ts, ssrc, now)
                packet[1] = b1 | 0x80
        out_seq = (seq + self._seq_off) & 0xFFFF
        out_ts = (ts + self._ts_off) & 0xFFFFFFFF
        _SEQ_TS_SSRC.pack_into(packet, 2, out_seq, out_ts, self.ssrc)
        if newest:
            self._in_seq = seq
            self._last_seq = out_seq
            self._last_ts = out_ts
        self._last_time = now
        self.packets += 1

    def _switch(self, seq: int, ts: int, ssrc: int, now: float) -> None:
        # Continue one after the last output sequence number, and advance the timestamp by
        # the time that passed since the last output packet, in clock units.
        gap = 0 if self._last_time is None else round((now - self._last_time) * self._clock_rate)
        self._seq_off = (self._last_seq + 1 - seq) & 0xFFFF
        self._ts_off = (self._last_ts + max(gap, 0) - ts) & 0xFFFFFFFF
        self._in_ssrc = ssrc
        self._in_seq = seq
        self._resync = False
        self.switches += 1
