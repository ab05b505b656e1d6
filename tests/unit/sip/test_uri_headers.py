"""URIs, header parameters, name-addr, Via, CSeq and the Headers multidict."""

from __future__ import annotations

import pytest

from minicc.switch.sip.errors import LocalProtocolError, SipParseError
from minicc.switch.sip.headers import (
    Headers,
    NameAddr,
    Via,
    canonical_name,
    parse_cseq,
    parse_name_addr,
    parse_via,
)
from minicc.switch.sip.message import Request
from minicc.switch.sip.uri import (
    SipUri,
    _parse_uri_slow,
    parse_params,
    parse_quoted,
    parse_uri,
    quote,
    split_unquoted,
)

# ---------------------------------------------------------------------------------- URIs


_NONE: dict[str, str | None] = {}


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("sip:alice@example.com", ("sip", "alice", None, "example.com", None, _NONE, None)),
        (
            "SIPS:Bob:pw@Host.Example.COM:5061",
            ("sips", "Bob", "pw", "Host.Example.COM", 5061, _NONE, None),
        ),
        (
            "sip:192.0.2.1;lr;transport=TCP",
            ("sip", None, None, "192.0.2.1", None, {"lr": None, "transport": "TCP"}, None),
        ),
        ("sip:[2001:db8::1]:5060", ("sip", None, None, "[2001:db8::1]", 5060, _NONE, None)),
        (
            "sip:+1555;phone-context=x@gw.example.net;user=phone",
            ("sip", "+1555;phone-context=x", None, "gw.example.net", None, {"user": "phone"}, None),
        ),
        (
            "sip:a@b.c?Subject=hi&Priority=urgent",
            ("sip", "a", None, "b.c", None, _NONE, "Subject=hi&Priority=urgent"),
        ),
        ("sip:%61lice@example.com.", ("sip", "%61lice", None, "example.com.", None, _NONE, None)),
        ("  sip:a@b  ", ("sip", "a", None, "b", None, _NONE, None)),
    ],
)
def test_parse_sip_uri(text: str, fields: tuple[object, ...]) -> None:
    uri = parse_uri(text)
    got = (uri.scheme, uri.user, uri.password, uri.host, uri.port, uri.params, uri.headers)
    assert got == fields
    assert uri.is_sip
    assert parse_uri(str(uri)) == uri
    assert _parse_uri_slow(text) == uri  # the fast path agrees with the general parser


@pytest.mark.parametrize("text", ["tel:+1-555-0100", "urn:uuid:f81d4fae", "mailto:a@b.c"])
def test_other_schemes_are_opaque(text: str) -> None:
    uri = parse_uri(text)
    assert not uri.is_sip and str(uri) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip:",
        "alice@example.com",
        "sip:a b@example.com",
        "sip:alice@exa mple.com",
        "sip:alice@example.com; lr",
        "sip:alice@-bad-.com",
        "sip:alice@host:0",
        "sip:alice@host:65536",
        "sip:alice@host:5o60",
        "sip:alice@host:²",
        "sip:@host",
        "sip:a<b@host",
        "sip:alice@host;;lr",
        "sip:alice@host;",
        'sip:alice@host;a=b=c"',
        "sip:alice@[::1",
        "sip:alice@[zz::1]",
        "sip:alice@host?x=<y>",
        "sip:a%zz@host",
        "tel:has space",
        "1sip:x@y",
    ],
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_uri_helpers() -> None:
    uri = parse_uri("sip:I%20am@Example.COM;transport=TLS")
    assert uri.user_unescaped == "I am"
    assert uri.host_plain == "example.com"
    assert uri.transport == "tls"
    assert str(uri.with_user(None)) == "sip:Example.COM;transport=TLS"
    assert parse_uri("sip:[::1]").host_plain == "::1"


# ---------------------------------------------------------------------------- params


def test_parse_params() -> None:
    assert parse_params(";a;B=Two ; c = 3", what="t") == {"a": None, "b": "Two", "c": "3"}
    assert parse_params("a=1", what="t") == {"a": "1"}
    assert parse_params("", what="t") == {}
    assert parse_params(';q="x;y, z"', what="t") == {"q": '"x;y, z"'}
    assert parse_params(";received=2001:db8::1", what="t") == {"received": "2001:db8::1"}
    # One trailing ";" after real parameters is tolerated (phones send it).
    assert parse_params(";tag=1;", what="t") == {"tag": "1"}
    for bad in (";", ";;a", ";a;;", ";a b", ";=x", ';a="unterminated', ";a=<x>", ';a="x"y'):
        with pytest.raises(SipParseError):
            parse_params(bad, what="t")


def test_split_unquoted_and_quoting() -> None:
    assert split_unquoted('a, "b, c", <d,e>', ",") == ["a", ' "b, c"', " <d,e>"]
    assert split_unquoted("single", ",") == ["single"]
    with pytest.raises(SipParseError):
        split_unquoted('a, "b', ",")
    assert parse_quoted('"a\\"b\\\\c" rest', 0) == ('a"b\\c', 9)
    assert quote('say "hi"\\') == '"say \\"hi\\"\\\\"'
    # Control characters become quoted-pairs; CR and LF cannot be carried at all.
    assert quote("a\x00b\r\nc") == '"a\\\x00b  c"'


# ------------------------------------------------------------------------- name-addr


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        ('"Alice" <sip:a@example.com>;tag=1', "Alice", "sip:a@example.com", {"tag": "1"}),
        ("Bob Smith <sip:b@example.com>", "Bob Smith", "sip:b@example.com", {}),
        ("Bob   Smith<sip:b@example.com>", "Bob Smith", "sip:b@example.com", {}),
        ("Jörg Müller <sip:j@example.com>", "Jörg Müller", "sip:j@example.com", {}),
        ("<sip:c@example.com;lr>", None, "sip:c@example.com;lr", {}),
        ("sip:d@example.com;tag=x", None, "sip:d@example.com", {"tag": "x"}),
        ('"\\"q\\" \\\\" <sip:e@example.com>', '"q" \\', "sip:e@example.com", {}),
        (
            '"Jörg\t" <sip:f@example.com> ; expires = 60',
            "Jörg\t",
            "sip:f@example.com",
            {"expires": "60"},
        ),
        ("<tel:+15550100>", None, "tel:+15550100", {}),
    ],
)
def test_parse_name_addr(
    text: str, display: str | None, uri: str, params: dict[str, str | None]
) -> None:
    value = parse_name_addr(text)
    assert (value.display, str(value.uri), value.params) == (display, uri, params)
    assert parse_name_addr(str(value)) == value


@pytest.mark.parametrize(
    "text",
    [
        '"unterminated <sip:a@b>',
        '"Alice" sip:a@b',
        "Bell, Alexander <sip:a@b>",
        "<sip:a@b",
        "<sip:a@b> junk",
        "sip:a@b?x=y",
        "sip:a@b, sip:c@d",
        "<sip:a@b>;;",
        "",
    ],
)
def test_bad_name_addr(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_name_addr(text)


def test_name_addr_str_quotes_when_needed() -> None:
    uri = parse_uri("sip:a@b")
    assert str(NameAddr(uri=uri, display="Plain Name")) == "Plain Name <sip:a@b>"
    assert str(NameAddr(uri=uri, display="Doe, John")) == '"Doe, John" <sip:a@b>'
    assert str(NameAddr(uri=uri, display="x\r\nVia: evil")) == '"x  Via: evil" <sip:a@b>'


# -------------------------------------------------------------------------- Via, CSeq


def test_parse_via() -> None:
    via = parse_via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;rport;received=192.0.2.9")
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.1", 5060)
    assert via.params == {"branch": "z9hG4bK776", "rport": None, "received": "192.0.2.9"}
    assert via.is_rfc3261_branch and via.sent_by == ("192.0.2.1", 5060)
    assert parse_via(str(via)) == via
    loose = parse_via(" SIP / 2.0 / tcp\tHost.Example.com : 5070 ; branch = z9hG4bKx ")
    assert (loose.transport, loose.host, loose.port, loose.branch) == (
        "TCP",
        "Host.Example.com",
        5070,
        "z9hG4bKx",
    )
    assert parse_via("SIP/2.0/WSS [2001:db8::9]:443").host == "[2001:db8::9]"
    assert parse_via("SIP/3.0/UDP h").protocol == "SIP/3.0"


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "SIP/2.0/UDP host;",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP user@host",
        "SIP/2.0/UDP host?x",
        "SIP/2.0/U(P host",
    ],
)
def test_bad_via(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_via(text)


def test_cseq() -> None:
    assert parse_cseq("0009\r\n INVITE".replace("\r\n", "")) == parse_cseq("9 INVITE")
    assert parse_cseq(" 4294967295\tBYE ").seq == 2**32 - 1
    assert str(parse_cseq("00001 ACK")) == "1 ACK"
    for bad in ("", "1", "x INVITE", "4294967296 INVITE", "1 IN VITE", "-1 BYE", "\uff11 BYE"):
        with pytest.raises(SipParseError):
            parse_cseq(bad)


# ----------------------------------------------------------------------------- Headers


def test_headers_multidict() -> None:
    h = Headers([("v", "a"), ("Via", "b"), ("X-Custom", "1"), ("x-custom", "2")])
    assert list(h) == [("Via", "a"), ("Via", "b"), ("X-Custom", "1"), ("x-custom", "2")]
    assert h.get("VIA") == "a" and h.get_all("x-CUSTOM") == ["1", "2"]
    assert "V" in h and "Route" not in h and 5 not in h
    assert h.count("via") == 2 and len(h) == 4
    h.prepend("Via", "z")
    assert h.get_list("Via") == ["z", "a", "b"]
    h.set("via", "only")
    assert h.get_all("Via") == ["only"] and next(iter(h)) == ("Via", "only")
    h.remove("X-CUSTOM")
    assert h.get("x-custom") is None and h.get("x-custom", "d") == "d"
    h.add("Route", "<sip:a>, <sip:b>")
    assert h.pop_first_list_value("Route") == "<sip:a>"
    assert h.get("Route") == "<sip:b>"
    assert h.pop_first_list_value("Route") == "<sip:b>" and "Route" not in h
    assert h.pop_first_list_value("Route") is None


def test_headers_equality_and_copy() -> None:
    a = Headers([("call-id", "x"), ("f", "<sip:a@b>")])
    b = Headers([("Call-ID", "x"), ("From", "<sip:a@b>")])
    assert a == b and a != Headers([("Call-ID", "X"), ("From", "<sip:a@b>")])
    c = a.copy()
    c.add("To", "t")
    assert a != c and len(a) == 2
    assert canonical_name("cseq") == "CSeq" and canonical_name("X-Foo") == "X-Foo"
    assert canonical_name("WWW-authenticate") == "WWW-Authenticate"


def test_headers_refuse_injection() -> None:
    h = Headers()
    for name, value in (("X", "a\r\nVia: evil"), ("X", "a\nb"), ("X:Y", "a"), ("X\r", "a")):
        with pytest.raises(LocalProtocolError):
            h.add(name, value)
    with pytest.raises(LocalProtocolError):
        Headers([("X", "\r")])
    with pytest.raises(LocalProtocolError):
        h.set("X", "\n")


# ------------------------------------------------------------------ accessor memo copies


def test_accessors_return_independent_copies() -> None:
    m = Request(
        headers=Headers(
            [
                ("Via", "SIP/2.0/UDP h;branch=z9hG4bKa"),
                ("From", "<sip:a@b>;tag=1"),
                ("Contact", "<sip:c@d>"),
            ]
        ),
        uri="sip:x@y",
    )
    via = m.top_via
    via.params["branch"] = "changed"
    assert m.top_via.branch == "z9hG4bKa"
    m.from_.uri.params["x"] = "y"
    m.from_.params["tag"] = "2"
    assert m.from_.tag == "1" and m.from_.uri.params == {}
    m.request_uri.params["lr"] = None
    assert m.request_uri.params == {}
    # A rewritten header is read afresh.
    m.headers.set("From", "<sip:z@b>;tag=9")
    assert m.from_.tag == "9" and m.from_tag == "9"
    with pytest.raises(SipParseError, match="missing To"):
        _ = m.to_tag
    m.headers.add("To", "<sip:x@y>")
    assert m.to_tag is None
    assert m.branch == "z9hG4bKa"
    m.headers.prepend("Via", "SIP/2.0/TCP p;branch=z9hG4bKtop")
    assert m.branch == "z9hG4bKtop" and m.top_via.host == "p"
    assert isinstance(m.vias[0], Via) and m.contacts[0].uri == SipUri(user="c", host="d")
