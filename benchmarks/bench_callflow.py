"""CPU per call of the switch's signaling path, in-process: ``python benchmarks/bench_callflow.py``.

A real :class:`~minicc.switch.switch.Switch` (media relay off, as in the signaling-only load
test) gets the datagrams of whole calls from two scripted phones: the caller sends INVITE,
answers the 401 with digest credentials, ACKs the 200 and later sends BYE; the registered
callee answers 180 + 200 and the BYE. What the switch sends is captured instead of leaving
through its socket. Only the switch's own work is timed (``on_data`` and the loop turns that
run its call-setup task); building and reading the phones' messages is not.

The calls are set up all first and hung up afterwards, so that the switch holds ``--calls``
dialogs and their transactions at once, as under load. Prints CPU microseconds per call for
each phase and in total, and how much of it the garbage collector took.

    python -m benchmarks.bench_callflow [--calls 2000] [--rounds 3] [--relay] [--profile]

With ``--relay`` the media relay is on: each call binds its four RTP/RTCP sockets on
127.0.0.1 (no RTP is sent), which is what anchoring media costs the signaling path.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from benchmarks import phones
from benchmarks.phones import first_line, headers
from minicc import gcpolicy
from minicc.bus import EventBus
from minicc.switch.sip.auth import DigestAlgorithm, compute_ha1
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.switch import Switch, SwitchSettings
from minicc.switch.transport import UdpTransport
from minicc.tenants.directory import TenantDirectory
from minicc.tenants.models import Extension, Tenant

HOST = "127.0.0.1"
DOMAIN = "bench.test"
CALLER, CALLEE = "2001", "2002"
PASSWORDS = {CALLER: "pw-2001", CALLEE: "pw-2002"}
RTP_PORTS = (40000, 59999)  # the relay's range with --relay (4 ports per call)
CALLER_PEER = Peer(Transport.UDP, HOST, 5071)
CALLEE_PEER = Peer(Transport.UDP, HOST, 5072)
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
)


@dataclass(slots=True)
class CallScript:
    """What the two phones remember of one call."""

    n: int
    call_id: str
    from_tag: str
    callee_headers: dict[str, list[str]] = field(default_factory=dict)
    callee_tag: str = ""
    to_header: str = ""
    contact: str = ""


class Capture(UdpTransport):
    """The switch's UDP transport, with what it sends kept instead of sent."""

    def __init__(self, switch: Switch) -> None:
        super().__init__(switch.on_data)
        self.sent: list[tuple[bytes, Peer]] = []

    def send(self, data: bytes, peer: Peer) -> None:
        self.sent.append((data, peer))

    def take(self) -> list[tuple[bytes, Peer]]:
        sent, self.sent = self.sent, []
        return sent


class Bench:
    def __init__(self, calls: int, *, relay: bool = False) -> None:
        self.calls = calls
        self.busy = 0.0  # process time spent in the switch
        directory = TenantDirectory({HOST})
        tenant = Tenant(id=1, name="bench", domain=DOMAIN, created_at=datetime.now(UTC))
        extensions = {
            ext: Extension(
                extension=ext,
                realm=DOMAIN,
                ha1_md5=compute_ha1(ext, DOMAIN, pw, DigestAlgorithm.MD5),
                ha1_sha256=compute_ha1(ext, DOMAIN, pw, DigestAlgorithm.SHA256),
            )
            for ext, pw in PASSWORDS.items()
        }
        directory.replace([(tenant, extensions)], default_tenant="bench")
        settings = SwitchSettings(
            bind=HOST,
            advertised_host=HOST,
            sip_port=0,
            media_relay=relay,
            ring_timeout=60.0,
            rtp_port_min=RTP_PORTS[0],
            rtp_port_max=RTP_PORTS[1],
        )
        self.switch = Switch(settings, directory, EventBus())
        self.capture = Capture(self.switch)
        self.switch._udp = self.capture  # before start(): the switch binds this protocol
        self.ha1 = {
            ext: compute_ha1(ext, DOMAIN, pw, DigestAlgorithm.MD5) for ext, pw in PASSWORDS.items()
        }

    # --- driving the switch -------------------------------------------------------------

    async def feed(
        self, data: bytes, peer: Peer, *, until: bytes | None = None
    ) -> list[tuple[bytes, Peer]]:
        """Hand one datagram to the switch, let its tasks run, return what it sent.

        With ``until``, the loop turns until a datagram starting with it was sent (the B2BUA
        sets calls up in a task, and binding relay ports takes several turns); bounded.
        """
        start = time.process_time()
        self.switch.on_data(data, peer)
        await asyncio.sleep(0)
        if until is not None:
            for _ in range(10_000):
                if any(d.startswith(until) for d, _ in self.capture.sent):
                    break
                await asyncio.sleep(0)
        self.busy += time.process_time() - start
        return self.capture.take()

    # --- the phones ----------------------------------------------------------------------

    @staticmethod
    def _request(
        method: str, uri: str, *, via_port: int, branch: str, lines: list[str], body: bytes = b""
    ) -> bytes:
        return phones.request(
            method, uri, host=HOST, port=via_port, branch=branch, lines=lines, body=body
        )

    @staticmethod
    def _response(
        request: bytes, status: str, *, to_tag: str, contact: bool, body: bytes = b""
    ) -> bytes:
        contact_uri = f"sip:{CALLEE}@{HOST}:{CALLEE_PEER.port}" if contact else None
        return phones.response(request, status, to_tag=to_tag, contact=contact_uri, body=body)

    def _authorization(self, challenge: str, uri: str, method: str, user: str) -> str:
        return phones.authorization(
            challenge, uri=uri, method=method, user=user, ha1=self.ha1[user]
        )

    async def register_callee(self) -> None:
        uri = f"sip:{DOMAIN}"
        common = [
            f"From: <sip:{CALLEE}@{DOMAIN}>;tag=reg",
            f"To: <sip:{CALLEE}@{DOMAIN}>",
            "Call-ID: register-bench",
            f"Contact: <sip:{CALLEE}@{HOST}:{CALLEE_PEER.port}>",
            "Expires: 3600",
        ]
        first = self._request(
            "REGISTER", uri, via_port=CALLEE_PEER.port, branch="z9hG4bKreg1",
            lines=[*common, "CSeq: 1 REGISTER"],
        )  # fmt: skip
        sent = await self.feed(first, CALLEE_PEER)
        challenge = self._challenge(sent)
        auth = self._authorization(challenge, uri, "REGISTER", CALLEE)
        second = self._request(
            "REGISTER", uri, via_port=CALLEE_PEER.port, branch="z9hG4bKreg2",
            lines=[*common, "CSeq: 2 REGISTER", f"Authorization: {auth}"],
        )  # fmt: skip
        sent = await self.feed(second, CALLEE_PEER)
        if not any(first_line(d).startswith("SIP/2.0 200") for d, _ in sent):
            raise RuntimeError(f"REGISTER failed: {[first_line(d) for d, _ in sent]}")

    @staticmethod
    def _challenge(sent: list[tuple[bytes, Peer]]) -> str:
        for data, _ in sent:
            if phones.status_of(data) == 401 and (found := phones.md5_challenge(data)):
                return found
        raise RuntimeError(f"no MD5 challenge in {[first_line(d) for d, _ in sent]}")

    async def set_up(self, call: CallScript) -> None:
        uri = f"sip:{CALLEE}@{DOMAIN}"
        common = [
            f"From: <sip:{CALLER}@{DOMAIN}>;tag={call.from_tag}",
            f"To: <sip:{CALLEE}@{DOMAIN}>",
            f"Call-ID: {call.call_id}",
            f"Contact: <sip:{CALLER}@{HOST}:{CALLER_PEER.port}>",
        ]
        port = CALLER_PEER.port
        b1, b2 = f"z9hG4bKi1-{call.n}", f"z9hG4bKi2-{call.n}"
        invite = self._request(
            "INVITE", uri, via_port=port, branch=b1, lines=[*common, "CSeq: 1 INVITE"], body=SDP
        )
        sent = await self.feed(invite, CALLER_PEER)
        challenge = self._challenge(sent)
        to_401 = next(headers(d)["to"][0] for d, _ in sent if b" 401 " in d[:20])
        ack = self._request(
            "ACK", uri, via_port=port, branch=b1,
            lines=[common[0], f"To: {to_401}", common[2], "CSeq: 1 ACK"],
        )  # fmt: skip
        await self.feed(ack, CALLER_PEER)
        auth = self._authorization(challenge, uri, "INVITE", CALLER)
        invite = self._request(
            "INVITE", uri, via_port=port, branch=b2,
            lines=[*common, "CSeq: 2 INVITE", f"Authorization: {auth}"], body=SDP,
        )  # fmt: skip
        sent = await self.feed(invite, CALLER_PEER, until=b"INVITE ")
        outbound = [d for d, p in sent if p.port == CALLEE_PEER.port and d.startswith(b"INVITE")]
        if not outbound:
            raise RuntimeError(f"call {call.n}: no INVITE to the callee: {sent}")
        callee_invite = outbound[0]
        call.callee_tag = f"callee{call.n}"
        await self.feed(
            self._response(callee_invite, "180 Ringing", to_tag=call.callee_tag, contact=True),
            CALLEE_PEER,
        )
        sent = await self.feed(
            self._response(callee_invite, "200 OK", to_tag=call.callee_tag, contact=True, body=SDP),
            CALLEE_PEER,
        )
        ok = next((d for d, p in sent if p == CALLER_PEER and d.startswith(b"SIP/2.0 200")), None)
        if ok is None:
            raise RuntimeError(f"call {call.n}: no 200 to the caller: {sent}")
        h = headers(ok)
        call.to_header = h["to"][0]
        call.contact = h["contact"][0].strip("<>")
        call.callee_headers = headers(callee_invite)
        ack = self._request(
            "ACK", call.contact, via_port=port, branch=f"z9hG4bKa-{call.n}",
            lines=[common[0], f"To: {call.to_header}", common[2], "CSeq: 2 ACK"],
        )  # fmt: skip
        await self.feed(ack, CALLER_PEER)

    async def hang_up(self, call: CallScript) -> None:
        bye = self._request(
            "BYE", call.contact, via_port=CALLER_PEER.port, branch=f"z9hG4bKb-{call.n}",
            lines=[
                f"From: <sip:{CALLER}@{DOMAIN}>;tag={call.from_tag}",
                f"To: {call.to_header}",
                f"Call-ID: {call.call_id}",
                "CSeq: 10 BYE",
            ],
        )  # fmt: skip
        sent = await self.feed(bye, CALLER_PEER)
        byes = [d for d, p in sent if p == CALLEE_PEER and d.startswith(b"BYE")]
        if not byes:
            raise RuntimeError(f"call {call.n}: no BYE to the callee: {sent}")
        await self.feed(self._response(byes[0], "200 OK", to_tag="", contact=False), CALLEE_PEER)

    async def run(self) -> dict[str, float]:
        await self.switch.start()
        try:
            await self.register_callee()
            scripts = [
                CallScript(n=i, call_id=f"bench-{i}@{HOST}", from_tag=f"caller{i}")
                for i in range(self.calls)
            ]
            result: dict[str, float] = {}
            for label, step in (("set-up", self.set_up), ("hang-up", self.hang_up)):
                self.busy = 0.0
                for call in scripts:
                    await step(call)
                result[label] = self.busy / self.calls * 1e6
            assert self.switch.b2bua is not None
            if self.switch.b2bua.active_calls != 0:
                raise RuntimeError(f"{self.switch.b2bua.active_calls} calls left up")
            return result
        finally:
            self.capture.take()
            await self.switch.stop(grace=0.0)


class GcClock:
    """Time spent in the cyclic garbage collector while installed."""

    def __init__(self) -> None:
        self.total = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._start


def _uvloop() -> bool:
    try:
        import uvloop  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def _run(coro: Any) -> Any:
    """On uvloop when it is installed, as ``minicc serve`` runs."""
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--relay", action="store_true", help="media relay on (binds ports)")
    parser.add_argument("--profile", action="store_true", help="cProfile one round, top 40")
    args = parser.parse_args(argv)
    # The collector as ``minicc serve`` runs it (minicc.gcpolicy).
    gcpolicy.tune()
    gcpolicy.freeze_startup_heap()
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        _run(Bench(args.calls, relay=args.relay).run())
        profile.disable()
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(40)
        return 0
    best: dict[str, float] = {}
    gc_share: list[float] = []
    for _ in range(args.rounds):
        gc.collect()
        clock = GcClock()
        gc.callbacks.append(clock)
        cpu = time.process_time()
        result = _run(Bench(args.calls, relay=args.relay).run())
        cpu = time.process_time() - cpu
        gc.callbacks.remove(clock)
        gc_share.append(clock.total / cpu)
        for label, value in result.items():
            best[label] = min(value, best.get(label, value))
    sys.stdout.write(
        f"{args.calls} calls through the switch (relay {'on' if args.relay else 'off'}),"
        " CPU us per call, best of"
        f" {args.rounds}:\n"
    )
    for label, value in best.items():
        sys.stdout.write(f"  {label:<10} {value:8.0f}\n")
    sys.stdout.write(f"  {'whole call':<10} {sum(best.values()):8.0f}\n")
    sys.stdout.write(f"  garbage collection: {min(gc_share) * 100:.0f}% of the process's CPU\n")
    sys.stdout.write(f"  event loop: {'uvloop' if _uvloop() else 'asyncio'}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
