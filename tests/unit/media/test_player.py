"""The prompt player over real loopback UDP: a plain socket plays the phone that listens."""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
from array import array
from collections.abc import AsyncIterator

import numpy as np
import pytest

from minicc.queue.prompts import PromptCatalogue, say_caller_number
from minicc.switch.media import g711
from minicc.switch.media.player import (
    Clip,
    MediaPlayer,
    Pacer,
    PlaybackDone,
    PlaybackOutcome,
    clip_from_wav,
)
from minicc.switch.media.relay import MediaEngine, MediaSession
from minicc.switch.media.rtp import RtpHeader, RtpPacket
from minicc.switch.media.wav import (
    WAVE_FORMAT_ALAW,
    WAVE_FORMAT_PCM,
    WavError,
    WavFormat,
    wav_header,
)

HOST = "127.0.0.1"
PORT_MIN, PORT_MAX = 41400, 41599
TIMEOUT = 5.0
FRAME = 160
Address = tuple[str, int]


class Phone(asyncio.DatagramProtocol):
    """A UDP socket standing in for a phone; notes when each packet arrived."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[tuple[RtpPacket, float]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.inbox.put_nowait((RtpPacket.parse(data), asyncio.get_running_loop().time()))

    @property
    def addr(self) -> Address:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, port))

    async def recv(self) -> tuple[RtpPacket, float]:
        return await asyncio.wait_for(self.inbox.get(), TIMEOUT)

    async def recv_n(self, n: int) -> list[tuple[RtpPacket, float]]:
        return [await self.recv() for _ in range(n)]


async def open_phone() -> Phone:
    loop = asyncio.get_running_loop()
    _transport, phone = await loop.create_datagram_endpoint(Phone, local_addr=(HOST, 0))
    return phone


def rtp(seq: int, ts: int, ssrc: int, payload: bytes) -> bytes:
    header = RtpHeader(payload_type=0, sequence_number=seq, timestamp=ts, ssrc=ssrc)
    return RtpPacket(header=header, payload=payload).serialize()


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    media = MediaEngine(HOST, PORT_MIN, PORT_MAX, rng=random.Random(3))
    yield media
    await media.close()


@pytest.fixture
async def phones() -> AsyncIterator[tuple[Phone, Phone]]:
    a, b = await open_phone(), await open_phone()
    yield a, b
    for phone in (a, b):
        assert phone.transport is not None
        phone.transport.close()


@pytest.fixture
def done_events() -> list[PlaybackDone]:
    return []


@pytest.fixture
def player(done_events: list[PlaybackDone]) -> MediaPlayer:
    return MediaPlayer(on_done=done_events.append, rng=random.Random(5))


async def bridged(engine: MediaEngine, a: Phone, b: Phone) -> MediaSession:
    session = await engine.create_session("call-p")
    session.a.set_remote(a.addr)
    session.b.set_remote(b.addr)
    return session


def padded(ulaw: bytes) -> bytes:
    return ulaw + b"\xff" * (-len(ulaw) % FRAME)


async def test_sentence_arrives_as_paced_continuous_rtp(
    engine: MediaEngine,
    phones: tuple[Phone, Phone],
    player: MediaPlayer,
    done_events: list[PlaybackDone],
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    clips = PromptCatalogue().clips("en", say_caller_number(5, "en"))
    assert [c.name for c in clips] == ["you_are_caller_number", "5"]
    audio = padded(b"".join(c.ulaw for c in clips))
    expected = len(audio) // FRAME  # about 1.9 s of speech: ~96 packets

    playback = player.play(session, "b", clips)
    received = await b.recv_n(expected)
    done = await playback.wait()
    assert done.outcome is PlaybackOutcome.FINISHED and done.packets == expected
    assert abs(len(received) - sum(len(c.ulaw) for c in clips) / FRAME) <= 2

    packets = [p for p, _ in received]
    assert {p.header.ssrc for p in packets} == {session.b.stream.ssrc}
    seqs = [p.header.sequence_number for p in packets]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == list(range(expected))
    stamps = [p.header.timestamp for p in packets]
    assert {(t2 - t1) & 0xFFFFFFFF for t1, t2 in itertools.pairwise(stamps)} == {160}
    assert {p.header.payload_type for p in packets} == {0}
    assert [p.header.marker for p in packets[:2]] == [True, False]
    # The audio is the prompts, byte for byte, and it is speech, not silence.
    payload = b"".join(p.payload for p in packets)
    assert payload == audio
    pcm = np.array(g711.ulaw_decode(payload), dtype=float)
    assert np.sqrt(np.mean(pcm**2)) > 1000

    # Paced by the clock: measured arrival gaps, not sleeps.
    arrivals = [t for _, t in received]
    gaps = np.diff(arrivals)
    assert statistics.median(gaps) == pytest.approx(0.020, abs=0.002)
    # Drift-free: the whole stream takes (n - 1) intervals, give or take a late tick.
    assert arrivals[-1] - arrivals[0] == pytest.approx((expected - 1) * 0.020, abs=0.06)
    assert b.inbox.empty() and session.b.forward_from_peer
    await asyncio.sleep(0)  # on_done is called soon after, on the loop
    assert done_events == [done]


async def test_pcma_leg_gets_alaw_payloads(
    engine: MediaEngine,
    phones: tuple[Phone, Phone],
    player: MediaPlayer,
    done_events: list[PlaybackDone],
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    clip = PromptCatalogue().clip("en", "7")
    playback = player.play(session, "a", [clip], codec="PCMA")
    n = len(padded(clip.ulaw)) // FRAME
    received = [p for p, _ in await a.recv_n(n)]
    result = await playback.wait()
    assert {p.header.payload_type for p in received} == {8}
    assert b"".join(p.payload for p in received) == g711.ulaw_to_alaw(padded(clip.ulaw))
    assert result.side == "a" and result.clips == ("7",) and result.position_ms == n * 20
    await asyncio.sleep(0)
    assert done_events == [result]


async def test_cancel_stops_at_once(
    engine: MediaEngine,
    phones: tuple[Phone, Phone],
    player: MediaPlayer,
    done_events: list[PlaybackDone],
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    catalogue = PromptCatalogue()
    playback = player.play(session, "b", [catalogue.clip("en", "callback_confirmed")])
    assert not session.b.forward_from_peer  # A's audio is held back while B hears it
    await b.recv_n(10)
    result = playback.cancel("agent answered")
    cancelled_at = asyncio.get_running_loop().time()
    assert result.outcome is PlaybackOutcome.CANCELLED and result.reason == "agent answered"
    assert playback.done and playback.cancel() is result  # idempotent
    assert session.b.forward_from_peer and player.playing(session, "b") is None
    sent_by_b = session.b.stats.packets_out
    assert sent_by_b == result.packets >= 10
    assert (await playback.wait()) is result

    # Proof that nothing more comes: another playback on A runs the player's clock for
    # three more ticks; B must have received exactly what was sent before cancel().
    sentinel = player.play(session, "a", [catalogue.clip("en", "goodbye")])
    await a.recv_n(3)
    late = []
    while not b.inbox.empty():
        late.append(b.inbox.get_nowait())
    assert 10 + len(late) == result.packets
    assert all(t <= cancelled_at + 0.001 for _, t in late)  # in flight, not sent after
    assert session.b.stats.packets_out == sent_by_b
    sentinel.cancel()
    await asyncio.sleep(0)
    assert [e.outcome for e in done_events] == [PlaybackOutcome.CANCELLED] * 2


async def test_music_on_hold_loops_past_the_end(
    engine: MediaEngine, phones: tuple[Phone, Phone], player: MediaPlayer
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    # 3.5 packets of a ramp: the loop point falls inside a packet.
    tune = Clip(name="tune", ulaw=bytes(i % 251 for i in range(560)))
    moh = player.music_on_hold(session, "b", tune, start_ms=10)
    received = [p for p, _ in await b.recv_n(12)]
    payload = b"".join(p.payload for p in received)
    looped = (tune.ulaw * 5)[80 : 80 + 12 * FRAME]  # start_ms=10 -> 80 samples in
    assert payload == looped
    seqs = [p.header.sequence_number for p in received]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == list(range(12))
    result = moh.cancel("agent answered")
    assert result.packets >= 12 and result.played_ms == 20 * result.packets
    assert 0 <= result.position_ms < 70  # within one round of the 70 ms tune

    shipped = PromptCatalogue().clip("en", "moh")
    assert shipped.duration == pytest.approx(30.0, abs=0.01)
    assert len(shipped.ulaw) % FRAME == 0  # loops on a packet boundary


async def test_prompt_then_bridged_audio_is_one_stream(
    engine: MediaEngine, phones: tuple[Phone, Phone], player: MediaPlayer
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    a.send(rtp(1, 0, 0xA, b"\x01" * FRAME), session.a.local_port)
    before, _ = await b.recv()

    clip = Clip(name="short", ulaw=b"\x7f" * (4 * FRAME))
    playback = player.play(session, "b", [clip])
    first = [p for p, _ in await b.recv_n(2)]
    # A keeps talking during the prompt: held back from B, not mixed into it.
    a.send(rtp(2, 160, 0xA, b"\x01" * FRAME), session.a.local_port)
    rest = [p for p, _ in await b.recv_n(2)]
    await playback.wait()
    a.send(rtp(3, 320, 0xA, b"\x01" * FRAME), session.a.local_port)
    after, _ = await b.recv()

    prompt = first + rest
    assert [p.payload for p in prompt] == [b"\x7f" * FRAME] * 4
    stream = [before, *prompt, after]
    assert {p.header.ssrc for p in stream} == {session.b.stream.ssrc}
    seqs = [p.header.sequence_number for p in stream]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == [0, 1, 2, 3, 4, 5]
    assert [p.header.marker for p in stream] == [True, True, False, False, False, True]
    assert after.payload == b"\x01" * FRAME
    assert b.inbox.empty()


async def test_new_playback_replaces_and_restores_bridge_at_the_end(
    engine: MediaEngine,
    phones: tuple[Phone, Phone],
    player: MediaPlayer,
    done_events: list[PlaybackDone],
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    moh = player.music_on_hold(session, "a", Clip(name="m", ulaw=b"\x10" * 800))
    await a.recv_n(2)
    announcement = player.play(session, "a", [Clip(name="pos", ulaw=b"\x20" * 320)])
    assert moh.result is not None and moh.result.reason == "replaced"
    assert not session.a.forward_from_peer  # still held: the announcement plays now
    assert player.playing(session, "a") is announcement
    result = await announcement.wait()
    assert result.outcome is PlaybackOutcome.FINISHED
    assert session.a.forward_from_peer and player.active == 0
    await asyncio.sleep(0)
    assert [(e.clips, e.outcome) for e in done_events] == [
        (("m",), PlaybackOutcome.CANCELLED),
        (("pos",), PlaybackOutcome.FINISHED),
    ]
    # What A heard: music, then the announcement, as one stream.
    heard = []
    while not a.inbox.empty():
        heard.append(a.inbox.get_nowait()[0].payload[:1])
    assert heard[-2:] == [b"\x20", b"\x20"]

    # A playback that does not hold the peer, replacing one that does, lets it through.
    player.music_on_hold(session, "a", Clip(name="m", ulaw=b"\x10" * 800))
    assert not session.a.forward_from_peer
    tone = player.play(session, "a", [Clip(name="t", ulaw=b"\x30" * 160)], hold_peer=False)
    assert session.a.forward_from_peer
    await tone.wait()
    assert session.a.forward_from_peer


async def test_session_closing_aborts_and_stops_clock(
    engine: MediaEngine, phones: tuple[Phone, Phone], player: MediaPlayer
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    moh = player.music_on_hold(session, "b", Clip(name="m", ulaw=b"\x10" * 800))
    await b.recv()
    session.close()
    result = await moh.wait()
    assert result.outcome is PlaybackOutcome.ABORTED and player.active == 0
    with pytest.raises(ValueError, match="closed"):
        player.play(session, "a", [])


async def test_stalled_loop_jumps_timestamp_instead_of_bursting(
    engine: MediaEngine, phones: tuple[Phone, Phone], player: MediaPlayer
) -> None:
    a, b = phones
    session = await bridged(engine, a, b)
    moh = player.music_on_hold(session, "b", Clip(name="m", ulaw=b"\x10" * 800))
    before = [p for p, _ in await b.recv_n(3)]
    time.sleep(0.2)  # a blocked event loop (the stall under test), not a wait for timing
    after = [p for p, _ in await b.recv_n(4)]
    moh.cancel()
    stamps = [p.header.timestamp for p in [before[-1], *after]]
    jumps = [(t2 - t1) & 0xFFFFFFFF for t1, t2 in itertools.pairwise(stamps)]
    # Ten ticks overdue: no burst of ten packets, but one packet whose timestamp moved over
    # the gap, with the marker set, and then the regular 160-sample steps.
    assert jumps[0] % 160 == 0 and jumps[0] >= 160 * 5
    assert jumps[1:] == [160, 160, 160]
    assert [p.header.marker for p in after] == [True, False, False, False]
    seqs = [p.header.sequence_number for p in [*before, *after]]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == list(range(7))  # no packet lost


def test_pacer_is_drift_free_and_bounds_catch_up() -> None:
    pacer = Pacer(10.0, 0.02, max_catch_up=3)
    assert pacer.due(9.99) == (0, 0)
    assert pacer.due(10.0005) == (1, 0)
    assert pacer.next_deadline == pytest.approx(10.02)
    assert pacer.due(10.0199) == (0, 0)  # early wake-up: nothing yet
    # Woken 7 ms late each time: deadlines stay on the 20 ms grid (no drift).
    for k in range(2, 50):
        assert pacer.due(10.0 + 0.02 * (k - 1) + 0.007) == (1, 0)
    assert pacer.next_deadline == pytest.approx(10.0 + 0.02 * 49)
    # 50 ms late: the overdue ticks are caught up.
    assert pacer.due(10.0 + 0.02 * 49 + 0.05) == (3, 0)
    # Stalled for 200 ms: one now, the rest skipped, and the grid re-anchors to now.
    now = pacer.next_deadline + 0.2
    assert pacer.due(now) == (1, 10)
    assert pacer.next_deadline == pytest.approx(now + 0.02)
    with pytest.raises(ValueError):
        Pacer(0.0, 0.0)


def _wav(fmt: WavFormat, body: bytes) -> bytes:
    return wav_header(fmt, len(body)) + body


def test_clip_from_wav_formats() -> None:
    tone = array("h", [round(8000 * np.sin(2 * np.pi * 440 * n / 8000)) for n in range(800)])
    pcm16 = np.array(tone, dtype="<i2").tobytes()  # WAV is little-endian
    mono = WavFormat(format_tag=WAVE_FORMAT_PCM, channels=1, sample_rate=8000, bits_per_sample=16)
    clip = clip_from_wav(_wav(mono, pcm16), "tone")
    assert clip.ulaw == g711.ulaw_encode(tone) and clip.duration == 0.1

    stereo = WavFormat(format_tag=WAVE_FORMAT_PCM, channels=2, sample_rate=8000, bits_per_sample=16)
    both = np.repeat(np.array(tone, dtype="<i2"), 2).tobytes()
    assert clip_from_wav(_wav(stereo, both), "st").ulaw == clip.ulaw

    alaw = WavFormat(format_tag=WAVE_FORMAT_ALAW, channels=1, sample_rate=8000, bits_per_sample=8)
    assert clip_from_wav(_wav(alaw, g711.alaw_encode(tone)), "a").ulaw == g711.alaw_to_ulaw(
        g711.alaw_encode(tone)
    )
    pcm8 = WavFormat(format_tag=WAVE_FORMAT_PCM, channels=1, sample_rate=8000, bits_per_sample=8)
    eight = clip_from_wav(_wav(pcm8, bytes([128, 255, 0])), "u8")
    zero, high, low = g711.ulaw_decode(eight.ulaw)
    assert zero == 0 and high > 30000 and low < -30000

    wide = WavFormat(format_tag=WAVE_FORMAT_PCM, channels=1, sample_rate=44100, bits_per_sample=16)
    with pytest.raises(WavError, match=r"hello: sample rate is 44100 Hz, not 8000; .*sox"):
        clip_from_wav(_wav(wide, pcm16), "hello")
    with pytest.raises(WavError, match="junk: not a RIFF/WAVE file"):
        clip_from_wav(b"junk", "junk")
    float32 = WavFormat(format_tag=3, channels=1, sample_rate=8000, bits_per_sample=32)
    with pytest.raises(WavError, match="format tag 3 with 32 bits is not supported"):
        clip_from_wav(_wav(float32, b"\0" * 16), "f")
