"""Hold on application calls (minicc.switch.hold): the agent's phone or the API holds, the
caller hears music (and never a re-INVITE), resume, session refresh, and the ring-back.

Real UDP on loopback: SIP through the scripted phones of ua.py, RTP through RtpPeer.
"""

from __future__ import annotations

import asyncio

import pytest

from minicc.queue.prompts import PromptCatalogue
from minicc.switch.control import HoldBy, PlaybackOutcome, RingResult
from tests.unit.switch.flows import Agent, AppCaller, answer_agent, app_call
from tests.unit.switch.harness import FakeEngine, Harness
from tests.unit.switch.ua import SipUA, Talker, make_sdp, sdp_audio, sdp_direction

MOH = PromptCatalogue().find("en", "moh").path
RING = 5.0
AGENT_VOICE = b"\x22" * 160
CALLER_VOICE = b"\x11" * 160


async def _bridged(asw: Harness, engine: FakeEngine) -> tuple[AppCaller, SipUA, Agent]:
    alice = await asw.phone("acme", "1001")
    call = await app_call(asw, engine, alice)
    bob = await asw.phone("acme", "1002")
    asw.switch.ring(call.key, "1002", timeout=RING)
    agent = await answer_agent(asw, bob)
    assert (await engine.wait("ring_result", call.key)).args[1] is RingResult.ANSWERED
    return call, bob, agent


def _hold_sdp(agent: Agent, *, direction: str = "sendonly", host: str = "127.0.0.1") -> bytes:
    return make_sdp(
        agent.rtp.port,
        host=host,
        direction=direction,
        codecs=[(0, "PCMU")],
        session_id=9999,
        version=2,
    )


async def _drain(peer: object, seconds: float = 0.1) -> None:
    await asyncio.sleep(seconds)  # lets in-flight packets land before a count starts
    inbox = peer.inbox  # type: ignore[attr-defined]
    while not inbox.empty():
        inbox.get_nowait()


async def _hears(call: AppCaller, payload: bytes, count: int = 3) -> None:
    """The caller receives ``count`` packets carrying ``payload`` (others are skipped)."""
    heard = 0
    while heard < count:
        packet, source = await call.rtp.recv()
        assert source == call.sends_to
        heard += packet.payload == payload


async def _music_not_agent(call: AppCaller, agent: Agent, packets: int = 10) -> None:
    """While held the caller gets the music, and the agent's audio is not mixed in."""
    talker = Talker(agent.rtp)
    for _ in range(packets):
        talker.send(agent.sends_to, 1, payload=AGENT_VOICE)
        packet, source = await call.rtp.recv()
        assert source == call.sends_to
        assert packet.payload != AGENT_VOICE


@pytest.mark.parametrize(
    ("direction", "host", "answer"),
    [
        ("sendonly", "127.0.0.1", "recvonly"),
        ("inactive", "127.0.0.1", "inactive"),
        ("sendrecv", "0.0.0.0", "recvonly"),  # RFC 2543 hold (RFC 3264 §8.4)
    ],
)
async def test_agent_phone_hold_gives_the_caller_music_and_no_reinvite(
    asw: Harness, engine: FakeEngine, direction: str, host: str, answer: str
) -> None:
    call, _bob, agent = await _bridged(asw, engine)

    ok = await agent.dialog.send("INVITE", body=_hold_sdp(agent, direction=direction, host=host))
    assert ok.status == 200 and sdp_direction(ok.body) == answer
    assert sdp_audio(ok.body) == agent.sends_to  # minicc answers, on the relay's endpoint b
    held = await engine.wait("call_held", call.key)
    assert held.args == (HoldBy.PHONE,)

    music = asw.switch.play(call.key, [MOH], loop=True)  # what the engine does on call_held
    await _music_not_agent(call, agent)
    # The caller's audio does not reach the agent while held.
    await _drain(agent.rtp)
    Talker(call.rtp).send(call.sends_to, 5, payload=CALLER_VOICE)
    await asyncio.sleep(0.2)
    assert agent.rtp.inbox.empty()

    # Resume: minicc answers sendrecv, cuts the music and both hear each other again.
    resume = make_sdp(agent.rtp.port, codecs=[(0, "PCMU")], session_id=9999, version=3)
    ok = await agent.dialog.send("INVITE", body=resume)
    assert ok.status == 200 and sdp_direction(ok.body) == "sendrecv"
    cut = await engine.wait("playback_done", call.key)
    assert cut.args == (music, PlaybackOutcome.CANCELLED)
    await engine.wait("call_resumed", call.key)
    assert engine.told.index(cut) < engine.told.index(engine.of("call_resumed")[0])
    Talker(agent.rtp).send(agent.sends_to, 3, payload=AGENT_VOICE)
    await _hears(call, AGENT_VOICE)
    Talker(call.rtp).send(call.sends_to, 3, payload=CALLER_VOICE)
    packet, _ = await agent.rtp.recv()
    assert packet.payload == CALLER_VOICE
    # Not one re-INVITE reached the caller's phone.
    assert call.caller.requests_seen("INVITE") == []


async def test_refresh_during_hold_is_answered_and_refresh_while_talking_is_relayed(
    asw: Harness, engine: FakeEngine
) -> None:
    call, bob, agent = await _bridged(asw, engine)
    await agent.dialog.send("INVITE", body=_hold_sdp(agent))
    await engine.wait("call_held", call.key)

    # A session refresh (same hold offer, RFC 4028) changes nothing and reports nothing.
    ok = await agent.dialog.send("INVITE", body=_hold_sdp(agent))
    assert ok.status == 200 and sdp_direction(ok.body) == "recvonly"
    # An INVITE without SDP: minicc offers in its 200; the call stays held.
    ok = await agent.dialog.send("INVITE")
    assert ok.status == 200 and sdp_audio(ok.body) == agent.sends_to
    # The caller's own refresh while held is answered by minicc, not sent to the agent.
    refresh = make_sdp(call.rtp.port, version=2)
    ok = await call.dialog.send("INVITE", body=refresh)
    assert ok.status == 200 and sdp_audio(ok.body) == call.sends_to
    assert engine.of("call_held", call.key) != [] and engine.of("call_resumed", call.key) == []
    assert call.caller.requests_seen("INVITE") == []
    assert [m for m in bob.pending() if getattr(m, "method", None) == "INVITE"] == []

    # Resumed, a plain refresh from the agent is relayed to the caller as before.
    resume = make_sdp(agent.rtp.port, codecs=[(0, "PCMU")], session_id=9999, version=3)
    await agent.dialog.send("INVITE", body=resume)
    await engine.wait("call_resumed", call.key)
    relayed = asyncio.create_task(agent.dialog.send("INVITE", body=resume))
    reinvite = await call.dialog.request("INVITE")
    assert reinvite.body and sdp_direction(reinvite.body) == "sendrecv"
    call.caller.reply(
        reinvite, 200, to_tag=call.dialog.local_tag, body=make_sdp(call.rtp.port, version=3)
    )
    assert (await relayed).status == 200


async def test_api_hold_and_resume_without_sip_to_the_phone(
    asw: Harness, engine: FakeEngine
) -> None:
    call, bob, agent = await _bridged(asw, engine)
    assert asw.switch.hold(call.key) is True
    assert asw.switch.hold(call.key) is False  # already held
    assert (await engine.wait("call_held", call.key)).args == (HoldBy.API,)
    asw.switch.play(call.key, [MOH], loop=True)
    await _music_not_agent(call, agent)
    await _drain(agent.rtp)
    Talker(call.rtp).send(call.sends_to, 5, payload=CALLER_VOICE)
    await asyncio.sleep(0.2)
    assert agent.rtp.inbox.empty()  # the agent hears silence

    assert asw.switch.resume(call.key) is True
    assert asw.switch.resume(call.key) is False
    await engine.wait("call_resumed", call.key)
    Talker(agent.rtp).send(agent.sends_to, 3, payload=AGENT_VOICE)
    await _hears(call, AGENT_VOICE)
    assert bob.requests_seen("INVITE") == [agent.inc.invite]
    assert call.caller.requests_seen("INVITE") == []
    # Nothing to hold before an agent is bridged, or for a call that is gone.
    assert asw.switch.hold("no-such-call") is False


async def test_api_resume_leaves_a_phone_hold_alone(asw: Harness, engine: FakeEngine) -> None:
    call, _, agent = await _bridged(asw, engine)
    await agent.dialog.send("INVITE", body=_hold_sdp(agent))
    await engine.wait("call_held", call.key)
    assert asw.switch.resume(call.key) is False


async def test_ring_back_answered_replaces_the_held_leg(asw: Harness, engine: FakeEngine) -> None:
    call, bob, agent = await _bridged(asw, engine)
    await agent.dialog.send("INVITE", body=_hold_sdp(agent))
    await engine.wait("call_held", call.key)
    music = asw.switch.play(call.key, [MOH], loop=True)

    attempt = asw.switch.ring_back(call.key, "1002", timeout=RING)
    inc = await bob.incoming()
    assert inc.invite.from_.display == "On hold: Alice Acme"
    assert inc.invite.from_.uri.user == "1001"
    assert inc.invite.call_id != agent.inc.call_id
    # The caller keeps hearing music while the agent's phone rings.
    packet, _ = await call.rtp.recv()
    inc.ring()
    new_rtp = await asw.rtp()
    await inc.answer(make_sdp(new_rtp.port, codecs=[(0, "PCMU")], session_id=7777))

    bye = await agent.dialog.request("BYE")  # the held leg is hung up
    bob.reply(bye, 200)
    assert (await engine.wait("ring_result", call.key)).args == (attempt, RingResult.ANSWERED)
    cut = await engine.wait("playback_done", call.key)
    assert cut.args == (music, PlaybackOutcome.CANCELLED)
    await engine.wait("call_resumed", call.key)
    # The new leg carries the call both ways.
    assert inc.invite.body is not None
    new_target = sdp_audio(inc.invite.body)
    Talker(new_rtp).send(new_target, 3, payload=AGENT_VOICE)
    await _hears(call, AGENT_VOICE)
    Talker(call.rtp).send(call.sends_to, 3, payload=CALLER_VOICE)
    packet, _ = await new_rtp.recv()
    assert packet.payload == CALLER_VOICE
    assert engine.of("call_ended", call.key) == []
    # And it ends like any call: the new leg's BYE reaches the caller.
    assert inc.dialog is not None
    assert (await inc.dialog.bye()).status == 200
    call.caller.reply(await call.dialog.request("BYE"), 200)
    assert (await engine.wait("call_ended", call.key)).args == (False,)


async def test_resume_on_the_held_leg_cancels_the_ring_back(
    asw: Harness, engine: FakeEngine
) -> None:
    call, bob, agent = await _bridged(asw, engine)
    await agent.dialog.send("INVITE", body=_hold_sdp(agent))
    await engine.wait("call_held", call.key)
    attempt = asw.switch.ring_back(call.key, "1002", timeout=RING)
    inc = await bob.incoming()
    inc.ring()

    resume = make_sdp(agent.rtp.port, codecs=[(0, "PCMU")], session_id=9999, version=3)
    assert (await agent.dialog.send("INVITE", body=resume)).status == 200
    await inc.cancelled()
    assert (await engine.wait("ring_result", call.key)).args == (attempt, RingResult.CANCELLED)
    await engine.wait("call_resumed", call.key)
    Talker(agent.rtp).send(agent.sends_to, 3, payload=AGENT_VOICE)
    await _hears(call, AGENT_VOICE)


async def test_unanswered_ring_back_keeps_the_caller_held(asw: Harness, engine: FakeEngine) -> None:
    call, bob, agent = await _bridged(asw, engine)
    assert asw.switch.hold(call.key)
    await engine.wait("call_held", call.key)
    asw.switch.play(call.key, [MOH], loop=True)
    attempt = asw.switch.ring_back(call.key, "1002", timeout=0.3)
    inc = await bob.incoming()
    inc.ring()
    await inc.cancelled()
    assert (await engine.wait("ring_result", call.key)).args == (attempt, RingResult.NO_ANSWER)
    await _music_not_agent(call, agent, packets=3)
    assert engine.of("call_resumed", call.key) == []
    # Ringing back a call that is not held fails at once (a later turn), nothing is sent.
    assert asw.switch.resume(call.key)
    await engine.wait("call_resumed", call.key)
    again = asw.switch.ring_back(call.key, "1002", timeout=RING)
    assert (await engine.wait("ring_result", call.key)).args == (again, RingResult.FAILED)


async def test_caller_hangs_up_while_held_and_ringing_back(
    asw: Harness, engine: FakeEngine
) -> None:
    call, bob, agent = await _bridged(asw, engine)
    assert asw.switch.hold(call.key)
    await engine.wait("call_held", call.key)
    attempt = asw.switch.ring_back(call.key, "1002", timeout=RING)
    inc = await bob.incoming()
    inc.ring()
    assert (await call.dialog.bye()).status == 200
    bob.reply(await agent.dialog.request("BYE"), 200)
    await inc.cancelled()
    assert (await engine.wait("ring_result", call.key)).args == (attempt, RingResult.CANCELLED)
    assert (await engine.wait("call_ended", call.key)).args == (True,)
    assert asw.b2bua.active_calls == 0


async def test_bad_hold_offers_get_4xx_and_leave_the_call_alone(
    asw: Harness, engine: FakeEngine
) -> None:
    call, _, agent = await _bridged(asw, engine)
    bad = await agent.dialog.send("INVITE", body=b"v=0\r\nthis is not sdp\r\n")
    assert bad.status == 400
    # A hold in a codec the call does not use cannot be answered: 488, still not held.
    pcma_only = make_sdp(
        agent.rtp.port, direction="sendonly", codecs=[(8, "PCMA")], session_id=9999, version=2
    )
    assert (await agent.dialog.send("INVITE", body=pcma_only)).status == 488
    assert engine.of("call_held", call.key) == []
    assert call.caller.requests_seen("INVITE") == []
    Talker(agent.rtp).send(agent.sends_to, 3, payload=AGENT_VOICE)
    await _hears(call, AGENT_VOICE)  # still talking
