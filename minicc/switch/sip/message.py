"""SIP requests and responses (RFC 3261 §7), their typed header views and serialisation."""

from __future__ import annotations

from dataclasses import dataclass, field

from minicc.switch.sip.errors import SipParseError
from minicc.switch.sip.headers import (
    CSeq,
    Headers,
    NameAddr,
    Via,
    parse_cseq,
    parse_name_addr,
    parse_via,
)

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


@dataclass(slots=True)
class Message:
    """What requests and responses share: headers, body and typed accessors.

    Accessors parse on each call and raise :class:`SipParseError` on a malformed value;
    the parser checks the mandatory ones once (``validate_mandatory``) so code past the
    transport can rely on them.
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
        return parse_cseq(value)

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.get_list("Via")]

    @property
    def top_via(self) -> Via:
        values = self.headers.get_list("Via")
        if not values:
            raise SipParseError("missing Via")
        return parse_via(values[0])

    @property
    def from_(self) -> NameAddr:
        return _name_addr(self.headers, "From")

    @property
    def to(self) -> NameAddr:
        return _name_addr(self.headers, "To")

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; a ``Contact: *`` is reported by :attr:`contact_star` instead."""
        return [parse_name_addr(v) for v in self.headers.get_list("Contact") if v != "*"]

    @property
    def contact_star(self) -> bool:
        return [v.strip() for v in self.headers.get_list("Contact")] == ["*"]

    @property
    def expires(self) -> int | None:
        return _int_header(self.headers, "Expires")

    @property
    def max_forwards(self) -> int | None:
        return _int_header(self.headers, "Max-Forwards")

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


def _name_addr(headers: Headers, name: str) -> NameAddr:
    value = headers.get(name)
    if value is None:
        raise SipParseError(f"missing {name}")
    return parse_name_addr(value)


def _int_header(headers: Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 10:
        raise SipParseError(f"bad {name} {value!r}")
    return int(value)


@dataclass(slots=True)
class Request(Message):
    method: str = "OPTIONS"
    uri: str = ""
    version: str = SIP_VERSION

    def to_bytes(self) -> bytes:
        return self.serialize_headers(f"{self.method} {self.uri} {self.version}") + self.body

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
    no tag yet (a 100 Trying never gets one, §8.2.6.2).
    """
    headers = Headers()
    for value in request.headers.get_all("Via"):
        headers.add("Via", value)
    headers.add("From", request.headers.get("From") or "")
    to_value = request.headers.get("To") or ""
    if to_tag and status != 100 and ";tag=" not in to_value.replace(" ", "").lower():
        to_value = f"{to_value};tag={to_tag}"
    headers.add("To", to_value)
    headers.add("Call-ID", request.headers.get("Call-ID") or "")
    headers.add("CSeq", request.headers.get("CSeq") or "")
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
