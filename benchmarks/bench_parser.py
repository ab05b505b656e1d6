"""Time the SIP parser on a typical INVITE with SDP: ``python benchmarks/bench_parser.py``.

Prints microseconds per message for each step the switch takes on a received request:
parse only, parse plus validation, and those plus reading the typed headers a B2BUA needs.
Parsed header values are cached across messages (``minicc/switch/sip/cache.py``), so each
step is timed twice: "first sight" empties the caches before every message (a message whose
every header is new), "seen before" keeps them (every header text already parsed once, as a
response repeating its request's Via, From, To and CSeq is).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from minicc.switch.sip.message import CSEQ_CACHE, NAME_ADDR_CACHE, URI_CACHE, VIA_CACHE, Request
from minicc.switch.sip.parser import parse_message, validate_request

INVITE = (
    b"INVITE sip:2001@pbx.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice Smith" <sip:alice@pbx.example.com>;tag=1928301774\r\n'
    b"To: <sip:2001@pbx.example.com>\r\n"
    b"Call-ID: a84b4c76e66710@192.0.2.10\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: Softphone/1.2.3\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n"
)
SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)
INVITE = INVITE % len(SDP) + SDP


def _parse(data: bytes) -> None:
    parse_message(data)


def _parse_validate(data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Request)
    validate_request(message)


def _parse_validate_read(data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Request)
    validate_request(message)
    _ = (message.branch, message.from_tag, message.to_tag, message.call_id, message.top_via)
    _ = (message.cseq, message.contacts, message.max_forwards, message.request_uri)


_CACHES = (CSEQ_CACHE, NAME_ADDR_CACHE, URI_CACHE, VIA_CACHE)


def _forget() -> None:
    for cache in _CACHES:
        cache.clear()


def _time(step: Callable[[bytes], None], n: int, *, cold: bool) -> float:
    """Best of three runs of ``n`` messages, in microseconds per message."""
    best = float("inf")
    for _ in range(3):
        elapsed = 0.0
        for _ in range(n):
            if cold:
                _forget()
            start = time.perf_counter()
            step(INVITE)
            elapsed += time.perf_counter() - start
        best = min(best, elapsed)
    return best / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20_000, help="messages per measurement")
    args = parser.parse_args(argv)
    sys.stdout.write(f"{'µs per INVITE with SDP':32} {'first sight':>12} {'seen before':>12}\n")
    for label, step in (
        ("parse_message", _parse),
        ("parse + validate_request", _parse_validate),
        ("parse + validate + typed reads", _parse_validate_read),
    ):
        step(INVITE)  # warm up the interpreter's own caches
        cold = _time(step, args.n, cold=True)
        warm = _time(step, args.n, cold=False)
        sys.stdout.write(f"{label:32} {cold:12.1f} {warm:12.1f}\n")
    _forget()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
