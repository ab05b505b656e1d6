"""SIP and SIPS URIs (RFC 3261 §19.1) and the generic grammar pieces they share.

#  SIP-URI  = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
#  userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
#  hostport = host [ ":" port ]
#  uri-parameters = *( ";" uri-parameter )
#  headers  = "?" header *( "&" header )

URIs of other schemes (tel:, mailto:, urn:, ...) are kept opaque: the switch never
routes on them, but must carry them through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from minicc.switch.sip.errors import SipParseError

Params = dict[str, str | None]


def parse_params(text: str, *, what: str) -> Params:
    """Parse ``;name[=value]`` pairs (the leading ``;`` already stripped is fine too).

    Names are case-insensitive (RFC 3261 §19.1.4) and stored lower-cased; values keep
    their case. Quoted values keep their quotes so they serialise back unchanged.
    """
    params: Params = {}
    for raw in split_unquoted(text, ";"):
        item = raw.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not name or not _is_token(name):
            raise SipParseError(f"bad parameter {item!r} in {what}")
        params[name] = value.strip() if eq else None
    return params


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def split_unquoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings and angle brackets."""
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
    """
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise SipParseError(f"unterminated quoted string in {text!r}")


def quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_TOKEN_EXTRA = set("-.!%*_+`'~")


def _is_token(text: str) -> bool:
    return bool(text) and all(c.isascii() and (c.isalnum() or c in _TOKEN_EXTRA) for c in text)


def is_token(text: str) -> bool:
    """True when ``text`` is an RFC 3261 §25.1 token."""
    return _is_token(text)


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


def parse_uri(text: str) -> SipUri:
    """Parse any absolute URI; sip: and sips: in full, others opaque.

    Raises:
        SipParseError: when the text is not an absolute URI or a SIP URI is malformed.
    """
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not scheme[0].isalpha() or not _is_scheme(scheme):
        raise SipParseError(f"not an absolute URI: {text!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        if not rest or any(c.isspace() for c in rest):
            raise SipParseError(f"bad {scheme} URI: {text!r}")
        return SipUri(scheme=scheme, opaque=rest)
    if any(c.isspace() or ord(c) < 0x21 for c in rest):
        raise SipParseError(f"whitespace in SIP URI {text!r}")
    user: str | None = None
    password: str | None = None
    at = rest.rfind("@")
    qmark = rest.find("?", at + 1 if at >= 0 else 0)
    headers: str | None = None
    if qmark >= 0:
        headers = rest[qmark + 1 :]
        rest = rest[:qmark]
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
        if not user:
            raise SipParseError(f"empty user part in {text!r}")
    hostport, semi, params_text = rest.partition(";")
    host, port = _parse_hostport(hostport, text)
    params = parse_params(params_text, what=f"URI {text!r}") if semi else {}
    return SipUri(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        params=params,
        headers=headers,
    )


def _is_scheme(scheme: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "+-.") for c in scheme)


def _parse_hostport(hostport: str, text: str) -> tuple[str, int | None]:
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
        if not host or not all(c.isascii() and (c.isalnum() or c in "-.") for c in host):
            raise SipParseError(f"bad host {host!r} in {text!r}")
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SipParseError(f"bad port {port_text!r} in {text!r}")
        port = int(port_text)
    return host, port


def _check_ipv6(addr: str, text: str) -> None:
    if not addr or not all(c in "0123456789abcdefABCDEF:." for c in addr) or ":" not in addr:
        raise SipParseError(f"bad IPv6 reference in {text!r}")
