"""Hypothesis properties of the SIP parser.

- serialise -> parse gives the message back, also with compact and oddly cased header
  names and folded values;
- random bytes, and mutated RFC 4475 messages, only ever raise SipParseError, from the
  parser, the validators and the typed accessors alike;
- a stream of messages (with keep-alives between them) cut at random points comes out of
  StreamFramer as the same messages.

Equality: Headers compare names case-insensitively (after compact forms are expanded) and
values exactly; the parser adds the Content-Length that serialising writes.
"""

from __future__ import annotations

import contextlib
import string
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from minicc.switch.sip.errors import SipParseError
from minicc.switch.sip.headers import COMPACT_FORMS, Headers, NameAddr, Via, parse_name_addr
from minicc.switch.sip.message import Message, Request, Response
from minicc.switch.sip.parser import (
    StreamFramer,
    parse_message,
    validate_request,
    validate_response,
)
from minicc.switch.sip.uri import SipUri, _parse_uri_slow, parse_uri

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Generating whole messages is the slow part; random bytes are cheap, so fuzz harder.
FUZZ = settings(max_examples=1500, deadline=None)
FEW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "rfc4475"
CORPUS_MESSAGES = [p.read_bytes() for p in sorted(CORPUS.glob("*.dat"))]

TOKEN_CHARS = string.ascii_letters + string.digits + "-.!%*_+`'~"
UNRESERVED = string.ascii_letters + string.digits + "-_.!~*'()"

tokens = st.text(TOKEN_CHARS, min_size=1, max_size=10)
lower_tokens = st.text(string.ascii_lowercase + string.digits + "-.!_+~", min_size=1, max_size=8)
escaped = st.sampled_from(["%41", "%20", "%00", "%3a", "%FF"])


def _chars(alphabet: str, *, min_size: int = 1, max_size: int = 10) -> st.SearchStrategy[str]:
    piece = st.one_of(st.sampled_from(list(alphabet)), escaped)
    return st.lists(piece, min_size=min_size, max_size=max_size).map("".join)


labels = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,6}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(labels, min_size=1, max_size=3).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.sampled_from(["[::1]", "[2001:db8::5]", "[fe80::1:2:3]"])
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.one_of(st.none(), st.integers(1, 65535))
uri_params = st.dictionaries(
    lower_tokens.filter(lambda t: "%" not in t),
    st.one_of(st.none(), _chars(UNRESERVED)),
    max_size=3,
)


@st.composite
def sip_uris(draw: st.DrawFn, *, uri_headers: bool = True) -> SipUri:
    user = draw(st.one_of(st.none(), _chars(UNRESERVED + "&=+$,;?/")))
    password = (
        draw(st.one_of(st.none(), _chars(UNRESERVED + "&=+$,", min_size=0))) if user else None
    )
    # Headers are not allowed in a Request-URI (RFC 3261 §19.1.1), so requests get none.
    headers = draw(st.one_of(st.none(), st.just("Subject=hi&X=%20"))) if uri_headers else None
    return SipUri(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        user=user,
        password=password,
        host=draw(hosts),
        port=draw(ports),
        params=draw(uri_params),
        headers=headers,
    )


# Display names: any text a quoted-string can carry (not CR/LF, which quote() turns into
# spaces), including controls that travel as quoted-pairs and non-ASCII.
display_text = st.text(st.characters(codec="utf-8", blacklist_characters="\r\n"), max_size=12)
header_params = st.dictionaries(
    lower_tokens, st.one_of(st.none(), tokens, st.just('"quoted; ,value"')), max_size=3
)


@st.composite
def name_addrs(draw: st.DrawFn) -> NameAddr:
    display = draw(st.one_of(st.none(), display_text, st.lists(tokens, min_size=1).map(" ".join)))
    return NameAddr(uri=draw(sip_uris()), display=display, params=draw(header_params))


@st.composite
def vias(draw: st.DrawFn) -> Via:
    params = draw(header_params)
    params["branch"] = "z9hG4bK" + draw(tokens)
    return Via(
        transport=draw(st.sampled_from(["UDP", "TCP", "TLS", "WS", "SCTP"])),
        host=draw(hosts),
        port=draw(ports),
        params=params,
    )


# Free-text values: printable, no leading/trailing blanks (the parser trims those).
free_text = st.text(
    st.characters(codec="utf-8", min_codepoint=0x20, blacklist_characters="\x7f"),
    min_size=0,
    max_size=30,
).map(lambda s: s.strip(" \t"))
ext_names = tokens.filter(lambda t: len(t) > 1).map(lambda t: "X-" + t)


@st.composite
def headers(draw: st.DrawFn, method: str) -> Headers:
    h = Headers()
    for via in draw(st.lists(vias(), min_size=1, max_size=3)):
        h.add("Via", str(via))
    h.add("From", str(draw(name_addrs())))
    h.add("To", str(draw(name_addrs())))
    h.add(
        "Call-ID", draw(st.from_regex(r"[A-Za-z0-9.\-]{1,20}(@[a-z0-9.]{1,10})?", fullmatch=True))
    )
    h.add("CSeq", f"{draw(st.integers(0, 2**32 - 1))} {method}")
    if draw(st.booleans()):
        h.add("Max-Forwards", str(draw(st.integers(0, 255))))
    for contact in draw(st.lists(name_addrs(), max_size=2)):
        h.add("Contact", str(contact))
    for name, value in draw(st.lists(st.tuples(ext_names, free_text), max_size=4)):
        h.add(name, value)
    if draw(st.booleans()):
        h.add("Supported", ", ".join(draw(st.lists(tokens, min_size=1, max_size=3))))
    return h


methods = st.one_of(st.sampled_from(["INVITE", "ACK", "BYE", "OPTIONS", "REGISTER"]), tokens)
bodies = st.binary(max_size=200)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(methods)
    return Request(
        headers=draw(headers(method)),
        body=draw(bodies),
        method=method,
        uri=str(draw(sip_uris(uri_headers=False))),
    )


@st.composite
def responses(draw: st.DrawFn) -> Response:
    reason = draw(free_text)
    return Response(
        headers=draw(headers("INVITE")),
        body=draw(bodies),
        status=draw(st.integers(100, 699)),
        reason=reason,
    )


messages = st.one_of(requests(), responses())


def expected(m: Message) -> Message:
    """What parsing ``m.to_bytes()`` must give: ``m`` plus the Content-Length written."""
    h = m.headers.copy()
    h.remove("Content-Length")
    h.add("Content-Length", str(len(m.body)))
    if isinstance(m, Request):
        return Request(headers=h, body=m.body, method=m.method, uri=m.uri)
    assert isinstance(m, Response)
    return Response(headers=h, body=m.body, status=m.status, reason=m.reason)


# ------------------------------------------------------------------------- round trips


@SETTINGS
@given(sip_uris())
def test_uri_round_trip(uri: SipUri) -> None:
    text = str(uri)
    assert parse_uri(text) == uri
    assert _parse_uri_slow(text) == uri


@SETTINGS
@given(name_addrs())
def test_name_addr_round_trip(value: NameAddr) -> None:
    parsed = parse_name_addr(str(value))
    assert parsed.uri == value.uri and parsed.params == value.params
    if value.display is not None:
        assert parsed.display == value.display


@SETTINGS
@given(messages)
def test_serialise_parse_round_trip(m: Request | Response) -> None:
    parsed = parse_message(m.to_bytes())
    assert parsed == expected(m)
    if isinstance(parsed, Request):
        validate_request(parsed)
    else:
        validate_response(parsed)
    assert [str(v) for v in parsed.vias] == m.headers.get_list("Via")


_LONG_TO_COMPACT = {long.lower(): short for short, long in COMPACT_FORMS.items()}


@st.composite
def wire_forms(draw: st.DrawFn) -> tuple[Message, bytes]:
    """A message and a legal but unusual wire form of it: compact or re-cased names,
    space before the colon, folded values, bare-LF line ends."""
    m = draw(messages)
    eol = draw(st.sampled_from(["\r\n", "\r\n", "\n"]))
    if isinstance(m, Request):
        lines = [f"{m.method} {m.uri} SIP/2.0"]
    else:
        assert isinstance(m, Response)
        lines = [f"SIP/2.0 {m.status} {m.reason}"]
    for name, value in m.headers:
        spelling = draw(
            st.sampled_from(
                [name, name.upper(), name.lower(), _LONG_TO_COMPACT.get(name.lower(), name)]
            )
        )
        colon = draw(st.sampled_from([":", ": ", " : ", "\t:\t"]))
        singles = [
            i
            for i in range(1, len(value) - 1)
            if value[i] == " " and value[i - 1] not in " \t" and value[i + 1] not in " \t"
        ]
        folds = draw(st.sets(st.sampled_from(singles), max_size=2)) if singles else set()
        folded = "".join(
            (eol + draw(st.sampled_from([" ", "\t", "   "]))) if i in folds else c
            for i, c in enumerate(value)
        )
        lines.append(f"{spelling}{colon}{folded}")
    lines.append(f"Content-Length: {len(m.body)}")
    return m, (eol.join(lines) + eol + eol).encode() + m.body


@SETTINGS
@given(wire_forms())
def test_unusual_wire_forms_parse_to_the_same_message(case: tuple[Message, bytes]) -> None:
    m, data = case
    assert parse_message(data) == expected(m)


# ------------------------------------------------------------ nothing but SipParseError


def _read_everything(data: bytes) -> None:
    try:
        m = parse_message(data)
    except SipParseError:
        return
    for step in (
        lambda: validate_request(m) if isinstance(m, Request) else validate_response(m),
        lambda: m.vias,
        lambda: m.top_via,
        lambda: (m.from_, m.to, m.call_id, m.cseq, m.contacts, m.contact_star),
        lambda: (m.expires, m.max_forwards, m.content_length, m.content_type),
        lambda: m.request_uri if isinstance(m, Request) else None,
        lambda: m.to_bytes(),
    ):
        with contextlib.suppress(SipParseError):
            step()


@FUZZ
@given(st.binary(max_size=600))
@example(b"\r\n\r\n")
@example(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP \xff\r\n\r\n")
@example(b"SIP/2.0 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n")
@example(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: " + b"1" * 5000 + b" OPTIONS\r\n\r\n")
def test_random_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    _read_everything(data)


@FUZZ
@given(
    st.sampled_from(CORPUS_MESSAGES),
    st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.sampled_from(["set", "insert", "delete"]),
            st.binary(min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_torture_messages_raise_only_sip_parse_error(
    data: bytes, edits: list[tuple[int, str, bytes]]
) -> None:
    buf = bytearray(data)
    for pos, op, chunk in edits:
        i = pos % (len(buf) + 1)
        if op == "set":
            buf[i : i + len(chunk)] = chunk
        elif op == "insert":
            buf[i:i] = chunk
        else:
            del buf[i : i + len(chunk)]
    _read_everything(bytes(buf))


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_framer_on_random_bytes_raises_only_sip_parse_error(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_message_size=4096, max_header_size=1024)
    try:
        for chunk in chunks:
            framer.feed(chunk)
            while (message := framer.next_message()) is not None:
                _read_everything(message)
    except SipParseError:
        pass


# ----------------------------------------------------------------------------- streams


@FEW
@given(
    st.lists(
        st.tuples(messages, st.sampled_from([b"", b"\r\n", b"\r\n\r\n"])), min_size=1, max_size=4
    ),
    st.lists(st.integers(1, 400), min_size=1, max_size=30),
)
def test_stream_cut_anywhere_yields_the_same_messages(
    parts: list[tuple[Request | Response, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(sep + m.to_bytes() for m, sep in parts)
    pings = sum(1 for _, sep in parts if sep == b"\r\n\r\n")
    framer = StreamFramer()
    out: list[bytes] = []
    pongs = 0
    pos = 0
    sizes = iter(cuts * (len(stream) // len(cuts) + 1))
    while pos < len(stream):
        step = next(sizes)
        framer.feed(stream[pos : pos + step])
        pos += step
        while (message := framer.next_message()) is not None:
            out.append(message)
        pongs += framer.pong_needed()
    assert [parse_message(m) for m in out] == [expected(m) for m, _ in parts]
    assert framer.buffered == 0
    assert (pongs > 0) == (pings > 0) and pongs <= pings


def test_a_fold_inside_a_quoted_display_name_keeps_its_escaped_control() -> None:
    """Found by the wire-form property: the escaped \\x1f sits on the folded line."""
    wire = (
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b'From: "x\r\n \\\x1f" <sip:0@h>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\n'
        b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(wire)
    assert message.from_.display is not None and "\x1f" in message.from_.display
