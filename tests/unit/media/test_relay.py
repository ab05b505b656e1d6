"""The RTP relay over real loopback UDP sockets: two plain sockets play phone A and phone B."""

from __future__ import annotations

import asyncio
import math
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from minicc.switch.media import g711, relay
from minicc.switch.media.dtmf import DtmfDigit, build_dtmf_rtp
from minicc.switch.media.relay import MediaEngine, MediaError, MediaSession
from minicc.switch.media.rtp import RtpHeader, RtpPacket
from minicc.switch.media.wav import parse_wav

HOST = "127.0.0.1"
# Ports the engine may use; ports taken by anything else on the box are skipped.
PORT_MIN, PORT_MAX = 41000, 41199
TIMEOUT = 5.0
Address = tuple[str, int]


class Phone(asyncio.DatagramProtocol):
    """A UDP socket standing in for a SIP phone's RTP stack."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.inbox.put_nowait((data, addr))

    @property
    def addr(self) -> Address:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, port))

    async def recv(self) -> tuple[RtpPacket, Address]:
        data, addr = await asyncio.wait_for(self.inbox.get(), TIMEOUT)
        return RtpPacket.parse(data), addr

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_phone() -> Phone:
    loop = asyncio.get_running_loop()
    _transport, phone = await loop.create_datagram_endpoint(Phone, local_addr=(HOST, 0))
    return phone


def rtp(seq: int, ts: int, ssrc: int, payload: bytes = b"\xff" * 160, *, pt: int = 0) -> bytes:
    header = RtpHeader(payload_type=pt, sequence_number=seq & 0xFFFF, timestamp=ts, ssrc=ssrc)
    return RtpPacket(header=header, payload=payload).serialize()


class Digits:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, DtmfDigit]] = []
        self.event = asyncio.Event()

    def __call__(self, call_id: str, side: str, digit: DtmfDigit) -> None:
        self.seen.append((call_id, side, digit))
        self.event.set()


@pytest.fixture
def digits() -> Digits:
    return Digits()


@pytest.fixture
async def engine(digits: Digits) -> AsyncIterator[MediaEngine]:
    media = MediaEngine(HOST, PORT_MIN, PORT_MAX, on_dtmf=digits, rng=random.Random(7))
    yield media
    await media.close()


@pytest.fixture
async def phones() -> AsyncIterator[tuple[Phone, Phone]]:
    a, b = await open_phone(), await open_phone()
    yield a, b
    a.close()
    b.close()


async def bridged(engine: MediaEngine, a: Phone, b: Phone) -> MediaSession:
    session = await engine.create_session("call-1")
    session.a.set_remote(a.addr)
    session.b.set_remote(b.addr)
    return session


async def test_forwards_both_ways_from_the_advertised_ports(
    engine: MediaEngine, phones: tuple[Phone, Phone]
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    assert session.a.local_port % 2 == 0 and PORT_MIN <= session.a.local_port <= PORT_MAX
    assert session.a.local_port != session.b.local_port

    a.send(rtp(1, 0, 0xAAAA, b"\x01" * 160), session.a.local_port)
    packet, source = await b.recv()
    assert source == (HOST, session.b.local_port)  # symmetric: from the port B sends to
    assert packet.payload == b"\x01" * 160
    assert packet.header.ssrc == session.b.stream.ssrc != 0xAAAA

    b.send(rtp(9, 0, 0xBBBB, b"\x02" * 160), session.b.local_port)
    packet, source = await a.recv()
    assert source == (HOST, session.a.local_port)
    assert packet.payload == b"\x02" * 160

    stats_a, stats_b = session.a.stats, session.b.stats
    assert (stats_a.packets_in, stats_a.packets_out, stats_a.bytes_in) == (1, 1, 172)
    assert (stats_b.packets_in, stats_b.packets_out) == (1, 1)
    assert stats_a.latched == a.addr and stats_a.last_rx is not None


async def test_latches_to_nat_source_and_ignores_others(
    engine: MediaEngine, phones: tuple[Phone, Phone]
) -> None:
    a, b = phones
    private = await open_phone()  # the address phone A's SDP names; behind NAT, unused
    stray = await open_phone()
    try:
        session = await engine.create_session("call-nat")
        session.a.set_remote(private.addr)
        session.b.set_remote(b.addr)
        # Phone A's packets come from another port than its SDP said (the NAT mapping).
        a.send(rtp(1, 0, 1), session.a.local_port)
        await b.recv()
        assert session.a.stats.latched == a.addr
        assert session.a.remote == a.addr
        # B's media now goes to where A's packets came from, not to the SDP address.
        b.send(rtp(1, 0, 2), session.b.local_port)
        await a.recv()
        assert private.inbox.empty()
        # Someone else sending to A's port is not relayed and does not steal the stream.
        stray.send(rtp(50, 0, 3), session.a.local_port)
        a.send(rtp(2, 160, 1), session.a.local_port)
        packet, _ = await b.recv()
        assert packet.header.sequence_number == session.b.stream.last_sequence_number
        assert b.inbox.empty()
        assert session.a.stats.foreign == 1
        assert session.a.remote == a.addr

        # A re-INVITE (same SDP address) re-arms latching but keeps media flowing to the
        # latched address until A's next packet confirms it.
        session.a.set_remote(private.addr)
        assert session.a.remote == a.addr and session.a.stats.latched is None
        b.send(rtp(2, 160, 2), session.b.local_port)
        await a.recv()
        # After a new SDP the phone may show up from a new address (it roamed).
        session.a.set_remote(private.addr)
        stray.send(rtp(3, 320, 1), session.a.local_port)
        await b.recv()
        assert session.a.remote == stray.addr
    finally:
        private.close()
        stray.close()


async def test_sdp_address_wins_within_window_then_locks(
    engine: MediaEngine, phones: tuple[Phone, Phone], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = phones
    stray = await open_phone()
    try:
        session = await bridged(engine, a, b)
        stray.send(rtp(1, 0, 9), session.a.local_port)  # an early stray packet latches first
        await b.recv()
        assert session.a.remote == stray.addr
        a.send(rtp(1, 0, 1), session.a.local_port)  # then the real phone at its SDP address
        await b.recv()
        assert session.a.remote == a.addr

        # With the window closed, even the SDP address cannot take over any more.
        monkeypatch.setattr(relay, "LATCH_WINDOW", 0.0)
        session.a.set_remote(a.addr)
        stray.send(rtp(2, 160, 9), session.a.local_port)
        await b.recv()
        a.send(rtp(2, 160, 1), session.a.local_port)
        stray.send(rtp(3, 320, 9), session.a.local_port)  # a marker that A's packet was handled
        await b.recv()
        assert session.a.remote == stray.addr
        assert session.a.stats.foreign == 1
    finally:
        stray.close()


async def test_stream_continuity_when_source_switches_ssrc(
    engine: MediaEngine, phones: tuple[Phone, Phone]
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    for i in range(3):
        a.send(rtp(100 + i, 8000 + 160 * i, 0x1111), session.a.local_port)
    # hold/resume: A restarts its stream with a new SSRC, sequence and timestamp
    for i in range(3):
        a.send(rtp(40_000 + i, 3_000_000_000 + 160 * i, 0x2222), session.a.local_port)
    headers = [(await b.recv())[0].header for _ in range(6)]
    assert {h.ssrc for h in headers} == {session.b.stream.ssrc}
    seqs = [h.sequence_number for h in headers]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == [0, 1, 2, 3, 4, 5]
    ts = [h.timestamp for h in headers]
    assert (ts[1] - ts[0], ts[2] - ts[1], ts[4] - ts[3], ts[5] - ts[4]) == (160, 160, 160, 160)
    assert 0 <= (ts[3] - ts[2]) & 0xFFFFFFFF < 8000  # wall-clock gap, not the SSRC's jump
    assert [h.marker for h in headers] == [True, False, False, True, False, False]
    assert session.b.stream.switches == 2


async def test_dtmf_forwarded_and_reported_once(
    engine: MediaEngine, phones: tuple[Phone, Phone], digits: Digits
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    session.a.set_telephone_event_pt(101)
    packets = build_dtmf_rtp(
        "5", payload_type=101, ssrc=0x1234, sequence_number=10, timestamp=16_000
    )
    for wire in packets:
        a.send(wire, session.a.local_port)
    received = [(await b.recv())[0] for _ in packets]
    assert [p.payload for p in received] == [RtpPacket.parse(w).payload for w in packets]
    assert {p.header.payload_type for p in received} == {101}
    await asyncio.wait_for(digits.event.wait(), TIMEOUT)
    assert [(c, s, d.digit, d.duration_ms) for c, s, d in digits.seen] == [
        ("call-1", "a", "5", 100)
    ]
    assert session.a.stats.dtmf_digits == 1
    # B has no telephone-event type set: its events are relayed but not reported
    for wire in packets:
        b.send(wire, session.b.local_port)
    for _ in packets:
        await a.recv()
    assert len(digits.seen) == 1


async def test_recording_puts_each_party_on_its_channel(
    engine: MediaEngine, phones: tuple[Phone, Phone], tmp_path: Path
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    path = tmp_path / "rec.wav"
    session.start_recording(path, "PCMU")
    assert session.recording
    with pytest.raises(MediaError, match="already recording"):
        session.start_recording(tmp_path / "other.wav", "PCMU")
    packets = 15  # 0.3 s each way, sent back to back (within the recorder's skew window)

    def tone(freq: float, i: int) -> bytes:
        return g711.ulaw_encode(
            round(10_000 * math.sin(2 * math.pi * freq * (i * 160 + n) / 8000)) for n in range(160)
        )

    for i in range(packets):
        a.send(rtp(i, 160 * i, 0xA, tone(440, i)), session.a.local_port)
        b.send(rtp(i, 160 * i, 0xB, tone(1000, i)), session.b.local_port)
    for _ in range(packets):
        await a.recv()
        await b.recv()
    info = session.stop_recording()
    assert not session.recording and info.path == path and info.codec == "PCMU"
    written = await session.recording_written()
    assert written is not None and written.error is None
    assert written.frames >= packets * 160

    fmt, data = parse_wav(path.read_bytes())
    assert (fmt.format_tag, fmt.channels, fmt.sample_rate, fmt.bits_per_sample) == (7, 2, 8000, 8)
    for channel, expected in ((0, 440), (1, 1000)):
        pcm = np.array(g711.ulaw_decode(data[channel::2]), dtype=float)
        spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
        peak = np.fft.rfftfreq(len(pcm), 1 / 8000)[int(np.argmax(spectrum))]
        assert peak == pytest.approx(expected, abs=10)


async def test_garbage_is_counted_never_raised(
    engine: MediaEngine, phones: tuple[Phone, Phone]
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    a.send(b"junk", session.a.local_port)
    a.send(b"\x00" * 20, session.a.local_port)  # version 0
    a.send(bytes.fromhex("81c90007") + b"\0" * 28, session.a.local_port)  # RR, muxed
    a.send(bytes.fromhex("81c90007") + b"\0" * 28, session.a.local_port + 1)  # RR, RTCP port
    # Bad padding: the relay does not parse payloads it only forwards, so this one is
    # relayed as is (the phone's RTP stack will discard it); it is not an error.
    a.send(bytes.fromhex("a000000100000000000000aa") + b"\x05", session.a.local_port)
    a.send(rtp(7, 0, 1), session.a.local_port)
    raw, _ = await asyncio.wait_for(b.inbox.get(), TIMEOUT)
    assert len(raw) == 13
    packet, _ = await b.recv()
    assert packet.header.payload_type == 0 and packet.header.sequence_number
    stats = session.a.stats
    assert (stats.malformed, stats.rtcp_in, stats.errors, stats.packets_in) == (2, 2, 0, 5)
    assert stats.last_rtcp is not None
    assert b.inbox.empty()


async def test_unroutable_mute_and_injection(
    engine: MediaEngine, phones: tuple[Phone, Phone]
) -> None:
    a, b = phones
    session = await engine.create_session("call-2")
    session.a.set_remote(a.addr)
    a.send(rtp(1, 0, 1), session.a.local_port)  # B's address unknown yet
    b.send(rtp(1, 0, 2), session.b.local_port)  # B latches (no SDP yet), A gets it
    await a.recv()
    assert session.a.stats.unroutable == 1
    assert session.b.remote == b.addr

    # A prompt plays to B: bridged audio from A is held back, the player's packets go
    # through the same stream rewriter so B sees one continuous stream.
    a.send(rtp(2, 160, 1), session.a.local_port)
    first, _ = await b.recv()
    session.b.forward_from_peer = False
    a.send(rtp(3, 320, 1), session.a.local_port)
    assert session.b.send_rtp(rtp(500, 99_000, 0xFEED, b"\x7f" * 160))
    prompt, _ = await b.recv()
    assert prompt.payload == b"\x7f" * 160
    assert prompt.header.ssrc == first.header.ssrc
    assert prompt.header.sequence_number == (first.header.sequence_number + 1) & 0xFFFF
    assert prompt.header.marker
    session.b.forward_from_peer = True
    a.send(rtp(4, 480, 1), session.a.local_port)
    back, _ = await b.recv()
    assert back.header.sequence_number == (prompt.header.sequence_number + 1) & 0xFFFF
    assert back.header.marker


def free_port_block(size: int) -> int:
    """An even port starting ``size`` consecutive UDP ports free right now on HOST."""
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20_000, 30_000, 2)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free block of UDP ports found")


async def test_port_exhaustion_and_release() -> None:
    base = free_port_block(4)
    media = MediaEngine(HOST, base, base + 3)  # two RTP/RTCP pairs
    try:
        session = await media.create_session("one")
        assert media.free_pairs == 0
        with pytest.raises(MediaError, match=rf"no free RTP port pair in {base}-{base + 3}"):
            await media.create_session("two")
        session.close()
        session.close()  # idempotent
        assert media.free_pairs == 2 and not media.sessions
        # transports close their sockets on the next loop iteration
        await asyncio.sleep(0)
        again = await media.create_session("three")
        assert {again.a.local_port, again.b.local_port} == {base, base + 2}
    finally:
        await media.close()
    with pytest.raises(MediaError, match="closed"):
        await media.create_session("late")
    with pytest.raises(ValueError, match="holds no even/odd pair"):
        MediaEngine(HOST, 5001, 5001)


async def test_failing_dtmf_callback_does_not_break_media(
    phones: tuple[Phone, Phone], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = phones

    def broken(call_id: str, side: str, digit: DtmfDigit) -> None:
        raise RuntimeError("plugin bug")

    media = MediaEngine(HOST, PORT_MIN, PORT_MAX, on_dtmf=broken)
    try:
        session = await bridged(media, a, b)
        session.a.set_telephone_event_pt(101)
        packets = build_dtmf_rtp("#", payload_type=101, ssrc=1, sequence_number=1, timestamp=0)
        for wire in [*packets, rtp(99, 800, 1)]:
            a.send(wire, session.a.local_port)
        for _ in range(len(packets) + 1):
            await b.recv()
        assert "on_dtmf callback failed" in caplog.text
        assert session.a.stats.errors == 0
    finally:
        await media.close()


async def test_tap_hears_each_accepted_packet_of_its_phone(
    engine: MediaEngine, phones: tuple[Phone, Phone]
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    heard: list[tuple[int, bytes]] = []
    session.a.tap = lambda pt, payload: heard.append((pt, payload))
    a.send(rtp(1, 0, 0xAAAA, b"\x05" * 160, pt=8), session.a.local_port)
    await b.recv()  # forwarded as before
    b.send(rtp(1, 0, 0xBBBB, b"\x06" * 160), session.b.local_port)
    await a.recv()
    assert heard == [(8, b"\x05" * 160)]  # only side A's own audio, payload only
