"""Shutting the switch down (what SIGINT/SIGTERM end in): calls are ended, not dropped."""

from __future__ import annotations

import asyncio

from minicc.events import CallEnded
from minicc.tenants.models import Disposition, HangupSide
from tests.unit.switch.flows import answered_call, ringing_call
from tests.unit.switch.harness import Harness


async def test_stop_sends_bye_to_both_parties_and_returns_once_answered(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    carol = await sw.phone("acme", "1003")
    up = await answered_call(sw, alice, bob)
    ringing_out, ringing_in, _ = await ringing_call(sw, carol, alice)
    loop = asyncio.get_running_loop()

    begin = loop.time()
    stopping = asyncio.create_task(sw.switch.stop(grace=2.0))
    # The answered call: each party gets a BYE in its own dialog and answers it.
    bye_a = await up.a.request("BYE")
    bye_b = await up.b.request("BYE")
    alice.reply(bye_a, 200)
    bob.reply(bye_b, 200)
    # The ringing call: the caller is refused with 503, the ringing phone is cancelled.
    refused = await ringing_out.final()
    assert refused.status == 503
    await ringing_in.cancelled()
    await asyncio.wait_for(stopping, 3.0)
    # Everything was answered, so stop() did not sit out its whole grace period.
    assert loop.time() - begin < 1.0

    records = {e.record.call_id: e.record for e in sw.events.of(CallEnded)}
    answered = records[up.out.call_id]
    assert answered.disposition is Disposition.ANSWERED
    assert answered.hangup_side is HangupSide.SYSTEM
    assert answered.answer is not None
    unanswered = records[ringing_out.call_id]
    assert unanswered.hangup_side is HangupSide.SYSTEM
    assert unanswered.sip_cause == 503 and unanswered.answer is None
    assert sw.switch.media is not None and not sw.switch.media.sessions


async def test_stop_gives_up_on_phones_that_never_answer_the_bye(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    up = await answered_call(sw, alice, bob)
    loop = asyncio.get_running_loop()
    begin = loop.time()
    await asyncio.wait_for(sw.switch.stop(grace=0.5), 3.0)  # nobody answers the BYEs
    assert 0.4 < loop.time() - begin < 1.5
    await up.a.request("BYE")
    await up.b.request("BYE")
    record = (await sw.events.wait(CallEnded)).record
    assert record.hangup_side is HangupSide.SYSTEM
