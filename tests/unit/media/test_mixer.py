"""The mixer: pure frame mixing and routing, and the bridge over real loopback UDP."""

from __future__ import annotations

import asyncio
import random
from array import array
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest

from minicc.switch.media import g711
from minicc.switch.media.mixer import (
    AGENT,
    CALLER,
    SUPERVISOR,
    MixBridge,
    MixLeg,
    MixMode,
    conference_routing,
    decode,
    encode,
    mix_for_listeners,
    mix_g711,
    mix_linear,
    supervisor_legs,
    supervisor_routing,
)
from minicc.switch.media.relay import MediaEngine
from minicc.switch.media.rtp import RtpHeader, RtpPacket

HOST = "127.0.0.1"
PORT_MIN, PORT_MAX = 41600, 41799
TIMEOUT = 5.0
RATE = 8000
FRAME = 160
Address = tuple[str, int]
TONES = {CALLER: 440.0, AGENT: 1000.0, SUPERVISOR: 1800.0}


def tone(freq: float, samples: int, amplitude: float = 8000.0, start: int = 0) -> array[int]:
    n = np.arange(start, start + samples)
    return array("h", np.round(amplitude * np.sin(2 * np.pi * freq * n / RATE)).astype(int))


def level(samples: Sequence[int], freq: float) -> float:
    """Amplitude of ``freq`` in the signal (windowed FFT, relative to full scale)."""
    x = np.asarray(samples, dtype=float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) / (len(x) / 4)
    bins = np.fft.rfftfreq(len(x), 1 / RATE)
    near = np.abs(bins - freq) <= 15
    return float(spectrum[near].max())


def test_sum_of_two_tones_holds_both_frequencies() -> None:
    a, b = tone(440, 1600), tone(1000, 1600)
    mixed = mix_linear([a, b])
    assert len(mixed) == 1600
    assert level(mixed, 440) == pytest.approx(8000, rel=0.05)
    assert level(mixed, 1000) == pytest.approx(8000, rel=0.05)
    assert level(mixed, 1800) < 100

    # The same through G.711 in both laws, and across laws.
    payload = mix_g711([(encode(a, "PCMU"), "PCMU"), (encode(b, "PCMA"), "PCMA")], "PCMA")
    decoded = decode(payload, "PCMA")
    assert level(decoded, 440) == pytest.approx(8000, rel=0.05)
    assert level(decoded, 1000) == pytest.approx(8000, rel=0.05)


def test_clipping_saturates_instead_of_wrapping() -> None:
    loud = array("h", [30000, -30000, 20000, 100] * 40)
    mixed = mix_linear([loud, loud])
    assert list(mixed[:4]) == [32767, -32768, 32767, 200]
    # Through mu-law: still full-scale positive, not a wrapped negative click.
    out = g711.ulaw_decode(mix_g711([(g711.ulaw_encode(loud), "PCMU")] * 2, "PCMU"))
    assert out[0] > 30000 and out[1] < -30000

    # Shorter frames count as silence after their end; no frames is empty.
    assert list(mix_linear([array("h", [1, 2, 3]), array("h", [10])])) == [11, 2, 3]
    assert list(mix_linear([])) == []
    assert list(mix_linear([array("h", [5])])) == [5]


def test_whisper_mix_agent_hears_both_caller_hears_agent_only() -> None:
    frames = {party: tone(freq, 1600) for party, freq in TONES.items()}
    out = mix_for_listeners(frames, supervisor_routing(MixMode.WHISPER))
    agent, caller, supervisor = out[AGENT], out[CALLER], out[SUPERVISOR]
    assert level(agent, TONES[CALLER]) > 7000 and level(agent, TONES[SUPERVISOR]) > 7000
    assert level(agent, TONES[AGENT]) < 100  # nobody hears themselves
    assert level(caller, TONES[AGENT]) > 7000
    assert level(caller, TONES[SUPERVISOR]) < 100 and level(caller, TONES[CALLER]) < 100
    assert level(supervisor, TONES[CALLER]) > 7000 and level(supervisor, TONES[AGENT]) > 7000
    assert level(supervisor, TONES[SUPERVISOR]) < 100


def test_routing_tables() -> None:
    listen = supervisor_routing(MixMode.LISTEN)
    assert listen[CALLER] == {AGENT} and listen[AGENT] == {CALLER}
    assert listen[SUPERVISOR] == {CALLER, AGENT}
    barge = supervisor_routing(MixMode.BARGE)
    assert barge == conference_routing([CALLER, AGENT, SUPERVISOR])
    assert barge[CALLER] == {AGENT, SUPERVISOR}
    # A silent party (None) contributes nothing; a listener whose sources are all silent
    # gets an empty frame; a listener listed as its own source does not hear itself.
    out = mix_for_listeners({CALLER: tone(440, 160), AGENT: None}, {SUPERVISOR: {AGENT}})
    assert list(out[SUPERVISOR]) == []
    out = mix_for_listeners({CALLER: array("h", [7] * 160)}, {CALLER: {CALLER}})
    assert list(out[CALLER]) == []


class Phone(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[RtpPacket] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.inbox.put_nowait(RtpPacket.parse(data))

    @property
    def addr(self) -> Address:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, port))

    async def recv_n(self, n: int) -> list[RtpPacket]:
        return [await asyncio.wait_for(self.inbox.get(), TIMEOUT) for _ in range(n)]

    def drain(self) -> list[RtpPacket]:
        out = []
        while not self.inbox.empty():
            out.append(self.inbox.get_nowait())
        return out


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    media = MediaEngine(HOST, PORT_MIN, PORT_MAX, rng=random.Random(11))
    yield media
    await media.close()


@pytest.fixture
async def phones() -> AsyncIterator[dict[str, Phone]]:
    loop = asyncio.get_running_loop()
    phones = {}
    for party in (CALLER, AGENT, SUPERVISOR):
        _transport, phones[party] = await loop.create_datagram_endpoint(Phone, local_addr=(HOST, 0))
    yield phones
    for phone in phones.values():
        assert phone.transport is not None
        phone.transport.close()


def rtp(seq: int, payload: bytes, ssrc: int, pt: int = 0) -> bytes:
    header = RtpHeader(payload_type=pt, sequence_number=seq, timestamp=seq * FRAME, ssrc=ssrc)
    return RtpPacket(header=header, payload=payload).serialize()


def samples_of(packets: list[RtpPacket]) -> array[int]:
    out = array("h")
    for packet in packets:
        out.extend(decode(packet.payload, "PCMA" if packet.header.payload_type == 8 else "PCMU"))
    return out


async def test_bridge_whisper_over_udp(engine: MediaEngine, phones: dict[str, Phone]) -> None:
    """Caller and agent talk through the relay; the supervisor whispers to the agent.

    Each party's packets are fed to the bridge as the relay tap would, and the same packets
    of caller and agent go through the relay so the caller hears the agent directly.
    """
    call = await engine.create_session("call-w")
    call.a.set_remote(phones[CALLER].addr)
    call.b.set_remote(phones[AGENT].addr)
    sup_session = await engine.create_session("sup-w")
    sup_session.a.set_remote(phones[SUPERVISOR].addr)
    legs = supervisor_legs(call, sup_session.a, agent_codec="PCMA")
    bridge = MixBridge(
        "call-w",
        legs,
        supervisor_routing(MixMode.WHISPER),
        max_buffer_ms=1000,
        rng=random.Random(1),
    )
    # The agent hears the mix now, not the relay; the caller still hears the agent directly.
    assert not call.b.forward_from_peer and call.a.forward_from_peer
    assert not sup_session.a.forward_from_peer

    packets = 12
    ports = {CALLER: call.a.local_port, AGENT: call.b.local_port}
    for i in range(packets):
        for party, freq in TONES.items():
            payload = g711.ulaw_encode(tone(freq, FRAME, start=i * FRAME))
            bridge.feed(party, 0, payload)
            if party in ports:
                phones[party].send(rtp(i, payload, ssrc=ports[party]), ports[party])
    bridge.feed(CALLER, 101, b"\x05\x0a\x00\xa0")  # DTMF is not audio: ignored
    bridge.start()

    agent = await phones[AGENT].recv_n(packets)
    supervisor = await phones[SUPERVISOR].recv_n(packets)
    caller = await phones[CALLER].recv_n(packets)  # relayed from the agent
    assert {p.header.payload_type for p in agent} == {8}  # the agent's leg is PCMA
    heard = samples_of(agent)
    assert level(heard, TONES[CALLER]) > 6000 and level(heard, TONES[SUPERVISOR]) > 6000
    assert level(heard, TONES[AGENT]) < 200
    heard = samples_of(supervisor)
    assert level(heard, TONES[CALLER]) > 6000 and level(heard, TONES[AGENT]) > 6000
    assert level(heard, TONES[SUPERVISOR]) < 200
    heard = samples_of(caller)
    assert level(heard, TONES[AGENT]) > 6000
    assert level(heard, TONES[SUPERVISOR]) < 200  # the whisper never reaches the caller
    for stream, endpoint in ((agent, call.b), (supervisor, sup_session.a)):
        assert {p.header.ssrc for p in stream} == {endpoint.stream.ssrc}
        seqs = [p.header.sequence_number for p in stream]
        assert [(s - seqs[0]) & 0xFFFF for s in seqs] == list(range(packets))

    # Once the fed audio is used up the bridge keeps the streams going with silence, and
    # the caller gets nothing from it (the relay serves the caller).
    silence = await phones[AGENT].recv_n(2)
    assert max(abs(s) for s in samples_of(silence)) < 50
    assert phones[CALLER].drain() == []

    # Back to listen: the agent hears the caller through the relay again.
    bridge.set_routing(supervisor_routing(MixMode.LISTEN))
    assert call.b.forward_from_peer and not sup_session.a.forward_from_peer
    bridge.close()
    bridge.close()
    assert call.b.forward_from_peer and call.a.forward_from_peer
    assert sup_session.a.forward_from_peer
    sent = bridge.frames_sent
    phones[AGENT].drain()
    phones[CALLER].send(rtp(99, b"\x42" * FRAME, ssrc=1), call.a.local_port)
    # (A mixed packet sent just before close may still be on its way: skip it.)
    relayed = (await phones[AGENT].recv_n(1))[0]
    for _ in range(3):
        if relayed.payload[:1] == b"\x42":
            break
        relayed = (await phones[AGENT].recv_n(1))[0]
    assert relayed.payload == b"\x42" * FRAME  # straight from the caller, not a mix
    assert relayed.header.marker  # a new source toward the agent's phone
    assert bridge.frames_sent == sent  # closed: nothing more is mixed


async def test_fifo_is_bounded(engine: MediaEngine) -> None:
    call = await engine.create_session("call-f")
    bridge = MixBridge(
        "call-f",
        {AGENT: MixLeg(endpoint=call.b, codec="PCMU", direct=CALLER)},
        {AGENT: {CALLER, SUPERVISOR}},
        max_buffer_ms=60,
    )
    for _ in range(5):
        bridge.feed(CALLER, 0, b"\x00" * FRAME)
    assert bridge.dropped == 2 * FRAME  # 60 ms holds three packets
    with pytest.raises(ValueError, match="listeners without a leg: supervisor"):
        bridge.set_routing({SUPERVISOR: {CALLER}})
    bridge.close()
    with pytest.raises(ValueError, match="closed"):
        bridge.start()
