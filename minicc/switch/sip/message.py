"""SIP requests and responses (RFC 3261 §7), their typed header views and serialisation."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from minicc.switch.sip.cache import ParseCache
from minicc.switch.sip.errors import SipParseError
from minicc.switch.sip.headers import (
    CSeq,
    Headers,
    NameAddr,
    Via,
    copy_name_addr,
    copy_via,
    parse_cseq,
    parse_name_addr,
    parse_via,
)
from minicc.switch.sip.uri import SipUri, copy_uri, is_digits, parse_uri

SIP_VERSION = "SIP/2.0"

# RFC 3261 §21 and the reason phrases minicc sends.
REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
}


# Parsed values by header text, shared by all messages (see cache.py). Sized for a few
# seconds of calls at several hundred calls per second: a response finds its request's
# values, a dialog's later requests its From and To.
VIA_CACHE: ParseCache[Via] = ParseCache(parse_via, 2048)
CSEQ_CACHE: ParseCache[CSeq] = ParseCache(parse_cseq, 1024)
URI_CACHE: ParseCache[SipUri] = ParseCache(parse_uri, 2048)
# A name-addr's URI through the URI cache: From and To differ by their tag on every call,
# the URI inside does not. Shared like everything cached, so never changed in place.
NAME_ADDR_CACHE: ParseCache[NameAddr] = ParseCache(
    functools.partial(parse_name_addr, uri_parser=URI_CACHE), 2048
)


@dataclass(slots=True)
class Message:
    """What requests and responses share: headers, body and typed accessors.

    Accessors parse on demand and raise :class:`SipParseError` on a malformed value; the
    parser's ``validate_request`` / ``validate_response`` check the mandatory ones once so
    code past the transport can rely on them.

    Parsed values are remembered per raw header text, across messages (so changing a header
    is seen at once, and a response or a later request carrying the same text is not parsed
    again), and each call returns a fresh copy, so a caller may change what it gets without
    touching the message or later reads.
    """

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        value = self.headers.get("Call-ID")
        if not value:
            raise SipParseError("missing Call-ID")
        return value.strip()

    @property
    def cseq(self) -> CSeq:
        value = self.headers.get("CSeq")
        if value is None:
            raise SipParseError("missing CSeq")
        return CSEQ_CACHE(value)  # frozen: no copy needed

    @property
    def vias(self) -> list[Via]:
        return [copy_via(VIA_CACHE(v)) for v in self.headers.get_list("Via")]

    @property
    def top_via(self) -> Via:
        return copy_via(self._top_via_shared())

    @property
    def branch(self) -> str | None:
        """The top Via's branch, without copying the Via (the transaction layer's key)."""
        return self._top_via_shared().params.get("branch")

    @property
    def from_tag(self) -> str | None:
        """From's tag, without copying the name-addr (None: RFC 2543 peer, §12.1.1)."""
        return self._name_addr_shared("From").params.get("tag")

    @property
    def to_tag(self) -> str | None:
        """To's tag, without copying the name-addr."""
        return self._name_addr_shared("To").params.get("tag")

    def _top_via_shared(self) -> Via:
        value = self.headers.get("Via")
        if value is None:
            raise SipParseError("missing Via")
        if "," in value:
            values = self.headers.get_list("Via")
            if not values:
                raise SipParseError("missing Via")
            value = values[0]
        return VIA_CACHE(value)

    def _name_addr_shared(self, name: str) -> NameAddr:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name}")
        return NAME_ADDR_CACHE(value)

    @property
    def from_(self) -> NameAddr:
        return self._name_addr("From")

    @property
    def to(self) -> NameAddr:
        return self._name_addr("To")

    def _name_addr(self, name: str) -> NameAddr:
        return copy_name_addr(self._name_addr_shared(name))

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; a ``Contact: *`` is reported by :attr:`contact_star` instead."""
        return [
            copy_name_addr(NAME_ADDR_CACHE(v)) for v in self.headers.get_list("Contact") if v != "*"
        ]

    @property
    def contact_star(self) -> bool:
        return [v.strip() for v in self.headers.get_list("Contact")] == ["*"]

    @property
    def expires(self) -> int | None:
        """The Expires delta-seconds; larger than 2**32-1 reads as 2**32-1 (RFC 3261 §20.19)."""
        value = self.headers.get("Expires")
        if value is None:
            return None
        return parse_delta_seconds(value, what="Expires")

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards, or None when absent (a UAS then assumes 70, RFC 3261 §8.1.1.6)."""
        return _int_header(self.headers, "Max-Forwards")

    @property
    def content_length(self) -> int | None:
        return _int_header(self.headers, "Content-Length")

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return value.split(";", 1)[0].strip().lower() if value else None

    def serialize_headers(self, start_line: str) -> bytes:
        lines = [start_line]
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _int_header(headers: Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    digits = value.lstrip("0") or "0"
    if not is_digits(value) or len(digits) > 10:
        raise SipParseError(f"bad {name} {value!r}")
    return int(digits)


MAX_DELTA_SECONDS = 2**32 - 1


def parse_delta_seconds(value: str, *, what: str) -> int:
    """``delta-seconds = 1*DIGIT``, capped at 2**32-1 as RFC 3261 §20.19 asks.

    Raises:
        SipParseError: when the value is not a run of digits.
    """
    value = value.strip()
    if not is_digits(value):
        raise SipParseError(f"bad {what} {value!r}")
    digits = value.lstrip("0") or "0"
    if len(digits) > 10:
        return MAX_DELTA_SECONDS
    return min(int(digits), MAX_DELTA_SECONDS)


@dataclass(slots=True)
class Request(Message):
    method: str = "OPTIONS"
    uri: str = ""
    version: str = SIP_VERSION

    def to_bytes(self) -> bytes:
        return self.serialize_headers(f"{self.method} {self.uri} {self.version}") + self.body

    @property
    def request_uri(self) -> SipUri:
        """The Request-URI, parsed (the parser has already checked that it parses)."""
        return copy_uri(URI_CACHE(self.uri))

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.headers.get('Call-ID')!r}>"


@dataclass(slots=True)
class Response(Message):
    status: int = 200
    reason: str = "OK"
    version: str = SIP_VERSION

    def to_bytes(self) -> bytes:
        return self.serialize_headers(f"{self.version} {self.status} {self.reason}") + self.body

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call-id={self.headers.get('Call-ID')!r}>"


_COPIED = frozenset({"via", "from", "to", "call-id", "cseq"})


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    extra: list[tuple[str, str]] | None = None,
) -> Response:
    """Build a response to ``request`` as RFC 3261 §8.2.6.2 requires.

    Via, From, Call-ID and CSeq are copied; To is copied and gets ``to_tag`` when it has
    no tag yet (a 100 Trying never gets one, §8.2.6.2). A header the request lacks is left
    out, so a 400 to a request missing From or To (RFC 4475 §3.3.1) stays well-formed.
    """
    # One pass over the request; its values were checked when they entered it, so they are
    # copied without the checks Headers.add makes.
    vias: list[tuple[str, str]] = []
    others: dict[str, tuple[str, str]] = {}
    for key, item in zip(request.headers._keys, request.headers._items, strict=True):
        if key in _COPIED:
            if key == "via":
                vias.append(item)
            elif key not in others:
                others[key] = item
    items = vias
    keys = ["via"] * len(vias)
    for key in ("from", "to", "call-id", "cseq"):
        found = others.get(key)
        if found is None:
            continue
        if key == "to" and to_tag and status != 100 and not _has_tag(found[1]):
            found = ("To", _with_tag(found[1], to_tag))
        items.append(found)
        keys.append(key)
    headers = Headers._from_parts(items, keys)
    if status == 100 and "Timestamp" in request.headers:
        headers.add("Timestamp", request.headers.get("Timestamp") or "")
    for name, value in extra or ():
        headers.add(name, value)
    return Response(
        headers=headers,
        body=body,
        status=status,
        reason=reason or REASONS.get(status, "Unknown"),
    )


def _with_tag(to_value: str, tag: str) -> str:
    """``to_value`` with ``;tag=``; its parse is cached from the untagged one's, when known."""
    tagged = f"{to_value};tag={tag}"
    try:
        untagged = NAME_ADDR_CACHE(to_value)
    except SipParseError:
        return tagged
    NAME_ADDR_CACHE.seed(
        tagged, NameAddr(untagged.uri, untagged.display, {**untagged.params, "tag": tag})
    )
    return tagged


def _has_tag(value: str) -> bool:
    try:
        return NAME_ADDR_CACHE(value).tag is not None
    except SipParseError:
        # Unparseable To (we are answering 400 for it): a crude look is all there is.
        return ";tag=" in value.replace(" ", "").lower()
