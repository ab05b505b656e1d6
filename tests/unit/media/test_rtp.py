"""RTP header parse/serialize (RFC 3550 §5.1) and RTP/RTCP demux (RFC 5761 §4)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicc.switch.media.rtp import (
    RtpError,
    RtpHeader,
    RtpPacket,
    is_rtcp,
    payload_bounds,
)

# A PCMU packet as a phone sends it: V=2, M=1, PT=0, seq 0x1234, ts 0x000000a0, SSRC.
PCMU_PACKET = bytes.fromhex("80801234000000a0deadbeef") + b"\xff" * 160


def test_parse_plain_pcmu_packet() -> None:
    packet = RtpPacket.parse(PCMU_PACKET)
    assert packet.header == RtpHeader(
        payload_type=0, sequence_number=0x1234, timestamp=160, ssrc=0xDEADBEEF, marker=True
    )
    assert packet.payload == b"\xff" * 160
    assert packet.padding_size == 0
    assert packet.serialize() == PCMU_PACKET


def test_csrc_extension_and_padding_round_trip() -> None:
    header = RtpHeader(
        payload_type=101,
        sequence_number=65535,
        timestamp=0xFFFFFFFF,
        ssrc=1,
        csrc=(2, 3),
        extension_profile=0xBEDE,
        extension_data=b"\x10\xaa\x00\x00",
    )
    packet = RtpPacket(header=header, payload=b"\x01\x02\x03", padding_size=5)
    wire = packet.serialize()
    assert wire[0] == 0x80 | 0x20 | 0x10 | 2  # V=2, P, X, CC=2
    assert len(wire) == 12 + 8 + 4 + 4 + 3 + 5
    assert wire[-1] == 5
    assert RtpPacket.parse(wire) == packet
    assert payload_bounds(wire) == (28, 31)


@given(
    pt=st.integers(0, 127),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    ext=st.one_of(st.none(), st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4))),
    payload=st.binary(max_size=200),
    padding=st.integers(0, 255),
)
def test_round_trip_property(pt, seq, ts, ssrc, marker, csrc, ext, payload, padding) -> None:  # type: ignore[no-untyped-def]
    header = RtpHeader(
        payload_type=pt,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        marker=marker,
        csrc=csrc,
        extension_profile=None if ext is None else 0x1000,
        extension_data=ext or b"",
    )
    packet = RtpPacket(header=header, payload=payload, padding_size=padding)
    assert RtpPacket.parse(packet.serialize()) == packet


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_rtp_error(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        RtpPacket.parse(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x00\x00", "RTP packet length is less than 12 bytes"),
        (bytes.fromhex("40000001000000000000000a"), "RTP packet has version 1, expected 2"),
        (
            bytes.fromhex("83000001000000000000000a") + b"\0" * 8,
            "RTP packet is too short for 3 CSRC",
        ),
        (
            bytes.fromhex("90000001000000000000000a") + b"\xbe\xde",
            "RTP packet is too short for its header extension",
        ),
        (
            bytes.fromhex("90000001000000000000000a") + b"\xbe\xde\x00\x02" + b"\0" * 4,
            "RTP packet is too short for its header extension",
        ),
        (
            bytes.fromhex("a0000001000000000000000a") + b"\x01\x00",
            "RTP padding length 0 is invalid",
        ),
        (
            bytes.fromhex("a0000001000000000000000a") + b"\x01\x09",
            "RTP padding length 9 is invalid",
        ),
    ],
)
def test_error_messages(data: bytes, message: str) -> None:
    with pytest.raises(RtpError) as info:
        RtpPacket.parse(data)
    assert str(info.value) == message


def test_header_validation() -> None:
    with pytest.raises(RtpError, match="payload type 128"):
        RtpHeader(payload_type=128, sequence_number=0, timestamp=0, ssrc=0)
    with pytest.raises(RtpError, match="15 CSRC"):
        RtpHeader(payload_type=0, sequence_number=0, timestamp=0, ssrc=0, csrc=tuple(range(16)))
    with pytest.raises(RtpError, match="multiple of 4"):
        RtpHeader(
            payload_type=0,
            sequence_number=0,
            timestamp=0,
            ssrc=0,
            extension_profile=1,
            extension_data=b"abc",
        )


@pytest.mark.parametrize(
    ("second_byte", "expected"),
    [
        (200, True),  # SR
        (201, True),  # RR
        (202, True),  # SDES
        (203, True),  # BYE
        (206, True),  # PSFB
        (0x00, False),  # PCMU
        (0x80, False),  # PCMU with marker
        (0x08, False),  # PCMA
        (0x65, False),  # telephone-event 101
        (0xE5, False),  # telephone-event 101 with marker
        (0xBF, False),  # PT 63 with marker: just below the reserved range
        (0xE0, False),  # PT 96 with marker: just above it
    ],
)
def test_is_rtcp(second_byte: int, expected: bool) -> None:
    assert is_rtcp(bytes([0x80, second_byte, 0, 1])) is expected


def test_is_rtcp_needs_version_2_and_two_bytes() -> None:
    assert not is_rtcp(b"\x80")
    assert not is_rtcp(bytes([0x40, 200]))
    # A real receiver report: V=2, RC=1, PT=201, length 7
    assert is_rtcp(bytes.fromhex("81c90007") + b"\0" * 28)
