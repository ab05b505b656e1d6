"""RFC 4733 telephone-event payloads, the detector and the packet builder."""

from __future__ import annotations

import pytest

from minicc.switch.media.dtmf import (
    DtmfDetector,
    DtmfDigit,
    DtmfError,
    TelephoneEvent,
    build_dtmf_rtp,
    dtmf_frames,
)
from minicc.switch.media.rtp import RtpPacket

SSRC = 0x11223344


def _payload(event: int, duration: int, *, end: bool = False, volume: int = 10) -> bytes:
    return TelephoneEvent(event=event, end=end, volume=volume, duration=duration).serialize()


def _feed_all(detector: DtmfDetector, packets: list[bytes]) -> list[DtmfDigit]:
    out: list[DtmfDigit] = []
    for wire in packets:
        packet = RtpPacket.parse(wire)
        out.extend(
            detector.feed(
                packet.payload, timestamp=packet.header.timestamp, ssrc=packet.header.ssrc
            )
        )
    return out


def test_payload_layout() -> None:
    # RFC 4733 §2.3: event 5, E=1, volume 10, duration 800
    wire = _payload(5, 800, end=True)
    assert wire == bytes([5, 0x80 | 10, 0x03, 0x20])
    event = TelephoneEvent.parse(wire)
    assert event == TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert event.digit == "5"
    assert TelephoneEvent.parse(bytes([11, 0x4A, 0, 160])).digit == "#"  # R bit ignored
    assert TelephoneEvent.parse(bytes([16, 0, 0, 0])).digit is None  # flash
    with pytest.raises(DtmfError, match="shorter than 4 bytes"):
        TelephoneEvent.parse(b"\x01\x02")


def test_detects_once_despite_three_end_packets() -> None:
    packets = build_dtmf_rtp(
        "7", payload_type=101, ssrc=SSRC, sequence_number=100, timestamp=8000, duration_ms=120
    )
    digits = _feed_all(DtmfDetector(), packets)
    assert digits == [
        DtmfDigit(digit="7", duration_ms=120, volume=10, timestamp=8000, ssrc=SSRC, ended=True)
    ]


def test_lost_start_packets() -> None:
    packets = build_dtmf_rtp(
        "*", payload_type=101, ssrc=SSRC, sequence_number=1, timestamp=160, duration_ms=200
    )
    # only the last update and the end packets arrive
    digits = _feed_all(DtmfDetector(), packets[-4:])
    assert [(d.digit, d.duration_ms) for d in digits] == [("*", 200)]
    # only the second retransmission of the end packet arrives
    digits = _feed_all(DtmfDetector(), packets[-1:])
    assert [(d.digit, d.duration_ms, d.ended) for d in digits] == [("*", 200, True)]


def test_two_consecutive_same_digits() -> None:
    first = build_dtmf_rtp(
        "1", payload_type=101, ssrc=SSRC, sequence_number=10, timestamp=1000, duration_ms=100
    )
    second = build_dtmf_rtp(
        "1", payload_type=101, ssrc=SSRC, sequence_number=20, timestamp=3000, duration_ms=100
    )
    digits = _feed_all(DtmfDetector(), first + second)
    assert [(d.digit, d.timestamp) for d in digits] == [("1", 1000), ("1", 3000)]


def test_all_end_packets_lost_reported_at_next_event_and_flush() -> None:
    detector = DtmfDetector()
    assert detector.feed(_payload(2, 160), timestamp=500, ssrc=SSRC) == ()
    assert detector.feed(_payload(2, 320), timestamp=500, ssrc=SSRC) == ()
    # next key starts: the unfinished "2" is reported, marked as not ended
    out = detector.feed(_payload(9, 160), timestamp=2500, ssrc=SSRC)
    assert [(d.digit, d.duration_ms, d.ended) for d in out] == [("2", 40, False)]
    # its late end packet is not reported again
    assert detector.feed(_payload(2, 400, end=True), timestamp=500, ssrc=SSRC) == ()
    flushed = detector.flush()
    assert flushed is not None and (flushed.digit, flushed.ended) == ("9", False)
    assert detector.flush() is None


def test_retransmitted_end_after_next_digit_started_is_ignored() -> None:
    detector = DtmfDetector()
    end = _payload(4, 800, end=True)
    assert [d.digit for d in detector.feed(end, timestamp=100, ssrc=SSRC)] == ["4"]
    assert detector.feed(_payload(5, 160), timestamp=2000, ssrc=SSRC) == ()
    assert detector.feed(end, timestamp=100, ssrc=SSRC) == ()  # reordered retransmission
    assert [
        d.digit for d in detector.feed(_payload(5, 480, end=True), timestamp=2000, ssrc=SSRC)
    ] == ["5"]


def test_same_timestamp_new_ssrc_is_a_new_event() -> None:
    detector = DtmfDetector()
    assert len(detector.feed(_payload(1, 800, end=True), timestamp=0, ssrc=1)) == 1
    assert len(detector.feed(_payload(1, 800, end=True), timestamp=0, ssrc=2)) == 1


def test_non_dtmf_events_and_garbage_are_ignored() -> None:
    detector = DtmfDetector()
    assert detector.feed(_payload(16, 800, end=True), timestamp=0, ssrc=SSRC) == ()
    assert detector.feed(b"\x01", timestamp=0, ssrc=SSRC) == ()
    assert detector.malformed == 1


def test_frames_follow_rfc4733() -> None:
    frames = dtmf_frames("#", duration_ms=100, packet_ms=20)
    events = [TelephoneEvent.parse(f.payload) for f in frames]
    assert [f.marker for f in frames] == [True] + [False] * 6
    # updates at 20, 40, 60, 80 ms, then the end (100 ms) three times
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {11}


def test_build_rtp_packets() -> None:
    packets = [
        RtpPacket.parse(p)
        for p in build_dtmf_rtp(
            "A", payload_type=96, ssrc=7, sequence_number=65534, timestamp=42, duration_ms=40
        )
    ]
    assert [p.header.sequence_number for p in packets] == [65534, 65535, 0, 1]
    assert {p.header.timestamp for p in packets} == {42}
    assert {p.header.payload_type for p in packets} == {96}
    assert packets[0].header.marker and not packets[1].header.marker


def test_builder_rejects_bad_input() -> None:
    with pytest.raises(DtmfError, match="cannot send DTMF digit 'x'"):
        dtmf_frames("x")
    with pytest.raises(DtmfError, match="does not fit"):
        dtmf_frames("1", duration_ms=10_000)
    assert TelephoneEvent.parse(dtmf_frames("d")[0].payload).event == 15
