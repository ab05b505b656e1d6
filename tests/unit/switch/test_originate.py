"""Calls minicc places itself, agent first (CallControl.originate): callbacks.

Bob (1002) is the agent; Carol (1003) stands in for the customer, since only extensions
can be dialled until trunks exist. The engine is the recording
:class:`~tests.unit.switch.harness.FakeEngine`.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from minicc.events import CallAnswered, CallEnded, CallStarted
from minicc.switch.control import OriginateLeg, RingResult
from minicc.switch.originate import CALL_ID_PREFIX, ringback_clip
from minicc.tenants.models import CallRecord, Disposition, HangupSide
from tests.unit.switch.flows import Agent, answer_agent
from tests.unit.switch.harness import FakeEngine, Harness
from tests.unit.switch.ua import (
    HOST,
    IncomingCall,
    RtpPeer,
    SipUA,
    Talker,
    make_sdp,
    sdp_audio,
    sdp_direction,
)

RING = 5.0  # a timeout the test does not wait for
AGENT, CALLEE = OriginateLeg.AGENT, OriginateLeg.CALLEE
RTP_RANGE = range(43000, 44000)


def _m_line(body: bytes) -> str:
    return next(x for x in body.decode().splitlines() if x.startswith("m=audio"))


async def _result(engine: FakeEngine, key: str) -> tuple[OriginateLeg, RingResult]:
    leg, result = (await engine.wait("originate_result", key)).args
    return leg, result


async def _ended(engine: FakeEngine, key: str) -> bool:
    (by_caller,) = (await engine.wait("call_ended", key)).args
    # The end is the last thing the engine hears of the call.
    assert [t.method for t in engine.told if t.key == key][-1] == "call_ended"
    return bool(by_caller)


async def _record(asw: Harness) -> CallRecord:
    return (await asw.events.wait(CallEnded)).record


async def _phones(asw: Harness) -> tuple[SipUA, SipUA]:
    return await asw.phone("acme", "1002"), await asw.phone("acme", "1003")


async def _dialled(asw: Harness, engine: FakeEngine, **kwargs: float) -> tuple[str, Agent, SipUA]:
    """Bob answers a callback to 1003; returns the key, Bob's side and Carol's phone."""
    bob, carol = await _phones(asw)
    key = asw.switch.originate(
        "acme",
        "1002",
        "1003",
        timeout=RING,
        dial_timeout=kwargs.get("dial_timeout", RING),
        caller_id="1003",
    )
    agent = await answer_agent(asw, bob)
    assert await _result(engine, key) == (AGENT, RingResult.ANSWERED)
    return key, agent, carol


async def _bridged(
    asw: Harness, engine: FakeEngine
) -> tuple[str, Agent, SipUA, IncomingCall, RtpPeer]:
    key, agent, carol = await _dialled(asw, engine)
    on_carol = await carol.incoming()
    on_carol.ring()
    carol_rtp = await asw.rtp()
    await on_carol.answer(make_sdp(carol_rtp.port, codecs=[(0, "PCMU")], session_id=5555))
    assert await _result(engine, key) == (CALLEE, RingResult.ANSWERED)
    return key, agent, carol, on_carol, carol_rtp


async def _agent_byed(agent: Agent) -> None:
    bye = await agent.dialog.request("BYE")
    agent.inc.ua.reply(bye, 200)


# ----------------------------------------------------------------------------- answered


async def test_agent_then_number_answer_bridged_both_ways(asw: Harness, engine: FakeEngine) -> None:
    bob, carol = await _phones(asw)
    key = asw.switch.originate(
        "acme", "1002", "1003", timeout=RING, dial_timeout=RING, caller_id="+15551234"
    )
    assert key.partition("/")[2].startswith(CALL_ID_PREFIX)
    assert engine.told == []  # nothing from inside originate()

    agent = await answer_agent(asw, bob)
    # Bob's phone shows the customer's number, marked as a callback, in the tenant's domain;
    # it is offered the relay's agent endpoint in both G.711 laws with RFC 4733 events.
    invite = agent.inc.invite
    assert (invite.from_.uri.user, invite.from_.uri.host) == ("+15551234", "acme.test")
    assert invite.from_.display == "Callback"
    assert invite.to.uri.user == "1002"
    assert agent.sends_to[0] == HOST and agent.sends_to[1] in RTP_RANGE
    assert invite.body and _m_line(invite.body).endswith(f" {agent.sends_to[1]} RTP/AVP 0 8 101")
    assert await _result(engine, key) == (AGENT, RingResult.ANSWERED)

    # Only now is the number dialled: from the agent, in the codec Bob answered with.
    on_carol = await carol.incoming()
    dialled = on_carol.invite
    assert (dialled.from_.uri.user, dialled.from_.uri.host) == ("1002", "acme.test")
    assert dialled.from_.display == "Bob Acme"
    assert dialled.to.uri.user == "1003"
    assert dialled.body
    relay_b = sdp_audio(dialled.body)
    assert relay_b[0] == HOST and relay_b[1] in RTP_RANGE and relay_b != agent.sends_to
    assert _m_line(dialled.body).endswith(f" {relay_b[1]} RTP/AVP 0 101")
    on_carol.ring()

    # Bob hears the ringing tone meanwhile, from the port he sends to.
    packet, source = await agent.rtp.recv()
    assert source == agent.sends_to and packet.header.payload_type == 0
    assert packet.payload in ringback_clip().ulaw

    carol_rtp = await asw.rtp()
    await on_carol.answer(make_sdp(carol_rtp.port, codecs=[(0, "PCMU")], session_id=5555))
    assert await _result(engine, key) == (CALLEE, RingResult.ANSWERED)
    answered = await asw.events.wait(CallAnswered)
    assert answered.answered_by.startswith("sip:1003@")

    # Media both ways through the relay; the tone stopped.
    bob_talk, carol_talk = Talker(agent.rtp), Talker(carol_rtp)
    bob_talk.send(agent.sends_to, 3, payload=b"\x11" * 160)
    for _ in range(3):
        packet, source = await carol_rtp.recv()
        assert source == relay_b and packet.payload == b"\x11" * 160
    carol_talk.send(relay_b, 3, payload=b"\x22" * 160)
    heard = 0
    while heard < 3:
        packet, source = await agent.rtp.recv()
        assert source == agent.sends_to
        heard += packet.payload == b"\x22" * 160
    assert asw.b2bua.app.player.active == 0

    # The customer hangs up: Bob gets BYE, the engine hears the dialled party ended it.
    assert on_carol.dialog is not None
    assert (await on_carol.dialog.bye()).status == 200
    await _agent_byed(agent)
    assert await _ended(engine, key) is True
    assert [t.args for t in engine.of("originate_result", key)] == [
        (AGENT, RingResult.ANSWERED),
        (CALLEE, RingResult.ANSWERED),
    ]
    started = await asw.events.wait(CallStarted)
    assert (started.caller, started.callee, started.caller_name) == ("1002", "1003", "Callback")
    record = await _record(asw)
    assert (record.from_user, record.to_user, record.from_display) == ("1002", "1003", "Callback")
    assert record.call_id == started.call_id and record.call_id.startswith(CALL_ID_PREFIX)
    assert (record.disposition, record.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLEE)
    assert record.answer is not None
    assert asw.b2bua.active_calls == 0


async def test_number_is_offered_the_agents_codec_and_reinvites_are_relayed(
    asw: Harness, engine: FakeEngine
) -> None:
    bob, carol = await _phones(asw)
    key = asw.switch.originate("acme", "1002", "1003", timeout=RING, dial_timeout=RING)
    inc = await bob.incoming()
    # Without caller_id the agent's phone shows the number it is about to call.
    assert inc.invite.from_.uri.user == "1003"
    bob_rtp = await asw.rtp()
    assert inc.invite.body
    to_relay_a = sdp_audio(inc.invite.body)
    await inc.answer(make_sdp(bob_rtp.port, codecs=[(8, "PCMA")], telephone_event=None))
    on_carol = await carol.incoming()
    assert on_carol.invite.body
    assert _m_line(on_carol.invite.body).endswith(" RTP/AVP 8")
    packet, _ = await bob_rtp.recv()
    assert packet.header.payload_type == 8  # the ringing tone in A-law
    carol_rtp = await asw.rtp()
    await on_carol.answer(make_sdp(carol_rtp.port, codecs=[(8, "PCMA")], telephone_event=None))
    assert [await _result(engine, key) for _ in range(2)] == [
        (AGENT, RingResult.ANSWERED),
        (CALLEE, RingResult.ANSWERED),
    ]

    # Bob holds: the re-INVITE reaches Carol pointing at the relay, her answer reaches Bob.
    assert inc.dialog is not None and on_carol.dialog is not None
    hold_sdp = make_sdp(bob_rtp.port, direction="sendonly", version=2, telephone_event=None)
    hold = asyncio.create_task(inc.dialog.send("INVITE", body=hold_sdp))
    reinvite = await on_carol.dialog.request("INVITE")
    assert reinvite.body and sdp_direction(reinvite.body) == "sendonly"
    carol.reply(
        reinvite,
        200,
        to_tag=on_carol.to_tag,
        body=make_sdp(carol_rtp.port, direction="recvonly", codecs=[(8, "PCMA")]),
    )
    ok = await hold
    assert ok.status == 200 and sdp_direction(ok.body) == "recvonly"
    assert sdp_audio(ok.body) == to_relay_a
    assert (await on_carol.dialog.request("ACK")).cseq.seq == reinvite.cseq.seq

    # hangup() after the bridge: BYE to both.
    asw.switch.hangup(key)
    bob.reply(await inc.dialog.request("BYE"), 200)
    carol.reply(await on_carol.dialog.request("BYE"), 200)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.hangup_side) == (Disposition.ANSWERED, HangupSide.SYSTEM)


async def test_agent_with_two_phones_one_answers(asw: Harness, engine: FakeEngine) -> None:
    desk = await asw.phone("acme", "1002", name="bob-desk")
    mobile = await asw.phone("acme", "1002", name="bob-mobile")
    key = asw.switch.originate("acme", "1002", "1003", timeout=RING, dial_timeout=RING)
    on_desk = await desk.incoming()
    on_desk.ring()
    agent = await answer_agent(asw, mobile)
    await on_desk.cancelled()
    assert await _result(engine, key) == (AGENT, RingResult.ANSWERED)
    # 1003 has no phone: the callback fails there, and the agent who answered is hung up.
    assert await _result(engine, key) == (CALLEE, RingResult.UNAVAILABLE)
    await _agent_byed(agent)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.sip_cause) == (Disposition.NO_ANSWER, 480)
    assert record.hangup_side is HangupSide.SYSTEM


# ----------------------------------------------------------------------------- the agent fails


async def test_agent_without_a_phone_is_unavailable_never_reentrant(
    asw: Harness, engine: FakeEngine
) -> None:
    carol = await asw.phone("acme", "1003")
    key = asw.switch.originate("acme", "1002", "1003", timeout=RING, dial_timeout=RING)
    assert engine.told == []
    assert await _result(engine, key) == (AGENT, RingResult.UNAVAILABLE)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.from_user, record.to_user) == ("1002", "1003")
    assert (record.disposition, record.sip_cause) == (Disposition.CANCELLED, 480)
    assert record.hangup_side is HangupSide.SYSTEM and record.answer is None
    assert not carol.pending() and asw.b2bua.active_calls == 0


@pytest.mark.parametrize(("status", "result"), [(486, RingResult.BUSY), (603, RingResult.REJECTED)])
async def test_agent_refuses_and_the_number_is_not_dialled(
    asw: Harness, engine: FakeEngine, status: int, result: RingResult
) -> None:
    bob, carol = await _phones(asw)
    key = asw.switch.originate("acme", "1002", "1003", timeout=RING, dial_timeout=RING)
    inc = await bob.incoming()
    inc.ring()
    inc.reply(status)
    await inc.ack()
    assert await _result(engine, key) == (AGENT, result)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.sip_cause) == (Disposition.CANCELLED, status)
    assert record.hangup_side is HangupSide.CALLER
    assert not carol.requests_seen("INVITE")
    assert len(engine.of("originate_result", key)) == 1


async def test_agent_does_not_answer(asw: Harness, engine: FakeEngine) -> None:
    bob, carol = await _phones(asw)
    key = asw.switch.originate("acme", "1002", "1003", timeout=0.3, dial_timeout=RING)
    inc = await bob.incoming()
    inc.ring()
    await inc.cancelled()
    assert await _result(engine, key) == (AGENT, RingResult.NO_ANSWER)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.sip_cause) == (Disposition.CANCELLED, 408)
    assert record.hangup_side is HangupSide.SYSTEM
    assert not carol.requests_seen("INVITE")


# ----------------------------------------------------------------------------- the number fails


async def test_number_busy_hangs_up_the_agent(asw: Harness, engine: FakeEngine) -> None:
    key, agent, carol = await _dialled(asw, engine)
    on_carol = await carol.incoming()
    on_carol.reply(486)
    await on_carol.ack()
    assert await _result(engine, key) == (CALLEE, RingResult.BUSY)
    await _agent_byed(agent)
    assert await _ended(engine, key) is True  # the dialled party's doing
    record = await _record(asw)
    assert (record.disposition, record.sip_cause) == (Disposition.BUSY, 486)
    assert record.hangup_side is HangupSide.CALLEE


async def test_number_not_answering_is_cancelled(asw: Harness, engine: FakeEngine) -> None:
    key, agent, carol = await _dialled(asw, engine, dial_timeout=0.3)
    on_carol = await carol.incoming()
    on_carol.ring()
    await on_carol.cancelled()
    assert await _result(engine, key) == (CALLEE, RingResult.NO_ANSWER)
    await _agent_byed(agent)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.sip_cause) == (Disposition.NO_ANSWER, 408)
    assert record.hangup_side is HangupSide.SYSTEM


async def test_outside_number_fails_without_a_trunk(
    asw: Harness, engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    bob = await asw.phone("acme", "1002")
    with caplog.at_level(logging.WARNING, logger="minicc.switch.originate"):
        key = asw.switch.originate("acme", "1002", "+4930123456", timeout=RING, dial_timeout=RING)
        agent = await answer_agent(asw, bob)
        assert agent.inc.invite.from_.uri.user == "+4930123456"
        assert [await _result(engine, key) for _ in range(2)] == [
            (AGENT, RingResult.ANSWERED),
            (CALLEE, RingResult.FAILED),
        ]
        await _agent_byed(agent)
    assert await _ended(engine, key) is False
    assert any("no trunk or dial rule" in r.getMessage() for r in caplog.records)
    record = await _record(asw)
    assert (record.to_user, record.disposition) == ("+4930123456", Disposition.FAILED)
    assert record.hangup_side is HangupSide.SYSTEM


# ----------------------------------------------------------------------------- hang-ups


async def test_hangup_while_the_agent_rings_cancels(asw: Harness, engine: FakeEngine) -> None:
    bob, _ = await _phones(asw)
    key = asw.switch.originate("acme", "1002", "1003", timeout=RING, dial_timeout=RING)
    inc = await bob.incoming()
    inc.ring()
    asw.switch.hangup(key)
    await inc.cancelled()
    assert await _result(engine, key) == (AGENT, RingResult.CANCELLED)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.sip_cause) == (Disposition.CANCELLED, 487)
    assert record.hangup_side is HangupSide.SYSTEM
    asw.switch.hangup(key)  # again: the call is gone, nothing happens
    assert len(engine.of("call_ended", key)) == 1


async def test_hangup_before_anything_rang(asw: Harness, engine: FakeEngine) -> None:
    bob, _ = await _phones(asw)
    key = asw.switch.originate("acme", "1002", "1003", timeout=RING, dial_timeout=RING)
    asw.switch.hangup(key)  # the media ports are not even bound yet
    assert await _result(engine, key) == (AGENT, RingResult.CANCELLED)
    assert await _ended(engine, key) is False
    assert (await _record(asw)).disposition is Disposition.CANCELLED
    assert not bob.requests_seen("INVITE") and asw.b2bua.active_calls == 0


async def test_hangup_while_the_number_rings(asw: Harness, engine: FakeEngine) -> None:
    key, agent, carol = await _dialled(asw, engine)
    on_carol = await carol.incoming()
    on_carol.ring()
    asw.switch.hangup(key)
    await on_carol.cancelled()
    await _agent_byed(agent)
    assert await _result(engine, key) == (CALLEE, RingResult.CANCELLED)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.hangup_side) == (Disposition.CANCELLED, HangupSide.SYSTEM)


async def test_agent_hangs_up_while_the_number_rings(asw: Harness, engine: FakeEngine) -> None:
    key, agent, carol = await _dialled(asw, engine)
    on_carol = await carol.incoming()
    on_carol.ring()
    assert (await agent.dialog.bye()).status == 200
    await on_carol.cancelled()
    assert await _result(engine, key) == (CALLEE, RingResult.CANCELLED)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.hangup_side) == (Disposition.CANCELLED, HangupSide.CALLER)


async def test_agent_hangs_up_after_the_bridge(asw: Harness, engine: FakeEngine) -> None:
    key, agent, carol, on_carol, _ = await _bridged(asw, engine)
    assert (await agent.dialog.bye()).status == 200
    assert on_carol.dialog is not None
    carol.reply(await on_carol.dialog.request("BYE"), 200)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLER)


async def test_stop_cancels_a_ringing_agent(asw: Harness, engine: FakeEngine) -> None:
    bob, _ = await _phones(asw)
    key = asw.switch.originate("acme", "1002", "1003", timeout=RING, dial_timeout=RING)
    inc = await bob.incoming()
    inc.ring()
    stopping = asyncio.create_task(asw.switch.stop(grace=2.0))
    await inc.cancelled()
    await asyncio.wait_for(stopping, 3.0)
    assert await _result(engine, key) == (AGENT, RingResult.CANCELLED)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.sip_cause) == (Disposition.CANCELLED, 503)


async def test_stop_byes_a_bridged_callback(asw: Harness, engine: FakeEngine) -> None:
    key, agent, carol, on_carol, _ = await _bridged(asw, engine)
    stopping = asyncio.create_task(asw.switch.stop(grace=2.0))
    await _agent_byed(agent)
    assert on_carol.dialog is not None
    carol.reply(await on_carol.dialog.request("BYE"), 200)
    await asyncio.wait_for(stopping, 3.0)
    assert await _ended(engine, key) is False
    record = await _record(asw)
    assert (record.disposition, record.hangup_side) == (Disposition.ANSWERED, HangupSide.SYSTEM)


# ----------------------------------------------------------------------------- refused


@pytest.mark.parametrize("tenant", ["nope", "gamma"])  # unknown, suspended
async def test_no_such_tenant(asw: Harness, engine: FakeEngine, tenant: str) -> None:
    key = asw.switch.originate(tenant, "1001", "1002", timeout=RING, dial_timeout=RING)
    assert await _result(engine, key) == (AGENT, RingResult.FAILED)
    assert await _ended(engine, key) is False
    assert asw.events.of(CallEnded) == [] and asw.b2bua.active_calls == 0


@pytest.mark.parametrize(
    ("agent", "number", "timeout", "dial_timeout"),
    [("", "1003", RING, RING), ("1002", "", RING, RING), ("1002", "1003", 0, RING)],
)
async def test_bad_arguments_raise(
    asw: Harness, agent: str, number: str, timeout: float, dial_timeout: float
) -> None:
    with pytest.raises(ValueError):
        asw.switch.originate("acme", agent, number, timeout=timeout, dial_timeout=dial_timeout)
    assert asw.b2bua.active_calls == 0


def test_ringback_is_one_second_of_tone_then_four_of_silence() -> None:
    clip = ringback_clip()
    assert clip.duration == 5.0
    assert len(set(clip.ulaw[:8000])) > 10 and set(clip.ulaw[8000:]) == {0xFF}
    assert ringback_clip() is clip
