"""Calls that are not answered: early media, busy, unreachable, unknown, CANCEL, ring timeout.

Each test checks what both phones saw and the call record, including that the record's
duration is the real one (a colleague saw busy and cancelled calls end 5 s late).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from minicc.events import CallEnded, CallRinging, CallStarted
from minicc.switch.sip.peer import Peer, Transport
from minicc.tenants.models import CallRecord, Disposition, HangupSide
from tests.unit.switch.flows import ringing_call
from tests.unit.switch.harness import Harness, MakeSwitch
from tests.unit.switch.ua import HOST, OutgoingCall, Talker, UaDialog, make_sdp, sdp_audio

# How far a record's duration may be from what the test measured.
TOLERANCE = 0.5
RING = 0.3  # seconds a phone rings before it rejects, so a duration has something to measure


def assert_duration(record: CallRecord, measured: float) -> None:
    assert abs(record.duration - measured) < TOLERANCE, (record.duration, measured)
    assert abs((datetime.now(UTC) - record.end).total_seconds()) < TOLERANCE


async def test_183_early_media_is_relayed(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    caller_rtp, callee_rtp = await sw.rtp(), await sw.rtp()
    out = await alice.call("sip:1002@acme.test", make_sdp(caller_rtp.port))
    inc = await bob.incoming()
    assert inc.invite.body
    relay_b = sdp_audio(inc.invite.body)
    inc.reply(183, body=make_sdp(callee_rtp.port))

    progress = await out.status(183)
    assert progress.headers.get("Content-Type") == "application/sdp"
    relay_a = sdp_audio(progress.body)
    assert relay_a[0] == HOST and relay_a[1] != callee_rtp.port
    await sw.events.wait(CallRinging)

    # Early media (a ringback tone or an announcement) reaches the caller before the answer.
    Talker(callee_rtp).send(relay_b, 2, payload=b"\x55" * 160)
    for _ in range(2):
        packet, source = await caller_rtp.recv()
        assert source == relay_a and packet.payload == b"\x55" * 160

    await inc.answer(make_sdp(callee_rtp.port))
    ok = await out.final()
    assert ok.status == 200 and sdp_audio(ok.body) == relay_a
    assert out.dialog is not None
    await out.dialog.bye()


async def test_busy(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    loop = asyncio.get_running_loop()
    out = await alice.call("sip:1002@acme.test", make_sdp(40000))
    begin = loop.time()
    inc = await bob.incoming()
    inc.ring()
    await out.status(180)
    await asyncio.sleep(RING)  # let it ring a little: the record must show this time
    inc.reply(486, extra=[("Reason", "SIP;cause=486")])
    busy = await out.final()
    measured = loop.time() - begin
    assert busy.status == 486
    ringing = next(r for r in out.responses if r.status == 180)
    assert busy.to.tag == ringing.to.tag
    await sw.events.wait(CallRinging)
    await inc.ack()  # the switch ACKs the callee's 486

    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.BUSY
    assert record.hangup_side is HangupSide.CALLEE
    assert record.sip_cause == 486
    assert record.answer is None
    assert_duration(record, measured)
    assert sw.b2bua.active_calls == 0


async def test_callee_not_registered_gets_480(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    out = await alice.call("sip:1003@acme.test", make_sdp(40000))
    assert (await out.final()).status == 480
    # A call to an existing extension that is offline is a missed call: it has a record.
    started = await sw.events.wait(CallStarted)
    assert (started.caller, started.callee) == ("1001", "1003")
    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.NO_ANSWER
    assert record.sip_cause == 480
    assert record.hangup_side is HangupSide.SYSTEM
    assert record.answer is None
    assert sw.b2bua.active_calls == 0


async def test_unknown_extension_gets_404(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    out = await alice.call("sip:1999@acme.test", make_sdp(40000))
    assert (await out.final()).status == 404
    assert not sw.events.of(CallStarted)
    assert sw.b2bua.active_calls == 0


async def test_unknown_or_suspended_domain_is_refused_and_rings_nobody(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    acme_bob = await sw.phone("acme", "1002")
    beta_bob = await sw.phone("beta", "1002")
    for domain, status, reason in (
        ("nowhere.test", 404, "Unknown Domain"),
        ("gamma.test", 403, "Tenant Suspended"),  # says why, for the tenant's admin
    ):
        out = await alice.call(f"sip:1002@{domain}", make_sdp(40000))
        # Refused before any challenge: the domain names no tenant that may be served.
        assert out.challenge is None
        final = await out.final()
        assert (final.status, final.reason) == (status, reason)
    # Both answers are final, and nothing was started that could still ring later.
    assert not acme_bob.requests_seen("INVITE") and not beta_bob.requests_seen("INVITE")
    assert not sw.events.of(CallStarted)


async def test_cancel_before_answer(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    loop = asyncio.get_running_loop()
    out, inc, _ = await ringing_call(sw, alice, bob)
    begin = loop.time()
    await asyncio.sleep(RING)

    cancel_ok = await out.cancel()
    assert cancel_ok.status == 200
    terminated = await out.final()
    measured = loop.time() - begin
    assert terminated.status == 487
    # The 487 carries the same To tag as the 180 the caller already has (one early dialog).
    ringing = next(r for r in out.responses if r.status == 180)
    assert terminated.to.tag == ringing.to.tag

    cancel = await inc.cancelled()
    assert cancel.method == "CANCEL"
    assert cancel.cseq.seq == inc.invite.cseq.seq
    assert cancel.branch == inc.invite.branch

    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.CANCELLED
    assert record.hangup_side is HangupSide.CALLER
    assert record.sip_cause == 487
    assert record.answer is None
    assert abs(record.duration - measured - RING) < TOLERANCE
    assert abs((datetime.now(UTC) - record.end).total_seconds()) < TOLERANCE
    assert sw.b2bua.active_calls == 0
    assert sw.switch.media is not None and not sw.switch.media.sessions


async def test_ring_timeout_gives_408_and_cancels_the_callee(make_switch: MakeSwitch) -> None:
    sw = await make_switch(ring_timeout=0.5)
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    loop = asyncio.get_running_loop()
    begin = loop.time()
    out, inc, _ = await ringing_call(sw, alice, bob)

    timeout = await out.final()  # nobody answers: the ring timer elapses
    measured = loop.time() - begin
    assert timeout.status == 408
    assert 0.5 <= measured < 0.5 + TOLERANCE
    await inc.cancelled()

    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.NO_ANSWER
    assert record.hangup_side is HangupSide.SYSTEM
    assert record.sip_cause == 408
    assert record.answer is None
    assert_duration(record, measured)
    assert sw.b2bua.active_calls == 0


async def test_callee_answer_crossing_the_cancel_is_acked_and_ended(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    out, inc, _ = await ringing_call(sw, alice, bob)
    assert (await out.cancel()).status == 200
    assert (await out.final()).status == 487
    cancel = await bob.request("CANCEL", call_id=inc.call_id)
    # Bob's phone had already answered when the CANCEL reached it.
    inc.reply(200, body=make_sdp(41000))
    bob.reply(cancel, 200, to_tag=inc.to_tag)
    await inc.ack()
    assert inc.dialog is not None
    bye = await inc.dialog.request("BYE")
    bob.reply(bye, 200)
    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.CANCELLED


async def test_caller_bye_on_the_early_dialog_ends_the_ringing_call(sw: Harness) -> None:
    """RFC 3261 §15: the caller may BYE an early dialog; it works like CANCEL."""
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    out, inc, _ = await ringing_call(sw, alice, bob)
    ringing = next(r for r in out.responses if r.status == 180)
    early = UaDialog(
        ua=alice,
        call_id=out.call_id,
        local=out.invite.header("From"),
        remote=ringing.headers.get("To") or "",
        remote_target=out.invite.uri,
        cseq=out.invite.cseq,
    )
    assert (await early.bye()).status == 200
    assert (await out.final()).status == 487
    await inc.cancelled()
    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.CANCELLED
    assert record.hangup_side is HangupSide.CALLER
    assert sw.b2bua.active_calls == 0


async def test_callee_200_without_sdp_gives_502_and_bye(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    out, inc, _ = await ringing_call(sw, alice, bob)
    inc.reply(200)  # no answer to the offer
    assert (await out.final()).status == 502
    await inc.ack()
    assert inc.dialog is not None
    bob.reply(await inc.dialog.request("BYE"), 200)
    record = (await sw.events.wait(CallEnded)).record
    assert (record.disposition, record.sip_cause) == (Disposition.FAILED, 502)
    assert sw.b2bua.active_calls == 0


@pytest.mark.parametrize("relay", [True, False])
async def test_cancel_before_the_callee_is_invited(make_switch: MakeSwitch, relay: bool) -> None:
    """INVITE and CANCEL handled in one go, before the call's set-up task runs."""
    sw = await make_switch(media_relay=relay)
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    first = await alice.call("sip:1002@acme.test", make_sdp(40000), auth=False)
    assert first.final_response is not None and first.final_response.status == 401
    invite = alice.authorize(first.invite, first.final_response)
    cancelling = OutgoingCall(alice, invite)
    source = Peer(Transport.UDP, HOST, alice.port)
    sw.switch.on_data(invite.to_bytes(), source)
    sw.switch.on_data(cancelling.cancel_request().to_bytes(), source)

    assert (await cancelling.final()).status == 487
    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.CANCELLED
    # A round trip through the switch after its set-up task has had every chance to run.
    options = alice.build("OPTIONS", f"sip:{HOST}", to=f"<sip:{HOST}>")
    await asyncio.sleep(0)
    assert (await alice.transact(options)).status == 200
    assert not bob.requests_seen("INVITE")
    assert sw.switch.media is None or not sw.switch.media.sessions
