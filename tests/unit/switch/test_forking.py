"""Forking to every contact of the callee: all ring, the first 2xx wins, the rest are cancelled."""

from __future__ import annotations

from minicc.events import CallAnswered, CallEnded
from minicc.tenants.models import Disposition, HangupSide
from tests.unit.switch.harness import Harness
from tests.unit.switch.ua import HOST, make_sdp, new_tag


async def test_all_contacts_ring_first_answer_wins_other_cancelled(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    desk = await sw.phone("acme", "1002", name="bob-desk")
    mobile = await sw.phone("acme", "1002", name="bob-mobile")
    caller_rtp = await sw.rtp()
    out = await alice.call("sip:1002@acme.test", make_sdp(caller_rtp.port))

    on_desk = await desk.incoming()
    on_mobile = await mobile.incoming()
    # Two separate legs, each to the contact its phone registered.
    assert on_desk.call_id != on_mobile.call_id
    assert on_desk.invite.uri.startswith(f"sip:1002@{HOST}:{desk.port}")
    assert on_mobile.invite.uri.startswith(f"sip:1002@{HOST}:{mobile.port}")
    on_desk.ring()
    on_mobile.ring()
    await out.status(180)

    # The second phone to ring answers first: it wins, the desk phone is cancelled.
    await on_mobile.answer(make_sdp(41002))
    ok = await out.final()
    assert ok.status == 200
    await on_desk.cancelled()
    answered = await sw.events.wait(CallAnswered)
    assert answered.answered_by.startswith(f"sip:1002@{HOST}:{mobile.port}")
    assert [r.status for r in out.responses].count(200) == 1

    assert out.dialog is not None and on_mobile.dialog is not None
    assert (await out.dialog.bye()).status == 200
    bye = await on_mobile.dialog.request("BYE")
    mobile.reply(bye, 200)
    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.ANSWERED
    assert not desk.requests_seen("BYE")


async def test_both_answer_the_loser_gets_ack_and_bye(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    desk = await sw.phone("acme", "1002", name="bob-desk")
    mobile = await sw.phone("acme", "1002", name="bob-mobile")
    out = await alice.call("sip:1002@acme.test", make_sdp(41000))
    on_desk = await desk.incoming()
    on_mobile = await mobile.incoming()
    on_desk.ring()
    on_mobile.ring()
    await out.status(180)

    # A race: both 200 OKs are on the wire before the switch reads either.
    on_desk.reply(200, body=make_sdp(41002))
    on_mobile.reply(200, body=make_sdp(41004))
    ok = await out.final()
    assert ok.status == 200
    winner = (await sw.events.wait(CallAnswered)).answered_by
    win, lose = (on_desk, on_mobile) if f":{desk.port}" in winner else (on_mobile, on_desk)
    await win.ack()
    # The loser's 2xx is ACKed (RFC 3261 §13.2.2.4) and its dialog ended with BYE.
    await lose.ack()
    assert lose.dialog is not None
    bye = await lose.dialog.request("BYE")
    lose.ua.reply(bye, 200)
    # It may also have been sent a CANCEL that crossed its 200; it answers that too.
    for cancel in lose.ua.requests_seen("CANCEL"):
        lose.ua.reply(cancel, 200, to_tag=lose.to_tag)

    # The call itself goes on with the winner.
    assert sw.b2bua.active_calls == 1
    assert out.dialog is not None and win.dialog is not None
    await out.dialog.bye()
    bye = await win.dialog.request("BYE")
    win.ua.reply(bye, 200)
    assert (await sw.events.wait(CallEnded)).record.hangup_side is HangupSide.CALLER


async def test_second_2xx_from_a_forking_proxy_beyond_the_contact(sw: Harness) -> None:
    """One contact answering twice with different To tags (a proxy forked behind it)."""
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    out = await alice.call("sip:1002@acme.test", make_sdp(41000))
    inc = await bob.incoming()
    inc.ring()
    await out.status(180)
    inc.reply(200, body=make_sdp(41002))
    late_tag = new_tag()
    bob.reply(inc.invite, 200, to_tag=late_tag, body=make_sdp(41004), contact=True)
    assert (await out.final()).status == 200

    acks = [await inc.ack(), await inc.ack()]
    assert {a.to.tag for a in acks} == {inc.to_tag, late_tag}
    bye = await bob.request("BYE", call_id=inc.call_id)
    assert bye.to.tag == late_tag  # only the extra dialog is ended
    bob.reply(bye, 200)
    assert sw.b2bua.active_calls == 1


async def test_a_2xx_after_the_call_ended_is_acked_and_hung_up(sw: Harness) -> None:
    """A proxy behind the contact answers again once the call is over: minicc no longer
    holds the call, only the leg, and still ends the stray dialog (RFC 3261 §13.2.2.4)."""
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    out = await alice.call("sip:1002@acme.test", make_sdp(41000))
    inc = await bob.incoming()
    inc.reply(200, body=make_sdp(41002))
    assert (await out.final()).status == 200
    await inc.ack()
    assert out.dialog is not None and inc.dialog is not None
    await out.dialog.bye()
    bob.reply(await inc.dialog.request("BYE"), 200)
    assert (await sw.events.wait(CallEnded)).record.hangup_side is HangupSide.CALLER
    assert sw.b2bua.active_calls == 0

    late_tag = new_tag()
    bob.reply(inc.invite, 200, to_tag=late_tag, body=make_sdp(41004), contact=True)
    ack = await inc.ack()
    assert ack.to.tag == late_tag
    bye = await bob.request("BYE", call_id=inc.call_id)
    assert bye.to.tag == late_tag
    bob.reply(bye, 200)


async def test_busy_on_one_phone_lets_the_other_ring_on(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    desk = await sw.phone("acme", "1002", name="bob-desk")
    mobile = await sw.phone("acme", "1002", name="bob-mobile")
    out = await alice.call("sip:1002@acme.test", make_sdp(41000))
    on_desk, on_mobile = await desk.incoming(), await mobile.incoming()
    on_desk.ring()
    on_mobile.ring()
    await out.status(180)
    on_desk.reply(486)
    await on_desk.ack()
    await on_mobile.answer(make_sdp(41002))
    assert (await out.final()).status == 200
    assert (await sw.events.wait(CallAnswered)).answered_by.startswith(
        f"sip:1002@{HOST}:{mobile.port}"
    )


async def test_all_phones_busy_gives_486(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    desk = await sw.phone("acme", "1002", name="bob-desk")
    mobile = await sw.phone("acme", "1002", name="bob-mobile")
    out = await alice.call("sip:1002@acme.test", make_sdp(41000))
    on_desk, on_mobile = await desk.incoming(), await mobile.incoming()
    on_desk.reply(486)
    on_mobile.reply(480)
    assert (await out.final()).status == 486
    record = (await sw.events.wait(CallEnded)).record
    assert (record.disposition, record.sip_cause) == (Disposition.BUSY, 486)


async def test_decline_on_one_phone_stops_the_others(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    desk = await sw.phone("acme", "1002", name="bob-desk")
    mobile = await sw.phone("acme", "1002", name="bob-mobile")
    out = await alice.call("sip:1002@acme.test", make_sdp(41000))
    on_desk, on_mobile = await desk.incoming(), await mobile.incoming()
    on_desk.ring()
    on_mobile.ring()
    await out.status(180)
    on_desk.reply(603)  # Bob pressed "reject" on his desk phone
    assert (await out.final()).status == 603
    await on_mobile.cancelled()
    record = (await sw.events.wait(CallEnded)).record
    assert record.sip_cause == 603 and record.hangup_side is HangupSide.CALLEE
