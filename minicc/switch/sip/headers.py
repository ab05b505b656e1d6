"""SIP headers: one generic case-insensitive multidict plus typed views of the few that matter.

Header names compare case-insensitively and compact forms (RFC 3261 §7.3.3) are expanded on
input, so ``v:`` and ``VIA:`` are both found as ``Via``. Values are kept as received (after
unfolding) so a message relayed by the B2BUA carries unknown headers through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from minicc.switch.sip.errors import LocalProtocolError, SipParseError
from minicc.switch.sip.uri import (
    Params,
    SipUri,
    copy_uri,
    format_params,
    is_digits,
    is_token,
    parse_hostport,
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


@lru_cache(maxsize=4096)
def _name_and_key(name: str) -> tuple[str, str]:
    # Bounded: header names come from peers, and a flood of made-up names must not grow it.
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        canonical = COMPACT_FORMS[lower]
        return canonical, canonical.lower()
    return _CANONICAL.get(lower, name), lower


_WIRE_NAMES: dict[str, tuple[str, str]] = {}
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def wire_name(name: str) -> tuple[str, str] | None:
    """(canonical name, lookup key) for a header name read off the wire, or None if the
    name is not a token (RFC 3261 §7.3.1). Cached: the same few names arrive all day."""
    known = _WIRE_NAMES.get(name)
    if known is not None:
        return known
    if _HEADER_NAME_RE.fullmatch(name) is None:
        return None
    if len(_WIRE_NAMES) >= 4096:
        _WIRE_NAMES.clear()  # bounded against peers inventing names
    known = _WIRE_NAMES[name] = _name_and_key(name)
    return known


# (canonical name, lookup key) by the name as code spells it ("Via", "cseq", "v"): one dict
# lookup on the hot path instead of a call. Bounded like _WIRE_NAMES.
_CODE_NAMES: dict[str, tuple[str, str]] = {}


def _names(name: str) -> tuple[str, str]:
    known = _CODE_NAMES.get(name)
    if known is None:
        if len(_CODE_NAMES) >= 4096:
            _CODE_NAMES.clear()
            _KEYS.clear()
        known = _CODE_NAMES[name] = _name_and_key(name)
        _KEYS[name] = known[1]
    return known


# Lookup key alone by the name as code spells it, read inline by the lookups (a dict get
# instead of a call: they run a few hundred times per call through the switch).
_KEYS: dict[str, str] = {}


def canonical_name(name: str) -> str:
    """Expand a compact form and give a known header its usual spelling."""
    return _name_and_key(name)[0]


def _check_line(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
        raise LocalProtocolError(f"header {name!r} would break the message framing")


class Headers:
    """An ordered, case-insensitive multidict of header lines.

    Names are stored in their canonical spelling (compact forms expanded, known headers
    spelled as in RFC 3261) and compared case-insensitively; values are kept as received,
    after unfolding. Equality compares names case-insensitively and values exactly, in order.

    Raises:
        LocalProtocolError: when code adds a value holding CR or LF (header injection).
    """

    __slots__ = ("_items", "_keys")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        # Lower-cased canonical names, parallel to _items: lookups use list.index (C speed).
        self._keys: list[str] = []
        for name, value in items:
            _check_line(name, value)
            canonical, key = _names(name)
            self._items.append((canonical, value))
            self._keys.append(key)

    @classmethod
    def _from_parts(cls, items: list[tuple[str, str]], keys: list[str]) -> Headers:
        """Adopt lists the parser built with :func:`wire_name` (no checks): the hot path."""
        new = cls.__new__(cls)
        new._items = items
        new._keys = keys
        return new

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return (_KEYS.get(name) or _names(name)[1]) in self._keys

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._keys == other._keys and [v for _, v in self._items] == [
            v for _, v in other._items
        ]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        new = Headers()
        new._items = list(self._items)
        new._keys = list(self._keys)
        return new

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        key = _KEYS.get(name) or _names(name)[1]
        keys = self._keys
        # Two scans in C beat one scan plus a caught ValueError when the header is absent.
        if key in keys:
            return self._items[keys.index(key)][1]
        return default

    def get_all(self, name: str) -> list[str]:
        """Every line's value of ``name``, in order (not split on commas)."""
        key = _KEYS.get(name) or _names(name)[1]
        keys = self._keys
        n = keys.count(key)
        if n == 0:
            return []
        if n == 1:  # the usual case, without walking the lines in Python
            return [self._items[keys.index(key)][1]]
        items = self._items
        return [items[i][1] for i, k in enumerate(keys) if k == key]

    def count(self, name: str) -> int:
        """How many lines of ``name`` there are (a list header may hold several values each)."""
        return self._keys.count(_KEYS.get(name) or _names(name)[1])

    def get_list(self, name: str) -> list[str]:
        """All values of a list header, lines split on top-level commas (RFC 3261 §7.3.1).

        Empty elements are skipped; :func:`~minicc.switch.sip.parser.validate_request`
        rejects them where the grammar does not allow them.
        """
        values: list[str] = []
        for line in self.get_all(name):
            if "," not in line:
                line = line.strip()
                if line:
                    values.append(line)
                continue
            values.extend(p.strip() for p in split_unquoted(line, ",") if p.strip())
        return values

    def add(self, name: str, value: str) -> None:
        _check_line(name, value)
        canonical, key = _names(name)
        self._items.append((canonical, value))
        self._keys.append(key)

    def prepend(self, name: str, value: str) -> None:
        _check_line(name, value)
        canonical, key = _names(name)
        self._items.insert(0, (canonical, value))
        self._keys.insert(0, key)

    def set(self, name: str, value: str) -> None:
        """Replace every line of ``name`` by one line, kept at the first one's position."""
        _check_line(name, value)
        canonical, key = _names(name)
        try:
            first = self._keys.index(key)
        except ValueError:
            self._items.append((canonical, value))
            self._keys.append(key)
            return
        self.remove(name)
        self._items.insert(first, (canonical, value))
        self._keys.insert(first, key)

    def remove(self, name: str) -> None:
        key = _names(name)[1]
        if key not in self._keys:
            return
        kept = [(k, item) for k, item in zip(self._keys, self._items, strict=True) if k != key]
        self._keys = [k for k, _ in kept]
        self._items = [item for _, item in kept]

    def pop_first_list_value(self, name: str) -> str | None:
        """Remove and return the first element of a list header (e.g. the top Via)."""
        key = _names(name)[1]
        for i, k in enumerate(self._keys):
            if k != key:
                continue
            line_name, value = self._items[i]
            parts = [p for p in split_unquoted(value, ",") if p.strip()]
            if len(parts) <= 1:
                del self._items[i]
                del self._keys[i]
            else:
                self._items[i] = (line_name, ",".join(parts[1:]).strip())
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


def copy_name_addr(value: NameAddr) -> NameAddr:
    """A copy that shares nothing mutable with ``value``."""
    return NameAddr(copy_uri(value.uri), value.display, dict(value.params))


def _is_token_list(text: str) -> bool:
    words = text.split(" ")
    return bool(text) and all(is_token(w) for w in words)


# Leniency: RFC 3261 wants a display name with anything but token characters quoted, but
# phones send "Jörg Müller <sip:...>" unquoted. Non-ASCII letters are taken as word
# characters; separators (",", ";", "@", ...) still need quotes (RFC 4475 §3.1.2.15).
_UNQUOTED_DISPLAY_RE = re.compile(
    r"(?:[A-Za-z0-9\-.!%*_+`'~]|[^\x00-\x7f])+(?: (?:[A-Za-z0-9\-.!%*_+`'~]|[^\x00-\x7f])+)*"
)


def _is_unquoted_display(text: str) -> bool:
    return _UNQUOTED_DISPLAY_RE.fullmatch(text) is not None and text.isprintable()


def parse_name_addr(text: str, *, uri_parser: Callable[[str], SipUri] = parse_uri) -> NameAddr:
    """Parse ``name-addr`` or ``addr-spec`` followed by header parameters (RFC 3261 §20.10).

    #  name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
    #  display-name = *(token LWS) / quoted-string

    Args:
        text: the header value.
        uri_parser: parses the URI inside; the message layer passes its cache, since one
            URI recurs under many tags (``<sip:alice@host>;tag=...`` on every call).

    Raises:
        SipParseError: when the value is malformed.
    """
    text = text.strip()
    m = _NAME_ADDR_RE.fullmatch(text)
    if m is not None:
        quoted, plain, uri_text, params_text = m.groups()
        display = plain
        if quoted is not None:
            display = _UNESCAPE_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        return NameAddr(
            uri=uri_parser(uri_text),
            display=display,
            params=parse_params(params_text, what=text) if params_text else {},
        )
    return _parse_name_addr_slow(text, uri_parser)


# Fast path of parse_name_addr: a quoted display name without control characters or a
# single-spaced token list, then <uri>, then parameters (checked by parse_params).
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_QUOTED_DISPLAY = r'"((?:[^"\\\x00-\x1f\x7f]|\\[\x20-\x7e])*)"'
_NAME_ADDR_RE = re.compile(
    r"(?:" + _QUOTED_DISPLAY + r"[ \t]*|(" + _TOKEN + r"(?: " + _TOKEN + r")*)[ \t]*)?"
    r"<([^<>\s]*)>((?:[ \t]*;.*)?)",
    re.DOTALL,
)
_UNESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)


def _parse_name_addr_slow(text: str, uri_parser: Callable[[str], SipUri]) -> NameAddr:
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
                # A comma or other separator here (RFC 4475 §3.1.2.15 "Bell, Alexander")
                # needs quotes.
                display = " ".join(name.split())
                if not _is_unquoted_display(display):
                    raise SipParseError(f"bad display name {name!r}")
        gt = rest.find(">", lt)
        if gt < 0:
            raise SipParseError(f"unterminated <uri> in {text!r}")
        uri = uri_parser(rest[lt + 1 : gt])
        params_text = rest[gt + 1 :].strip()
        if params_text and not params_text.startswith(";"):
            raise SipParseError(f"junk after <uri> in {text!r}")
        return NameAddr(uri=uri, display=display, params=parse_params(params_text, what=text))
    # addr-spec: the URI cannot hold ;params here, they belong to the header (§20.10).
    uri_text, semi, params_text = rest.partition(";")
    if "," in uri_text or "?" in uri_text:
        # RFC 4475 §3.1.2.13: a URI with these must be enclosed in <>.
        raise SipParseError(f"addr-spec with ',' or '?' must be in <> in {text!r}")
    uri = uri_parser(uri_text)
    params = parse_params(semi + params_text, what=text) if semi else {}
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
    def is_rfc3261_branch(self) -> bool:
        """True when the branch starts with the magic cookie and has more after it.

        RFC 3261 §8.1.1.7; a bare ``z9hG4bK`` (RFC 4475 §3.2.1) is not unique, so the
        transaction layer must match such a request the RFC 2543 way (§17.2.3).
        """
        branch = self.params.get("branch")
        return branch is not None and len(branch) > 7 and branch.startswith("z9hG4bK")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return (self.host.lower(), self.port)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


def copy_via(via: Via) -> Via:
    """A copy that shares nothing mutable with ``via``."""
    return Via(via.transport, via.host, via.port, dict(via.params), via.protocol)


def parse_via(text: str) -> Via:
    """Parse one Via value (already split from its neighbours).

    #  via-parm      = sent-protocol LWS sent-by *( SEMI via-params )
    #  sent-protocol = protocol-name SLASH protocol-version SLASH transport
    #  sent-by       = host [ COLON port ]

    Raises:
        SipParseError: when the value is malformed.
    """
    m = _VIA_RE.fullmatch(text)
    if m is not None:
        transport, host, port_text, params_text = m.groups()
        port = int(port_text) if port_text is not None else None
        if port is None or 0 < port < 65536:
            return Via(
                transport=transport.upper(),
                host=host,
                port=port,
                params=parse_params(params_text, what=f"Via {text!r}") if params_text else {},
            )
    return _parse_via_slow(text)


# Fast path of parse_via: SIP/2.0/transport, host or IPv6 reference, optional port, params.
_VIA_RE = re.compile(
    r"[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z]+)[ \t]+"
    r"(" + _LABEL + r"(?:\." + _LABEL + r")*\.?|\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\])"
    r"(?:[ \t]*:[ \t]*([0-9]{1,5}))?((?:[ \t]*;.*)?)",
    re.DOTALL,
)


def _parse_via_slow(text: str) -> Via:
    text = text.strip().replace("\t", " ")
    # SLASH = SWS "/" SWS (RFC 3261 §25.1), so whitespace may surround each slash.
    pieces = text.split("/", 2)
    if len(pieces) != 3:
        raise SipParseError(f"bad Via {text!r}")
    name, version = pieces[0].strip(), pieces[1].strip()
    transport, _, rest = pieces[2].lstrip().partition(" ")
    if not is_token(name) or not is_token(version) or not is_token(transport):
        raise SipParseError(f"bad Via protocol in {text!r}")
    hostport, semi, params_text = rest.strip().partition(";")
    # COLON = SWS ":" SWS
    hostport = hostport.replace(" ", "")
    if not hostport:
        raise SipParseError(f"Via without sent-by: {text!r}")
    host, port = parse_hostport(hostport, text)
    params = parse_params(semi + params_text, what=f"Via {text!r}") if semi else {}
    return Via(
        transport=transport.upper(),
        host=host,
        port=port,
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
    """Parse ``CSeq: 1*DIGIT LWS Method`` (RFC 3261 §20.16).

    Raises:
        SipParseError: when malformed or the number does not fit 32 bits (§8.1.1.5).
    """
    parts = text.split()
    if len(parts) != 2:
        raise SipParseError(f"bad CSeq {text!r}")
    number, method = parts
    # RFC 3261 §8.1.1.5: the sequence number MUST be expressible as a 32-bit unsigned integer.
    # Leading zeros are legal (RFC 4475 §3.1.1.1 "0009"), so strip them before the length test.
    digits = number.lstrip("0") or "0"
    if not is_digits(number) or len(digits) > 10 or int(digits) >= 2**32 or not is_token(method):
        raise SipParseError(f"bad CSeq {text!r}")
    return CSeq(int(digits), method)
