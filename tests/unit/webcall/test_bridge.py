"""The media bridge's pure parts and its RTP socket, with real UDP on loopback."""

from __future__ import annotations

import asyncio
import math
from array import array

import pytest

pytest.importorskip("aiortc")

import av

from minicc.switch.media.rtp import RtpPacket
from minicc.webcall.bridge import (
    RtpSender,
    SwitchAudioTrack,
    SwitchSdp,
    make_offer,
    parse_answer,
)


def test_the_offer_to_the_switch_is_g711_with_telephone_event() -> None:
    offer = make_offer(40000, 7).decode()
    assert "m=audio 40000 RTP/AVP 0 8 101" in offer
    assert "a=rtpmap:101 telephone-event/8000" in offer


def test_the_switch_answer_is_read() -> None:
    answer = b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 8 96\r\n" \
        b"a=rtpmap:96 telephone-event/8000\r\n"  # fmt: skip
    assert parse_answer(answer) == SwitchSdp(
        host="127.0.0.1", port=30000, payload_type=8, dtmf_pt=96
    )
    with pytest.raises(ValueError, match=r"no G\.711"):
        parse_answer(b"v=0\r\nm=audio 30000 RTP/AVP 111\r\n")


def _tone_frame(rate: int, samples: int) -> av.AudioFrame:
    pcm = array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(samples)))
    frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
    frame.planes[0].update(pcm.tobytes())
    frame.sample_rate = rate
    return frame


async def test_browser_audio_leaves_as_20ms_g711_packets_and_digits_as_rfc4733() -> None:
    got: asyncio.Queue[bytes] = asyncio.Queue()

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            got.put_nowait(data)

    loop = asyncio.get_running_loop()
    sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    track = SwitchAudioTrack()
    sender = RtpSender(track)
    await sender.open()
    try:
        port = sink.get_extra_info("sockname")[1]
        sender.remote = SwitchSdp(host="127.0.0.1", port=port, payload_type=0, dtmf_pt=101)
        for _ in range(5):  # 100 ms of 48 kHz audio, as aiortc decodes Opus
            sender.push(_tone_frame(48000, 960))
        packets = []
        async with asyncio.timeout(2):
            while len(packets) < 4:
                packets.append(RtpPacket.parse(await got.get()))
        assert {p.header.payload_type for p in packets} == {0}
        assert all(len(p.payload) == 160 for p in packets)
        assert sender.peak_out > 4000
        await sender.send_digit("5", duration_ms=60)
        events = []
        async with asyncio.timeout(2):
            while len(events) < 4:
                packet = RtpPacket.parse(await got.get())
                if packet.header.payload_type == 101:
                    events.append(packet)
        assert events[0].payload[0] == 5 and events[0].header.marker
        assert events[-1].payload[1] & 0x80  # the E bit
        # What the switch sends comes back out of the track as 20 ms frames.
        sink.sendto(packets[0].serialize(), ("127.0.0.1", sender.port))
        async with asyncio.timeout(2):
            while track.packets_in == 0:
                await asyncio.sleep(0.01)
        frame = await track.recv()
        assert (frame.sample_rate, frame.samples) == (8000, 160)
    finally:
        sender.close()
        sink.close()
