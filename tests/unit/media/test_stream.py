"""StreamRewriter: one SSRC, continuous sequence numbers and timestamps toward a phone."""

from __future__ import annotations

from minicc.switch.media.rtp import RtpHeader, RtpPacket
from minicc.switch.media.stream import StreamRewriter


def _packet(seq: int, ts: int, ssrc: int, *, marker: bool = False, pt: int = 0) -> bytearray:
    header = RtpHeader(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, marker=marker)
    return bytearray(RtpPacket(header=header, payload=b"\xff" * 160).serialize())


def _run(rewriter: StreamRewriter, packets: list[tuple[int, int, int, float]]) -> list[RtpHeader]:
    out = []
    for seq, ts, ssrc, now in packets:
        buf = _packet(seq, ts, ssrc)
        rewriter.rewrite(buf, now)
        out.append(RtpPacket.parse(buf).header)
    return out


def test_first_stream_starts_at_initial_values() -> None:
    rewriter = StreamRewriter(ssrc=0xCAFE, sequence_number=500, timestamp=10_000)
    headers = _run(rewriter, [(7, 99, 1, 0.0), (8, 259, 1, 0.02), (9, 419, 1, 0.04)])
    assert [h.sequence_number for h in headers] == [500, 501, 502]
    assert [h.timestamp for h in headers] == [10_000, 10_160, 10_320]
    assert {h.ssrc for h in headers} == {0xCAFE}
    assert [h.marker for h in headers] == [True, False, False]


def test_ssrc_change_continues_sequence_and_timestamp() -> None:
    rewriter = StreamRewriter(ssrc=5, sequence_number=100, timestamp=1000)
    before = _run(rewriter, [(1, 0, 111, 0.0), (2, 160, 111, 0.02)])
    # hold/resume: a new SSRC with unrelated numbers, 0.5 s after the last packet
    after = _run(rewriter, [(9000, 777_777, 222, 0.52), (9001, 777_937, 222, 0.54)])
    assert [h.sequence_number for h in before + after] == [100, 101, 102, 103]
    assert after[0].timestamp == before[-1].timestamp + 4000  # 0.5 s at 8 kHz
    assert after[1].timestamp == after[0].timestamp + 160
    assert [h.marker for h in after] == [True, False]
    assert {h.ssrc for h in before + after} == {5}
    assert rewriter.switches == 2


def test_wraparound_loss_and_reordering_pass_through() -> None:
    rewriter = StreamRewriter(ssrc=1, sequence_number=65534, timestamp=0xFFFFFF00)
    headers = _run(
        rewriter,
        [
            (10, 0, 9, 0.0),
            (12, 320, 9, 0.04),  # 11 lost
            (11, 160, 9, 0.05),  # 11 arrives late
            (13, 480, 9, 0.06),
        ],
    )
    assert [h.sequence_number for h in headers] == [65534, 0, 65535, 1]
    assert [h.timestamp for h in headers] == [0xFFFFFF00, 0x40, 0xFFFFFFA0, 0xE0]
    assert [h.marker for h in headers] == [True, False, False, False]
    assert rewriter.last_sequence_number == 1


def test_same_ssrc_sequence_jump_is_a_restart() -> None:
    rewriter = StreamRewriter(ssrc=1, sequence_number=0, timestamp=0)
    headers = _run(rewriter, [(100, 0, 9, 0.0), (101, 160, 9, 0.02), (40_000, 5, 9, 0.04)])
    assert [h.sequence_number for h in headers] == [0, 1, 2]
    assert headers[2].timestamp == 320 and headers[2].marker


def test_explicit_resync_and_marker_preserved() -> None:
    rewriter = StreamRewriter(ssrc=1, sequence_number=0, timestamp=0)
    _run(rewriter, [(1, 0, 9, 0.0)])
    rewriter.resync()
    headers = _run(rewriter, [(2, 160, 9, 0.02)])
    assert headers[0].marker and headers[0].sequence_number == 1
    buf = _packet(3, 320, 9, marker=True)  # a talkspurt start keeps its marker
    rewriter.rewrite(buf, 0.04)
    assert RtpPacket.parse(buf).header.marker
