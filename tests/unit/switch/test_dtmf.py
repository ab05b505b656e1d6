"""DTMF: RFC 4733 telephone-events seen on the relay, and SIP INFO as the fallback."""

from __future__ import annotations

import secrets

from minicc.events import DtmfReceived
from minicc.switch.media.dtmf import build_dtmf_rtp
from tests.unit.switch.flows import answered_call
from tests.unit.switch.harness import Harness


async def test_rfc4733_digits_become_one_event_each(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    call = await answered_call(sw, alice, bob)
    ssrc, seq, ts = secrets.randbits(32), 1000, 50_000
    sent = 0
    for digit in "12#":
        # Each press: updates, then the end packet three times (RFC 4733 §2.5.1.4).
        packets = build_dtmf_rtp(
            digit, payload_type=101, ssrc=ssrc, sequence_number=seq, timestamp=ts
        )
        for packet in packets:
            call.caller_rtp.send_raw(call.caller_sends_to, packet)
        seq += len(packets)
        ts += 800
        sent += len(packets)

    for digit in "12#":
        event = await sw.events.wait(DtmfReceived)
        assert (event.digit, event.side, event.method) == (digit, "caller", "rfc4733")
        assert (event.tenant, event.call_id) == ("acme", call.out.call_id)
    # The telephone-events are relayed to the other phone too (it may want them).
    for _ in range(sent):
        packet, _ = await call.callee_rtp.recv()
        assert packet.header.payload_type == 101

    # And from the callee's side.
    nine = build_dtmf_rtp(
        "9", payload_type=101, ssrc=secrets.randbits(32), sequence_number=7, timestamp=900
    )
    for packet in nine:
        call.callee_rtp.send_raw(call.callee_sends_to, packet)
    event = await sw.events.wait(DtmfReceived)
    assert (event.digit, event.side) == ("9", "callee")
    for _ in nine:  # once the caller has them all, the relay has seen them all
        await call.caller_rtp.recv()
    assert len(sw.events.of(DtmfReceived)) == 4  # retransmitted end packets counted once


async def test_sip_info_dtmf(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    call = await answered_call(sw, alice, bob)

    ok = await call.a.send(
        "INFO", body=b"Signal=5\r\nDuration=160\r\n", content_type="application/dtmf-relay"
    )
    assert ok.status == 200
    event = await sw.events.wait(DtmfReceived)
    assert (event.digit, event.side, event.method) == ("5", "caller", "info")
    assert event.call_id == call.out.call_id

    ok = await call.b.send("INFO", body=b"*", content_type="application/dtmf")
    assert ok.status == 200
    event = await sw.events.wait(DtmfReceived)
    assert (event.digit, event.side, event.method) == ("*", "callee", "info")

    # An INFO that is not DTMF is accepted and ignored.
    ok = await call.a.send("INFO", body=b"<xml/>", content_type="application/xml")
    assert ok.status == 200
    assert len(sw.events.of(DtmfReceived)) == 2
