"""RTP probe for the media benchmark: loss and delay through minicc's relay, packet by packet.

It places ``--calls`` calls of its own through a running minicc (caller ``2001``, callee
``2003`` registered from this process), learns both relay ports of each call from the SDP it
receives, and then plays both phones: every 20 ms it sends one G.711 A-law packet into the
relay on each side of each call. Each payload carries the stream, the sequence number and the
send time (``perf_counter_ns``), so on arrival at the other side the one-way transit through
the relay is known exactly (one process, one clock), and missing sequence numbers are lost
packets. A third stream goes from one probe socket to another directly on loopback, measured
the same way: the floor of what this measurement can see on a loaded machine.

Bounded: each SIP wait times out, streaming lasts ``--seconds``, and the calls are hung up
at the end. Prints one JSON object (see :func:`summary`) and exits 0, or 1 on a failure.

    python -m benchmarks.rtp_probe --sip 127.0.0.1:5060 --caller 2001:pw --callee 2003:pw \\
        --calls 10 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import struct
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks import phones

HOST = "127.0.0.1"
PTIME = 0.020
PAYLOAD_BYTES = 160  # 20 ms of G.711
_RTP = struct.Struct("!BBHII")
_STAMP = struct.Struct("!BHIq")  # direction, call, sequence, send time (ns)
A_TO_B, B_TO_A, DIRECT = 0, 1, 2
DIRECTION_NAMES = {A_TO_B: "caller->callee", B_TO_A: "callee->caller", DIRECT: "direct"}
SIP_TIMEOUT = 5.0


class Socket(asyncio.DatagramProtocol):
    """A UDP socket that hands each datagram to ``on_datagram``."""

    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


async def open_socket(on_datagram: Callable[[bytes, tuple[str, int]], None]) -> Socket:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(
        lambda: Socket(on_datagram), local_addr=(HOST, 0)
    )
    sock = proto.transport.get_extra_info("socket")  # type: ignore[union-attr]
    # Large buffers: the probe must not be where packets are lost.
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, 4 << 20)
    return proto


@dataclass
class ProbeCall:
    n: int
    call_id: str
    relay_a: tuple[str, int] | None = None
    relay_b: tuple[str, int] | None = None
    to_header: str = ""
    contact: str = ""


@dataclass
class Stream:
    sent: int = 0
    received: set[int] = field(default_factory=set)
    transit_ns: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]


class Probe:
    def __init__(self, args: argparse.Namespace) -> None:
        host, port = args.sip.rsplit(":", 1)
        self.server = (host, int(port))
        self.caller, self.caller_pw = args.caller.split(":", 1)
        self.callee, self.callee_pw = args.callee.split(":", 1)
        self.calls = [
            ProbeCall(n=i, call_id=f"probe-{os.getpid()}-{i}@{HOST}") for i in range(args.calls)
        ]
        self.seconds = args.seconds
        self.realm = args.realm
        self.streams: dict[tuple[int, int], Stream] = {}
        self._waiters: dict[tuple[str, str], asyncio.Future[bytes]] = {}
        self._answered: dict[str, bytes] = {}
        self._placing: ProbeCall | None = None

    # --- SIP ---------------------------------------------------------------------------------

    def _on_caller_sip(self, data: bytes, addr: tuple[str, int]) -> None:
        if phones.status_of(data) is None:
            return  # a request to the caller (none expected): ignore
        h = phones.headers(data)
        status = phones.status_of(data) or 0
        if status < 200 and status != 180:
            return
        key = (h.get("call-id", [""])[0], h.get("cseq", [""])[0])
        waiter = self._waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(data)

    def _on_callee_sip(self, data: bytes, addr: tuple[str, int]) -> None:
        line = phones.first_line(data)
        h = phones.headers(data)
        if line.startswith("SIP/2.0 "):
            key = (h.get("call-id", [""])[0], h.get("cseq", [""])[0])
            waiter = self._waiters.pop(key, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(data)
            return
        method = line.split(" ", 1)[0]
        call_id = h.get("call-id", [""])[0]
        if method == "INVITE":
            answer = self._answered.get(call_id)
            if answer is None:
                answer = self._answer_invite(data)
                self._answered[call_id] = answer
            self.callee_sip.send(answer, addr)
        elif method == "BYE":
            self.callee_sip.send(phones.response(data, "200 OK", to_tag="", contact=None), addr)

    def _answer_invite(self, invite: bytes) -> bytes:
        # Calls are placed one at a time, so a new INVITE belongs to the call being placed.
        call = self._placing
        if call is None:
            raise RuntimeError("an INVITE reached the probe's callee between calls")
        call.relay_b = phones.sdp_address(phones.body_of(invite))
        session = 2000 + call.n
        contact = f"sip:{self.callee}@{HOST}:{self.callee_sip.port}"
        return phones.response(
            invite,
            "200 OK",
            to_tag=f"probe{call.n}",
            contact=contact,
            body=phones.sdp_offer(HOST, self.rtp_b.port, session=session),
        )

    async def _transact(self, sock: Socket, data: bytes, call_id: str, cseq: str) -> bytes:
        """Send a request and wait for its final response (sent again each 0.5 s)."""
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters[(call_id, cseq)] = future
        deadline = time.monotonic() + SIP_TIMEOUT
        while True:
            sock.send(data, self.server)
            try:
                return await asyncio.wait_for(asyncio.shield(future), 0.5)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no answer to {phones.first_line(data)}") from None
                self._waiters[(call_id, cseq)] = future

    async def _with_auth(
        self, sock: Socket, method: str, uri: str, lines: list[str], call_id: str,
        user: str, password: str, body: bytes = b"", branch_base: str = "",
    ) -> bytes:  # fmt: skip
        port = sock.port
        first = phones.request(
            method, uri, host=HOST, port=port, branch=f"z9hG4bK{branch_base}a",
            lines=[*lines, f"CSeq: 1 {method}"], body=body,
        )  # fmt: skip
        reply = await self._transact(sock, first, call_id, f"1 {method}")
        if phones.status_of(reply) == 401:
            if method == "INVITE":
                h = phones.headers(reply)
                ack_lines = [ln for ln in lines if not ln.startswith("To:")]
                ack = phones.request(
                    "ACK", uri, host=HOST, port=port, branch=f"z9hG4bK{branch_base}a",
                    lines=[*ack_lines, f"To: {h['to'][0]}", "CSeq: 1 ACK"],
                )  # fmt: skip
                sock.send(ack, self.server)
            challenge = phones.md5_challenge(reply)
            if challenge is None:
                raise RuntimeError("401 without an MD5 challenge")
            ha1 = phones.md5(f"{user}:{self.realm}:{password}")
            auth = phones.authorization(challenge, uri=uri, method=method, user=user, ha1=ha1)
            second = phones.request(
                method, uri, host=HOST, port=port, branch=f"z9hG4bK{branch_base}b",
                lines=[*lines, f"CSeq: 2 {method}", f"Authorization: {auth}"], body=body,
            )  # fmt: skip
            reply = await self._transact(sock, second, call_id, f"2 {method}")
        if phones.status_of(reply) != 200:
            raise RuntimeError(f"{method} answered {phones.first_line(reply)}")
        return reply

    async def register(self) -> None:
        host, port = self.server
        aor = f"sip:{self.callee}@{host}:{port}"
        lines = [
            f"From: <{aor}>;tag=probe-reg",
            f"To: <{aor}>",
            f"Call-ID: probe-reg-{os.getpid()}",
            f"Contact: <sip:{self.callee}@{HOST}:{self.callee_sip.port}>",
            "Expires: 600",
        ]
        await self._with_auth(
            self.callee_sip, "REGISTER", f"sip:{host}:{port}", lines, f"probe-reg-{os.getpid()}",
            self.callee, self.callee_pw, branch_base="reg",
        )  # fmt: skip

    async def place(self, call: ProbeCall) -> None:
        host, port = self.server
        uri = f"sip:{self.callee}@{host}:{port}"
        lines = [
            f"From: <sip:{self.caller}@{host}:{port}>;tag=probe{call.n}",
            f"To: <{uri}>",
            f"Call-ID: {call.call_id}",
            f"Contact: <sip:{self.caller}@{HOST}:{self.caller_sip.port}>",
        ]
        self._placing = call
        try:
            ok = await self._with_auth(
                self.caller_sip, "INVITE", uri, lines, call.call_id, self.caller,
                self.caller_pw, body=phones.sdp_offer(HOST, self.rtp_a.port, session=1000 + call.n),
                branch_base=f"inv{call.n}",
            )  # fmt: skip
        finally:
            self._placing = None
        call.relay_a = phones.sdp_address(phones.body_of(ok))
        h = phones.headers(ok)
        call.to_header = h["to"][0]
        call.contact = h["contact"][0].strip("<>")
        cseq = h["cseq"][0].split()[0]
        ack = phones.request(
            "ACK", call.contact, host=HOST, port=self.caller_sip.port,
            branch=f"z9hG4bKack{call.n}",
            lines=[lines[0], f"To: {call.to_header}", lines[2], f"CSeq: {cseq} ACK"],
        )  # fmt: skip
        self.caller_sip.send(ack, self.server)
        if call.relay_b is None:
            raise RuntimeError(f"probe call {call.n}: the callee never saw the INVITE")

    async def hang_up(self, call: ProbeCall) -> None:
        host, port = self.server
        bye = phones.request(
            "BYE", call.contact, host=HOST, port=self.caller_sip.port,
            branch=f"z9hG4bKbye{call.n}",
            lines=[
                f"From: <sip:{self.caller}@{host}:{port}>;tag=probe{call.n}",
                f"To: {call.to_header}", f"Call-ID: {call.call_id}", "CSeq: 10 BYE",
            ],
        )  # fmt: skip
        await self._transact(self.caller_sip, bye, call.call_id, "10 BYE")

    # --- RTP ---------------------------------------------------------------------------------

    def _on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.perf_counter_ns()
        if len(data) < 12 + _STAMP.size:
            return
        direction, n, seq, sent_at = _STAMP.unpack_from(data, 12)
        stream = self.streams.get((direction, n))
        if stream is None or seq in stream.received:
            return
        stream.received.add(seq)
        stream.transit_ns.append(now - sent_at)

    def _packet(self, direction: int, n: int, seq: int) -> bytes:
        ssrc = 0x5000 + n * 4 + direction
        header = _RTP.pack(0x80, 8, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc)
        stamp = _STAMP.pack(direction, n, seq, time.perf_counter_ns())
        return header + stamp + bytes(PAYLOAD_BYTES - len(stamp))

    async def stream(self) -> None:
        loop = asyncio.get_running_loop()
        plan: list[tuple[int, int, Socket, tuple[str, int]]] = []
        for call in self.calls:
            assert call.relay_a is not None and call.relay_b is not None
            plan.append((A_TO_B, call.n, self.rtp_a, call.relay_a))
            plan.append((B_TO_A, call.n, self.rtp_b, call.relay_b))
        plan.append((DIRECT, 0, self.direct_c, (HOST, self.direct_d.port)))
        for direction, n, _, _ in plan:
            self.streams[(direction, n)] = Stream()
        ticks = int(self.seconds / PTIME)
        start = loop.time()
        for tick in range(ticks):
            for direction, n, sock, dest in plan:
                sock.send(self._packet(direction, n, tick), dest)
                self.streams[(direction, n)].sent += 1
            delay = start + (tick + 1) * PTIME - loop.time()
            await asyncio.sleep(max(0.0, delay))
        await asyncio.sleep(0.5)  # the last packets in flight

    async def run(self) -> dict[str, object]:
        self.caller_sip = await open_socket(self._on_caller_sip)
        self.callee_sip = await open_socket(self._on_callee_sip)
        self.rtp_a = await open_socket(self._on_rtp)
        self.rtp_b = await open_socket(self._on_rtp)
        self.direct_c = await open_socket(self._on_rtp)
        self.direct_d = await open_socket(self._on_rtp)
        await self.register()
        for call in self.calls:
            await self.place(call)
        await self.stream()
        for call in self.calls:
            await self.hang_up(call)
        return summary(self.streams)


def _percentile(sorted_values: list[int], q: float) -> int:
    if not sorted_values:
        return 0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def summary(streams: dict[tuple[int, int], Stream]) -> dict[str, object]:
    """Per direction: packets sent, received and lost, one-way transit percentiles and the
    packet delay variation (transit minus the smallest transit, ITU-T Y.1540 style), in µs."""
    out: dict[str, object] = {}
    for direction, name in DIRECTION_NAMES.items():
        parts = [s for (d, _), s in streams.items() if d == direction]
        sent = sum(s.sent for s in parts)
        received = sum(len(s.received) for s in parts)
        transit = sorted(t for s in parts for t in s.transit_ns)
        low = transit[0] if transit else 0
        out[name] = {
            "streams": len(parts),
            "sent": sent,
            "received": received,
            "lost": sent - received,
            "loss_pct": (sent - received) / sent * 100 if sent else 0.0,
            "transit_us": {q: _percentile(transit, q) / 1000 for q in (0, 50, 99, 99.9, 100)},
            "pdv_p99_us": (_percentile(transit, 99) - low) / 1000,
            "pdv_p999_us": (_percentile(transit, 99.9) - low) / 1000,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sip", required=True, help="minicc's SIP address, host:port")
    parser.add_argument("--caller", required=True, help="extension:password")
    parser.add_argument("--callee", required=True, help="extension:password")
    parser.add_argument("--realm", default="demo.localhost", help="digest realm")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        result = runner(asyncio.wait_for(Probe(args).run(), args.seconds + 120))
    except (RuntimeError, TimeoutError, OSError) as exc:
        sys.stdout.write(json.dumps({"error": str(exc)}) + "\n")
        return 1
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
