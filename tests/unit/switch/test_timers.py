"""Flows ended by transaction timers (run with T1 = 10 ms, so 64*T1 is 0.64 s)."""

from __future__ import annotations

from minicc.events import CallEnded
from minicc.switch.sip.timers import TimerConfig
from minicc.tenants.models import Disposition, HangupSide
from tests.unit.switch.flows import ringing_call
from tests.unit.switch.harness import Harness, MakeSwitch
from tests.unit.switch.ua import make_sdp

FAST = TimerConfig(T1=0.01, T2=0.04, T4=0.05, D=0.5)


async def fast_switch(make_switch: MakeSwitch) -> Harness:
    sw = await make_switch()
    sw.switch.tx.timers = FAST
    return sw


async def test_caller_that_never_acks_the_200_is_hung_up(make_switch: MakeSwitch) -> None:
    """RFC 3261 §13.3.1.4: no ACK within 64*T1 ends the call with BYE."""
    sw = await fast_switch(make_switch)
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    out, inc, _ = await ringing_call(sw, alice, bob)
    dialog = await inc.answer(make_sdp(41002))
    ok = await alice.response(out.invite.branch, "INVITE", final=True)  # and no ACK
    assert ok.status == 200
    bye_b = await dialog.request("BYE")
    bob.reply(bye_b, 200)
    bye_a = await alice.request("BYE", call_id=out.call_id)
    alice.reply(bye_a, 200)
    assert alice.duplicates > 0  # the 200 was retransmitted meanwhile
    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.ANSWERED
    assert record.hangup_side is HangupSide.SYSTEM


async def test_callee_that_never_responds_gives_408(make_switch: MakeSwitch) -> None:
    sw = await make_switch(ring_timeout=5.0)
    sw.switch.tx.timers = FAST
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    bob.close()  # registered, then gone (no answer at all, not even 100)
    out = await alice.call("sip:1002@acme.test", make_sdp(40000))
    final = await out.final()  # Timer B of the callee INVITE, well before the ring timeout
    assert final.status == 408
    record = (await sw.events.wait(CallEnded)).record
    assert (record.disposition, record.sip_cause) == (Disposition.NO_ANSWER, 408)
    assert record.duration < 2.0
