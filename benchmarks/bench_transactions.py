"""Micro-benchmark of the transaction layer: N INVITE server transactions, fake time.

Each call goes INVITE (auto 100 Trying) -> 180 -> 200 (Accepted, 2xx retransmission armed) ->
ACK for the 2xx, and then the clock jumps so Timer L ends every transaction. Reports CPU time
per transaction for each step and in total, and the memory each live transaction holds
(tracemalloc), both with everything it keeps and for the bookkeeping alone.

    PYTHONPATH=. python benchmarks/bench_transactions.py [--calls 10000]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections.abc import Callable

from minicc.switch.sip.headers import Headers
from minicc.switch.sip.message import Request, Response, make_response
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.sip.transaction import RequestReceived
from minicc.switch.sip.txlayer import TransactionLayer

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def make_invite(i: int, peer: Peer) -> Request:
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP {peer.host}:{peer.port};branch=z9hG4bK{i:08x};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:caller{i}@example.com>;tag=f{i}"),
            ("To", "<sip:queue@example.com>"),
            ("Call-ID", f"bench-{i}@192.0.2.10"),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:caller{i}@{peer.host}:{peer.port}>"),
            ("Content-Type", "application/sdp"),
        ]
    )
    return Request(headers=headers, body=SDP, method="INVITE", uri="sip:queue@example.com")


def make_ack(i: int, invite: Request, peer: Peer) -> Request:
    """The UAC's ACK for our 2xx: a new branch, found by Call-ID, From tag and CSeq."""
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP {peer.host}:{peer.port};branch=z9hG4bKack{i:08x};rport"),
            ("From", invite.headers.get("From") or ""),
            ("To", f"<sip:queue@example.com>;tag=t{i}"),
            ("Call-ID", invite.call_id),
            ("CSeq", "1 ACK"),
        ]
    )
    return Request(headers=headers, method="ACK", uri="sip:queue@example.com")


class Flow:
    """One run of the call flow over ``calls`` transactions; each step is timed apart.

    The TU's work (building responses) is done between the steps, so the figures are the
    layer's own: matching, state changes, serialising, timers.
    """

    def __init__(self, calls: int) -> None:
        self.calls = calls
        self.peer = Peer(Transport.UDP, "192.0.2.10", 5062)
        self.layer = TransactionLayer(rng=random.Random(0))
        self.invites = [make_invite(i, self.peer) for i in range(calls)]
        self.acks = [make_ack(i, inv, self.peer) for i, inv in enumerate(self.invites)]
        self.received: list[RequestReceived] = []
        self.us: dict[str, float] = {}

    def step(self, label: str, fn: Callable[[], None]) -> None:
        gc.collect()
        start = time.process_time()
        fn()
        self.us[label] = (time.process_time() - start) / self.calls * 1e6

    def receive_invites(self) -> None:
        for invite in self.invites:
            self.layer.receive(invite, self.peer, 0.0)
        while (ev := self.layer.next_event()) is not None:
            assert isinstance(ev, RequestReceived)
            self.received.append(ev)
        self.layer.datagrams_to_send()

    def send_all(self, responses: list[Response], now: float) -> None:
        for response in responses:
            self.layer.send_response(response, now)
        self.layer.datagrams_to_send()

    def receive_acks(self) -> None:
        for ack in self.acks:
            self.layer.receive(ack, self.peer, 0.3)
        while self.layer.next_event() is not None:
            pass

    def expire(self) -> None:
        while (deadline := self.layer.get_timer()) is not None:
            self.layer.handle_timer(deadline)
        self.layer.datagrams_to_send()

    def responses(self, status: int) -> list[Response]:
        body = SDP if status == 200 else b""
        return [
            make_response(ev.request, status, to_tag=f"t{i}", body=body)
            for i, ev in enumerate(self.received)
        ]

    def run(self, *, stop_in_accepted: bool = False) -> None:
        self.step("INVITE in, 100 Trying out", self.receive_invites)
        ringing = self.responses(180)
        self.step("180 Ringing", lambda: self.send_all(ringing, 0.1))
        ok = self.responses(200)
        self.step("200 OK (to Accepted)", lambda: self.send_all(ok, 0.2))
        assert len(self.layer) == self.calls
        if stop_in_accepted:
            return
        self.step("ACK for the 2xx", self.receive_acks)
        self.step("Timer L (to Terminated)", self.expire)
        assert len(self.layer) == 0 and self.layer.get_timer() is None


def per_live_transaction(calls: int) -> tuple[float, float]:
    """Bytes per live transaction: all it keeps (in Accepted), and the bookkeeping alone."""
    flow = Flow(calls)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    flow.run(stop_in_accepted=True)
    gc.collect()
    kept = (tracemalloc.get_traced_memory()[0] - base) / calls
    tracemalloc.stop()
    # Bookkeeping: no stamping (source == sent-by, no rport), no 100 kept, nothing sent.
    peer = Peer(Transport.UDP, "192.0.2.10", 5062)
    bare = TransactionLayer(rng=random.Random(0), auto_100=False)
    plain = [make_invite(i, peer) for i in range(calls)]
    for i, inv in enumerate(plain):
        inv.headers.set("Via", f"SIP/2.0/UDP {peer.host}:{peer.port};branch=z9hG4bK{i:08x}")
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for inv in plain:
        bare.receive(inv, peer, 0.0)
    while bare.next_event() is not None:
        pass
    gc.collect()
    bookkeeping = (tracemalloc.get_traced_memory()[0] - base) / calls
    tracemalloc.stop()
    return kept, bookkeeping


def report(calls: int, rounds: int) -> None:
    best: dict[str, float] = {}
    for _ in range(rounds):
        flow = Flow(calls)
        flow.run()
        for label, value in flow.us.items():
            best[label] = min(value, best.get(label, value))
    kept, bookkeeping = per_live_transaction(calls)
    print(
        f"{calls} INVITE server transactions, fake time; CPU us per transaction (best of {rounds}):"
    )
    for label, value in best.items():
        print(f"  {label:<28} {value:7.1f}")
    print(f"  {'whole transaction':<28} {sum(best.values()):7.1f}")
    print("bytes per live transaction (tracemalloc):")
    print(f"  in Accepted, with its INVITE copy, 100, 180 and 200 kept  {kept:7.0f}")
    print(f"  the transaction's bookkeeping alone                       {bookkeeping:7.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    report(args.calls, args.rounds)


if __name__ == "__main__":
    main()
