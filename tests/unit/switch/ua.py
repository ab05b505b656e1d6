"""A small scripted SIP user agent and RTP peer for in-process tests of the switch.

The idea is h11's ``ConnectionPair``: real endpoints on a real (loopback) network with the code
under test in between, and no mocks. The user agent here is deliberately not a second SIP
stack. It builds its messages from plain header lists, parses what it receives with
:func:`minicc.switch.sip.parser.parse_message`, answers a digest challenge once
(:func:`minicc.switch.sip.auth.digest_response`), and otherwise does only what a test tells it
to. It never retransmits (loopback does not lose packets); retransmissions it receives are
dropped as exact duplicates and counted, so a test sees each message once.

Every wait is bounded (``asyncio.wait_for``); a timeout fails the test with a list of what did
arrive, which is what one wants to see when a flow breaks.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from minicc.switch.media.rtp import RtpHeader, RtpPacket
from minicc.switch.sip.auth import DigestAlgorithm, compute_ha1, digest_response
from minicc.switch.sip.errors import SipError
from minicc.switch.sip.message import Request, Response
from minicc.switch.sip.parser import StreamFramer, parse_message

HOST = "127.0.0.1"
TIMEOUT = 3.0
MAGIC = "z9hG4bK"

Message = Request | Response
Address = tuple[str, int]


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return MAGIC + secrets.token_hex(8)


# ----------------------------------------------------------------------------- SDP


def make_sdp(
    port: int,
    *,
    host: str = HOST,
    direction: str = "sendrecv",
    codecs: Iterable[tuple[int, str]] = ((0, "PCMU"), (8, "PCMA")),
    telephone_event: int | None = 101,
    session_id: int = 4242,
    version: int = 1,
) -> bytes:
    """A plain audio offer or answer, as a softphone would send it."""
    codecs = list(codecs)
    pts = [pt for pt, _ in codecs] + ([telephone_event] if telephone_event is not None else [])
    lines = [
        "v=0",
        f"o=ua {session_id} {version} IN IP4 {host}",
        "s=-",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(str(p) for p in pts)}",
    ]
    lines += [f"a=rtpmap:{pt} {name}/8000" for pt, name in codecs]
    if telephone_event is not None:
        lines += [f"a=rtpmap:{telephone_event} telephone-event/8000"]
        lines += [f"a=fmtp:{telephone_event} 0-16"]
    lines += ["a=ptime:20", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def sdp_audio(body: bytes) -> Address:
    """``(c= address, m=audio port)`` of an SDP body (media-level c= wins)."""
    text = body.decode()
    address = None
    port = None
    for line in text.splitlines():
        if line.startswith("c="):
            address = line.split()[-1]
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
    assert address is not None and port is not None, f"no audio in SDP:\n{text}"
    return address, port


def sdp_direction(body: bytes) -> str:
    for line in body.decode().splitlines():
        if line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            return line[2:]
    return "sendrecv"


def sdp_origin_version(body: bytes) -> tuple[str, int]:
    """(session id, version) of the o= line."""
    for line in body.decode().splitlines():
        if line.startswith("o="):
            parts = line[2:].split()
            return parts[1], int(parts[2])
    raise AssertionError("SDP without o=")


# ----------------------------------------------------------------------------- messages


@dataclass(slots=True)
class OutRequest:
    """A request the test UA sends; header list kept editable for tests that bend rules."""

    method: str
    uri: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        raise KeyError(name)

    def set_header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))

    @property
    def branch(self) -> str:
        match = re.search(r";branch=([^;, ]+)", self.header("Via"))
        assert match is not None
        return match.group(1)

    @property
    def call_id(self) -> str:
        return self.header("Call-ID")

    @property
    def cseq(self) -> int:
        return int(self.header("CSeq").split()[0])

    def to_bytes(self) -> bytes:
        return _serialize(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)


def _serialize(start: str, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
    lines = [start, *(f"{k}: {v}" for k, v in headers), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _angle_uri(value: str) -> str:
    """The URI inside a Contact/From/To value."""
    match = re.search(r"<([^>]*)>", value)
    return match.group(1) if match else value.split(";")[0].strip()


def _without_tag(value: str) -> str:
    return re.sub(r";tag=[^;]*", "", value)


_AUTH_PARAM = re.compile(r'([A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)')


def parse_challenge(value: str) -> dict[str, str]:
    """The parameters of one ``WWW-Authenticate: Digest ...`` value."""
    assert value.startswith("Digest "), value
    return {k.lower(): v.strip('"') for k, v in _AUTH_PARAM.findall(value[len("Digest ") :])}


# ----------------------------------------------------------------------------- transports


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self._on_data = on_data

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._on_data(data)


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self._on_data = on_data
        self._framer = StreamFramer()
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._framer.feed(data)
        while (message := self._framer.next_message()) is not None:
            self._on_data(message)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


# ----------------------------------------------------------------------------- the UA


@dataclass(frozen=True, slots=True)
class Account:
    user: str
    password: str
    domain: str
    display: str | None = None

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    @property
    def name_addr(self) -> str:
        escaped = (self.display or "").replace("\\", "\\\\").replace('"', '\\"')
        display = f'"{escaped}" ' if self.display else ""
        return f"{display}<{self.aor}>"


class SipUA:
    """One phone: a UDP socket (or a TCP connection to the switch) on 127.0.0.1."""

    def __init__(
        self,
        account: Account,
        server: Address,
        *,
        transport: str = "UDP",
        user_agent: str = "minicc-test-ua",
        algorithm: DigestAlgorithm | None = None,
        name: str | None = None,
        host: str = HOST,
    ) -> None:
        self.account = account
        self.host = host
        """The loopback address this phone sends from (127.0.0.2: another machine)."""
        self.server = server
        self.transport = transport.upper()
        self.user_agent = user_agent
        self.algorithm = algorithm
        """Digest algorithm to answer with; None takes the first one offered."""
        self.name = name or f"{account.user}@{account.domain}"
        self.port = 0
        self.log: list[Message] = []
        """Every message received, in order, duplicates excluded."""
        self.duplicates = 0
        self.garbage: list[bytes] = []
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._backlog: list[Message] = []
        self._seen: set[bytes] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Transport | None = None
        self._tcp_protocol: _TcpProtocol | None = None
        self._cseq = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> SipUA:
        loop = asyncio.get_running_loop()
        if self.transport == "UDP":
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self._on_data), local_addr=(self.host, 0)
            )
            self.port = self._udp.get_extra_info("sockname")[1]
        else:
            self._tcp, self._tcp_protocol = await loop.create_connection(
                lambda: _TcpProtocol(self._on_data), *self.server
            )
            self.port = self._tcp.get_extra_info("sockname")[1]
        return self

    def close(self) -> None:
        for transport in (self._udp, self._tcp):
            if transport is not None:
                transport.close()

    @property
    def tcp_closed(self) -> asyncio.Future[None]:
        assert self._tcp_protocol is not None
        return self._tcp_protocol.closed

    @property
    def contact(self) -> str:
        tp = "" if self.transport == "UDP" else f";transport={self.transport.lower()}"
        return f"<sip:{self.account.user}@{self.host}:{self.port}{tp}>"

    def via(self, branch: str | None = None) -> str:
        via = f"SIP/2.0/{self.transport} {self.host}:{self.port}"
        return f"{via};branch={branch or new_branch()};rport"

    # -- raw I/O --------------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        if self._udp is not None:
            self._udp.sendto(data, self.server)
        else:
            assert self._tcp is not None
            self._tcp.write(data)

    def send(self, message: OutRequest | bytes) -> None:
        self.send_bytes(message if isinstance(message, bytes) else message.to_bytes())

    def _on_data(self, data: bytes) -> None:
        if data.strip() == b"":
            return  # keep-alive
        if data in self._seen:
            self.duplicates += 1
            return
        self._seen.add(data)
        try:
            message = parse_message(data)
        except SipError:
            self.garbage.append(data)
            return
        self.log.append(message)
        self._inbox.put_nowait(message)

    async def receive(
        self, match: Callable[[Message], bool], *, timeout: float = TIMEOUT, what: str = "message"
    ) -> Message:
        """The first received message ``match`` accepts (older unmatched ones are kept)."""
        for i, message in enumerate(self._backlog):
            if match(message):
                del self._backlog[i]
                return message
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            try:
                message = await asyncio.wait_for(self._inbox.get(), max(remaining, 0))
            except TimeoutError:
                seen = ", ".join(_summary(m) for m in self._backlog) or "nothing"
                raise AssertionError(
                    f"{self.name}: no {what} within {timeout}s (unconsumed: {seen})"
                ) from None
            if match(message):
                return message
            self._backlog.append(message)

    async def request(
        self, method: str, *, call_id: str | None = None, timeout: float = TIMEOUT
    ) -> Request:
        def match(m: Message) -> bool:
            return (
                isinstance(m, Request)
                and m.method == method
                and (call_id is None or m.call_id == call_id)
            )

        found = await self.receive(match, timeout=timeout, what=f"{method} request")
        assert isinstance(found, Request)
        return found

    async def response(
        self, branch: str, method: str, *, timeout: float = TIMEOUT, final: bool = False
    ) -> Response:
        """The next response of the client transaction (branch, method)."""

        def match(m: Message) -> bool:
            try:
                return (
                    isinstance(m, Response)
                    and m.branch == branch
                    and m.cseq.method == method
                    and (not final or m.status >= 200)
                )
            except SipError:  # a response we cannot read is not the one awaited
                return False

        found = await self.receive(match, timeout=timeout, what=f"response to {method}")
        assert isinstance(found, Response)
        return found

    def pending(self) -> list[Message]:
        """Messages received but not consumed by any wait yet."""
        while not self._inbox.empty():
            self._backlog.append(self._inbox.get_nowait())
        return list(self._backlog)

    def requests_seen(self, method: str) -> list[Request]:
        return [m for m in self.log if isinstance(m, Request) and m.method == method]

    # -- building requests ----------------------------------------------------------------

    def build(
        self,
        method: str,
        uri: str,
        *,
        to: str,
        from_: str | None = None,
        call_id: str | None = None,
        cseq: int | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        branch: str | None = None,
        contact: bool = True,
    ) -> OutRequest:
        """An out-of-dialog request (From gets a fresh tag unless ``from_`` has one)."""
        from_value = from_ or f"{self.account.name_addr};tag={new_tag()}"
        headers = [
            ("Via", self.via(branch)),
            ("Max-Forwards", "70"),
            ("From", from_value),
            ("To", to),
            ("Call-ID", call_id or f"{secrets.token_hex(8)}@{HOST}"),
            ("CSeq", f"{cseq if cseq is not None else next(self._cseq)} {method}"),
            ("User-Agent", self.user_agent),
        ]
        if contact:
            headers.append(("Contact", self.contact))
        if body:
            headers.append(("Content-Type", content_type or "application/sdp"))
        headers.extend(extra)
        return OutRequest(method=method, uri=uri, headers=headers, body=body)

    def authorize(
        self, request: OutRequest, challenge: Response, *, password: str | None = None
    ) -> OutRequest:
        """The same request, with a new branch and CSeq, answering ``challenge``."""
        name = "WWW-Authenticate" if challenge.status == 401 else "Proxy-Authenticate"
        offers = [parse_challenge(v) for v in challenge.headers.get_all(name)]
        assert offers, f"{challenge.status} without {name}"
        params = offers[0]
        if self.algorithm is not None:
            params = next(o for o in offers if o.get("algorithm") == self.algorithm.value)
        return self.with_credentials(request, params, password=password)

    def with_credentials(
        self,
        request: OutRequest,
        params: dict[str, str],
        *,
        password: str | None = None,
        username: str | None = None,
        nc: int = 1,
    ) -> OutRequest:
        algorithm = DigestAlgorithm(params.get("algorithm", "MD5"))
        user = username or self.account.user
        realm = params["realm"]
        ha1 = compute_ha1(user, realm, password or self.account.password, algorithm)
        cnonce = secrets.token_hex(8)
        nc_text = f"{nc:08x}"
        response = digest_response(
            algorithm=algorithm,
            ha1=ha1,
            nonce=params["nonce"],
            method=request.method,
            uri=request.uri,
            qop="auth",
            nc=nc_text,
            cnonce=cnonce,
        )
        auth = (
            f'Digest username="{user}", realm="{realm}", nonce="{params["nonce"]}", '
            f'uri="{request.uri}", response="{response}", algorithm={algorithm.value}, '
            f'qop=auth, nc={nc_text}, cnonce="{cnonce}"'
        )
        retry = OutRequest(
            method=request.method, uri=request.uri, headers=list(request.headers), body=request.body
        )
        retry.set_header("Via", self.via())
        retry.set_header("CSeq", f"{request.cseq + 1} {request.method}")
        retry.headers = [(k, v) for k, v in retry.headers if k != "Authorization"]
        retry.headers.append(("Authorization", auth))
        return retry

    def ack_for_error(self, invite: OutRequest, response: Response) -> OutRequest:
        """RFC 3261 §17.1.1.3: same branch, To of the response, CSeq n ACK."""
        headers = [
            ("Via", invite.header("Via")),
            ("Max-Forwards", "70"),
            ("From", invite.header("From")),
            ("To", response.headers.get("To") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq} ACK"),
        ]
        return OutRequest(method="ACK", uri=invite.uri, headers=headers)

    # -- transactions ---------------------------------------------------------------------

    async def transact(
        self, request: OutRequest, *, auth: bool = True, timeout: float = TIMEOUT
    ) -> Response:
        """Send a non-INVITE request; answer one challenge; return the final response."""
        self.send(request)
        final = await self.response(request.branch, request.method, final=True, timeout=timeout)
        if auth and final.status in (401, 407):
            retry = self.authorize(request, final)
            self.send(retry)
            final = await self.response(retry.branch, retry.method, final=True, timeout=timeout)
        return final

    async def register(self, *, expires: int = 600, password: str | None = None) -> Response:
        """REGISTER this UA's contact for its account (answering the challenge)."""
        acc = self.account
        request = self.build(
            "REGISTER",
            f"sip:{acc.domain}",
            to=f"<{acc.aor}>",
            from_=f"<{acc.aor}>;tag={new_tag()}",
            extra=[("Expires", str(expires))],
        )
        self.send(request)
        final = await self.response(request.branch, "REGISTER", final=True)
        if final.status == 401:
            retry = self.authorize(request, final, password=password)
            self.send(retry)
            final = await self.response(retry.branch, "REGISTER", final=True)
        return final

    def reply(
        self,
        request: Request,
        status: int,
        *,
        to_tag: str | None = None,
        body: bytes = b"",
        reason: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        contact: bool | None = None,
    ) -> None:
        """Answer a request the switch sent (headers copied as RFC 3261 §8.2.6.2 says)."""
        headers: list[tuple[str, str]] = [("Via", v) for v in request.headers.get_all("Via")]
        headers.append(("From", request.headers.get("From") or ""))
        to = request.headers.get("To") or ""
        if to_tag and status != 100 and ";tag=" not in to:
            to += f";tag={to_tag}"
        headers += [
            ("To", to),
            ("Call-ID", request.call_id),
            ("CSeq", request.headers.get("CSeq") or ""),
        ]
        if contact or (contact is None and request.method == "INVITE" and 100 < status < 300):
            headers.append(("Contact", self.contact))
        if body:
            headers.append(("Content-Type", "application/sdp"))
        headers.extend(extra)
        text = reason or {100: "Trying", 180: "Ringing", 183: "Session Progress"}.get(status, "OK")
        if status >= 300 and reason is None:
            text = "Error"
        self.send_bytes(_serialize(f"SIP/2.0 {status} {text}", headers, body))

    # -- calls ----------------------------------------------------------------------------

    async def call(
        self,
        target: str,
        sdp: bytes | None,
        *,
        from_: str | None = None,
        password: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        auth: bool = True,
        call_id: str | None = None,
    ) -> OutgoingCall:
        """Send an INVITE to ``target`` (a SIP URI) and get past the digest challenge.

        The first INVITE always goes without credentials; when the switch challenges it, it
        is ACKed and sent again with credentials. Returns once that is done (or once another
        final response came instead of the challenge).
        """
        invite = self.build(
            "INVITE",
            target,
            to=f"<{target}>",
            from_=from_,
            body=sdp or b"",
            extra=extra,
            call_id=call_id,
        )
        outgoing = OutgoingCall(self, invite)
        self.send(invite)
        while True:
            response = await self.response(invite.branch, "INVITE")
            outgoing.responses.append(response)
            if response.status >= 200:
                break
        if response.status >= 300:
            self.send(self.ack_for_error(invite, response))
        if auth and response.status in (401, 407):
            outgoing.challenge = response
            outgoing.invite = self.authorize(invite, response, password=password)
            outgoing.responses.clear()
            self.send(outgoing.invite)
        else:
            outgoing.final_response = response
        return outgoing

    def invite(self, target: str, sdp: bytes) -> OutgoingCall:
        """Send an INVITE and return at once, expecting no challenge (a trunk's carrier);
        read the answer with :meth:`OutgoingCall.final`."""
        invite = self.build("INVITE", target, to=f"<{target}>", body=sdp)
        self.send(invite)
        return OutgoingCall(self, invite)

    async def incoming(self, *, timeout: float = TIMEOUT) -> IncomingCall:
        """The next new INVITE (no To tag) the switch sends this phone."""

        def match(m: Message) -> bool:
            return isinstance(m, Request) and m.method == "INVITE" and not m.to.tag

        invite = await self.receive(match, timeout=timeout, what="incoming INVITE")
        assert isinstance(invite, Request)
        return IncomingCall(self, invite)


def _summary(message: Message) -> str:
    if isinstance(message, Request):
        return f"{message.method} {message.uri}"
    return f"{message.status} ({message.cseq.method})"


@dataclass(slots=True, eq=False)
class UaDialog:
    """The phone's half of a dialog, enough to send BYE, re-INVITE and INFO."""

    ua: SipUA
    call_id: str
    local: str
    """Our From (caller) or To (callee) value, with our tag."""
    remote: str
    """The peer's party value, with its tag."""
    remote_target: str
    cseq: int

    @property
    def local_tag(self) -> str:
        match = re.search(r";tag=([^;]+)", self.local)
        assert match is not None
        return match.group(1)

    def build(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        cseq: int | None = None,
        extra: Iterable[tuple[str, str]] = (),
    ) -> OutRequest:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        headers = [
            ("Via", self.ua.via()),
            ("Max-Forwards", "70"),
            ("From", self.local),
            ("To", self.remote),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if method == "INVITE":
            headers.append(("Contact", self.ua.contact))
        if body:
            headers.append(("Content-Type", content_type or "application/sdp"))
        headers.extend(extra)
        return OutRequest(method=method, uri=self.remote_target, headers=headers, body=body)

    def ack(self, cseq: int) -> None:
        self.ua.send(self.build("ACK", cseq=cseq))

    async def send(self, method: str, **kwargs: object) -> Response:
        """Send an in-dialog request and return its final response (2xx to INVITE ACKed)."""
        request = self.build(method, **kwargs)  # type: ignore[arg-type]
        self.ua.send(request)
        final = await self.ua.response(request.branch, method, final=True)
        if method == "INVITE":
            if final.is_success:
                self.ack(request.cseq)
            else:
                self.ua.send(self.ua.ack_for_error(request, final))
        return final

    async def bye(self) -> Response:
        return await self.send("BYE")

    def is_for_me(self, message: Message) -> bool:
        return message.call_id == self.call_id and message.to.tag == self.local_tag

    async def request(self, method: str, *, timeout: float = TIMEOUT) -> Request:
        """The next in-dialog request of ``method`` the switch sends on this dialog."""

        def match(m: Message) -> bool:
            return isinstance(m, Request) and m.method == method and self.is_for_me(m)

        found = await self.ua.receive(match, timeout=timeout, what=f"in-dialog {method}")
        assert isinstance(found, Request)
        return found


@dataclass(slots=True, eq=False)
class OutgoingCall:
    """An INVITE this phone sent, from the challenge to the final response."""

    ua: SipUA
    invite: OutRequest
    challenge: Response | None = None
    responses: list[Response] = field(default_factory=list)
    """Responses to the (authenticated) INVITE so far, in order."""
    final_response: Response | None = None
    dialog: UaDialog | None = None

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    async def response(self, *, timeout: float = TIMEOUT) -> Response:
        """The next response to the INVITE; a final one is ACKed (and 2xx opens the dialog)."""
        if self.final_response is not None:
            return self.final_response  # nothing follows a final response
        response = await self.ua.response(self.invite.branch, "INVITE", timeout=timeout)
        self.responses.append(response)
        if response.status >= 200:
            self.final_response = response
            if response.is_success:
                self.dialog = UaDialog(
                    ua=self.ua,
                    call_id=self.call_id,
                    local=self.invite.header("From"),
                    remote=response.headers.get("To") or "",
                    remote_target=_angle_uri(response.headers.get("Contact") or ""),
                    cseq=self.invite.cseq,
                )
                self.dialog.ack(self.invite.cseq)
            else:
                self.ua.send(self.ua.ack_for_error(self.invite, response))
        return response

    async def status(self, status: int, *, timeout: float = TIMEOUT) -> Response:
        """Skip responses until one with ``status``; fail on any other final response."""
        while True:
            response = await self.response(timeout=timeout)
            if response.status == status:
                return response
            assert response.status < 200, f"expected {status}, got final {response.status}"

    async def final(self, *, timeout: float = TIMEOUT) -> Response:
        while True:
            response = await self.response(timeout=timeout)
            if response.status >= 200:
                return response

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]

    def cancel_request(self) -> OutRequest:
        """RFC 3261 §9.1: same Request-URI, Call-ID, From, To, CSeq number and top Via."""
        headers = [
            ("Via", self.invite.header("Via")),
            ("Max-Forwards", "70"),
            ("From", self.invite.header("From")),
            ("To", self.invite.header("To")),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.invite.cseq} CANCEL"),
        ]
        return OutRequest(method="CANCEL", uri=self.invite.uri, headers=headers)

    async def cancel(self) -> Response:
        """Send CANCEL and return its final response."""
        cancel = self.cancel_request()
        self.ua.send(cancel)
        return await self.ua.response(cancel.branch, "CANCEL", final=True)


@dataclass(slots=True, eq=False)
class IncomingCall:
    """An INVITE the switch sent this phone."""

    ua: SipUA
    invite: Request
    to_tag: str = field(default_factory=new_tag)
    dialog: UaDialog | None = None

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    def reply(
        self, status: int, *, body: bytes = b"", extra: Iterable[tuple[str, str]] = ()
    ) -> None:
        self.ua.reply(self.invite, status, to_tag=self.to_tag, body=body, extra=extra)
        if 100 < status < 300 and self.dialog is None:
            to = self.invite.headers.get("To") or ""
            self.dialog = UaDialog(
                ua=self.ua,
                call_id=self.call_id,
                local=f"{_without_tag(to)};tag={self.to_tag}",
                remote=self.invite.headers.get("From") or "",
                remote_target=_angle_uri(self.invite.headers.get("Contact") or ""),
                cseq=0,
            )

    def ring(self) -> None:
        self.reply(180)

    async def answer(self, sdp: bytes, *, wait_ack: bool = True) -> UaDialog:
        """200 OK with ``sdp``; by default wait for the switch's ACK."""
        self.reply(200, body=sdp)
        assert self.dialog is not None
        if wait_ack:
            await self.ack()
        return self.dialog

    async def ack(self, *, timeout: float = TIMEOUT) -> Request:
        def match(m: Message) -> bool:
            return isinstance(m, Request) and m.method == "ACK" and m.call_id == self.call_id

        found = await self.ua.receive(match, timeout=timeout, what="ACK")
        assert isinstance(found, Request)
        return found

    async def cancelled(self, *, timeout: float = TIMEOUT) -> Request:
        """Wait for CANCEL; answer it 200 and the INVITE 487, as a phone does."""
        cancel = await self.ua.request("CANCEL", call_id=self.call_id, timeout=timeout)
        self.ua.reply(cancel, 200, to_tag=self.to_tag)
        self.ua.reply(self.invite, 487, to_tag=self.to_tag, reason="Request Terminated")
        # The 487 is ACKed by the switch's INVITE client transaction (same branch).
        await self.ack(timeout=timeout)
        return cancel


# ----------------------------------------------------------------------------- RTP


class RtpPeer(asyncio.DatagramProtocol):
    """A phone's RTP socket: sends packets it is told to and keeps what arrives."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[tuple[RtpPacket, Address]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[RtpPacket] = []

    @classmethod
    async def open(cls) -> RtpPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=(HOST, 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        packet = RtpPacket.parse(data)
        self.received.append(packet)
        self.inbox.put_nowait((packet, addr))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(
        self,
        dest: Address,
        *,
        seq: int,
        ts: int,
        ssrc: int,
        pt: int = 0,
        payload: bytes = b"\xff" * 160,
        marker: bool = False,
    ) -> None:
        assert self.transport is not None
        header = RtpHeader(
            payload_type=pt,
            sequence_number=seq & 0xFFFF,
            timestamp=ts & 0xFFFFFFFF,
            ssrc=ssrc,
            marker=marker,
        )
        self.transport.sendto(RtpPacket(header=header, payload=payload).serialize(), dest)

    def send_raw(self, dest: Address, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, dest)

    async def recv(self, *, timeout: float = TIMEOUT) -> tuple[RtpPacket, Address]:
        try:
            return await asyncio.wait_for(self.inbox.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"no RTP on port {self.port} within {timeout}s") from None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass(slots=True)
class Talker:
    """Sends a numbered G.711 stream from one RtpPeer, 20 ms of timestamp per packet."""

    peer: RtpPeer
    ssrc: int = field(default_factory=lambda: secrets.randbits(32))
    seq: int = field(default_factory=lambda: secrets.randbits(16))
    ts: int = field(default_factory=lambda: secrets.randbits(32))

    def send(self, dest: Address, count: int = 1, *, payload: bytes = b"\xff" * 160) -> None:
        for _ in range(count):
            self.peer.send(dest, seq=self.seq, ts=self.ts, ssrc=self.ssrc, payload=payload)
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts = (self.ts + 160) & 0xFFFFFFFF

    def new_source(self) -> None:
        """Restart the stream as a phone does after a re-INVITE: new SSRC, seq, timestamp."""
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(16)
        self.ts = secrets.randbits(32)
