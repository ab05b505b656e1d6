"""parse_message, validation and StreamFramer: the cases the torture corpus does not pin."""

from __future__ import annotations

import pytest

from minicc.switch.sip.errors import SipKeepAlive, SipParseError
from minicc.switch.sip.message import Request, Response, make_response
from minicc.switch.sip.parser import (
    MAX_MESSAGE_SIZE,
    StreamFramer,
    can_respond,
    is_keepalive,
    parse_datagram,
    parse_message,
    validate_request,
    validate_response,
)

BASE = [
    "INVITE sip:bob@example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc",
    "Max-Forwards: 70",
    "From: <sip:alice@example.com>;tag=1",
    "To: <sip:bob@example.com>",
    "Call-ID: c1@192.0.2.1",
    "CSeq: 1 INVITE",
]


def msg(*extra: str, lines: list[str] | None = None, body: bytes = b"", eol: str = "\r\n") -> bytes:
    head = (lines if lines is not None else BASE) + list(extra)
    if body and not any(h.lower().startswith(("content-length", "l:")) for h in extra):
        head.append(f"Content-Length: {len(body)}")
    return (eol.join(head) + eol + eol).encode() + body


def req(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


# ---------------------------------------------------------------------------- basics


def test_request_fields_and_round_trip() -> None:
    m = req(msg("Content-Type: text/plain", body=b"hello"))
    assert (m.method, m.uri, m.version) == ("INVITE", "sip:bob@example.com", "SIP/2.0")
    assert m.body == b"hello" and m.content_length == 5
    again = req(m.to_bytes())
    assert again == m


def test_response_fields() -> None:
    data = b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n"
    m = parse_message(data)
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (180, "Ringing")


def test_compact_forms_and_case_insensitive_names() -> None:
    m = req(
        msg(
            lines=[
                "OPTIONS sip:x@example.com SIP/2.0",
                "v: SIP/2.0/TCP h;branch=z9hG4bK1",
                "f: <sip:a@example.com>;tag=9",
                "t: <sip:x@example.com>",
                "i: abc",
                "CSEQ: 2 OPTIONS",
                "l: 0",
                "k: timer",
                "m: <sip:a@192.0.2.7>",
            ]
        )
    )
    assert [name for name, _ in m.headers][:5] == ["Via", "From", "To", "Call-ID", "CSeq"]
    assert m.headers.get("supported") == "timer"
    assert m.headers.get("CONTACT") == "<sip:a@192.0.2.7>"
    validate_request(m)


def test_folding_and_space_before_colon() -> None:
    m = req(msg("Subject : one", "\ttwo", "   three", "X-Empty:", "  later"))
    assert m.headers.get("Subject") == "one two three"
    assert m.headers.get("X-Empty") == "later"


def test_leading_crlf_and_bare_lf_are_accepted() -> None:
    assert req(b"\r\n\r\n" + msg()).call_id == "c1@192.0.2.1"
    m = req(msg(body=b"x=1\n", eol="\n"))
    assert m.body == b"x=1\n" and m.top_via.branch == "z9hG4bKabc"
    mixed = msg().replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\n")
    assert req(mixed).max_forwards == 70


def test_missing_blank_line_is_tolerated_when_the_last_line_is_complete() -> None:
    data = ("\r\n".join(BASE) + "\r\n").encode()
    assert req(data).body == b""
    with pytest.raises(SipParseError, match="blank line"):
        parse_message(data.rstrip(b"\r\n"))


def test_keepalives() -> None:
    for ping in (b"\r\n\r\n", b"\r\n", b"\n"):
        assert is_keepalive(ping)
        assert parse_datagram(ping) is None
        with pytest.raises(SipKeepAlive):
            parse_message(ping)
    assert not is_keepalive(b"") and not is_keepalive(msg())
    assert isinstance(parse_datagram(msg()), Request)


def test_body_rules_for_datagrams() -> None:
    # Extra bytes after Content-Length are dropped; without it the body runs to the end.
    assert req(msg("Content-Length: 2", body=b"abcdef")).body == b"ab"
    assert req(msg() + b"tail").body == b"tail"
    with pytest.raises(SipParseError, match="only 3 body bytes") as caught:
        parse_message(msg("Content-Length: 10", body=b"abc"))
    assert caught.value.partial is not None
    for bad in ("Content-Length: x", "Content-Length: 1e3", "Content-Length: ²", "l: -1"):
        with pytest.raises(SipParseError, match="Content-Length"):
            parse_message(msg(bad))
    assert req(msg("Content-Length: 0000")).body == b""


def test_size_cap() -> None:
    big = msg(body=b"x" * MAX_MESSAGE_SIZE)
    with pytest.raises(SipParseError) as caught:
        parse_message(big)
    assert caught.value.status_hint == 513
    assert req(msg(body=b"x" * 10)).body == b"x" * 10
    with pytest.raises(SipParseError):
        parse_message(msg(), max_size=10)


def test_header_bytes_must_be_utf8() -> None:
    with pytest.raises(SipParseError, match="UTF-8"):
        parse_message(msg().replace(b"c1@", b"c\xff@"))
    # The body is opaque bytes.
    assert req(msg(body=b"\xff\xfe")).body == b"\xff\xfe"
    assert req(msg('X-Name: "Jörg"')).headers.get("X-Name") == '"Jörg"'


def test_control_characters_only_inside_quoted_pairs() -> None:
    with pytest.raises(SipParseError, match="control"):
        parse_message(msg("X-A: a\x00b"))
    with pytest.raises(SipParseError, match="bare CR"):
        parse_message(msg("X-A: a\rb"))
    assert req(msg('X-A: "a\\\x07b"')).headers.get("X-A") == '"a\\\x07b"'


# ------------------------------------------------------------------- start-line errors


@pytest.mark.parametrize(
    ("line", "status", "answerable"),
    [
        ("INVITE sip:bob@example.com SIP/3.0", 505, True),
        ("INVITE sip:bob@example.com SIP/2", 400, True),
        ("INVITE  sip:bob@example.com SIP/2.0", 400, True),
        ("INVITE sip:bob@example.com", 400, False),
        ("INV ITE sip:bob@example.com SIP/2.0", 400, True),
        ("INVITE <sip:bob@example.com> SIP/2.0", 400, True),
        ("INVITE sip:bob@example.com?Subject=x SIP/2.0", 400, True),
        ("IN(VITE sip:bob@example.com SIP/2.0", 400, False),
        ("ACK sip:bob@example.com SIP/9.9", 505, False),  # ACK is never answered
        ("GET / HTTP/1.1", 400, False),
    ],
)
def test_bad_request_lines(line: str, status: int, answerable: bool) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_message(msg(lines=[line, *BASE[1:]]))
    assert caught.value.status_hint == status
    assert (caught.value.partial is not None) == answerable


@pytest.mark.parametrize(
    "line",
    ["SIP/2.0 2000 OK", "SIP/2.0 099 Low", "SIP/2.0 70a0 X", "SIP/3.0 200 OK", "SIP/2.0"],
)
def test_bad_status_lines_are_never_answerable(line: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_message(msg(lines=[line, *BASE[1:]]))
    assert caught.value.partial is None


def test_status_line_leniency() -> None:
    for line, reason in (("SIP/2.0 200", ""), ("sip/2.0 200 OK", "OK"), ("SIP/2.0 699 a b", "a b")):
        m = parse_message(msg(lines=[line, *BASE[1:]]))
        assert isinstance(m, Response) and m.reason == reason


def test_bad_header_line_still_allows_an_answer() -> None:
    with pytest.raises(SipParseError, match="bad header line") as caught:
        parse_message(msg("No colon here"))
    assert caught.value.partial is not None
    assert "No colon here" not in caught.value.partial.to_bytes().decode()
    with pytest.raises(SipParseError, match="continuation"):
        parse_message(msg(lines=[BASE[0], " folded first", *BASE[1:]]))


# --------------------------------------------------------------------------- validation


def test_validate_accepts_a_plain_request_and_response() -> None:
    validate_request(req(msg()))
    validate_response(make_response(req(msg()), 200, to_tag="x"))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("Via:", None), "missing Via"),
        (("From:", None), "missing From"),
        (("Call-ID:", "Call-ID: has space"), "Call-ID"),
        (("CSeq:", "CSeq: 1 BYE"), "CSeq method"),
        (("CSeq:", "CSeq: 4294967296 INVITE"), "bad CSeq"),
        (("Max-Forwards:", "Max-Forwards: 256"), "above 255"),
        (("Max-Forwards:", "Max-Forwards: seventy"), "Max-Forwards"),
        (("To:", "To: <sip:bob@example.com>, <sip:eve@example.com>"), "junk|addr-spec"),
        (("Via:", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc,"), "empty element"),
        (("Via:", "Via: SIP/2.0/UDP"), "Via"),
    ],
)
def test_validate_request_failures(change: tuple[str, str | None], reason: str) -> None:
    prefix, replacement = change
    lines: list[str] = []
    for line in BASE:
        if not line.startswith(prefix):
            lines.append(line)
        elif replacement is not None:
            lines.append(replacement)
    m = req(msg(lines=lines))
    with pytest.raises(SipParseError, match=reason) as caught:
        validate_request(m)
    assert caught.value.status_hint == 400
    assert (caught.value.partial is m) == can_respond(m)


def test_validate_is_lenient_where_real_phones_stray() -> None:
    m = req(msg(lines=[*BASE[:5], "Call-ID: MTIzNDU2Nzg5MA==#x@host", BASE[6]]))
    m.headers.set("From", "Jörg <sip:alice@example.com>;tag=1;")
    validate_request(m)
    assert m.call_id == "MTIzNDU2Nzg5MA==#x@host"
    assert (m.from_.display, m.from_.tag) == ("Jörg", "1")


def test_validate_request_extras() -> None:
    validate_request(req(msg(lines=[line for line in BASE if "Max-Forwards" not in line])))
    validate_request(req(msg("Via: SIP/2.0/TCP 192.0.2.9")))  # RFC 2543: no branch
    register = [line.replace("INVITE", "REGISTER") for line in BASE]
    validate_request(req(msg("Contact: *", "Expires: 0", lines=register)))
    with pytest.raises(SipParseError, match=r"Contact: \*"):
        validate_request(req(msg("Contact: *")))
    with pytest.raises(SipParseError, match=r"Contact: \*"):
        validate_request(req(msg("Contact: *, <sip:a@b>", lines=register)))
    with pytest.raises(SipParseError, match="Expires"):
        validate_request(req(msg("Expires: soon")))
    with pytest.raises(SipParseError, match="parameter"):
        validate_request(req(msg("Record-Route: <sip:p.example.com;lr>;;")))
    with pytest.raises(SipParseError, match="several Max-Forwards"):
        validate_request(req(msg("Max-Forwards: 10")))


def test_can_respond() -> None:
    m = req(msg())
    assert can_respond(m)
    assert not can_respond(None)
    assert not can_respond(make_response(m, 200))
    ack = req(msg(lines=[BASE[0].replace("INVITE", "ACK"), *BASE[1:]]))
    assert not can_respond(ack)
    assert not can_respond(req(msg(lines=[line for line in BASE if "Via" not in line])))


def test_validate_response_failures() -> None:
    good = make_response(req(msg()), 200, to_tag="x")
    good.headers.remove("Via")
    with pytest.raises(SipParseError, match="missing Via"):
        validate_response(good)


def test_expires_clamps_per_rfc3261() -> None:
    m = req(msg("Expires: 99999999999999"))
    assert m.expires == 2**32 - 1
    validate_request(m)


# ------------------------------------------------------------------------------ framer


def frame_all(framer: StreamFramer, data: bytes) -> list[bytes]:
    framer.feed(data)
    out: list[bytes] = []
    while (message := framer.next_message()) is not None:
        out.append(message)
    return out


def test_framer_splits_pipelined_messages() -> None:
    a = msg(body=b"one")
    b = msg("Content-Length: 0")
    framer = StreamFramer()
    assert frame_all(framer, a + b + a) == [a, b, a]
    assert framer.buffered == 0


def test_framer_waits_for_the_whole_body() -> None:
    a = msg(body=b"0123456789")
    framer = StreamFramer()
    assert frame_all(framer, a[:-3]) == []
    assert frame_all(framer, a[-3:]) == [a]


def test_framer_pings_and_stray_crlf() -> None:
    a = msg("Content-Length: 0")
    framer = StreamFramer()
    assert frame_all(framer, b"\r\n\r\n") == []
    assert framer.pong_needed() and not framer.pong_needed()
    # A lone CRLF between messages is skipped (RFC 3261 §7.5) and needs no pong.
    assert frame_all(framer, a + b"\r\n" + a) == [a, a]
    assert not framer.pong_needed()
    # A ping split across reads is still one ping.
    assert frame_all(framer, b"\r\n") == []
    assert frame_all(framer, b"\r") == []
    assert frame_all(framer, b"\n") == []
    assert framer.pong_needed()
    assert frame_all(framer, a) == [a]


def test_framer_accepts_bare_lf_and_folded_content_length() -> None:
    a = msg("Content-Length:", " 3", body=b"abc", eol="\n")
    assert frame_all(StreamFramer(), a) == [a]
    assert req(a).body == b"abc"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "not a SIP start line"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a SIP start line"),
        (msg(), "no Content-Length"),
        (msg("Content-Length: 1", "l: 1"), "several Content-Length"),
        (msg("Content-Length: -5"), "bad Content-Length"),
        (msg(f"Content-Length: {MAX_MESSAGE_SIZE}"), "exceeds"),
        (b"\r\x00", "stray CR"),
    ],
)
def test_framer_refuses_unframeable_streams(data: bytes, reason: str) -> None:
    with pytest.raises(SipParseError, match=reason):
        frame_all(StreamFramer(), data)


def test_framer_bounds_the_header_block_and_the_backlog() -> None:
    framer = StreamFramer(max_header_size=1024)
    framer.feed(b"INVITE sip:a@b SIP/2.0\r\n" + b"X: " + b"y" * 2000)
    with pytest.raises(SipParseError, match="no end of headers"):
        framer.next_message()
    framer = StreamFramer()
    with pytest.raises(SipParseError, match="backlog"):
        framer.feed(b"x" * (framer.max_buffer_size + 1))


def test_framed_message_that_does_not_parse_is_still_handed_over() -> None:
    # Framing only needs Content-Length; the bad request line is parse_message's business,
    # so the transport can answer 400 and keep the connection.
    bad = msg("Content-Length: 0", lines=["INVITE  sip:bob@example.com SIP/2.0", *BASE[1:]])
    framer = StreamFramer()
    assert frame_all(framer, bad) == [bad]
    with pytest.raises(SipParseError) as caught:
        parse_message(bad)
    assert caught.value.partial is not None
