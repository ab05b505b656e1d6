"""RFC 4475 torture messages (tests/corpus/rfc4475/*.dat) through the parser and validation.

Valid messages must parse, validate and give the right fields. Invalid ones must raise
SipParseError with the status the RFC suggests, and carry ``partial`` exactly when a
response can be formed (requests) so the transport answers instead of dropping.

Where RFC 4475 leaves the choice to the implementation, the test says which way we went:

- escruri (§3.1.2.11): rejected with 400; RFC 3261 §19.1.1 forbids headers in a
  Request-URI and ignoring them silently would hide a broken or hostile peer.
- baddate (§3.1.2.12): accepted; nothing in minicc reads Date, so it is carried as text.
- badaspec (§3.1.2.14): accepted liberally; the spaces inside <> are ignored.
- mismatch02 (§3.1.2.18): 400 rather than 501; the mismatch is found before the method
  is looked up, and the RFC accepts either.
- scalar02 (§3.1.2.4): 400 for the CSeq; Max-Forwards above 255 would also be refused.
- insuf (§3.3.1): answered 400 although From, To and Call-ID are missing, as the RFC asks:
  its Via and CSeq are enough for the client to match the response.
- multi01 (§3.3.8): the RFC's body is 152 bytes under "l: 154", so as a datagram it fails
  on Content-Length (400 as well); with the length fixed, validation refuses the doubled
  From/To/Call-ID/CSeq.
- inv2543 (§3.4.1): parsed; no branch, no From tag and no Max-Forwards are all allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from minicc.switch.sip.errors import SipParseError
from minicc.switch.sip.headers import parse_name_addr
from minicc.switch.sip.message import Request, Response, make_response
from minicc.switch.sip.parser import (
    DEFAULT_MAX_FORWARDS,
    StreamFramer,
    can_respond,
    parse_message,
    validate_request,
    validate_response,
)

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "rfc4475"

VALID = [
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
    # accepted where the RFC allows it (see the module docstring)
    "baddate",
    "badaspec",
    # §3.2 and §3.3: parse fine; the transaction layer or UAS core decides what to answer
    "badbranch",
    "unkscm",
    "novelsc",
    "unksm2",
    "bext01",
    "invut",
    "regaut01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
    "inv2543",
]

# name -> (fails in "parse" or "validate", status hint, can the request be answered?)
INVALID: dict[str, tuple[str, int, bool]] = {
    "badinv01": ("validate", 400, True),
    "clerr": ("parse", 400, True),
    "ncl": ("parse", 400, True),
    "scalar02": ("validate", 400, True),
    "scalarlg": ("validate", 400, False),  # a response: dropped
    "quotbal": ("validate", 400, True),
    "ltgtruri": ("parse", 400, True),
    "lwsruri": ("parse", 400, True),
    "lwsstart": ("parse", 400, True),
    "trws": ("parse", 400, True),
    "escruri": ("parse", 400, True),
    "regbadct": ("validate", 400, True),
    "baddn": ("validate", 400, True),
    "badvers": ("parse", 505, True),
    "mismatch01": ("validate", 400, True),
    "mismatch02": ("validate", 400, True),
    "bigcode": ("parse", 400, False),  # a response: dropped
    "insuf": ("validate", 400, True),
    "multi01": ("parse", 400, True),
    "mcl01": ("parse", 400, True),
}


def load(name: str) -> bytes:
    return (CORPUS / f"{name}.dat").read_bytes()


def parse_valid(name: str) -> Request | Response:
    message = parse_message(load(name))
    if isinstance(message, Request):
        validate_request(message)
    else:
        validate_response(message)
    return message


def request(name: str) -> Request:
    message = parse_valid(name)
    assert isinstance(message, Request)
    return message


def test_corpus_is_complete() -> None:
    # RFC 4475 has 49 messages: 13 valid, 19 invalid, 1 transaction, 15 application, 1 compat.
    names = {p.stem for p in CORPUS.glob("*.dat")}
    assert names == set(VALID) | set(INVALID)
    assert len(names) == 49


@pytest.mark.parametrize("name", VALID)
def test_valid_message_parses_and_validates(name: str) -> None:
    message = parse_valid(name)
    # Typed reads the later layers make must not raise either.
    _ = (message.vias, message.from_, message.to, message.call_id, message.cseq)
    _ = (message.contacts, message.max_forwards)
    if isinstance(message, Request):
        assert can_respond(message) == (message.method != "ACK")


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_message_is_refused_with_the_rfc_status(name: str) -> None:
    stage, status, answerable = INVALID[name]
    data = load(name)
    with pytest.raises(SipParseError) as caught:
        message = parse_message(data)
        assert stage == "validate", f"{name} should not have parsed"
        if isinstance(message, Request):
            validate_request(message)
        else:
            validate_response(message)
    exc = caught.value
    assert exc.status_hint == status
    assert (exc.partial is not None) == answerable
    if exc.partial is not None:
        assert can_respond(exc.partial)
        # The transport's reply must itself be a well-formed response.
        reply = make_response(exc.partial, exc.status_hint, to_tag="t1")
        parsed = parse_message(reply.to_bytes())
        assert isinstance(parsed, Response)
        assert parsed.status == status
        assert parsed.headers.get_all("Via") == exc.partial.headers.get_all("Via")


# ------------------------------------------------------------------ 3.1.1 valid, in detail


def test_wsinv() -> None:
    m = request("wsinv")
    assert m.method == "INVITE"
    assert m.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert m.request_uri.params == {"unknownparam": None}
    assert m.to.uri.user == "vivekg" and m.to.tag == "1918181833n"
    assert m.from_.display == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.max_forwards == 68
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert (m.cseq.seq, m.cseq.method) == (9, "INVITE")
    vias = m.vias
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("Subject") == ""
    assert m.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = m.contacts
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    route = parse_name_addr(m.headers.get("Route") or "")
    assert route.uri.host == "services.example.com"
    assert route.uri.params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    assert m.content_type == "application/sdp"
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n")


def test_intmeth() -> None:
    m = request("intmeth")
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.method == method and m.cseq.method == method and m.cseq.seq == 139122385
    uri = m.request_uri
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com" and uri.params == {}
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.from_.display == "token1~` token2'+_ token3*%!.-"
    assert m.from_.params["fromparam''~+*_!.-%"] == '"работающий"'
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.max_forwards == 255
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert m.body == b""


def test_esc01() -> None:
    m = request("esc01")
    assert m.request_uri.user == "sips%3Auser%40example.com"
    assert m.request_uri.user_unescaped == "sips:user@example.com"
    assert m.request_uri.host == "example.net"
    assert m.to.uri.user_unescaped == "user"
    assert m.from_.uri.user_unescaped == "I have spaces" and m.from_.tag == "938"
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"  # compact "i:"
    assert m.content_type == "application/sdp"  # compact "C:"
    (contact,) = m.contacts
    assert contact.uri.user_unescaped == "caller"
    # Escapes inside URI parameters are not decoded (RFC 3986: never recursively).
    assert contact.uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}
    assert len(m.body) == 150


def test_escnull() -> None:
    m = request("escnull")
    assert m.to.uri.user_unescaped == "null-\x00-null"
    assert m.from_.tag == "839923423"
    assert [c.uri.user for c in m.contacts] == ["%00", "%00%00"]
    assert m.content_length == 0  # "L:0", compact and without a space


def test_esc02() -> None:
    m = request("esc02")
    # % is not an escape in a method, a quoted string, a token or a header name.
    assert m.method == "RE%47IST%45R" and m.cseq.method == "RE%47IST%45R"
    assert m.to.display == "%Z%45" and m.from_.display == "%Z%45"
    assert m.top_via.branch == "z9hG4bK209%fzsnel234"
    assert [c.uri.user for c in m.contacts] == ["alias1", "alias3"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp() -> None:
    m = request("lwsdisp")
    assert m.from_.display == "caller" and m.from_.uri.user == "caller"
    assert m.from_.tag == "323"


def test_longreq() -> None:
    m = request("longreq")
    assert m.to.display is not None and m.to.display.count("extreme") == 10
    assert m.to.uri.port == 6000 and len(m.to.uri.params) == 3
    assert m.from_.uri.user == "amazinglylongcallername" * 5
    assert m.from_.tag == "12" + "982" * 50 + "424"
    assert m.call_id == "longreq.one" + "really" * 20 + "longcallid"
    vias = m.vias
    assert len(vias) == 34
    assert [v.host for v in vias[:33]] == [f"sip{n}.example.com" for n in range(33, 0, -1)]
    assert vias[-1].params["received"] == "192.0.2.5"
    assert vias[-1].branch == "very" + "long" * 50 + "branchvalue"
    assert m.contacts[0].uri.user == "amazinglylongcallername" * 5
    assert len(m.body) == 150


def test_dblreq_keeps_only_the_first_request_of_a_datagram() -> None:
    m = request("dblreq")
    assert m.method == "REGISTER" and m.body == b""
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"  # compact "I:"
    assert m.contacts[0].uri.host == "host.example.com"


def test_semiuri() -> None:
    m = request("semiuri")
    assert m.request_uri.user == "user;par=u%40example.net"
    assert m.request_uri.host == "example.com" and m.request_uri.params == {}
    assert m.headers.get_list("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports() -> None:
    m = request("transports")
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01() -> None:
    m = request("mpart01")
    assert m.method == "MESSAGE"
    assert m.content_type == "multipart/mixed"
    assert len(m.body) == 553
    assert m.body.endswith(b"\r\n--7a9cbec02ceef655--\r\n")
    assert b"\x30\x82\x01\x52" in m.body
    via = m.top_via
    assert (via.host, via.port, via.params["rport"]) == ("127.0.0.1", 5070, None)
    assert (m.headers.get("Identity") or "").endswith("MWYUA=")


def test_unreason() -> None:
    m = parse_valid("unreason")
    assert isinstance(m, Response)
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert len(m.body) == 154


def test_noreason() -> None:
    m = parse_valid("noreason")
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (100, "")


# --------------------------------------------------------- choices where the RFC allows


def test_baddate_is_carried_as_text() -> None:
    assert request("baddate").headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def test_badaspec_is_read_liberally() -> None:
    m = request("badaspec")
    assert m.to.display == "Watson, Thomas" and m.to.uri.user == "t.watson"


def test_multi01_with_its_length_fixed_fails_validation() -> None:
    data = load("multi01").replace(b"l: 154", b"l: 152")
    message = parse_message(data)
    assert isinstance(message, Request)
    with pytest.raises(SipParseError, match="several") as caught:
        validate_request(message)
    assert caught.value.partial is message


def test_badvers_partial_answers_505() -> None:
    with pytest.raises(SipParseError) as caught:
        parse_message(load("badvers"))
    partial = caught.value.partial
    assert partial is not None and partial.version == "SIP/7.0"
    assert make_response(partial, 505).to_bytes().startswith(b"SIP/2.0 505 Version Not")


def test_insuf_answer_leaves_out_what_the_request_lacked() -> None:
    with pytest.raises(SipParseError) as caught:
        validate_request(request_unvalidated("insuf"))
    partial = caught.value.partial
    assert partial is not None
    reply = make_response(partial, 400)
    assert "From" not in reply.headers and "Call-ID" not in reply.headers
    assert reply.headers.get("CSeq") == "193942 INVITE"


def request_unvalidated(name: str) -> Request:
    message = parse_message(load(name))
    assert isinstance(message, Request)
    return message


# ------------------------------------------------- 3.2 / 3.3 / 3.4: fields the layers use


def test_badbranch_is_not_an_rfc3261_branch() -> None:
    via = request("badbranch").top_via
    assert via.branch == "z9hG4bK" and not via.is_rfc3261_branch
    assert request("zeromf").top_via.is_rfc3261_branch


def test_unknown_schemes_parse_opaque_for_the_core_to_answer_416() -> None:
    assert not request("unkscm").request_uri.is_sip
    assert request("novelsc").request_uri.scheme == "soap.beep"
    m = request("unksm2")
    assert (m.to.uri.scheme, m.from_.uri.scheme) == ("isbn", "http")
    assert [c.uri.scheme for c in m.contacts] == ["name"]


def test_application_layer_fields() -> None:
    assert request("bext01").headers.get_list("Require") == [
        "nothingSupportsThis",
        "nothingSupportsThisEither",
    ]
    invut = request("invut")
    assert invut.content_type == "application/unknownformat" and len(invut.body) == 40
    assert request("regaut01").headers.get("Authorization") == (
        "NoOneKnowsThisScheme opaque-data=here"
    )
    assert request("zeromf").max_forwards == 0
    assert request("sdp01").headers.get("Accept") == "text/nobodyKnowsThis"


def test_bcast_response_keeps_both_vias() -> None:
    m = parse_valid("bcast")
    assert [v.host for v in m.vias] == ["192.0.2.198", "255.255.255.255"]


def test_contact_parameters_land_where_the_rfc_says() -> None:
    # cparam01: addr-spec without <>: ";unknownparam" is a header parameter.
    (c1,) = request("cparam01").contacts
    assert c1.params == {"unknownparam": None} and c1.uri.params == {}
    # cparam02: inside <> it is a URI parameter.
    (c2,) = request("cparam02").contacts
    assert c2.params == {} and c2.uri.params == {"unknownparam": None}
    (c3,) = request("regescrt").contacts
    assert c3.uri.headers == "Route=%3Csip:sip.example.com%3E"


def test_inv2543() -> None:
    m = request("inv2543")
    assert m.max_forwards is None and DEFAULT_MAX_FORWARDS == 70
    assert m.top_via.branch is None and not m.top_via.is_rfc3261_branch
    assert m.from_.tag is None
    assert m.content_length is None and len(m.body) == 105  # a datagram: to the end
    assert m.headers.get("Record-Route") == "<sip:UserB@example.com;maddr=ss1.example.com>"


# ----------------------------------------------------------------------- over a stream

STREAMABLE = [n for n in VALID if n not in ("inv2543", "dblreq")]  # no / wrong length


def test_valid_corpus_streams_through_the_framer_byte_by_byte() -> None:
    framer = StreamFramer()
    stream = b"\r\n".join(load(n) for n in STREAMABLE)  # stray CRLFs between are skipped
    out: list[bytes] = []
    for i in range(len(stream)):
        framer.feed(stream[i : i + 1])
        while (message := framer.next_message()) is not None:
            out.append(message)
    assert [parse_message(m).call_id for m in out] == [
        parse_message(load(n)).call_id for n in STREAMABLE
    ]
    assert framer.buffered == 0


def test_dblreq_on_a_stream_yields_the_register_then_refuses_the_bad_length() -> None:
    framer = StreamFramer()
    framer.feed(load("dblreq"))
    first = framer.next_message()
    assert first is not None and first.startswith(b"REGISTER ")
    # The INVITE says 150 but carries 153 body bytes: its tail is not a start line.
    second = framer.next_message()
    assert second is not None and second.startswith(b"INVITE ")
    with pytest.raises(SipParseError):
        framer.next_message()
