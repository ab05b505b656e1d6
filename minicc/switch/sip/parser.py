"""Reading SIP messages off the wire (RFC 3261 §7, §18.3, §25) and framing them on streams.

Three steps, kept apart so the transport can choose what to do at each:

1. :func:`parse_message` turns the bytes of one message (a UDP datagram, one WebSocket
   frame, or what :class:`StreamFramer` cut from a TCP/TLS stream) into a
   :class:`~minicc.switch.sip.message.Request` or
   :class:`~minicc.switch.sip.message.Response`. It checks the syntax every later layer
   relies on: start line, header lines, Content-Length. Header values are only split
   into lines here; the typed accessors parse them on demand.
2. :func:`validate_request` / :func:`validate_response` check the headers the transaction
   and dialog layers read (Via, From, To, Call-ID, CSeq, ...) so that code past the
   transport never meets a malformed one.
3. On failure both raise :class:`SipParseError` with a ``status_hint``; for a request that
   can still be answered (:func:`can_respond`), ``exc.partial`` holds it, and the transport
   replies with the hint instead of dropping it (RFC 4475: "the invalid ones get 400").

Nothing here raises anything but :class:`SipParseError` on any input; the Hypothesis
property tests feed it random bytes to hold that.
"""

from __future__ import annotations

import re

from minicc.switch.sip.errors import SipKeepAlive, SipParseError
from minicc.switch.sip.headers import _WIRE_NAMES, Headers, wire_name
from minicc.switch.sip.message import (
    NAME_ADDR_CACHE,
    URI_CACHE,
    VIA_CACHE,
    Request,
    Response,
    parse_delta_seconds,
)
from minicc.switch.sip.uri import is_digits, split_unquoted

MAX_MESSAGE_SIZE = 65_536
"""Largest message accepted, headers and body together (UDP cannot carry more)."""
MAX_HEADER_SIZE = 16_384
"""Largest header block a stream may send before its blank line; past it we hang up."""
DEFAULT_MAX_FORWARDS = 70
"""What a request without Max-Forwards is taken to carry (RFC 3261 §8.1.1.6, §16.6)."""

#  token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
#  SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT   ("SIP" is case-insensitive, RFC 3261 §7.1)
_VERSION_RE = re.compile(r"[Ss][Ii][Pp]/([0-9]+)\.([0-9]+)")
#  callid = word [ "@" word ] ; word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+"
#     / "`" / "'" / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?"
#     / "{" / "}")
# Leniency: any visible ASCII. Some stacks put base64 ("=") or "#" in Call-IDs, and a
# Call-ID is only ever compared, never interpreted; whitespace and non-ASCII are refused.
_CALLID_RE = re.compile(r"[\x21-\x7e]+")
# Control characters other than HTAB, CR and LF: legal in a header only as the second half
# of a quoted-pair (RFC 3261 §25.1), e.g. "\<NUL>" in RFC 4475 §3.1.1.2.
_CTL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOT_CONTROL = bytes(b for b in range(256) if 0x20 <= b != 0x7F)

_SINGLE_VALUED = ("From", "To", "Call-ID", "CSeq")


# --------------------------------------------------------------------------- one message


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> Request | Response:
    """Parse the bytes of exactly one SIP message.

    Datagram rules apply (RFC 3261 §18.3): when Content-Length is present, bytes past it are
    discarded and a shorter body is an error; when it is absent the body runs to the end.
    CRLFs before the start line are skipped (§7.5); bare LF line ends are accepted too.

    Args:
        data: one datagram, one WebSocket frame, or one message cut by
            :class:`StreamFramer` (which guarantees Content-Length).
        max_size: refuse anything longer (status hint 513).

    Returns:
        The request or response. Header values are unfolded but otherwise as received.

    Raises:
        SipKeepAlive: when ``data`` holds only CR/LF (a keep-alive, not a fault).
        SipParseError: on anything malformed: ``status_hint`` is 400, 505 for another SIP
            version, 513 for an oversized message; ``partial`` is set when the request can
            still be answered.
    """
    size = len(data)
    if size > max_size:
        raise SipParseError(f"message of {size} bytes exceeds {max_size}", status_hint=513)
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
        if not data:
            raise SipKeepAlive()
    head, body_start = _split_head(data)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(f"header bytes are not UTF-8 (at byte {exc.start})") from None
    lines = _split_lines(head, text)
    headers, header_error = _read_headers(lines[1:])
    start_line = lines[0]
    if start_line[:4].upper() == "SIP/":
        message: Request | Response = _read_status_line(start_line, headers)
    else:
        message = _read_request_line(start_line, headers)
    if header_error is not None:
        raise SipParseError(header_error, partial=_answerable(message))
    message.body = _read_body(data, body_start, message)
    return message


def parse_datagram(data: bytes) -> Request | Response | None:
    """Like :func:`parse_message`, but a keep-alive gives None instead of an exception."""
    try:
        return parse_message(data)
    except SipKeepAlive:
        return None


def is_keepalive(data: bytes) -> bool:
    """True when ``data`` is nothing but CR and LF (RFC 5626 §3.5.1 ping or pong)."""
    return bool(data) and not data.strip(b"\r\n")


def _split_head(data: bytes) -> tuple[bytes, int]:
    """The header block (start line included) and where the body starts."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head = data[:end]
        if head.count(b"\n") == head.count(b"\r\n"):
            return head, end + 4  # the usual case: CRLF throughout
    # Bare LF somewhere (or no blank line at all): walk the lines. Line ends are CRLF
    # (RFC 3261 §7), but some stacks end lines with LF alone, and nothing is ambiguous
    # about reading them, so we do.
    pos = 0
    while (nl := data.find(b"\n", pos)) >= 0:
        if nl == pos or (nl == pos + 1 and data[pos] == 0x0D):
            # A blank line; data[0] is never CR/LF here, so pos > 0. Drop the terminator of
            # the line before it.
            cut = pos - 2 if data[pos - 2 : pos] == b"\r\n" else pos - 1
            return data[:cut], nl + 1
        pos = nl + 1
    # No blank line. Lenient: a datagram that ends right after a header line has no body.
    if data.endswith(b"\n"):
        return data.rstrip(b"\r\n"), len(data)
    raise SipParseError("no blank line after the headers")


def _split_lines(head: bytes, text: str) -> list[str]:
    """The header block's lines; rejects bare CR and unquoted control characters."""
    controls = head.translate(None, _NOT_CONTROL)  # every control byte, in order
    crlf = head.count(b"\r\n")
    if controls.count(b"\r") != crlf:
        raise SipParseError("bare CR in the header block")
    if controls.count(b"\n") == crlf:
        lines = text.split("\r\n")
    else:
        lines = text.replace("\r\n", "\n").split("\n")
    if controls.translate(None, b"\t\r\n"):
        # Judged per header, not per physical line: a folded header may continue a quoted
        # string (and an escaped control character in it) on its next line.
        for header in _unfolded(lines):
            if _CTL_RE.search(header) is not None and not _controls_are_quoted(header):
                raise SipParseError(f"control character in {header[:40]!r}")
    return lines


def _unfolded(lines: list[str]) -> list[str]:
    headers: list[str] = []
    for line in lines:
        if headers and line[:1] in (" ", "\t"):
            headers[-1] += line
        else:
            headers.append(line)
    return headers


def _controls_are_quoted(line: str) -> bool:
    """True when every control character of ``line`` follows a backslash inside quotes."""
    quoted = False
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if quoted and c == "\\" and i + 1 < n:
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c != "\t" and (c < " " or c == "\x7f"):
            return False
        i += 1
    return True


def _read_headers(lines: list[str]) -> tuple[Headers, str | None]:
    """Header lines (after the start line) into a :class:`Headers`.

    The first error is returned, not raised: bad lines are left out so that a request with
    one broken header can still be answered with 400 when its Via survived.
    """
    items: list[tuple[str, str]] = []
    keys: list[str] = []
    error: str | None = None
    known_names = _WIRE_NAMES.get
    for line in lines:
        name, colon, value = line.partition(":")
        known = known_names(name)
        if known is None or not colon:
            if line[:1] in (" ", "\t"):
                # Folding: CRLF followed by whitespace continues the previous line, and the
                # whole run counts as one SP (RFC 3261 §7.3.1).
                if not items:
                    error = error or "continuation line before the first header"
                    continue
                more = line.strip(" \t")
                if more:
                    name, value = items[-1]
                    items[-1] = (name, f"{value} {more}" if value else more)
                continue
            # HCOLON = *( SP / HTAB ) ":" SWS: whitespace may precede the colon.
            known = wire_name(name.rstrip(" \t")) if colon else None
            if known is None:
                error = error or f"bad header line {line[:40]!r}"
                continue
        items.append((known[0], value.strip(" \t")))
        keys.append(known[1])
    return Headers._from_parts(items, keys), error


def _read_status_line(line: str, headers: Headers) -> Response:
    #  Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF ; Status-Code = 3DIGIT
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if _VERSION_RE.fullmatch(version) is None:
        raise SipParseError(f"bad status line {line[:60]!r}")
    if version.upper() != "SIP/2.0":
        # No response to a response: the hint only labels the log line.
        raise SipParseError(f"unsupported version {version!r}", status_hint=505)
    # A Reason-Phrase may be empty (RFC 4475 §3.1.1.13) and may be UTF-8 (§3.1.1.12).
    if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
        raise SipParseError(f"bad status code {code[:20]!r}")
    return Response(headers=headers, status=int(code), reason=reason, version="SIP/2.0")


def _read_request_line(line: str, headers: Headers) -> Request:
    #  Request-Line = Method SP Request-URI SP SIP-Version CRLF
    parts = line.split(" ")
    if len(parts) == 3 and _TOKEN_RE.fullmatch(parts[0]) is not None:
        method, uri_text, version = parts
        request = Request(headers=headers, method=method, uri=uri_text, version="SIP/2.0")
        if _VERSION_RE.fullmatch(version) is None:
            # Answer "SIP/2" with 400, but not another protocol ("HTTP/1.1") at all.
            looks_sip = version[:4].upper() == "SIP/"
            raise _request_error(
                f"bad SIP version {version[:20]!r}", request if looks_sip else None
            )
        if version.upper() != "SIP/2.0":
            request.version = version
            raise _request_error(f"unsupported version {version!r}", request, 505)
        try:
            # Through the cache: Request.request_uri later costs a copy, not a parse.
            uri = URI_CACHE(uri_text)
        except SipParseError as exc:
            raise _request_error(f"bad Request-URI: {exc.reason}", request) from None
        if uri.headers is not None:
            # RFC 3261 §19.1.1 Table 1: headers are not allowed in a Request-URI
            # (RFC 4475 §3.1.2.11 lets us reject, which is safer than ignoring them).
            raise _request_error("Request-URI with headers", request)
        return request
    # Extra or missing spaces (RFC 4475 §3.1.2.8-10), or not a request line at all. If it
    # still reads as "Method ... SIP/x.y", the request can be answered 400.
    request = Request(headers=headers, method=parts[0], uri=" ".join(parts[1:-1]).strip())
    looks_like_request = (
        _TOKEN_RE.fullmatch(parts[0]) is not None
        and len(parts) > 1
        and line.rstrip(" ").rsplit(" ", 1)[-1][:4].upper() == "SIP/"
    )
    raise _request_error(f"bad request line {line[:60]!r}", request if looks_like_request else None)


def _request_error(reason: str, request: Request | None, status: int = 400) -> SipParseError:
    partial = request if request is not None and can_respond(request) else None
    return SipParseError(reason, status_hint=status, partial=partial)


def _answerable(message: Request | Response) -> Request | None:
    return message if isinstance(message, Request) and can_respond(message) else None


def _read_body(data: bytes, start: int, message: Request | Response) -> bytes:
    headers = message.headers
    value = headers.get("Content-Length")
    if value is None:
        return data[start:]  # datagram without Content-Length: to the end (RFC 3261 §18.3)
    if headers.count("Content-Length") > 1:
        # RFC 4475 §3.3.9: there is no way to know which one is right.
        raise SipParseError("several Content-Length headers", partial=_answerable(message))
    value = value.strip()
    digits = value.lstrip("0") or "0"
    if not is_digits(value) or len(digits) > 9:
        raise SipParseError(f"bad Content-Length {value[:20]!r}", partial=_answerable(message))
    length = int(digits)
    available = len(data) - start
    if length > available:
        # RFC 3261 §18.3: a datagram shorter than its Content-Length is answered 400.
        raise SipParseError(
            f"Content-Length {length} but only {available} body bytes",
            partial=_answerable(message),
        )
    return data[start : start + length]


# ------------------------------------------------------------------------------ validation


def can_respond(message: Request | Response | None) -> bool:
    """True when a response to ``message`` can be formed and routed back.

    That needs a request other than ACK (ACK is never answered, RFC 3261 §17.1.1.3) whose
    method is a token, with at least one Via: the response goes where Via says
    (§18.2.2) and the client matches it by Via branch and CSeq (§17.1.3), copied verbatim.
    From, To, Call-ID and CSeq are copied when present; RFC 4475 §3.3.1 wants a 400 even for
    a request that lacks them.
    """
    return (
        isinstance(message, Request)
        and message.method != "ACK"
        and _TOKEN_RE.fullmatch(message.method) is not None
        and any(value.strip() for value in message.headers.get_all("Via"))
    )


def validate_request(request: Request) -> None:
    """Check the headers the transaction, dialog and B2BUA layers read (RFC 3261 §8.1.1).

    Via (every value parses; a branch is not required, RFC 2543 peers send none), exactly
    one each of From, To, Call-ID and CSeq, the CSeq method equal to the request's
    (§8.1.1.5), Max-Forwards at most 255 when present (absent means
    :data:`DEFAULT_MAX_FORWARDS`), and Contact, Route, Record-Route and Expires well formed.

    Raises:
        SipParseError: with ``status_hint=400`` and ``partial=request`` when it can be
            answered (:func:`can_respond`).
    """
    try:
        _check_common(request)
        cseq = request.cseq
        if cseq.method != request.method:
            # RFC 4475 §3.1.2.17-18. For an unknown method 501 would also do; 400 is
            # acceptable to the RFC and does not depend on what the core implements.
            raise SipParseError(f"CSeq method {cseq.method!r} is not {request.method!r}")
        max_forwards = request.headers.get_all("Max-Forwards")
        if len(max_forwards) > 1:
            raise SipParseError("several Max-Forwards headers")
        hops = request.max_forwards
        if hops is not None and hops > 255:
            raise SipParseError(f"Max-Forwards {hops} above 255")
        contacts = _strict_list(request.headers, "Contact")
        if "*" in contacts:
            if request.method != "REGISTER" or len(contacts) != 1:
                raise SipParseError("Contact: * only alone in a REGISTER (RFC 3261 §10.2.2)")
        else:
            for value in contacts:
                NAME_ADDR_CACHE(value)
        for name in ("Route", "Record-Route"):
            for value in _strict_list(request.headers, name):
                NAME_ADDR_CACHE(value)
        expires = request.headers.get("Expires")
        if expires is not None:
            parse_delta_seconds(expires, what="Expires")
    except SipParseError as exc:
        raise SipParseError(
            exc.reason, status_hint=400, partial=request if can_respond(request) else None
        ) from None


def validate_response(response: Response) -> None:
    """Check what the client transaction and dialog layers read of a response.

    Via, and exactly one each of From, To, Call-ID and CSeq, all parseable. A response that
    fails is dropped: nothing answers a response (RFC 4475 §3.1.2.5).

    Raises:
        SipParseError: naming the first bad header.
    """
    _check_common(response)


def _check_common(message: Request | Response) -> None:
    vias = _strict_list(message.headers, "Via")
    if not vias:
        raise SipParseError("missing Via")
    for value in vias:
        VIA_CACHE(value)
    for name in _SINGLE_VALUED:
        count = message.headers.count(name)
        if count != 1:
            # RFC 4475 §3.3.8: several of a single-valued header is as bad as none.
            raise SipParseError(f"{'missing' if count == 0 else 'several'} {name}")
    # Through the parse cache, so the layers after us read these without parsing again.
    for name in ("From", "To"):
        NAME_ADDR_CACHE(message.headers.get(name) or "")
    call_id = message.call_id
    if _CALLID_RE.fullmatch(call_id) is None:
        raise SipParseError(f"bad Call-ID {call_id[:40]!r}")
    _ = message.cseq


def _strict_list(headers: Headers, name: str) -> list[str]:
    """A list header's elements, with an empty one an error (RFC 4475 §3.1.2.1)."""
    values: list[str] = []
    for line in headers.get_all(name):
        for part in split_unquoted(line, ","):
            part = part.strip()
            if not part:
                raise SipParseError(f"empty element in {name}: {line[:60]!r}")
            values.append(part)
    return values


# --------------------------------------------------------------------------- stream framing


class StreamFramer:
    """Cuts a TCP/TLS byte stream into SIP messages by Content-Length (RFC 3261 §18.3).

    Feed it whatever arrives and take messages out until it returns None. CRLFs between
    messages are skipped (§7.5); a double CRLF is a keep-alive ping (RFC 5626 §3.5.1) that
    the transport answers with one CRLF when :meth:`pong_needed` says so.

    A stream that cannot be framed (garbage, no Content-Length, a header block or message
    over the limits) raises :class:`SipParseError` from :meth:`next_message`; the transport
    then closes the connection, since nothing after that point can be trusted. A message that
    frames but does not parse is handed over like any other: :func:`parse_message` decides.

    Args:
        max_message_size: largest message (headers and body) accepted.
        max_header_size: largest header block before its blank line.
    """

    def __init__(
        self, *, max_message_size: int = MAX_MESSAGE_SIZE, max_header_size: int = MAX_HEADER_SIZE
    ) -> None:
        self.max_message_size = max_message_size
        self.max_header_size = min(max_header_size, max_message_size)
        # Bounded: the transport drains after every feed, so more than a message plus one
        # network read of backlog means the consumer is broken, not the peer.
        self.max_buffer_size = max_message_size + 4 * 65_536
        self._buf = bytearray()
        self._scan_from = 0  # where the next search for the blank line starts
        self._message_end: int | None = None  # once the headers are in: where the body ends
        self._pings = 0
        self._start_checked = False

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        """Append bytes from the stream.

        Raises:
            SipParseError: when the unconsumed backlog would exceed ``max_buffer_size``.
        """
        if len(self._buf) + len(data) > self.max_buffer_size:
            raise SipParseError("stream backlog over the limit", status_hint=513)
        self._buf += data

    def pong_needed(self) -> bool:
        """True (once) when a ping arrived since the last call: send one CRLF back."""
        needed = self._pings > 0
        self._pings = 0
        return needed

    def next_message(self) -> bytes | None:
        """The next complete message's bytes, or None until more data arrives.

        Raises:
            SipParseError: when the stream cannot be framed; close the connection.
        """
        buf = self._buf
        if self._message_end is None:
            if not self._skip_crlf():
                return None
            head_end = self._find_head_end()
            if head_end is None:
                return None
            head, body_start = head_end
            length = _stream_content_length(bytes(buf[:head]))
            if body_start + length > self.max_message_size:
                raise SipParseError(
                    f"message of {body_start + length} bytes exceeds {self.max_message_size}",
                    status_hint=513,
                )
            self._message_end = body_start + length
        end = self._message_end
        if len(buf) < end:
            return None
        message = bytes(buf[:end])
        del buf[:end]
        self._message_end = None
        self._scan_from = 0
        self._start_checked = False
        return message

    def _skip_crlf(self) -> bool:
        """Drop CRLFs before a start line, counting pings; False when waiting for more."""
        buf = self._buf
        i = 0
        n = len(buf)
        while i < n and buf[i] in (0x0D, 0x0A):
            if buf[i] == 0x0A:  # a stray LF: lenient, as for bare-LF line ends
                i += 1
            elif buf.startswith(b"\r\n\r\n", i):
                self._pings += 1
                i += 4
            elif buf.startswith(b"\r\n\r", i) and i + 3 == n:
                break  # maybe the first three bytes of a ping
            elif buf.startswith(b"\r\n", i):
                if i + 2 == n:
                    break  # maybe half a ping
                i += 2
            elif i + 1 == n:
                break  # a CR whose LF has not arrived
            else:
                raise SipParseError("stray CR between messages")
        if i:
            del buf[:i]
            self._scan_from = 0
        return bool(buf) and buf[0] not in (0x0D, 0x0A)

    def _find_head_end(self) -> tuple[int, int] | None:
        """(end of the last header line, start of the body), or None if not yet in."""
        buf = self._buf
        if not self._start_checked:
            first_eol = buf.find(b"\n")
            if first_eol < 0:
                _check_start(bytes(buf[:64]), complete=False)
            else:
                _check_start(bytes(buf[:first_eol]), complete=True)
                self._start_checked = True
        start = max(0, self._scan_from - 2)
        crlf = buf.find(b"\n\r\n", start)
        lf = buf.find(b"\n\n", start)
        if crlf >= 0 and (lf < 0 or crlf < lf):
            return crlf + 1, crlf + 3
        if lf >= 0:
            return lf + 1, lf + 2
        if len(buf) > self.max_header_size:
            raise SipParseError(
                f"no end of headers within {self.max_header_size} bytes", status_hint=513
            )
        self._scan_from = len(buf)
        return None


def _check_start(line: bytes, *, complete: bool) -> None:
    """Hang up early on bytes that cannot begin a SIP message (binary, TLS to a TCP port)."""
    if line[:4].upper() == b"SIP/" or (not complete and b"SIP/".startswith(line[:4].upper())):
        return
    method, space, _ = line.partition(b" ")
    if not method or (_TOKEN_RE.fullmatch(method.decode("latin-1")) is None):
        raise SipParseError(f"not a SIP start line: {line[:40]!r}")
    if complete and (not space or b"SIP/" not in line.upper()):
        raise SipParseError(f"not a SIP start line: {line[:40]!r}")


def _stream_content_length(head: bytes) -> int:
    """Content-Length from a raw header block; mandatory on streams (RFC 3261 §18.3, §20.14).

    Raises:
        SipParseError: when missing, repeated or not a number.
    """
    # latin-1 never fails: this pass only needs ASCII names; parse_message decodes properly.
    text = head.decode("latin-1").replace("\r\n", "\n")
    found: list[str] = []
    current = False
    for line in text.split("\n")[1:]:
        if line[:1] in (" ", "\t"):
            if current:
                found[-1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        current = bool(colon) and name.rstrip(" \t").lower() in ("content-length", "l")
        if current:
            found.append(value)
    if not found:
        raise SipParseError("no Content-Length on a stream transport (RFC 3261 §18.3)")
    if len(found) > 1:
        raise SipParseError("several Content-Length headers on a stream")
    value = found[0].strip()
    digits = value.lstrip("0") or "0"
    if not is_digits(value) or len(digits) > 9:
        raise SipParseError(f"bad Content-Length {value[:20]!r} on a stream")
    return int(digits)
