"""Agents for calls the engine owns: ring attempts, their results, bridging and hang-ups."""

from __future__ import annotations

import asyncio

from minicc.events import CallEnded
from minicc.queue.prompts import PromptCatalogue
from minicc.switch.control import PlaybackOutcome, RingResult
from minicc.tenants.models import Disposition, HangupSide
from tests.unit.switch.flows import AppCaller, answer_agent, app_call
from tests.unit.switch.harness import FakeEngine, Harness
from tests.unit.switch.ua import HOST, SipUA, Talker, make_sdp, sdp_audio, sdp_direction

MOH = PromptCatalogue().find("en", "moh").path
RING = 5.0  # an attempt's timeout where the test does not wait for it


async def _caller_on_hold(asw: Harness, engine: FakeEngine) -> tuple[AppCaller, int]:
    """Alice calls the queue number and hears music on hold."""
    alice = await asw.phone("acme", "1001")
    call = await app_call(asw, engine, alice)
    music = asw.switch.play(call.key, [MOH], loop=True)
    await call.rtp.recv()
    return call, music


async def _result(engine: FakeEngine, key: str) -> tuple[int, RingResult]:
    attempt, result = (await engine.wait("ring_result", key)).args
    return attempt, result


async def test_agent_answers_bridged_both_ways(asw: Harness, engine: FakeEngine) -> None:
    call, music = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")

    attempt = asw.switch.ring(call.key, "1002", timeout=RING)
    inc = await bob.incoming()
    # Bob's phone shows who calls, and is told to send to the relay's other endpoint.
    invite = inc.invite
    assert invite.from_.uri.user == "1001" and invite.from_.uri.host == "acme.test"
    assert invite.from_.display == "Alice Acme"
    assert invite.to.uri.user == "1002"
    assert invite.body
    relay_b = sdp_audio(invite.body)
    assert relay_b[0] == HOST and relay_b[1] not in (call.sends_to[1], call.rtp.port)
    # Only the caller's codec (the relay does not transcode) and its telephone-event.
    m_line = next(x for x in invite.body.decode().splitlines() if x.startswith("m=audio"))
    assert m_line.endswith(f" {relay_b[1]} RTP/AVP 0 101")
    inc.ring()
    agent_rtp = await asw.rtp()
    await inc.answer(make_sdp(agent_rtp.port, codecs=[(0, "PCMU")]))

    # The music is cut first, then the engine hears the answer.
    cut = await engine.wait("playback_done", call.key)
    assert cut.args == (music, PlaybackOutcome.CANCELLED)
    assert await _result(engine, call.key) == (attempt, RingResult.ANSWERED)
    assert engine.told.index(cut) < engine.told.index(engine.of("ring_result")[0])

    # Media both ways through the relay; the caller hears Bob, not the music.
    a_talk, b_talk = Talker(call.rtp), Talker(agent_rtp)
    a_talk.send(call.sends_to, 3, payload=b"\x11" * 160)
    for _ in range(3):
        packet, source = await agent_rtp.recv()
        assert source == relay_b and packet.payload == b"\x11" * 160
    b_talk.send(relay_b, 3, payload=b"\x22" * 160)
    heard = []
    while len(heard) < 3:
        packet, source = await call.rtp.recv()
        assert source == call.sends_to
        if packet.payload == b"\x22" * 160:
            heard.append(packet)
    assert asw.b2bua.app.player.active == 0

    # The caller puts Bob on hold: relayed as in any two-party call (an agent's own hold is
    # minicc's business, see test_hold.py).
    assert inc.dialog is not None
    hold_sdp = make_sdp(call.rtp.port, direction="sendonly", version=2)
    hold = asyncio.create_task(call.dialog.send("INVITE", body=hold_sdp))
    reinvite = await inc.dialog.request("INVITE")
    assert reinvite.body and sdp_direction(reinvite.body) == "sendonly"
    assert sdp_audio(reinvite.body) == relay_b
    bob.reply(
        reinvite,
        200,
        to_tag=inc.dialog.local_tag,
        body=make_sdp(agent_rtp.port, direction="recvonly", session_id=9999, version=2),
    )
    ok = await hold
    assert ok.status == 200 and sdp_direction(ok.body) == "recvonly"
    assert (await inc.dialog.request("ACK")).cseq.seq == reinvite.cseq.seq


async def test_agent_hangs_up_after_the_bridge(asw: Harness, engine: FakeEngine) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")
    asw.switch.ring(call.key, "1002", timeout=RING)
    agent = await answer_agent(asw, bob)
    assert (await _result(engine, call.key))[1] is RingResult.ANSWERED

    assert (await agent.dialog.bye()).status == 200
    bye = await call.dialog.request("BYE")
    call.caller.reply(bye, 200)
    assert (await engine.wait("call_ended", call.key)).args == (False,)
    record = (await asw.events.wait(CallEnded)).record
    assert (record.disposition, record.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLEE)
    assert (record.to_user, record.call_id) == ("8000", call.out.call_id)


async def test_caller_hangs_up_after_the_bridge(asw: Harness, engine: FakeEngine) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")
    asw.switch.ring(call.key, "1002", timeout=RING)
    agent = await answer_agent(asw, bob)
    await _result(engine, call.key)

    assert (await call.dialog.bye()).status == 200
    bye = await agent.dialog.request("BYE")
    bob.reply(bye, 200)
    assert (await engine.wait("call_ended", call.key)).args == (True,)
    assert (await asw.events.wait(CallEnded)).record.hangup_side is HangupSide.CALLER


async def test_hangup_byes_caller_and_agent(asw: Harness, engine: FakeEngine) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")
    asw.switch.ring(call.key, "1002", timeout=RING)
    agent = await answer_agent(asw, bob)
    await _result(engine, call.key)

    asw.switch.hangup(call.key)
    call.caller.reply(await call.dialog.request("BYE"), 200)
    bob.reply(await agent.dialog.request("BYE"), 200)
    assert (await engine.wait("call_ended", call.key)).args == (False,)
    record = (await asw.events.wait(CallEnded)).record
    assert (record.disposition, record.hangup_side) == (Disposition.ANSWERED, HangupSide.SYSTEM)
    assert asw.b2bua.active_calls == 0


async def test_busy_and_decline(asw: Harness, engine: FakeEngine) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")
    carol = await asw.phone("acme", "1003")

    busy = asw.switch.ring(call.key, "1002", timeout=RING)
    inc = await bob.incoming()
    inc.reply(486)
    await inc.ack()
    assert await _result(engine, call.key) == (busy, RingResult.BUSY)

    declined = asw.switch.ring(call.key, "1003", timeout=RING)
    inc = await carol.incoming()
    inc.ring()
    inc.reply(603)
    await inc.ack()
    assert await _result(engine, call.key) == (declined, RingResult.REJECTED)

    failed = asw.switch.ring(call.key, "1002", timeout=RING)
    inc = await bob.incoming()
    inc.reply(488)
    await inc.ack()
    assert await _result(engine, call.key) == (failed, RingResult.FAILED)
    # The caller is still there, still hearing the music.
    assert asw.b2bua.active_calls == 1 and asw.b2bua.app.player.active == 1
    await call.rtp.recv()


async def test_no_answer_cancels_the_agent(asw: Harness, engine: FakeEngine) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")
    attempt = asw.switch.ring(call.key, "1002", timeout=0.3)
    inc = await bob.incoming()
    inc.ring()
    await inc.cancelled()
    assert await _result(engine, call.key) == (attempt, RingResult.NO_ANSWER)
    assert asw.b2bua.active_calls == 1


async def test_ring_all_first_answer_wins_the_other_is_cancelled(
    asw: Harness, engine: FakeEngine
) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")
    carol = await asw.phone("acme", "1003")
    to_bob = asw.switch.ring(call.key, "1002", timeout=RING)
    to_carol = asw.switch.ring(call.key, "1003", timeout=RING)
    on_bob = await bob.incoming()
    on_bob.ring()

    agent = await answer_agent(asw, carol)
    await on_bob.cancelled()
    results = [await _result(engine, call.key) for _ in range(2)]
    assert results == [(to_carol, RingResult.ANSWERED), (to_bob, RingResult.CANCELLED)]
    assert asw.switch.hangup(call.key) is None
    call.caller.reply(await call.dialog.request("BYE"), 200)
    carol.reply(await agent.dialog.request("BYE"), 200)
    await engine.wait("call_ended", call.key)
    assert not bob.requests_seen("BYE")


async def test_agent_with_two_phones_one_answers(asw: Harness, engine: FakeEngine) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    desk = await asw.phone("acme", "1002", name="bob-desk")
    mobile = await asw.phone("acme", "1002", name="bob-mobile")
    attempt = asw.switch.ring(call.key, "1002", timeout=RING)
    on_desk = await desk.incoming()
    on_desk.ring()
    await answer_agent(asw, mobile)
    await on_desk.cancelled()
    assert await _result(engine, call.key) == (attempt, RingResult.ANSWERED)


async def test_one_phone_busy_the_other_rings_on(asw: Harness, engine: FakeEngine) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    desk = await asw.phone("acme", "1002", name="bob-desk")
    mobile = await asw.phone("acme", "1002", name="bob-mobile")
    attempt = asw.switch.ring(call.key, "1002", timeout=RING)
    on_desk = await desk.incoming()
    on_desk.reply(486)
    await on_desk.ack()
    await answer_agent(asw, mobile)
    assert await _result(engine, call.key) == (attempt, RingResult.ANSWERED)
    assert len(engine.of("ring_result")) == 1


async def test_cancel_ring(asw: Harness, engine: FakeEngine) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")
    attempt = asw.switch.ring(call.key, "1002", timeout=RING)
    inc = await bob.incoming()
    inc.ring()
    asw.switch.cancel_ring(call.key, attempt)
    await inc.cancelled()
    assert await _result(engine, call.key) == (attempt, RingResult.CANCELLED)
    asw.switch.cancel_ring(call.key, attempt)  # again: nothing more happens
    assert len(engine.of("ring_result")) == 1


async def test_unregistered_extension_is_unavailable_never_reentrant(
    asw: Harness, engine: FakeEngine
) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    attempt = asw.switch.ring(call.key, "1003", timeout=RING)
    assert not engine.of("ring_result")  # not from inside ring()
    assert await _result(engine, call.key) == (attempt, RingResult.UNAVAILABLE)
    unknown = asw.switch.ring(call.key, "4711", timeout=RING)
    assert await _result(engine, call.key) == (unknown, RingResult.UNAVAILABLE)


async def test_caller_hangs_up_while_the_agent_rings(asw: Harness, engine: FakeEngine) -> None:
    call, music = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")
    attempt = asw.switch.ring(call.key, "1002", timeout=RING)
    inc = await bob.incoming()
    inc.ring()

    assert (await call.dialog.bye()).status == 200
    await inc.cancelled()
    assert await _result(engine, call.key) == (attempt, RingResult.CANCELLED)
    assert (await engine.wait("playback_done", call.key)).args == (
        music,
        PlaybackOutcome.ABORTED,
    )
    assert (await engine.wait("call_ended", call.key)).args == (True,)
    assert [t.method for t in engine.told][-1] == "call_ended"
    record = (await asw.events.wait(CallEnded)).record
    assert (record.disposition, record.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLER)


async def test_late_answer_after_cancel_is_acked_and_byed(asw: Harness, engine: FakeEngine) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")
    attempt = asw.switch.ring(call.key, "1002", timeout=RING)
    inc = await bob.incoming()
    inc.ring()
    asw.switch.cancel_ring(call.key, attempt)
    cancel = await bob.request("CANCEL", call_id=inc.call_id)
    # The agent's 200 crossed the CANCEL: minicc ACKs it and ends that dialog at once.
    bob.reply(cancel, 200, to_tag=inc.to_tag)
    await inc.answer(make_sdp(40002))
    assert inc.dialog is not None
    bye = await inc.dialog.request("BYE")
    bob.reply(bye, 200)
    assert await _result(engine, call.key) == (attempt, RingResult.CANCELLED)
    assert asw.b2bua.active_calls == 1 and engine.of("call_ended") == []


async def test_ring_refused_when_already_bridged_or_call_gone(
    asw: Harness, engine: FakeEngine
) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    bob: SipUA = await asw.phone("acme", "1002")
    asw.switch.ring(call.key, "1002", timeout=RING)
    await answer_agent(asw, bob)
    await _result(engine, call.key)
    second = asw.switch.ring(call.key, "1003", timeout=RING)
    assert await _result(engine, call.key) == (second, RingResult.FAILED)
    gone = asw.switch.ring("no-such-call", "1002", timeout=RING)
    assert (await engine.wait("ring_result", "no-such-call")).args == (
        gone,
        RingResult.CANCELLED,
    )


async def test_stop_ends_application_calls_and_cancels_ringing_agents(
    asw: Harness, engine: FakeEngine
) -> None:
    call, _ = await _caller_on_hold(asw, engine)
    bob = await asw.phone("acme", "1002")
    attempt = asw.switch.ring(call.key, "1002", timeout=RING)
    inc = await bob.incoming()
    inc.ring()

    stopping = asyncio.create_task(asw.switch.stop(grace=2.0))
    call.caller.reply(await call.dialog.request("BYE"), 200)
    await inc.cancelled()
    await asyncio.wait_for(stopping, 3.0)
    assert await _result(engine, call.key) == (attempt, RingResult.CANCELLED)
    assert (await engine.wait("call_ended", call.key)).args == (False,)
    record = (await asw.events.wait(CallEnded)).record
    assert (record.hangup_side, record.disposition) == (HangupSide.SYSTEM, Disposition.ANSWERED)
