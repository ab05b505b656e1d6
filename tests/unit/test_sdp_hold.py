"""Hold offers as phones send them, and the answer minicc gives them (minicc.switch.hold
answers an agent's hold itself). RFC 3264 §8.4 and RFC 6337 §5 list the forms."""

from __future__ import annotations

import pytest

from minicc.switch.sdp import Direction, OriginState, SessionDescription, build_answer, negotiate


def _offer(*, session_c: str = "10.1.1.1", media: str = "", port: int = 5004) -> str:
    return (
        "v=0\r\no=- 5 6 IN IP4 10.1.1.1\r\ns=-\r\n"
        f"c=IN IP4 {session_c}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        f"{media}"
    )


@pytest.mark.parametrize(
    ("text", "hold", "answer"),
    [
        (_offer(media="a=sendrecv\r\n"), False, Direction.SENDRECV),
        (_offer(), False, Direction.SENDRECV),  # no attribute: sendrecv
        (_offer(media="a=sendonly\r\n"), True, Direction.RECVONLY),
        (_offer(media="a=inactive\r\n"), True, Direction.INACTIVE),
        (_offer(session_c="0.0.0.0"), True, Direction.RECVONLY),  # RFC 2543
        (_offer(session_c="0.0.0.0", media="a=inactive\r\n"), True, Direction.INACTIVE),
        # A media-level c=0.0.0.0 under a real session address is a hold too.
        (_offer(media="c=IN IP4 0.0.0.0\r\n"), True, Direction.RECVONLY),
        # With ICE, 0.0.0.0 is only a placeholder (RFC 8839 §4.2.1): not a hold.
        (_offer(session_c="0.0.0.0", media="a=ice-ufrag:abcd\r\n"), False, Direction.SENDRECV),
        # Linphone-style: sendonly with the real address kept.
        (_offer(media="a=sendonly\r\na=ptime:20\r\n"), True, Direction.RECVONLY),
    ],
)
def test_hold_forms_and_the_answer(text: str, hold: bool, answer: Direction) -> None:
    offer = SessionDescription.parse(text)
    assert offer.is_hold is hold
    negotiation = negotiate(offer, ("PCMU", "telephone-event"))
    built = build_answer(offer, negotiation, "127.0.0.1", 30000, origin=OriginState())
    audio = built.audio
    assert audio is not None and audio.direction is answer and audio.port == 30000
