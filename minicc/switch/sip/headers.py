"""SIP headers: one generic case-insensitive multidict plus typed views of the few that matter.

Header names compare case-insensitively and compact forms (RFC 3261 §7.3.3) are expanded on
input, so ``v:`` and ``VIA:`` are both found as ``Via``. Values are kept as received (after
unfolding) so a message relayed by the B2BUA carries unknown headers through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from minicc.switch.sip.errors import SipParseError
from minicc.switch.sip.uri import (
    Params,
    SipUri,
    format_params,
    is_token,
    parse_params,
    parse_quoted,
    parse_uri,
    quote,
    split_unquoted,
)

# RFC 3261 §7.3.3 and the registry of compact forms (RFC 3265, 3515, 3841, 3892, 4028, 4474).
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Authentication-Info",
        "Authorization",
        "Call-ID",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Error-Info",
        "Event",
        "Expires",
        "From",
        "In-Reply-To",
        "Max-Forwards",
        "Min-Expires",
        "MIME-Version",
        "Organization",
        "P-Asserted-Identity",
        "Priority",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Refer-To",
        "Referred-By",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Session-Expires",
        "Subject",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
    )
}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1), so several values may
# share one line. Authorization and friends are NOT lists: their parameters hold commas.
LIST_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "allow",
        "allow-events",
        "contact",
        "content-encoding",
        "content-language",
        "in-reply-to",
        "proxy-require",
        "record-route",
        "require",
        "route",
        "supported",
        "unsupported",
        "via",
    }
)


def canonical_name(name: str) -> str:
    """Expand a compact form and give a known header its usual spelling."""
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _CANONICAL.get(lower, name)


class Headers:
    """An ordered, case-insensitive multidict of header lines."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(k), v) for k, v in items]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = canonical_name(name).lower()
        return any(k.lower() == key for k, _ in self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k.lower(), v) for k, v in self._items] == [(k.lower(), v) for k, v in other._items]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        new = Headers()
        new._items = list(self._items)
        return new

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        key = canonical_name(name).lower()
        for k, v in self._items:
            if k.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every line's value of ``name``, in order (not split on commas)."""
        key = canonical_name(name).lower()
        return [v for k, v in self._items if k.lower() == key]

    def get_list(self, name: str) -> list[str]:
        """All values of a list header, lines split on top-level commas (RFC 3261 §7.3.1)."""
        values: list[str] = []
        for line in self.get_all(name):
            values.extend(p.strip() for p in split_unquoted(line, ",") if p.strip())
        return values

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._items.insert(0, (canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every line of ``name`` by one line, kept at the first one's position."""
        name = canonical_name(name)
        key = name.lower()
        for i, (k, _) in enumerate(self._items):
            if k.lower() == key:
                self._items[i] = (name, value)
                self._items[i + 1 :] = [kv for kv in self._items[i + 1 :] if kv[0].lower() != key]
                return
        self._items.append((name, value))

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self._items = [kv for kv in self._items if kv[0].lower() != key]

    def pop_first_list_value(self, name: str) -> str | None:
        """Remove and return the first element of a list header (e.g. the top Via)."""
        key = canonical_name(name).lower()
        for i, (k, v) in enumerate(self._items):
            if k.lower() != key:
                continue
            parts = [p for p in split_unquoted(v, ",") if p.strip()]
            if len(parts) <= 1:
                del self._items[i]
            else:
                self._items[i] = (k, ",".join(parts[1:]).strip())
            return parts[0].strip() if parts else None
        return None


@dataclass(slots=True)
class NameAddr:
    """From, To, Contact, Route, Record-Route, Refer-To: ``"Display" <uri>;params``."""

    uri: SipUri
    display: str | None = None
    params: Params = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        display = ""
        if self.display is not None:
            display = (self.display if _is_token_list(self.display) else quote(self.display)) + " "
        return f"{display}<{self.uri}>{format_params(self.params)}"


def _is_token_list(text: str) -> bool:
    words = text.split(" ")
    return bool(text) and all(is_token(w) for w in words)


def parse_name_addr(text: str) -> NameAddr:
    """Parse ``name-addr`` or ``addr-spec`` followed by header parameters (RFC 3261 §20.10).

    Raises:
        SipParseError: when the value is malformed.
    """
    text = text.strip()
    display: str | None = None
    rest = text
    if text.startswith('"'):
        display, end = parse_quoted(text, 0)
        rest = text[end:].lstrip()
        if not rest.startswith("<"):
            raise SipParseError(f"display name not followed by <uri> in {text!r}")
    lt = rest.find("<")
    if lt >= 0 and (display is not None or '"' not in rest[:lt]):
        if display is None:
            name = rest[:lt].strip()
            if name:
                if not _is_token_list(" ".join(name.split())):
                    raise SipParseError(f"bad display name {name!r}")
                display = " ".join(name.split())
        gt = rest.find(">", lt)
        if gt < 0:
            raise SipParseError(f"unterminated <uri> in {text!r}")
        uri = parse_uri(rest[lt + 1 : gt])
        params_text = rest[gt + 1 :].strip()
        if params_text and not params_text.startswith(";"):
            raise SipParseError(f"junk after <uri> in {text!r}")
        return NameAddr(uri=uri, display=display, params=parse_params(params_text, what=text))
    # addr-spec: the URI cannot hold ;params here, they belong to the header.
    uri_text, semi, params_text = rest.partition(";")
    if "," in uri_text or "?" in uri_text:
        raise SipParseError(f"addr-spec with ',' or '?' must be in <> in {text!r}")
    uri = parse_uri(uri_text)
    params = parse_params(params_text, what=text) if semi else {}
    return NameAddr(uri=uri, display=None, params=params)


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...`` (RFC 3261 §20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return (self.host.lower(), self.port)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    """Parse one Via value (already split from its neighbours).

    Raises:
        SipParseError: when the value is malformed.
    """
    text = text.strip()
    # sent-protocol = protocol-name SLASH protocol-version SLASH transport, with LWS allowed
    # around the slashes (RFC 3261 §25.1 SLASH = SWS "/" SWS).
    pieces = text.split("/", 2)
    if len(pieces) != 3:
        raise SipParseError(f"bad Via {text!r}")
    name, version = pieces[0].strip(), pieces[1].strip()
    tail = pieces[2].lstrip()
    transport, _, rest = tail.partition(" ")
    if not transport:
        transport, _, rest = tail.partition("\t")
    if not is_token(name) or not is_token(version) or not is_token(transport):
        raise SipParseError(f"bad Via protocol in {text!r}")
    hostport, semi, params_text = rest.strip().partition(";")
    hostport = hostport.strip()
    if not hostport:
        raise SipParseError(f"Via without sent-by: {text!r}")
    uri = parse_uri(f"sip:{hostport.replace(' ', '')}")
    params = parse_params(params_text, what=f"Via {text!r}") if semi else {}
    return Via(
        transport=transport.upper(),
        host=uri.host,
        port=uri.port,
        params=params,
        protocol=f"{name}/{version}",
    )


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(text: str) -> CSeq:
    number, _, method = text.strip().partition(" ")
    method = method.strip()
    # RFC 3261 §8.1.1.5: the sequence number MUST be expressible as a 32-bit unsigned integer.
    if not number.isdigit() or int(number) >= 2**32 or not is_token(method):
        raise SipParseError(f"bad CSeq {text!r}")
    return CSeq(int(number), method)
