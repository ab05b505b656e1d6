"""Extension to extension inside a tenant: 100/180/200, media through the relay, BYE, CDR."""

from __future__ import annotations

from minicc.events import CallAnswered, CallEnded, CallRinging, CallStarted
from minicc.tenants.models import Disposition, HangupSide
from tests.unit.switch.flows import answered_call
from tests.unit.switch.harness import Harness, MakeSwitch
from tests.unit.switch.ua import HOST, Talker, make_sdp, sdp_audio


async def test_call_answer_media_and_bye_from_caller(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    caller_rtp = await sw.rtp()
    out = await alice.call("sip:1002@acme.test", make_sdp(caller_rtp.port))
    assert out.challenge is not None and out.challenge.status == 401

    inc = await bob.incoming()
    assert inc.invite.body
    relay_b = sdp_audio(inc.invite.body)
    # The callee is told to send to minicc's relay, never to the caller's own port.
    assert relay_b[0] == HOST and relay_b[1] != caller_rtp.port
    assert RTP_RANGE[0] <= relay_b[1] <= RTP_RANGE[1]
    inc.reply(100)
    inc.ring()
    assert (await out.status(180)).to.tag

    callee_rtp = await sw.rtp()
    await inc.answer(make_sdp(callee_rtp.port))
    ok = await out.final()
    assert ok.status == 200
    assert ok.headers.get("Content-Type") == "application/sdp"
    relay_a = sdp_audio(ok.body)
    assert relay_a[0] == HOST and relay_a[1] not in (callee_rtp.port, relay_b[1])
    assert out.statuses[0] == 100 and 180 in out.statuses and out.statuses[-1] == 200
    assert out.dialog is not None and out.dialog.remote_target.startswith("sip:1002@")

    started = await sw.events.wait(CallStarted)
    assert (started.tenant, started.caller, started.callee) == ("acme", "1001", "1002")
    assert started.caller_name == "Alice Acme"
    await sw.events.wait(CallRinging)
    answered = await sw.events.wait(CallAnswered)
    assert answered.answered_by.startswith(f"sip:1002@{HOST}:{bob.port}")

    # Media both ways, each phone hearing the relay (symmetric RTP).
    a_talk, b_talk = Talker(caller_rtp), Talker(callee_rtp)
    a_talk.send(relay_a, 3)
    for _ in range(3):
        packet, source = await callee_rtp.recv()
        assert source == relay_b
        assert packet.payload == b"\xff" * 160
    b_talk.send(relay_b, 3, payload=b"\x7f" * 160)
    for _ in range(3):
        packet, source = await caller_rtp.recv()
        assert source == relay_a
        assert packet.payload == b"\x7f" * 160

    bye_ok = await out.dialog.bye()
    assert bye_ok.status == 200
    bye = await inc.dialog.request("BYE") if inc.dialog else None
    assert bye is not None
    bob.reply(bye, 200)

    ended = await sw.events.wait(CallEnded)
    record = ended.record
    assert record.disposition is Disposition.ANSWERED
    assert record.hangup_side is HangupSide.CALLER
    assert record.answer is not None and record.start <= record.answer <= record.end
    assert record.sip_cause is None
    assert (record.from_user, record.to_user, record.from_display) == ("1001", "1002", "Alice Acme")
    assert record.call_id == out.call_id
    assert sw.b2bua.active_calls == 0
    assert sw.switch.media is not None and not sw.switch.media.sessions


RTP_RANGE = (43000, 43999)


async def test_bye_from_callee(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    call = await answered_call(sw, alice, bob)

    assert (await call.b.bye()).status == 200
    bye = await call.a.request("BYE")
    alice.reply(bye, 200)

    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.ANSWERED
    assert record.hangup_side is HangupSide.CALLEE
    assert record.answer is not None
    assert sw.b2bua.active_calls == 0


async def test_caller_id_passes_through_and_legs_are_separate(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001", display='Front "Desk" \\ 1')
    bob = await sw.phone("acme", "1002")
    caller_rtp = await sw.rtp()
    out = await alice.call("sip:1002@acme.test", make_sdp(caller_rtp.port))
    inc = await bob.incoming()
    invite = inc.invite

    # Caller ID: the display name as the phone sent it, the authenticated number.
    assert invite.from_.display == 'Front "Desk" \\ 1'
    assert invite.from_.uri.user == "1001"
    assert invite.from_.uri.host == "acme.test"
    assert invite.to.uri.user == "1002" and invite.to.uri.host == "acme.test"
    assert invite.uri.startswith(f"sip:1002@{HOST}:{bob.port}")
    # A separate leg: nothing of the A leg's identifiers reaches the callee.
    assert invite.call_id != out.call_id
    assert invite.from_.tag and invite.from_.tag not in out.invite.header("From")
    assert len(invite.vias) == 1 and invite.vias[0].port != alice.port
    assert "Authorization" not in invite.headers
    assert invite.max_forwards == 69
    assert invite.contacts[0].uri.host == HOST

    started = await sw.events.wait(CallStarted)
    assert started.caller_name == 'Front "Desk" \\ 1'
    inc.reply(486)
    assert (await out.final()).status == 486
    record = (await sw.events.wait(CallEnded)).record
    assert record.from_display == 'Front "Desk" \\ 1'


async def test_the_2xx_contact_is_the_target_for_later_requests(sw: Harness) -> None:
    """RFC 3261 §12.1.2 / §13.2.2.4: the 2xx's Contact, not the 180's, is the remote target."""
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    out = await alice.call("sip:1002@acme.test", make_sdp(40000))
    inc = await bob.incoming()
    inc.ring()  # Contact without parameters
    await out.status(180)
    moved = f"<sip:1002@{HOST}:{bob.port};ob>"
    bob.reply(
        inc.invite,
        200,
        to_tag=inc.to_tag,
        body=make_sdp(40002),
        contact=False,
        extra=[("Contact", moved)],
    )
    assert (await out.final()).status == 200
    await inc.ack()
    assert out.dialog is not None
    assert (await out.dialog.bye()).status == 200
    bye = await bob.request("BYE", call_id=inc.call_id)
    assert bye.uri == moved.strip("<>")
    bob.reply(bye, 200)


async def test_without_the_relay_sdp_passes_through(make_switch: MakeSwitch) -> None:
    sw = await make_switch(media_relay=False)
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    out = await alice.call("sip:1002@acme.test", make_sdp(40000))
    inc = await bob.incoming()
    assert inc.invite.body and sdp_audio(inc.invite.body) == (HOST, 40000)
    await inc.answer(make_sdp(40002))
    ok = await out.final()
    assert ok.status == 200 and sdp_audio(ok.body) == (HOST, 40002)
    assert out.dialog is not None
    assert (await out.dialog.bye()).status == 200
    record = (await sw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.ANSWERED
