"""Media between one aiortc peer (the browser) and one G.711 RTP stream (the switch).

Browser to switch: aiortc decodes whatever the browser sent (Opus, PCMU or PCMA) to PCM
frames; :class:`RtpSender` resamples them to 8 kHz mono, encodes G.711 and sends one 20 ms
RTP packet per 160 samples. Keypad digits go out as RFC 4733 telephone-events on the same
RTP stream (same SSRC and sequence space), with audio paused while a digit plays.

Switch to browser: :class:`SwitchAudioTrack` is an aiortc ``MediaStreamTrack`` that yields a
20 ms frame every 20 ms from what the switch sent, and silence when nothing arrived (so the
browser's clock never stalls while the caller waits in a queue between prompts).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import random
import time
from array import array
from dataclasses import dataclass

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from minicc.switch.media import g711
from minicc.switch.media.dtmf import build_dtmf_rtp
from minicc.switch.media.rtp import RtpError, RtpHeader, RtpPacket, is_rtcp

__all__ = ["RtpSender", "SwitchAudioTrack", "SwitchSdp", "make_offer", "parse_answer"]

HOST = "127.0.0.1"
SAMPLES = 160
"""20 ms at 8 kHz."""
PTIME = 0.02
DTMF_PT = 101
MAX_BUFFERED = 25
"""Frames kept from the switch (0.5 s) before the oldest are dropped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchSdp:
    """What the switch's SDP answer chose."""

    host: str
    port: int
    payload_type: int
    """0 (PCMU) or 8 (PCMA)."""
    dtmf_pt: int | None


def make_offer(port: int, session: int, host: str = HOST) -> bytes:
    """The G.711 offer to the switch: PCMU, PCMA and telephone-event."""
    lines = [
        "v=0",
        f"o=minicc-webcall {session} 1 IN IP4 {host}",
        "s=web call",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP 0 8 {DTMF_PT}",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        f"a=rtpmap:{DTMF_PT} telephone-event/8000",
        f"a=fmtp:{DTMF_PT} 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def parse_answer(body: bytes) -> SwitchSdp:
    """Read the switch's answer (connection address, port, first G.711 payload type).

    Raises:
        ValueError: no audio line, or no G.711 in it.
    """
    host, port, pts, dtmf = HOST, 0, [], None
    for raw in body.decode(errors="replace").splitlines():
        line = raw.strip()
        if line.startswith("c=IN IP4 "):
            host = line.split()[2]
        elif line.startswith("m=audio "):
            parts = line.split()
            port = int(parts[1])
            pts = [int(p) for p in parts[3:] if p.isdigit()]
        elif line.startswith("a=rtpmap:") and "telephone-event" in line:
            dtmf = int(line[len("a=rtpmap:") :].split()[0])
    g711_pts = [p for p in pts if p in (0, 8)]
    if not port or not g711_pts:
        raise ValueError("switch answer has no G.711 audio")
    return SwitchSdp(host=host, port=port, payload_type=g711_pts[0], dtmf_pt=dtmf)


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_packet: object) -> None:
        self.on_packet = on_packet

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_packet(data)  # type: ignore[operator]


class SwitchAudioTrack(MediaStreamTrack):
    """Audio from the switch, paced at 20 ms (see module doc)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: collections.deque[bytes] = collections.deque(maxlen=MAX_BUFFERED)
        self._pts = 0
        self._start: float | None = None
        self.packets_in = 0
        self.peak = 0
        """Highest absolute sample value received (silence detection in tests and stats)."""

    def feed(self, payload_type: int, payload: bytes) -> None:
        samples = g711.ulaw_decode(payload) if payload_type == 0 else g711.alaw_decode(payload)
        self.packets_in += 1
        if samples:
            self.peak = max(self.peak, max(abs(s) for s in samples))
        self._frames.append(samples.tobytes())

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            self._pts += SAMPLES
            wait = self._start + self._pts / 8000 - now
            if wait > 0:
                await asyncio.sleep(wait)
        pcm = self._frames.popleft() if self._frames else bytes(2 * SAMPLES)
        if len(pcm) != 2 * SAMPLES:
            pcm = (pcm + bytes(2 * SAMPLES))[: 2 * SAMPLES]
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = 8000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 8000)
        return frame


class RtpSender:
    """The RTP socket towards the switch: sends the browser's audio and keypad digits, and
    feeds what the switch sends to a :class:`SwitchAudioTrack`."""

    def __init__(self, track: SwitchAudioTrack, host: str = HOST) -> None:
        self.track = track
        self.host = host
        self._transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.remote: SwitchSdp | None = None
        self._seq = random.randrange(1 << 16)
        self._ts = random.randrange(1 << 32)
        self._ssrc = random.randrange(1, 1 << 32)
        self._pending = array("h")
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
        self._dtmf_busy = False
        self.packets_out = 0
        self.peak_out = 0
        self.muted = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _RtpProtocol(self._on_packet), local_addr=(self.host, 0)
        )
        self._transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _on_packet(self, data: bytes) -> None:
        if is_rtcp(data):
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        if packet.header.payload_type in (0, 8):
            self.track.feed(packet.header.payload_type, packet.payload)

    def _send(self, payload_type: int, payload: bytes, *, marker: bool = False) -> None:
        if self._transport is None or self.remote is None:
            return
        header = RtpHeader(
            payload_type=payload_type,
            sequence_number=self._seq,
            timestamp=self._ts,
            ssrc=self._ssrc,
            marker=marker,
        )
        self._seq = (self._seq + 1) & 0xFFFF
        self._transport.sendto(
            RtpPacket(header=header, payload=payload).serialize(),
            (self.remote.host, self.remote.port),
        )
        self.packets_out += 1

    def push(self, frame: av.AudioFrame) -> None:
        """Take one decoded frame from the browser; send every full 20 ms it completes."""
        for out in self._resampler.resample(frame):
            data = bytes(out.planes[0])[: out.samples * 2]
            self._pending.frombytes(data)
        while len(self._pending) >= SAMPLES:
            chunk = self._pending[:SAMPLES]
            del self._pending[:SAMPLES]
            if self._dtmf_busy:
                continue  # the digit's packets carry this stretch of time
            if self.muted:
                chunk = array("h", bytes(2 * SAMPLES))
            else:
                self.peak_out = max(self.peak_out, max(abs(s) for s in chunk))
            pt = self.remote.payload_type if self.remote else 0
            payload = g711.ulaw_encode(chunk) if pt == 0 else g711.alaw_encode(chunk)
            self._send(pt, payload)
            self._ts = (self._ts + SAMPLES) & 0xFFFFFFFF

    async def send_digit(self, digit: str, duration_ms: int = 160) -> None:
        """Send one RFC 4733 key press, paced one packet per 20 ms.

        Raises:
            DtmfError: not a DTMF digit.
        """
        if self.remote is None:
            return
        pt = self.remote.dtmf_pt if self.remote.dtmf_pt is not None else DTMF_PT
        packets = build_dtmf_rtp(
            digit,
            payload_type=pt,
            ssrc=self._ssrc,
            sequence_number=self._seq,
            timestamp=self._ts,
            duration_ms=duration_ms,
        )
        self._dtmf_busy = True
        try:
            for data in packets:
                if self._transport is not None:
                    self._transport.sendto(data, (self.remote.host, self.remote.port))
                    self.packets_out += 1
                self._seq = (self._seq + 1) & 0xFFFF
                await asyncio.sleep(PTIME)
        finally:
            self._ts = (self._ts + duration_ms * 8) & 0xFFFFFFFF
            self._dtmf_busy = False

    async def pump(self, track: MediaStreamTrack) -> None:
        """Forward the browser's track until it ends."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.push(frame)
