"""Two-channel G.711 WAV recording of a bridged call, without transcoding.

Channel 1 is party A (the caller leg), channel 2 party B. Both are 8-bit mu-law (WAV format
tag 7) or A-law (tag 6) at 8000 Hz, interleaved, so RTP payloads are copied straight into the
file; a packet in the other G.711 law is converted with a 256-byte ``translate`` table.

Time alignment: each channel places a packet's payload at its RTP timestamp relative to a
base chosen so that the channel's first packet lands at the wall-clock time it arrived since
recording started. A new SSRC (hold/resume, transfer), or :data:`RESYNC_PACKETS` packets in a
row whose timestamps stray more than :data:`MAX_SKEW` from the wall clock, re-base the channel
the same way, so neither breaks the alignment between the two parties. Gaps are silence.

Pause and resume (a caller reading out a card number): the paused span is written as
silence on both channels, so the file keeps its length and the parties stay aligned; a packet
arriving late for a paused span is silenced too. The spans are in :attr:`RecordingInfo.pauses`
and, with the rest of the figures, in a metadata file beside the WAV (``NAME.json``, see
:func:`metadata_path`), written when the recording is complete.

Writing: samples are kept in memory until they are :data:`LAG` behind the wall clock (late
packets still find their place), then handed out in chunks of about :data:`CHUNK` to a
single-thread executor, which does the file writes in order. The caller's thread (the event
loop) only slices bytes. :meth:`TwoChannelRecorder.close` returns at once; the RIFF sizes are
fixed up in the same executor and :attr:`TwoChannelRecorder.finished` tells when.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from minicc.switch.media.g711 import (
    ALAW_SILENCE,
    ALAW_TO_ULAW_TABLE,
    ULAW_SILENCE,
    ULAW_TO_ALAW_TABLE,
)
from minicc.switch.media.wav import WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, WavFormat, wav_header

__all__ = ["CHUNK", "LAG", "MAX_SKEW", "RecordingInfo", "TwoChannelRecorder", "metadata_path"]

log = logging.getLogger(__name__)

RATE = 8000
#: Samples per written chunk (1 s).
CHUNK = RATE
#: How far behind the wall clock samples stay buffered for late packets (0.5 s).
LAG = RATE // 2
#: Timestamp vs wall-clock disagreement beyond which a channel re-bases (0.4 s). Below LAG,
#: so a re-based packet is never already too late to be written.
MAX_SKEW = RATE * 2 // 5
#: Consecutive packets beyond MAX_SKEW after which a channel re-bases instead of dropping.
RESYNC_PACKETS = 3

_PT_PCMU = 0
_PT_PCMA = 8

Codec = Literal["PCMU", "PCMA"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingInfo:
    """What a finished recording holds."""

    path: Path
    """The WAV file."""
    codec: str
    """``PCMU`` (format tag 7) or ``PCMA`` (tag 6)."""
    frames: int
    """Sample frames written (one byte per channel each)."""
    late_packets: int = 0
    """Packets (partly) dropped because they arrived after their place was written or far
    off the wall clock."""
    error: str | None = None
    """The first write error, if writing failed; the file is then incomplete."""
    pauses: tuple[tuple[int, int], ...] = ()
    """(start, end) in milliseconds from the start of the file of each paused span, written
    as silence."""

    @property
    def duration_ms(self) -> int:
        """Length of the recording in milliseconds."""
        return self.frames * 1000 // RATE


def metadata_path(path: Path) -> Path:
    """The metadata file of the recording at ``path`` (``x.wav`` -> ``x.json``)."""
    return path.with_suffix(".json")


class _Channel:
    __slots__ = ("base", "buf", "skewed", "ssrc")

    def __init__(self) -> None:
        self.base: int | None = None  # RTP timestamp that maps to sample position 0
        self.ssrc: int | None = None
        self.skewed = 0  # consecutive packets beyond MAX_SKEW
        self.buf = bytearray()  # samples from the recorder's write position on


class TwoChannelRecorder:
    """Records two RTP streams into one stereo G.711 WAV file (see module doc).

    Not thread-safe: call :meth:`add` and :meth:`close` from one thread (the event loop).
    """

    def __init__(
        self,
        path: Path,
        codec: Codec,
        *,
        now: float,
        executor: Executor | None = None,
    ) -> None:
        """Open ``path`` and write a provisional header.

        Args:
            path: WAV file to create (truncated if it exists).
            codec: ``PCMU`` or ``PCMA``; the law the file is written in.
            now: monotonic time of the recording start, in seconds.
            executor: runs the file writes in order; share a single-thread executor between
                recordings. By default the recorder starts its own and shuts it down on
                close.

        Raises:
            ValueError: unknown codec.
            OSError: the file cannot be created.
        """
        if codec == "PCMU":
            self._pt, self._other_pt = _PT_PCMU, _PT_PCMA
            self._convert, self._silence = ALAW_TO_ULAW_TABLE, ULAW_SILENCE
            tag = WAVE_FORMAT_MULAW
        elif codec == "PCMA":
            self._pt, self._other_pt = _PT_PCMA, _PT_PCMU
            self._convert, self._silence = ULAW_TO_ALAW_TABLE, ALAW_SILENCE
            tag = WAVE_FORMAT_ALAW
        else:
            raise ValueError(f"cannot record codec {codec!r}; use PCMU or PCMA")
        self.path = Path(path)
        self.codec: Codec = codec
        self._format = WavFormat(format_tag=tag, channels=2, sample_rate=RATE, bits_per_sample=8)
        self._start = now
        self._written = 0  # sample position of each channel's buf[0]
        self._channels = (_Channel(), _Channel())
        self._silence_block = bytes([self._silence]) * (CHUNK + LAG)
        self._late = 0
        self._error: str | None = None
        self._closed = False
        self._pauses: list[list[int]] = []
        """[start, end] sample positions of each pause; the open one ends at -1."""
        self.finished: Future[RecordingInfo] | None = None
        """Set by :meth:`close`: resolves when the file is complete."""
        self._own_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="minicc-recorder"
        )
        self._file: BinaryIO = self.path.open("wb")
        self._file.write(wav_header(self._format, 0))

    @property
    def frames(self) -> int:
        """Sample frames handed to the writer so far."""
        return self._written

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return bool(self._pauses) and self._pauses[-1][1] < 0

    def pause(self, now: float) -> bool:
        """Write silence from ``now`` on (both channels) until :meth:`resume`.

        Returns:
            False when already paused or closed (nothing changes).
        """
        if self._closed or self.paused:
            return False
        start = max(int((now - self._start) * RATE), self._written)
        self._pauses.append([start, -1])
        for chan in self._channels:  # what was placed ahead of the wall clock already
            offset = start - self._written
            if offset < len(chan.buf):
                chan.buf[offset:] = self._silence_run(len(chan.buf) - offset)
        return True

    def resume(self, now: float) -> bool:
        """Record again from ``now``.

        Returns:
            False when not paused or closed.
        """
        if self._closed or not self.paused:
            return False
        self._pauses[-1][1] = max(int((now - self._start) * RATE), self._pauses[-1][0])
        return True

    @property
    def pauses(self) -> tuple[tuple[int, int], ...]:
        """Paused spans so far as (start, end) milliseconds; an open one ends now-ish (at the
        samples written so far)."""
        end_open = max(self._written + max(len(c.buf) for c in self._channels), 0)
        return tuple(
            (start * 1000 // RATE, (end if end >= 0 else max(end_open, start)) * 1000 // RATE)
            for start, end in self._pauses
        )

    def add(
        self,
        channel: int,
        payload_type: int,
        ssrc: int,
        timestamp: int,
        payload: bytes | bytearray | memoryview,
        now: float,
    ) -> None:
        """Place one RTP payload on a channel.

        Args:
            channel: 0 for party A, 1 for party B.
            payload_type: the packet's PT; only 0 (PCMU) and 8 (PCMA) are recorded, others
                (telephone-event, comfort noise) leave silence.
            ssrc: the packet's SSRC.
            timestamp: the packet's RTP timestamp.
            payload: the G.711 payload.
            now: monotonic arrival time in seconds.
        """
        if self._closed:
            return
        if payload_type == self._pt:
            data: bytes | bytearray | memoryview = payload
        elif payload_type == self._other_pt:
            data = bytes(payload).translate(self._convert)
        else:
            return
        wall = int((now - self._start) * RATE)
        chan = self._channels[channel]
        if chan.ssrc != ssrc or chan.base is None:
            chan.ssrc = ssrc
            chan.base = (timestamp - wall) & 0xFFFFFFFF
        pos = (timestamp - chan.base) & 0xFFFFFFFF
        if pos >= 0x80000000:
            pos -= 0x100000000
        if abs(pos - wall) > MAX_SKEW:
            # One stray packet (delayed seconds in a queue) is dropped; several in a row mean
            # the sender's timestamps jumped (e.g. a resume that kept its SSRC), so re-base.
            chan.skewed += 1
            if chan.skewed < RESYNC_PACKETS:
                self._late += 1
                return
            chan.base = (timestamp - wall) & 0xFFFFFFFF
            pos = wall
        chan.skewed = 0
        offset = pos - self._written
        if offset < 0:
            self._late += 1
            if -offset >= len(data):
                return
            data = data[-offset:]
            offset = 0
        end = offset + len(data)
        buf = chan.buf
        missing = end - len(buf)
        if missing > 0:
            buf += self._silence_run(missing)
        buf[offset:end] = data
        if self._pauses:
            self._silence_paused(buf, offset, end)
        if wall - self._written >= CHUNK + LAG:
            self._flush(wall - LAG)

    def close(self, now: float) -> RecordingInfo:
        """Stop recording: hand what is buffered to the writer, which then fixes the header
        and closes the file. Does not wait for the disk.

        Returns:
            The recording's figures as known now; :attr:`finished` resolves with the final
            ones (``error`` set if a write failed) once the file is complete.
        """
        if self._closed:
            raise RuntimeError("recording already closed")
        pending = max(len(c.buf) for c in self._channels)
        if self.paused:
            self._pauses[-1][1] = max(self._written + pending, self._pauses[-1][0])
        self._closed = True
        self._flush(self._written + pending)
        self.finished = self._executor.submit(self._finish)
        if self._own_executor:
            self._executor.shutdown(wait=False)
        return RecordingInfo(
            path=self.path,
            codec=self.codec,
            frames=self._written,
            late_packets=self._late,
            pauses=self.pauses,
        )

    # -- internals ----------------------------------------------------------------------
    def _silence_paused(self, buf: bytearray, offset: int, end: int) -> None:
        """Blank buf[offset:end] where it falls in a paused span."""
        base = self._written
        for start, stop in self._pauses:
            lo = max(offset, start - base)
            hi = end if stop < 0 else min(end, stop - base)
            if lo < hi:
                buf[lo:hi] = self._silence_run(hi - lo)

    def _silence_run(self, n: int) -> bytes:
        if n <= len(self._silence_block):
            return self._silence_block[:n]
        return bytes([self._silence]) * n

    def _flush(self, upto: int) -> None:
        n = upto - self._written
        if n <= 0:
            return
        out = bytearray(2 * n)
        for index, chan in enumerate(self._channels):
            buf = chan.buf
            part = buf[:n]
            if len(part) < n:
                part += self._silence_run(n - len(part))
            del buf[:n]
            out[index::2] = part
        self._written = upto
        self._executor.submit(self._write, bytes(out))

    def _write(self, data: bytes) -> None:
        # Runs in the writer thread.
        if self._error is not None:
            return
        try:
            self._file.write(data)
        except OSError as exc:
            self._error = str(exc)
            log.error("recording %s: write failed: %s", self.path, exc)

    def _finish(self) -> RecordingInfo:
        # Runs in the writer thread, after every chunk of this recording.
        frames = self._written
        try:
            if self._error is None:
                self._file.seek(0)
                self._file.write(wav_header(self._format, frames * self._format.block_align))
        except OSError as exc:
            self._error = str(exc)
            log.error("recording %s: cannot finalize header: %s", self.path, exc)
        finally:
            self._file.close()
        info = RecordingInfo(
            path=self.path,
            codec=self.codec,
            frames=frames,
            late_packets=self._late,
            error=self._error,
            pauses=self.pauses,
        )
        meta = {
            "file": self.path.name,
            "codec": self.codec,
            "channels": ["caller", "callee"],
            "duration_ms": info.duration_ms,
            "late_packets": info.late_packets,
            "pauses": [{"start_ms": start, "end_ms": end} for start, end in info.pauses],
        }
        try:
            metadata_path(self.path).write_text(json.dumps(meta, indent=1) + "\n")
        except OSError as exc:
            log.error("recording %s: cannot write its metadata: %s", self.path, exc)
        return info
