"""The RTP relay: media anchored in minicc, two phones per session. The only media socket code.

Each :class:`MediaSession` has two :class:`MediaEndpoint` objects, ``a`` (caller leg) and
``b`` (callee leg), each owning an even RTP port and the RTCP port above it. A packet that
phone A sends to ``a.local_port`` leaves from ``b``'s socket toward phone B, and the reverse,
so each phone receives media from the very address it was told to send to (symmetric RTP,
RFC 4961), which is what NAT boxes and strict phones need.

Per packet, in order: count it; drop it if it is not RTP version 2; drop RTCP that arrived
on the RTP port (RFC 5761 §4 demux); check the source (latching, below); copy the datagram
into a bytearray, rewrite its header with the peer's
:class:`~minicc.switch.media.stream.StreamRewriter` and send it; feed telephone-event packets
(forwarded like any RTP) to the endpoint's :class:`~minicc.switch.media.dtmf.DtmfDetector`;
hand the payload to the recorder when one runs. Nothing on that path
logs or builds objects beyond the one bytearray (and a payload slice while recording).

Symmetric latching (NAT). A phone behind NAT advertises a private address in SDP; its packets
arrive from the NAT's public address. After each :meth:`MediaEndpoint.set_remote` (a new SDP,
including re-INVITEs) latching is armed: the first packet received latches the endpoint to
its source address, and media toward the phone goes there instead of to the SDP address. For
:data:`LATCH_WINDOW` seconds after that a packet from the exact SDP address may still take
over (a phone not behind NAT wins over an early stray packet); after the window the endpoint
is locked and packets from any other source are dropped and counted as ``foreign``.
Trade-off: whoever sends first to a freshly allocated port can capture that leg's media until
the next SDP change (the classic RTP-hijack risk of latching). Ports are handed out round
robin from a large range, the window is short, and a locked endpoint ignores other sources;
a deployment that needs more ties ports to signalling addresses in front of minicc.

RTCP: the RTCP port (RTP port + 1) is bound so the pair is reserved and phones do not get
ICMP errors, but RTCP is counted and dropped, not relayed. The relay rewrites SSRC, sequence
numbers and timestamps, so a phone's SR/RR would describe a stream the other phone never
saw; phones work without RTCP from the far end. The count (and ``last_rtcp``) still tells a
media-timeout check that a held phone is alive.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import struct
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from minicc.switch.media.dtmf import DtmfDetector, DtmfDigit
from minicc.switch.media.recorder import RecordingInfo, TwoChannelRecorder
from minicc.switch.media.rtp import RtpError, payload_bounds
from minicc.switch.media.stream import StreamRewriter

__all__ = [
    "LATCH_WINDOW",
    "EndpointStats",
    "MediaEndpoint",
    "MediaEngine",
    "MediaError",
    "MediaSession",
]

log = logging.getLogger(__name__)

#: Seconds after the first latch during which the SDP address may still take over.
LATCH_WINDOW = 2.0

Side = Literal["a", "b"]
Address = tuple[str, int]
DtmfCallback = Callable[[str, str, DtmfDigit], None]

_monotonic = time.monotonic
# Timestamp and SSRC of the fixed header, read at offset 4 (RFC 3550 §5.1).
_TS_SSRC = struct.Struct("!II")


_P = TypeVar("_P", bound=asyncio.BaseProtocol)


def _factory(protocol: _P) -> Callable[[], _P]:
    return lambda: protocol


class MediaError(Exception):
    """The media plane cannot do what was asked (no free ports, closed session...)."""


class _CallAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['call_id']}] {msg}", kwargs  # type: ignore[index]


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointStats:
    """Counters of one endpoint, a snapshot."""

    local_port: int
    """RTP port the phone sends to."""
    remote: Address | None
    """Where media toward the phone goes now (SDP or latched address)."""
    latched: Address | None
    """Source address latched since the last SDP change, None before the first packet."""
    packets_in: int
    """Datagrams received on the RTP port (all of them, dropped ones included)."""
    bytes_in: int
    packets_out: int
    """Packets sent toward this endpoint's phone."""
    bytes_out: int
    last_rx: float | None
    """Monotonic time of the last accepted RTP packet, None before the first."""
    rtcp_in: int
    """RTCP packets received (RTCP port or muxed on the RTP port); dropped."""
    last_rtcp: float | None
    """Monotonic time of the last RTCP packet."""
    foreign: int
    """Packets dropped because they came from an address other than the latched one."""
    malformed: int
    """Datagrams that were not RTP version 2."""
    unroutable: int
    """Packets dropped because the peer's address is not known yet."""
    dtmf_digits: int
    """RFC 4733 digits detected on packets from this phone."""
    errors: int
    """Unexpected exceptions while handling a packet (logged, never raised)."""


class _RtcpSink(asyncio.DatagramProtocol):
    """Binds the RTCP port of a pair; counts and drops what arrives (see module doc)."""

    __slots__ = ("_endpoint", "transport")

    def __init__(self, endpoint: MediaEndpoint) -> None:
        self._endpoint = endpoint
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        endpoint = self._endpoint
        endpoint._rtcp_in += 1
        endpoint._last_rtcp = _monotonic()

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors for a port we never send from; nothing to do


class MediaEndpoint(asyncio.DatagramProtocol):
    """One side of a session: the RTP socket a phone talks to (see module doc)."""

    __slots__ = (
        "_bytes_in",
        "_bytes_out",
        "_channel",
        "_detector",
        "_dtmf_count",
        "_errors",
        "_foreign",
        "_last_rtcp",
        "_last_rx",
        "_latch_deadline",
        "_latch_open",
        "_latched",
        "_log",
        "_malformed",
        "_on_dtmf",
        "_out",
        "_packets_in",
        "_packets_out",
        "_peer",
        "_remote",
        "_rtcp_in",
        "_rtcp_transport",
        "_sdp_remote",
        "_session",
        "_te_pt",
        "_transport",
        "_unroutable",
        "forward_from_peer",
        "local_port",
        "side",
        "tap",
    )

    def __init__(
        self,
        session: MediaSession,
        side: Side,
        local_port: int,
        out: StreamRewriter,
        logger: logging.LoggerAdapter,  # type: ignore[type-arg]
    ) -> None:
        self._session = session
        self.side: Side = side
        self._channel = 0 if side == "a" else 1
        self.local_port = local_port
        """The RTP port this endpoint's phone must send to (put it in the SDP)."""
        self.forward_from_peer = True
        """When False, the peer's packets are not sent to this phone (e.g. while a prompt
        plays to it through :meth:`send_rtp`); they are still recorded."""
        self.tap: Callable[[int, bytes], None] | None = None
        """Called with (payload type, payload) of every accepted packet from this phone: how
        a mixer (listen, whisper, barge, conference) hears this party."""
        self._out = out
        self._log = logger
        self._peer: MediaEndpoint | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self._remote: Address | None = None
        self._sdp_remote: Address | None = None
        self._latched: Address | None = None
        self._latch_open = True
        self._latch_deadline = math.inf
        self._te_pt = -1
        self._detector = DtmfDetector()
        self._on_dtmf: DtmfCallback | None = None
        self._packets_in = self._bytes_in = 0
        self._packets_out = self._bytes_out = 0
        self._rtcp_in = self._foreign = self._malformed = 0
        self._unroutable = self._errors = self._dtmf_count = 0
        self._last_rx: float | None = None
        self._last_rtcp: float | None = None

    # -- control ------------------------------------------------------------------------
    def set_remote(self, addr: Address | None) -> None:
        """Set where the phone wants media (from its SDP) and re-arm latching.

        Args:
            addr: ``(host, port)`` from the phone's SDP; None (or host ``0.0.0.0`` or port
                0) when it gave none, e.g. the RFC 2543 hold. Then nothing is sent to the
                phone until it sends a packet that latches.
        """
        if addr is not None and (addr[1] == 0 or addr[0] in ("0.0.0.0", "::")):
            addr = None
        previous_sdp, latched = self._sdp_remote, self._latched
        self._sdp_remote = addr
        # Same SDP address as before (a re-INVITE from a phone behind NAT): keep sending to
        # the latched address until a packet re-latches, instead of to its private address.
        if addr is not None and addr == previous_sdp and latched is not None:
            self._remote = latched
        else:
            self._remote = addr
        self._latched = None
        self._latch_open = True
        self._latch_deadline = math.inf
        self._log.debug("side %s: remote from SDP %s, latching armed", self.side, addr)

    def set_telephone_event_pt(self, pt: int | None) -> None:
        """Set the RFC 4733 payload type negotiated for this phone; None disables detection."""
        self._te_pt = -1 if pt is None else pt

    def send_rtp(self, packet: bytes | bytearray) -> bool:
        """Send an RTP packet of another source (prompt, music, DTMF) to this phone.

        It goes through the same :class:`StreamRewriter` as bridged media, so the phone sees
        one continuous stream. Returns False when there is no address to send to yet.
        """
        if len(packet) < 12 or self._remote is None or self._transport is None:
            return False
        buf = bytearray(packet)
        self._out.rewrite(buf, _monotonic())
        self._transport.sendto(buf, self._remote)
        self._packets_out += 1
        self._bytes_out += len(buf)
        return True

    @property
    def remote(self) -> Address | None:
        """Where media toward the phone goes now."""
        return self._remote

    @property
    def stream(self) -> StreamRewriter:
        """The rewriter of the stream toward this endpoint's phone."""
        return self._out

    @property
    def stats(self) -> EndpointStats:
        """A snapshot of the counters."""
        return EndpointStats(
            local_port=self.local_port,
            remote=self._remote,
            latched=self._latched,
            packets_in=self._packets_in,
            bytes_in=self._bytes_in,
            packets_out=self._packets_out,
            bytes_out=self._bytes_out,
            last_rx=self._last_rx,
            rtcp_in=self._rtcp_in,
            last_rtcp=self._last_rtcp,
            foreign=self._foreign,
            malformed=self._malformed,
            unroutable=self._unroutable,
            dtmf_digits=self._dtmf_count,
            errors=self._errors,
        )

    # -- asyncio protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a phone that stopped listening surfaces here on Linux.
        self._errors += 1

    def datagram_received(self, data: bytes, addr: Address) -> None:
        # The hot path; see the module doc for the steps. Never raises.
        try:
            n = len(data)
            self._packets_in += 1
            self._bytes_in += n
            if n < 12 or data[0] & 0xC0 != 0x80:
                self._malformed += 1
                return
            b1 = data[1]
            now = _monotonic()
            if 192 <= b1 <= 223:  # RFC 5761 §4: RTCP muxed on the RTP port
                self._rtcp_in += 1
                self._last_rtcp = now
                return
            if (addr != self._remote or self._latch_open) and not self._accept_source(addr, now):
                return
            self._last_rx = now
            peer = self._peer
            if peer is not None and peer.forward_from_peer:
                remote = peer._remote
                transport = peer._transport
                if remote is not None and transport is not None:
                    buf = bytearray(data)
                    peer._out.rewrite(buf, now)
                    transport.sendto(buf, remote)
                    peer._packets_out += 1
                    peer._bytes_out += n
                else:
                    self._unroutable += 1
            pt = b1 & 0x7F
            if pt == self._te_pt:
                self._dtmf(data)
            tap = self.tap
            if tap is not None:
                start, end = payload_bounds(data)
                tap(pt, data[start:end])
            recorder = self._session._recorder
            if recorder is not None:
                start, end = payload_bounds(data)
                ts, ssrc = _TS_SSRC.unpack_from(data, 4)
                recorder.add(self._channel, pt, ssrc, ts, data[start:end], now)
        except RtpError:
            self._malformed += 1
        except Exception:
            self._errors += 1
            if self._errors == 1:  # the first one in full; the counter tells the rest
                self._log.exception("side %s: error relaying a packet from %s", self.side, addr)

    # -- slow paths ---------------------------------------------------------------------
    def _accept_source(self, addr: Address, now: float) -> bool:
        if self._latch_open and now >= self._latch_deadline:
            self._latch_open = False
            self._log.debug("side %s: latched to %s, locked", self.side, self._latched)
        if self._latched is not None and addr == self._remote:
            return True
        if not self._latch_open or (self._latched is not None and addr != self._sdp_remote):
            self._foreign += 1
            return False
        if self._latched is None:
            self._latch_deadline = now + LATCH_WINDOW
        self._latched = addr
        self._remote = addr
        if addr != self._sdp_remote:
            self._log.info(
                "side %s: latched to %s (SDP said %s)", self.side, addr, self._sdp_remote
            )
        return True

    def _dtmf(self, data: bytes) -> None:
        start, end = payload_bounds(data)
        ts, ssrc = _TS_SSRC.unpack_from(data, 4)
        for digit in self._detector.feed(data[start:end], timestamp=ts, ssrc=ssrc):
            self._dtmf_count += 1
            callback = self._on_dtmf
            if callback is None:
                continue
            try:
                callback(self._session.call_id, self.side, digit)
            except Exception:
                self._log.exception("on_dtmf callback failed for digit %s", digit.digit)

    def _close(self) -> None:
        for transport in (self._transport, self._rtcp_transport):
            if transport is not None:
                transport.close()
        self._transport = None
        self._rtcp_transport = None
        self._peer = None


class MediaSession:
    """A bridged pair of endpoints, ``a`` (caller leg) and ``b`` (callee leg)."""

    def __init__(
        self,
        engine: MediaEngine,
        call_id: str,
        a: MediaEndpoint | None = None,
        b: MediaEndpoint | None = None,
    ) -> None:
        # Built by MediaEngine.create_session(); endpoints are attached right after.
        self._engine = engine
        self.call_id = call_id
        self.a: MediaEndpoint = a  # type: ignore[assignment]
        self.b: MediaEndpoint = b  # type: ignore[assignment]
        self._recorder: TwoChannelRecorder | None = None
        self._finished: Future[RecordingInfo] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def recording(self) -> bool:
        """True while a recording runs."""
        return self._recorder is not None

    @property
    def recorder(self) -> TwoChannelRecorder | None:
        """The running recording (to pause and resume it), or None."""
        return self._recorder

    def endpoint(self, side: Side) -> MediaEndpoint:
        """``a`` or ``b`` by name."""
        return self.a if side == "a" else self.b

    def start_recording(self, path: Path, codec: Literal["PCMU", "PCMA"] = "PCMU") -> None:
        """Record both parties to a two-channel WAV (channel 1 = A, channel 2 = B).

        Pick the codec the call negotiated so payloads are copied, not converted.

        Raises:
            MediaError: the session is closed or already recording.
            OSError: the file cannot be created.
        """
        if self._closed:
            raise MediaError("session is closed")
        if self._recorder is not None:
            raise MediaError("session is already recording")
        self._recorder = TwoChannelRecorder(
            path, codec, now=_monotonic(), executor=self._engine._writer()
        )
        log.info("[%s] recording to %s (%s)", self.call_id, path, codec)

    def stop_recording(self) -> RecordingInfo:
        """Stop recording. The file is completed in the writer thread; await
        :meth:`recording_written` before reading it.

        Returns:
            Path, codec and length of the recording.

        Raises:
            MediaError: no recording runs.
        """
        recorder = self._recorder
        if recorder is None:
            raise MediaError("session is not recording")
        self._recorder = None
        info = recorder.close(_monotonic())
        self._finished = recorder.finished
        log.info("[%s] recording stopped: %s, %d ms", self.call_id, info.path, info.duration_ms)
        return info

    async def recording_written(self) -> RecordingInfo | None:
        """Wait until the last stopped recording is on disk; None if there was none.

        The result's ``error`` is set if writing failed.
        """
        if self._finished is None:
            return None
        return await asyncio.wrap_future(self._finished)

    def close(self) -> None:
        """Close the sockets and release the ports. A running recording is finished in the
        background (:meth:`MediaEngine.close` waits for it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._recorder is not None:
            self.stop_recording()
        for endpoint in (self.a, self.b):
            if endpoint is not None:
                endpoint._close()
        self._engine._release(self)
        log.debug("[%s] media session closed", self.call_id)


class MediaEngine:
    """Allocates relay ports and owns every :class:`MediaSession` of the process."""

    def __init__(
        self,
        host: str,
        port_min: int,
        port_max: int,
        *,
        on_dtmf: DtmfCallback | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Args:
        host: local address to bind and to advertise in SDP.
        port_min: lowest port of the range (RTP uses even ports, RTCP the odd one above).
        port_max: highest port of the range, inclusive.
        on_dtmf: called as ``on_dtmf(call_id, side, digit)`` for each RFC 4733 digit, on the
            event loop; exceptions are logged.
        rng: source of SSRCs and initial sequence numbers/timestamps (inject for tests).

        Raises:
            ValueError: the range holds no even/odd port pair.
        """
        first = port_min + (port_min & 1)
        if port_min < 1 or port_max > 0xFFFF or first + 1 > port_max:
            raise ValueError(f"RTP port range {port_min}-{port_max} holds no even/odd pair")
        self.host = host
        self.port_min = port_min
        self.port_max = port_max
        self._on_dtmf = on_dtmf
        self._rng = rng or random.Random()
        self._ports = list(range(first, port_max, 2))
        self._cursor = 0
        self._in_use: set[int] = set()
        self._sessions: set[MediaSession] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def sessions(self) -> frozenset[MediaSession]:
        """Open sessions."""
        return frozenset(self._sessions)

    @property
    def free_pairs(self) -> int:
        """Port pairs not held by a session (some may still be taken by other programs)."""
        return len(self._ports) - len(self._in_use)

    async def create_session(self, call_id: str) -> MediaSession:
        """Allocate two port pairs and return a session relaying between them.

        Raises:
            MediaError: the engine is closed or no free port pair is left in the range.
        """
        if self._closed:
            raise MediaError("media engine is closed")
        session = MediaSession(self, call_id)
        logger = _CallAdapter(log, {"call_id": call_id})
        try:
            session.a = await self._open_endpoint(session, "a", logger)
            session.b = await self._open_endpoint(session, "b", logger)
        except BaseException:
            for endpoint in (session.a, session.b):
                if endpoint is not None:
                    endpoint._close()
                    self._in_use.discard(endpoint.local_port)
            raise
        session.a._peer, session.b._peer = session.b, session.a
        self._sessions.add(session)
        logger.debug("media session on ports %d/%d", session.a.local_port, session.b.local_port)
        return session

    async def close(self) -> None:
        """Close every session and wait for recordings to be written."""
        self._closed = True
        for session in list(self._sessions):
            session.close()
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: executor.shutdown(wait=True)
            )

    # -- internals ----------------------------------------------------------------------
    def _writer(self) -> ThreadPoolExecutor:
        # One writer thread for every recording: file writes stay in order and 500
        # recorded calls do not mean 500 threads.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minicc-recorder")
        return self._executor

    def _release(self, session: MediaSession) -> None:
        self._sessions.discard(session)
        for endpoint in (session.a, session.b):
            if endpoint is not None:
                self._in_use.discard(endpoint.local_port)

    def _new_stream(self) -> StreamRewriter:
        rng = self._rng
        return StreamRewriter(
            ssrc=rng.getrandbits(32),
            sequence_number=rng.getrandbits(16),
            timestamp=rng.getrandbits(32),
        )

    async def _open_endpoint(
        self,
        session: MediaSession,
        side: Side,
        logger: logging.LoggerAdapter,  # type: ignore[type-arg]
    ) -> MediaEndpoint:
        loop = asyncio.get_running_loop()
        total = len(self._ports)
        for _ in range(total):
            port = self._ports[self._cursor]
            # Round robin, so a port just released is the last to be reused and stray
            # packets of the previous call do not reach the next one.
            self._cursor = (self._cursor + 1) % total
            if port in self._in_use:
                continue
            endpoint = MediaEndpoint(session, side, port, self._new_stream(), logger)
            endpoint._on_dtmf = self._on_dtmf
            try:
                await loop.create_datagram_endpoint(
                    _factory(endpoint), local_addr=(self.host, port)
                )
            except OSError:
                continue  # taken by another program
            sink = _RtcpSink(endpoint)
            try:
                await loop.create_datagram_endpoint(
                    _factory(sink), local_addr=(self.host, port + 1)
                )
            except OSError:
                endpoint._close()
                continue
            endpoint._rtcp_transport = sink.transport
            self._in_use.add(port)
            return endpoint
        raise MediaError(
            f"no free RTP port pair in {self.port_min}-{self.port_max} "
            f"({len(self._in_use)} pairs in use); widen the media port range"
        )
