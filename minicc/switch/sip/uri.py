"""SIP and SIPS URIs (RFC 3261 §19.1) and the generic grammar pieces they share.

#  SIP-URI  = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
#  userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
#  hostport = host [ ":" port ]
#  uri-parameters = *( ";" uri-parameter )
#  headers  = "?" header *( "&" header )

URIs of other schemes (tel:, mailto:, urn:, ...) are kept opaque: the switch never
routes on them, but must carry them through unchanged.

Every function here raises only :class:`SipParseError` on bad input, whatever the input
(the property tests feed them random text).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from minicc.switch.sip.errors import SipParseError

Params = dict[str, str | None]

#  token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
#  unreserved = alphanum / mark ; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
_UNRESERVED = string.ascii_letters + string.digits + "-_.!~*'()"
#  user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
_USER_RE = re.compile(r"(?:[" + re.escape(_UNRESERVED + "&=+$,;?/") + r"]|%[0-9A-Fa-f]{2})+")
#  password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
_PASSWORD_RE = re.compile(r"(?:[" + re.escape(_UNRESERVED + "&=+$,") + r"]|%[0-9A-Fa-f]{2})*")
#  paramchar = param-unreserved / unreserved / escaped ; param-unreserved = "[]/:&+$"
_PARAMCHARS_RE = re.compile(r"(?:[" + re.escape(_UNRESERVED + "[]/:&+$") + r"]|%[0-9A-Fa-f]{2})+")
#  headers: hname/hvalue = *( hnv-unreserved / unreserved / escaped ) ; hnv-unreserved = "[]/?:+$"
_HEADERS_RE = re.compile(r"(?:[" + re.escape(_UNRESERVED + "[]/?:+$=&") + r"]|%[0-9A-Fa-f]{2})*")
#  hostname = *( domainlabel "." ) toplabel [ "." ] ; IPv4address (also a hostname lexically)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_HOST_RE = re.compile(_LABEL + r"(?:\." + _LABEL + r")*\.?")
#  gen-value = token / host / quoted-string (RFC 3261 §25.1); host adds "[", "]" and ":".
_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\[\]:]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_SPACE_RE = re.compile(r"\s")
# The whole of a well-formed SIP URI in one match: the fast path of parse_uri. Anything it
# does not match goes the slow way, which either accepts it or says what is wrong. "%" is
# taken as a plain character here (a per-character alternation is slow in re) and escapes
# are checked afterwards, only when there is a "%".
_PCHARS = "[" + re.escape(_UNRESERVED + "[]/:&+$%") + "]+"
_SIP_URI_RE = re.compile(
    r"([Ss][Ii][Pp][Ss]?):"
    r"(?:([" + re.escape(_UNRESERVED + "&=+$,;?/%") + r"]+)"
    r"(?::([" + re.escape(_UNRESERVED + "&=+$,%") + r"]*))?@)?"
    r"(" + _LABEL + r"(?:\." + _LABEL + r")*\.?|\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\])"
    r"(?::([0-9]{1,5}))?"
    r"((?:;" + _PCHARS + r"(?:=" + _PCHARS + r")?)*)"
    r"(?:\?([" + re.escape(_UNRESERVED + "[]/?:+$=&%") + r"]*))?"
)
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Header parameters without quoted strings, whitespace allowed around ";" and "=".
_HEADER_PARAMS_RE = re.compile(
    r"(?:[ \t]*;[ \t]*[A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]*=[ \t]*[A-Za-z0-9\-.!%*_+`'~\[\]:]+)?)*[ \t]*"
)


def is_digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits (``str.isdigit`` also accepts ``"²"``)."""
    return text.isascii() and text.isdigit()


def parse_params(text: str, *, what: str, uri: bool = False) -> Params:
    """Parse ``;name[=value]`` pairs; the leading ``;`` may be given or already stripped.

    Names are case-insensitive (RFC 3261 §19.1.4) and stored lower-cased; values keep
    their case. Quoted values keep their quotes so they serialise back unchanged.
    ``uri=True`` checks the URI grammar (paramchar) instead of the header one
    (``generic-param = token [ EQUAL gen-value ]``). An empty parameter (``;;``, a
    trailing ``;``) is an error: neither grammar allows it (RFC 4475 §3.1.2.1).

    Raises:
        SipParseError: on an empty, badly named or badly valued parameter.
    """
    text = text.strip()
    if not text:
        return {}
    if text[0] == ";":
        if not uri and _HEADER_PARAMS_RE.fullmatch(text) is not None:
            return _split_checked_params(text)
        text = text[1:]
    if text.endswith(";") and not text.endswith(";;") and text.strip(" \t;"):
        # Leniency: one trailing ";" after real parameters ("tag=1;") is unambiguous and
        # some phones send it; empty parameters elsewhere (";;") are still refused.
        text = text[:-1]
    params: Params = {}
    for raw in split_unquoted(text, ";"):
        item = raw.strip(" \t")
        if not item:
            raise SipParseError(f"empty parameter in {what}")
        name, eq, value = item.partition("=")
        name = name.rstrip(" \t").lower()
        value = value.strip(" \t")
        if uri:
            ok = _PARAMCHARS_RE.fullmatch(name) is not None and (
                not eq or _PARAMCHARS_RE.fullmatch(value) is not None
            )
        else:
            ok = _TOKEN_RE.fullmatch(name) is not None and (not eq or _is_gen_value(value))
        if not ok:
            raise SipParseError(f"bad parameter {item!r} in {what}")
        params[name] = value if eq else None
    return params


def _split_uri_params(text: str) -> Params:
    """URI params already matched by _SIP_URI_RE (no whitespace there): split only."""
    params: Params = {}
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        params[name.lower()] = value if eq else None
    return params


def _split_checked_params(text: str) -> Params:
    """Params already matched by a whole-string pattern: split, no further checks."""
    params: Params = {}
    for item in text.split(";")[1:]:
        name, eq, value = item.partition("=")
        params[name.strip(" \t").lower()] = value.strip(" \t") if eq else None
    return params


def _is_gen_value(value: str) -> bool:
    if value.startswith('"'):
        try:
            _, end = parse_quoted(value, 0)
        except SipParseError:
            return False
        return end == len(value)
    return _GEN_VALUE_RE.fullmatch(value) is not None


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def split_unquoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings and angle brackets.

    Raises:
        SipParseError: when a quoted string is not closed.
    """
    if sep not in text:
        return [text]  # the common case: one value
    if '"' not in text and "<" not in text:
        return text.split(sep)  # nothing to protect: at C speed
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            depth += 1
        elif c == ">":
            depth = max(0, depth - 1)
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise SipParseError(f"unterminated quoted string in {text!r}")
    parts.append(text[start:])
    return parts


def parse_quoted(text: str, start: int) -> tuple[str, int]:
    """Parse a quoted-string beginning at ``text[start] == '"'``.

    Returns the unescaped value and the index just past the closing quote
    (RFC 3261 §25.1: quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F)).

    Raises:
        SipParseError: when the string is not closed or escapes CR or LF.
    """
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n or text[i + 1] in "\r\n":
                break
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise SipParseError(f"unterminated quoted string in {text!r}")


# Characters that may not appear raw in a quoted-string: a backslash pair carries them
# (quoted-pair), except CR and LF, which no quoted-string can hold.
_QUOTE_ESCAPES = {c: "\\" + chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))}
_QUOTE_ESCAPES.update({0x7F: "\\\x7f", ord("\\"): "\\\\", ord('"'): '\\"', 0x0A: " ", 0x0D: " "})


def quote(value: str) -> str:
    """Make a quoted-string of ``value`` (RFC 3261 §25.1).

    CR and LF cannot be carried in a quoted-string and become spaces, so text from
    outside (a CRM display name, say) can never inject a header line.
    """
    return f'"{value.translate(_QUOTE_ESCAPES)}"'


def _is_token(text: str) -> bool:
    return _TOKEN_RE.fullmatch(text) is not None


def is_token(text: str) -> bool:
    """True when ``text`` is an RFC 3261 §25.1 token."""
    return _TOKEN_RE.fullmatch(text) is not None


@dataclass(slots=True)
class SipUri:
    """A parsed URI. For schemes other than sip/sips only ``scheme`` and ``opaque`` are set."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = field(default_factory=dict)
    headers: str | None = None
    opaque: str | None = None

    @property
    def is_sip(self) -> bool:
        return self.opaque is None

    @property
    def user_unescaped(self) -> str | None:
        return None if self.user is None else unquote(self.user)

    @property
    def host_plain(self) -> str:
        """The host without IPv6 brackets, lower-cased (hosts compare case-insensitively)."""
        return self.host.strip("[]").lower()

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    def with_user(self, user: str | None) -> SipUri:
        return replace(self, user=user, params=dict(self.params))

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        userinfo = ""
        if self.user is not None:
            userinfo = self.user
            if self.password is not None:
                userinfo += f":{self.password}"
            userinfo += "@"
        port = f":{self.port}" if self.port is not None else ""
        headers = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{userinfo}{self.host}{port}{format_params(self.params)}{headers}"


def copy_uri(uri: SipUri) -> SipUri:
    """A copy that shares nothing mutable with ``uri``."""
    return SipUri(
        uri.scheme,
        uri.user,
        uri.password,
        uri.host,
        uri.port,
        dict(uri.params),
        uri.headers,
        uri.opaque,
    )


def parse_uri(text: str) -> SipUri:
    """Parse any absolute URI; sip: and sips: in full, others opaque.

    Surrounding whitespace is ignored (RFC 4475 §3.1.2.14 lets an element be liberal about
    ``< sip:x@y >``); whitespace inside is an error.

    Raises:
        SipParseError: when the text is not an absolute URI or a SIP URI is malformed.
    """
    m = _SIP_URI_RE.fullmatch(text)
    if m is not None and ("%" not in text or _BAD_ESCAPE_RE.search(text) is None):
        scheme, user, password, host, port_text, params_text, headers = m.groups()
        port = int(port_text) if port_text is not None else None
        if port is None or 0 < port < 65536:
            return SipUri(
                scheme=scheme.lower(),
                user=user,
                password=password,
                host=host,
                port=port,
                params=_split_uri_params(params_text) if params_text else {},
                headers=headers,
            )
    return _parse_uri_slow(text)


def _parse_uri_slow(text: str) -> SipUri:
    """The general parser: other schemes, surrounding whitespace, and precise errors."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME_RE.fullmatch(scheme) is None:
        raise SipParseError(f"not an absolute URI: {text!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        # RFC 3261 §25.1 absoluteURI: anything printable without whitespace.
        if not rest or not rest.isprintable() or any(c.isspace() for c in rest):
            raise SipParseError(f"bad {scheme} URI: {text!r}")
        return SipUri(scheme=scheme, opaque=rest)
    user: str | None = None
    password: str | None = None
    at = rest.rfind("@")
    qmark = rest.find("?", at + 1 if at >= 0 else 0)
    headers: str | None = None
    if qmark >= 0:
        headers = rest[qmark + 1 :]
        rest = rest[:qmark]
        if _HEADERS_RE.fullmatch(headers) is None:
            raise SipParseError(f"bad headers in URI {text!r}")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
        if _USER_RE.fullmatch(user) is None:
            raise SipParseError(f"bad user part in {text!r}")
        if password is not None and _PASSWORD_RE.fullmatch(password) is None:
            raise SipParseError(f"bad password in {text!r}")
    if _SPACE_RE.search(rest) is not None:
        raise SipParseError(f"whitespace in SIP URI {text!r}")
    hostport, semi, params_text = rest.partition(";")
    host, port = parse_hostport(hostport, text)
    params = parse_params(semi + params_text, what=f"URI {text!r}", uri=True) if semi else {}
    return SipUri(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        params=params,
        headers=headers,
    )


def parse_hostport(hostport: str, text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (RFC 3261 §25.1 hostport); ``text`` is quoted in errors.

    Raises:
        SipParseError: on a bad host name, IP reference or port.
    """
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipParseError(f"unterminated IPv6 reference in {text!r}")
        host = hostport[: end + 1]
        rest = hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError(f"junk after IPv6 reference in {text!r}")
        port_text = rest[1:] if rest else None
        _check_ipv6(host[1:-1], text)
    else:
        host, colon, port_text_raw = hostport.partition(":")
        port_text = port_text_raw if colon else None
        if _HOST_RE.fullmatch(host) is None:
            raise SipParseError(f"bad host {host!r} in {text!r}")
    port: int | None = None
    if port_text is not None:
        if not is_digits(port_text) or len(port_text) > 5 or not 0 < int(port_text) < 65536:
            raise SipParseError(f"bad port {port_text!r} in {text!r}")
        port = int(port_text)
    return host, port


def _check_ipv6(addr: str, text: str) -> None:
    if not addr or not all(c in "0123456789abcdefABCDEF:." for c in addr) or ":" not in addr:
        raise SipParseError(f"bad IPv6 reference in {text!r}")
