"""SDP parsing, offer/answer helpers and the relay rewrite (RFC 4566, RFC 3264)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicc.switch import sdp as sdplib
from minicc.switch.sdp import (
    Connection,
    Direction,
    OriginState,
    RtpMap,
    SdpError,
    SessionDescription,
    build_answer,
    build_offer,
    negotiate,
    restrict_codecs,
    rewrite_for_relay,
)


def crlf(text: str) -> bytes:
    return "".join(line + "\r\n" for line in text.strip().splitlines()).encode()


# baresip 1.0 with PCMU/PCMA, as sent from a laptop on a home LAN.
BARESIP = crlf("""
v=0
o=- 1593710914 3541279212 IN IP4 192.168.1.20
s=-
c=IN IP4 192.168.1.20
t=0 0
m=audio 10000 RTP/AVP 0 8 101
b=AS:64
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=ssrc:3168563730 cname:a9c1d9b1-4fa6-42c6-8f4c-1f2c3b1e2d3f
a=rtcp-rsize
a=ptime:20
""")

# Linphone desktop: ICE, rtcp port, wideband codecs, telephone-event at three rates, video.
LINPHONE = crlf("""
v=0
o=alice 2112 3402 IN IP4 192.168.0.14
s=Talk
c=IN IP4 192.168.0.14
t=0 0
a=ice-pwd:31ec21eb38b2ec6d36e8dc7b
a=ice-ufrag:70e2fb8a
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp:7079
a=candidate:1 1 UDP 2130706431 192.168.0.14 7078 typ host
a=candidate:1 2 UDP 2130706430 192.168.0.14 7079 typ host
a=candidate:2 1 UDP 1694498815 203.0.113.7 41000 typ srflx raddr 192.168.0.14 rport 7078
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
m=video 9078 RTP/AVP 96 97
c=IN IP4 192.168.0.14
a=rtpmap:96 VP8/90000
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42801F
a=rtcp:9079
a=rtcp-fb:* trr-int 1000
""")

# Chrome's first offer for an audio-only RTCPeerConnection.
CHROME = crlf("""
v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS 5a6b7c
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:Hf0r
a=ice-pwd:p3KZy6fMhNZnkeMEmVCJ0R9W
a=ice-options:trickle
a=fingerprint:sha-256 FINGERPRINT
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:5a6b7c 0f1e2d
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:1001 cname:Xk1c2Tn
""").replace(
    b"FINGERPRINT",
    b"7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:"
    b"1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08",
)

# A desk phone putting the call on hold the RFC 2543 way: null address, no direction.
LEGACY_HOLD = crlf("""
v=0
o=Yealink 1160 1161 IN IP4 10.0.0.31
s=SDP data
c=IN IP4 0.0.0.0
t=0 0
m=audio 11790 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
""")


def test_parse_baresip_offer() -> None:
    sdp = SessionDescription.parse(BARESIP)
    origin = sdp.origin
    assert origin is not None
    assert (origin.username, origin.session_id, origin.session_version) == (
        "-",
        "1593710914",
        3541279212,
    )
    assert sdp.connection == Connection(address="192.168.1.20")
    audio = sdp.audio
    assert audio is not None
    assert (audio.port, audio.proto, audio.formats) == (10000, "RTP/AVP", ["0", "8", "101"])
    assert audio.rtpmaps[101] == RtpMap(
        payload_type=101, encoding="telephone-event", clock_rate=8000
    )
    assert audio.fmtp(101) == "0-15"
    assert audio.fmtp(0) is None
    assert audio.ptime == 20
    assert audio.direction is Direction.SENDRECV
    assert sdp.audio_address == ("192.168.1.20", 10000)
    assert not sdp.is_hold
    assert sdp.serialize() == BARESIP  # unknown lines (label, ssrc, rtcp-rsize) kept in order
    assert sdplib.media_address(sdp) == ("192.168.1.20", 10000)
    assert sdplib.telephone_event_pt(sdp) == 101


def test_parse_accepts_bare_lf_and_writes_crlf() -> None:
    sdp = sdplib.parse_sdp(BARESIP.decode().replace("\r\n", "\n"))
    assert sdp.to_bytes() == BARESIP


def test_linphone_negotiation_picks_g711_and_8khz_telephone_event() -> None:
    sdp = SessionDescription.parse(LINPHONE)
    assert sdp.serialize() == LINPHONE
    result = negotiate(sdp)
    assert result.usable and result.reason is None
    assert [(c.payload_type, c.name) for c in result.codecs] == [(0, "PCMU"), (8, "PCMA")]
    assert result.first_codec == "PCMU"
    assert result.telephone_event is not None and result.telephone_event.payload_type == 100
    assert result.payload_types == [0, 8, 100]
    assert sdplib.telephone_event_pt(sdp) == 100
    assert sdp.audio is not None and sdp.audio.rtpmap(18) == RtpMap(
        payload_type=18, encoding="G729", clock_rate=8000
    )


def test_chrome_offer_parses_but_is_not_plain_rtp() -> None:
    sdp = SessionDescription.parse(CHROME)
    assert sdp.serialize() == CHROME
    assert sdp.connection is None
    assert sdp.audio is not None and sdp.audio.connection == Connection(address="0.0.0.0")
    assert sdp.audio_address is None
    # 0.0.0.0 with ICE is a placeholder, not the legacy hold
    assert sdp.audio_direction is Direction.SENDRECV and not sdp.is_hold
    result = negotiate(sdp)
    assert not result.usable
    assert result.reason == "unsupported media transport UDP/TLS/RTP/SAVPF"


def test_no_common_codec() -> None:
    offer = SessionDescription.parse(
        crlf("""
v=0
o=- 1 1 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=audio 4000 RTP/AVP 9 18 101
a=rtpmap:101 telephone-event/8000
""")
    )
    result = negotiate(offer)
    assert not result.usable and result.reason == "no common audio codec"
    assert result.telephone_event is not None  # DTMF alone is not enough
    with pytest.raises(SdpError, match="cannot answer: no common audio codec"):
        build_answer(offer, result, "10.0.0.9", 20000, origin=OriginState(session_id=1))
    no_audio = SessionDescription.parse(crlf(LINPHONE.decode().split("m=audio")[0]))
    assert negotiate(no_audio).reason == "no audio stream offered"


@pytest.mark.parametrize(
    ("media_attr", "session_attr", "null", "direction", "hold"),
    [
        ("a=sendonly", "", False, Direction.SENDONLY, True),
        ("a=inactive", "", False, Direction.INACTIVE, True),
        ("a=recvonly", "", False, Direction.RECVONLY, False),
        ("", "a=sendonly", False, Direction.SENDONLY, True),  # session-level attribute
        ("a=sendrecv", "a=sendonly", False, Direction.SENDRECV, False),  # media level wins
        ("", "", True, Direction.SENDONLY, True),  # RFC 2543 hold
        ("a=recvonly", "", True, Direction.INACTIVE, True),
    ],
)
def test_hold_detection(
    media_attr: str, session_attr: str, null: bool, direction: Direction, hold: bool
) -> None:
    address = "0.0.0.0" if null else "10.1.1.1"
    text = f"""
v=0
o=- 5 6 IN IP4 10.1.1.1
s=-
c=IN IP4 {address}
t=0 0
{session_attr}
m=audio 5004 RTP/AVP 0
{media_attr}
"""
    sdp = SessionDescription.parse(text)
    assert sdp.audio_direction is direction
    assert sdp.is_hold is hold


def test_rewrite_for_relay_linphone() -> None:
    offer = SessionDescription.parse(LINPHONE)
    origin = OriginState(address="203.0.113.1", session_id=42)
    out = rewrite_for_relay(offer, "203.0.113.1", 30000, origin=origin)
    assert offer.serialize() == LINPHONE  # input untouched
    text = out.serialize().decode()
    assert out.connection == Connection(address="203.0.113.1")
    assert out.audio_address == ("203.0.113.1", 30000)
    for gone in ("candidate", "ice-pwd", "ice-ufrag", "a=rtcp:", "192.168.0.14"):
        assert gone not in text
    # codecs, fmtp and other attributes stay, in order
    assert out.audio is not None
    assert out.audio.formats == ["96", "97", "98", "0", "8", "18", "101", "99", "100"]
    assert "a=fmtp:18 annexb=yes\r\na=rtpmap:101 telephone-event/48000" in text
    assert "a=rtcp-xr:rcvr-rtt=all:10000" in text and "a=rtcp-fb:* ccm tmmbr" in text
    # video cannot go through the audio relay: disabled, its address not leaked
    video = out.media[1]
    assert (video.media, video.port, video.connection) == ("video", 0, None)
    assert out.origin is not None and str(out.origin) == "minicc 42 1 IN IP4 203.0.113.1"
    assert text.startswith("v=0\r\no=minicc 42 1 IN IP4 203.0.113.1\r\ns=Talk\r\nc=IN IP4")


def test_rewrite_keeps_media_level_connection_and_direction() -> None:
    offer = SessionDescription.parse(
        crlf("""
v=0
o=- 7 7 IN IP4 10.0.0.5
s=-
t=0 0
m=audio 6000 RTP/AVP 8 101
c=IN IP4 10.0.0.5
a=rtpmap:101 telephone-event/8000
a=sendonly
a=rtcp-mux
""")
    )
    out = rewrite_for_relay(offer, "10.9.9.9", 40000)
    assert out.audio is not None
    assert out.audio.connection == Connection(address="10.9.9.9")
    assert out.connection == Connection(address="10.9.9.9")
    assert out.audio.direction is Direction.SENDONLY
    assert out.audio.get_attribute("rtcp-mux") is None
    assert out.origin == offer.origin  # no OriginState given: o= untouched
    assert out.serialize().decode().splitlines()[:5] == [
        "v=0",
        "o=- 7 7 IN IP4 10.0.0.5",
        "s=-",
        "c=IN IP4 10.9.9.9",  # inserted before t= as RFC 4566 §5 orders them
        "t=0 0",
    ]


def test_rewrite_turns_legacy_hold_into_direction() -> None:
    out = rewrite_for_relay(SessionDescription.parse(LEGACY_HOLD), "10.9.9.9", 40002)
    assert out.connection == Connection(address="10.9.9.9")
    assert out.audio is not None and out.audio.direction is Direction.SENDONLY
    assert out.is_hold
    with pytest.raises(SdpError, match="no audio stream"):
        rewrite_for_relay(SessionDescription.parse("v=0\r\ns=-\r\n"), "10.9.9.9", 1)


def test_origin_state_versions() -> None:
    origin = OriginState(rng=random.Random(1))
    first = origin.stamp(rewrite_for_relay(SessionDescription.parse(BARESIP), "10.2.2.2", 20000))
    assert first.origin is not None
    session_id = first.origin.session_id
    assert (first.origin.session_version, first.origin.address) == (1, "10.2.2.2")
    # a session refresh with the same body keeps the version (RFC 3264 §8)
    again = origin.stamp(rewrite_for_relay(SessionDescription.parse(BARESIP), "10.2.2.2", 20000))
    assert again.origin is not None and again.origin.session_version == 1
    # hold changes the body: version bumps, id stays
    held = SessionDescription.parse(BARESIP)
    assert held.audio is not None
    held.audio.direction = Direction.SENDONLY
    third = origin.stamp(rewrite_for_relay(held, "10.2.2.2", 20000))
    assert third.origin is not None
    assert (third.origin.session_id, third.origin.session_version) == (session_id, 2)
    assert OriginState(rng=random.Random(1)).session_id == origin.session_id


def test_restrict_codecs() -> None:
    offer = SessionDescription.parse(LINPHONE)
    out = restrict_codecs(offer, negotiate(offer))
    assert out.audio is not None
    assert out.audio.formats == ["0", "8", "100"]
    text = out.serialize().decode()
    assert "opus" not in text and "speex" not in text and "annexb" not in text
    assert "a=rtpmap:100 telephone-event/8000" in text
    assert "a=rtcp-fb:* trr-int 1000" in text  # wildcard feedback is not per-format


def test_build_answer_to_linphone() -> None:
    offer = SessionDescription.parse(LINPHONE)
    origin = OriginState(address="10.0.0.9", session_id=9)
    answer = build_answer(offer, negotiate(offer), "10.0.0.9", 20000, origin=origin)
    lines = answer.serialize().decode().splitlines()
    assert lines == [
        "v=0",
        "o=minicc 9 1 IN IP4 10.0.0.9",
        "s=minicc",
        "c=IN IP4 10.0.0.9",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 100",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:100 telephone-event/8000",
        "a=sendrecv",
        "m=video 0 RTP/AVP 96",  # one m= line per offered one (RFC 3264 §6)
    ]
    held = build_answer(
        SessionDescription.parse(LEGACY_HOLD),
        negotiate(SessionDescription.parse(LEGACY_HOLD)),
        "10.0.0.9",
        20002,
        origin=OriginState(session_id=1),
    )
    assert held.audio is not None and held.audio.direction is Direction.RECVONLY
    assert held.audio.formats == ["8", "101"] and held.audio.fmtp(101) == "0-15"
    assert held.audio.ptime == 20


def test_build_offer_round_trips_through_negotiate() -> None:
    offer = build_offer(
        "10.0.0.9", 20004, origin=OriginState(session_id=3), codecs=("PCMA", "PCMU")
    )
    parsed = SessionDescription.parse(offer.serialize())
    result = negotiate(parsed)
    assert [c.name for c in result.codecs] == ["PCMA", "PCMU"]
    assert result.telephone_event is not None and result.telephone_event.fmtp == "0-16"
    assert parsed.audio_address == ("10.0.0.9", 20004)
    assert parsed.audio is not None and parsed.audio.ptime == 20
    with pytest.raises(SdpError, match="codec opus has no static payload type"):
        build_offer("10.0.0.9", 1, origin=OriginState(session_id=1), codecs=("opus",))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "SDP body is empty"),
        (b"hello world", "SDP line 1 is not <type>=<value>"),
        (b"v=1\r\n", "SDP must start with v=0"),
        (b"s=-\r\nv=0\r\n", "SDP must start with v=0"),
        (b"v=0\r\nv=0\r\n", "v= may appear only once"),
        (b"v=0\r\nX=1\r\n", "SDP line 2 is not <type>=<value>"),
        (b"v=0\r\no=- 1 x IN IP4 1.2.3.4\r\n", "malformed origin line"),
        (b"v=0\r\nc=IN IP4\r\n", "malformed connection line"),
        (b"v=0\r\nm=audio\r\n", "malformed media line"),
        (b"v=0\r\nm=audio port RTP/AVP 0\r\n", "malformed port in media line"),
        (b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "port out of range"),
    ],
)
def test_garbage_raises_sdp_error(body: bytes, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        SessionDescription.parse(body)


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_sdp_error(body: bytes) -> None:
    try:
        sdp = SessionDescription.parse(b"v=0\r\n" + body)
    except SdpError:
        return
    negotiate(sdp)  # accessors on whatever parsed must not blow up either
    assert SessionDescription.parse(sdp.serialize()).serialize() == sdp.serialize()


def test_garbled_rtpmap_is_skipped() -> None:
    sdp = SessionDescription.parse(
        "v=0\r\nc=IN IP4 1.1.1.1\r\nm=audio 1 RTP/AVP 0 96\r\na=rtpmap:96 junk\r\n"
    )
    assert [c.name for c in negotiate(sdp).codecs] == ["PCMU"]
    with pytest.raises(SdpError, match="malformed rtpmap"):
        RtpMap.parse("96 junk")
