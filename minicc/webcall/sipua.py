"""The gateway's SIP leg: one outgoing call from a worker to the switch on loopback.

To the switch a web call is an ordinary SIP call from the tenant's webcall extension (see
:mod:`minicc.webcall.settings`): an INVITE with a G.711 offer, a digest challenge answered
once, ACK, RTP, and a BYE from either side. The messages are built as plain text and parsed
with minicc's own sans-IO parser; the switch is on the same machine over UDP, so this UA does
not retransmit requests (a lost INVITE ends the web call with ``sip-timeout``), but it does
re-ACK a retransmitted 200 and answer retransmitted BYEs, which is what keeps the switch's own
timers quiet.

Everything here waits with a bound: a switch that does not answer is a failed call, never a
stuck worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from minicc.switch.sip.auth import DigestAlgorithm, compute_ha1, digest_response
from minicc.switch.sip.errors import SipError
from minicc.switch.sip.message import Request, Response
from minicc.switch.sip.parser import parse_message

__all__ = ["SipCallError", "SipLeg", "SipTarget"]

MAGIC = "z9hG4bK"
ANSWER_TIMEOUT = 120.0
"""The longest a web call waits for the switch to answer (the IVR answers at once)."""
REPLY_TIMEOUT = 5.0
"""The longest the switch may take to answer a request at all."""

_AUTH_PARAM = re.compile(r'([A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)')


class SipCallError(Exception):
    """The switch refused or never answered the call; ``reason`` goes into the call record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class SipTarget:
    """Where and as whom a worker places one web call."""

    switch_host: str
    switch_port: int
    domain: str
    """The tenant's SIP domain (digest realm and request-URI host)."""
    user: str
    """The tenant's webcall extension."""
    password: str
    number: str
    """What the web caller dials: an IVR or queue number."""
    call_id: str
    """Chosen by the API process so it can find the call's page context later."""
    display: str = "Web caller"
    """From display name: what phones show as the caller's name."""

    @property
    def local_host(self) -> str:
        """The worker's own address towards the switch: the switch's (loopback, or the one
        address the switch is bound to: the worker runs on the same machine)."""
        return self.switch_host


def _challenge(value: str) -> dict[str, str]:
    text = value.strip()
    if not text.lower().startswith("digest "):
        raise SipCallError("switch challenged with a non-digest scheme")
    return {k.lower(): v.strip('"') for k, v in _AUTH_PARAM.findall(text[7:])}


def _quote(text: str) -> str:
    cleaned = "".join(ch for ch in text if ch.isprintable() and ch not in '"\\')
    return f'"{cleaned[:60]}"'


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self._on_data = on_data

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._on_data(data)


class SipLeg:
    """One outgoing SIP call (see module doc). Use :meth:`open`, :meth:`invite`,
    :meth:`bye`, :meth:`close`; :attr:`ended` resolves with the reason when it is over."""

    def __init__(self, target: SipTarget) -> None:
        self.target = target
        self._transport: asyncio.DatagramTransport | None = None
        self._port = 0
        self._cseq = itertools.count(1)
        self._from_tag = secrets.token_hex(6)
        self._to: str | None = None
        self._remote_uri = f"sip:{target.number}@{target.domain}"
        self._responses: asyncio.Queue[Response] = asyncio.Queue()
        self._ack: bytes | None = None
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        """The reason the call ended (``remote-bye``, ``local-bye``, ...)."""

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._on_data), local_addr=(self.target.local_host, 0)
        )
        self._transport = transport  # type: ignore[assignment]
        self._port = transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if not self.ended.done():
            self.ended.set_result("closed")

    # ------------------------------------------------------------------ sending

    def _send(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.sendto(data, (self.target.switch_host, self.target.switch_port))

    def _via(self, branch: str) -> str:
        return f"SIP/2.0/UDP {self.target.local_host}:{self._port};branch={branch};rport"

    def _request(
        self,
        method: str,
        cseq: int,
        *,
        branch: str | None = None,
        body: bytes = b"",
        extra: tuple[tuple[str, str], ...] = (),
    ) -> tuple[str, bytes]:
        branch = branch or MAGIC + secrets.token_hex(8)
        t = self.target
        headers = [
            ("Via", self._via(branch)),
            ("Max-Forwards", "70"),
            ("From", f"{_quote(t.display)} <sip:{t.user}@{t.domain}>;tag={self._from_tag}"),
            ("To", self._to or f"<sip:{t.number}@{t.domain}>"),
            ("Call-ID", t.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:{t.user}@{t.local_host}:{self._port}>"),
            ("User-Agent", "minicc-webcall"),
            *extra,
        ]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        lines = [f"{method} {self._remote_uri} SIP/2.0", *(f"{k}: {v}" for k, v in headers)]
        lines.append(f"Content-Length: {len(body)}")
        return branch, ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def _authorization(self, challenge: Response, method: str) -> tuple[str, str]:
        proxy = challenge.status == 407
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        value = challenge.headers.get(name)
        if not value:
            raise SipCallError(f"switch sent {challenge.status} without {name}")
        params = _challenge(value)
        try:
            algorithm = DigestAlgorithm(params.get("algorithm", "MD5"))
        except ValueError:
            algorithm = DigestAlgorithm.MD5
        t = self.target
        realm = params.get("realm", t.domain)
        ha1 = compute_ha1(t.user, realm, t.password, algorithm)
        cnonce, nc = secrets.token_hex(8), "00000001"
        qop = "auth" if "qop" in params else None
        response = digest_response(
            algorithm=algorithm,
            ha1=ha1,
            nonce=params.get("nonce", ""),
            method=method,
            uri=self._remote_uri,
            qop=qop,
            nc=nc if qop else None,
            cnonce=cnonce if qop else None,
        )
        auth = (
            f'Digest username="{t.user}", realm="{realm}", nonce="{params.get("nonce", "")}", '
            f'uri="{self._remote_uri}", response="{response}", algorithm={algorithm.value}'
        )
        if qop:
            auth += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
        return ("Proxy-Authorization" if proxy else "Authorization"), auth

    # ------------------------------------------------------------------ receiving

    def _on_data(self, data: bytes) -> None:
        try:
            message = parse_message(data)
        except (SipError, ValueError):
            return  # not ours to fix: the switch never sends garbage
        try:
            if message.call_id != self.target.call_id:
                return
        except SipError:
            return
        if isinstance(message, Response):
            if message.is_success and message.cseq.method == "INVITE" and self._ack:
                self._send(self._ack)  # a retransmitted 200: ACK it again
            self._responses.put_nowait(message)
            return
        self._on_request(message)

    def _on_request(self, request: Request) -> None:
        method = request.cseq.method
        if method == "ACK":
            return
        lines = [
            "SIP/2.0 200 OK",
            *(f"Via: {v}" for v in request.headers.get_all("Via")),
            f"From: {request.headers.get('From')}",
            f"To: {request.headers.get('To')}",
            f"Call-ID: {request.call_id}",
            f"CSeq: {request.headers.get('CSeq')}",
        ]
        body = b""
        if method == "INVITE" and self._sdp:
            body = self._sdp  # a re-INVITE (hold, transfer): keep our side as it is
            lines.append("Content-Type: application/sdp")
            lines.append(f"Contact: <sip:{self.target.user}@{self.target.local_host}:{self._port}>")
        lines.append(f"Content-Length: {len(body)}")
        self._send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        if method == "BYE" and not self.ended.done():
            self.ended.set_result("remote-bye")

    async def _next_response(self, cseq: int, timeout: float) -> Response:
        async with asyncio.timeout(timeout):
            while True:
                response = await self._responses.get()
                if response.cseq.seq == cseq:
                    return response

    # ------------------------------------------------------------------ the call

    _sdp: bytes = b""
    _inflight: tuple[str, int] | None = None
    """(branch, CSeq) of the INVITE awaiting its final response, for a CANCEL."""

    async def invite(self, sdp: bytes, on_ringing: Callable[[], None] | None = None) -> bytes:
        """Place the call; returns the switch's SDP answer once it answered (200 OK).

        Raises:
            SipCallError: refused (the reason names the status), or no answer in time.
        """
        self._sdp = sdp
        extra: tuple[tuple[str, str], ...] = ()
        for _attempt in range(2):
            cseq = next(self._cseq)
            branch, data = self._request("INVITE", cseq, body=sdp, extra=extra)
            self._inflight = (branch, cseq)
            self._send(data)
            while True:
                try:
                    response = await self._next_response(
                        cseq, REPLY_TIMEOUT if _attempt == 0 else ANSWER_TIMEOUT
                    )
                except TimeoutError:
                    raise SipCallError("sip-timeout") from None
                if response.status < 200:
                    if response.status in (180, 183) and on_ringing is not None:
                        on_ringing()
                    continue
                break
            if response.status >= 300:
                self._send(self._error_ack(branch, cseq, response))
                if response.status in (401, 407) and _attempt == 0:
                    extra = (self._authorization(response, "INVITE"),)
                    continue
                raise SipCallError(f"sip-{response.status}")
            self._inflight = None
            self._to = response.headers.get("To")
            contacts = response.contacts
            if contacts:
                self._remote_uri = str(contacts[0].uri)
            _, self._ack = self._request("ACK", cseq)
            self._send(self._ack)
            return response.body
        raise SipCallError("sip-auth-failed")

    def _error_ack(self, branch: str, cseq: int, response: Response) -> bytes:
        to = self._to
        self._to = response.headers.get("To")
        _, data = self._request("ACK", cseq, branch=branch)
        self._to = to
        return data

    async def bye(self) -> None:
        """Hang up (bounded wait for the 200); a no-op once the call has ended."""
        if self.ended.done():
            return
        if self._ack is None:
            self.ended.set_result("local-cancel")
            if self._inflight is not None:
                # RFC 3261 §9.1: CANCEL carries the INVITE's branch and CSeq number.
                branch, cseq = self._inflight
                _, data = self._request("CANCEL", cseq, branch=branch)
                self._send(data)
            return
        self.ended.set_result("local-bye")
        cseq = next(self._cseq)
        _, data = self._request("BYE", cseq)
        self._send(data)
        with contextlib.suppress(TimeoutError):
            await self._next_response(cseq, REPLY_TIMEOUT)

    @property
    def local_port(self) -> int:
        return self._port
