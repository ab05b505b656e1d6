"""Calls the engine owns (CallControl): routing, minicc answering, prompts and DTMF.

The engine is :class:`~tests.unit.switch.harness.FakeEngine`, a recorder; the tests drive the
switch's CallControl methods themselves. Agent legs and bridging: ``test_control_ring.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import secrets

from minicc.events import CallAnswered, CallEnded, CallStarted, DtmfReceived
from minicc.queue.prompts import PromptCatalogue
from minicc.switch.control import IncomingCall, PlaybackOutcome, Route, RouteKind
from minicc.switch.media.dtmf import build_dtmf_rtp
from minicc.switch.media.player import load_clip
from minicc.switch.sip.peer import Peer, Transport
from minicc.tenants.models import Disposition, HangupSide
from tests.unit.switch.flows import answered_call, app_call
from tests.unit.switch.harness import FakeEngine, Harness, MakeSwitch
from tests.unit.switch.ua import HOST, OutgoingCall, make_sdp, sdp_audio, sdp_direction

PROMPTS = PromptCatalogue()
WELCOME = PROMPTS.find("en", "welcome").path
MOH = PROMPTS.find("en", "moh").path  # found in common/
RTP_RANGE = range(43000, 44000)


def _rtpmaps(body: bytes) -> list[str]:
    return [line for line in body.decode().splitlines() if line.startswith("a=rtpmap:")]


async def test_application_call_is_answered_by_minicc(asw: Harness, engine: FakeEngine) -> None:
    alice = await asw.phone("acme", "1001")
    rtp = await asw.rtp()
    out = await alice.call("sip:8000@acme.test", make_sdp(rtp.port))
    ok = await out.final()
    assert ok.status == 200
    # The answer points at the relay, in the caller's first codec, with telephone-event.
    host, port = sdp_audio(ok.body)
    assert host == HOST and port in RTP_RANGE and port != rtp.port
    assert _rtpmaps(ok.body) == ["a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000"]
    assert out.dialog is not None and out.dialog.remote_target.startswith("sip:8000@")

    answered = await engine.wait("call_answered")
    [incoming] = engine.incoming
    assert incoming == IncomingCall(
        key=answered.key,
        tenant="acme",
        number="8000",
        caller="1001",
        caller_name="Alice Acme",
        call_id=out.call_id,
    )
    started = await asw.events.wait(CallStarted)
    assert (started.callee, started.caller) == ("8000", "1001")
    assert (await asw.events.wait(CallAnswered)).answered_by == "minicc"
    session = next(iter(asw.switch.media.sessions))  # type: ignore[union-attr]
    assert session.call_id == answered.key and session.a.local_port == port


async def test_pcma_caller_is_answered_in_pcma_without_dtmf_events(
    asw: Harness, engine: FakeEngine
) -> None:
    alice = await asw.phone("acme", "1001")
    call = await app_call(
        asw, engine, alice, codecs=[(8, "PCMA"), (0, "PCMU")], telephone_event=None
    )
    assert call.out.final_response is not None
    assert _rtpmaps(call.out.final_response.body) == ["a=rtpmap:8 PCMA/8000"]

    playback = asw.switch.play(call.key, [WELCOME])
    packet, source = await call.rtp.recv()
    assert source == call.sends_to  # symmetric RTP: from the port it sends to
    assert packet.header.payload_type == 8
    asw.switch.stop_playback(call.key)
    done = await engine.wait("playback_done", call.key)
    assert done.args == (playback, PlaybackOutcome.CANCELLED)


async def test_prompt_plays_to_the_caller_then_playback_done(
    asw: Harness, engine: FakeEngine
) -> None:
    alice = await asw.phone("acme", "1001")
    call = await app_call(asw, engine, alice)
    expected = math.ceil(load_clip(WELCOME).duration / 0.020)

    playback = asw.switch.play(call.key, [WELCOME])
    packets = [(await call.rtp.recv())[0] for _ in range(expected)]
    done = await engine.wait("playback_done", call.key)
    assert done.args == (playback, PlaybackOutcome.FINISHED)
    assert call.rtp.inbox.empty()
    assert {p.header.payload_type for p in packets} == {0}
    assert all(len(p.payload) == 160 for p in packets)
    assert packets[0].header.marker
    seqs = [p.header.sequence_number for p in packets]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(expected)]
    stamps = [p.header.timestamp for p in packets]
    # 160 samples a packet; a player that fell behind on a loaded machine skips ahead by
    # whole packets (the receiver hears a gap, not a squeeze), never backwards.
    steps = [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(stamps)]
    assert all(step >= 160 and step % 160 == 0 for step in steps), steps

    # The clip was decoded once: a second play of the same file is served from the cache.
    again = asw.switch.play(call.key, [WELCOME, WELCOME])
    assert again != playback
    for _ in range(3):
        await call.rtp.recv()
    asw.switch.hangup(call.key)
    await call.dialog.request("BYE")


async def test_new_play_replaces_the_old_and_stop_cuts(asw: Harness, engine: FakeEngine) -> None:
    alice = await asw.phone("acme", "1001")
    call = await app_call(asw, engine, alice)

    music = asw.switch.play(call.key, [MOH], loop=True)
    await call.rtp.recv()
    welcome = asw.switch.play(call.key, [WELCOME])
    replaced = await engine.wait("playback_done", call.key)
    assert replaced.args == (music, PlaybackOutcome.CANCELLED)
    await call.rtp.recv()
    asw.switch.stop_playback(call.key)
    assert asw.b2bua.app.player.active == 0  # cut before stop_playback returned
    stopped = await engine.wait("playback_done", call.key)
    assert stopped.args == (welcome, PlaybackOutcome.CANCELLED)

    # A file that cannot be played is reported, not raised.
    missing = asw.switch.play(call.key, [WELCOME.with_name("no-such-prompt.wav")])
    assert (await engine.wait("playback_done", call.key)).args == (
        missing,
        PlaybackOutcome.ABORTED,
    )
    # And a play for a call that is gone.
    gone = asw.switch.play("no-such-call", [WELCOME])
    assert (await engine.wait("playback_done", "no-such-call")).args == (
        gone,
        PlaybackOutcome.ABORTED,
    )


async def test_rfc4733_dtmf_from_the_caller_reaches_the_engine(
    asw: Harness, engine: FakeEngine
) -> None:
    alice = await asw.phone("acme", "1001")
    call = await app_call(asw, engine, alice)
    asw.switch.play(call.key, [MOH], loop=True)
    ssrc, seq, ts = secrets.randbits(32), 100, 8000
    for digit in "1#":
        packets = build_dtmf_rtp(
            digit, payload_type=101, ssrc=ssrc, sequence_number=seq, timestamp=ts
        )
        for packet in packets:
            call.rtp.send_raw(call.sends_to, packet)
        seq += len(packets)
        ts += 1600

    assert (await engine.wait("dtmf", call.key)).args == ("1",)
    assert (await engine.wait("dtmf", call.key)).args == ("#",)
    event = await asw.events.wait(DtmfReceived)
    assert (event.digit, event.side, event.method) == ("1", "caller", "rfc4733")
    assert event.call_id == call.out.call_id
    assert len(engine.of("dtmf")) == 2  # retransmitted end packets count once


async def test_sip_info_dtmf_reaches_the_engine(asw: Harness, engine: FakeEngine) -> None:
    alice = await asw.phone("acme", "1001")
    call = await app_call(asw, engine, alice)
    ok = await call.dialog.send(
        "INFO", body=b"Signal=7\r\nDuration=160\r\n", content_type="application/dtmf-relay"
    )
    assert ok.status == 200
    assert (await engine.wait("dtmf", call.key)).args == ("7",)
    event = await asw.events.wait(DtmfReceived)
    assert (event.digit, event.method) == ("7", "info")


async def test_caller_hangs_up_before_an_agent(asw: Harness, engine: FakeEngine) -> None:
    alice = await asw.phone("acme", "1001")
    call = await app_call(asw, engine, alice)
    music = asw.switch.play(call.key, [MOH], loop=True)
    await call.rtp.recv()

    assert (await call.dialog.bye()).status == 200
    aborted = await engine.wait("playback_done", call.key)
    assert aborted.args == (music, PlaybackOutcome.ABORTED)
    ended = await engine.wait("call_ended", call.key)
    assert ended.args == (True,)
    record = (await asw.events.wait(CallEnded)).record
    assert record.disposition is Disposition.ANSWERED and record.answer is not None
    assert record.hangup_side is HangupSide.CALLER
    assert (record.from_user, record.to_user) == ("1001", "8000")
    assert asw.b2bua.active_calls == 0 and not asw.switch.media.sessions  # type: ignore[union-attr]
    assert asw.b2bua.app.player.active == 0
    # The engine hears nothing more of the call; a late hangup() is harmless.
    asw.switch.hangup(call.key)
    assert engine.of("call_ended") == [ended]


async def test_hangup_byes_the_caller(asw: Harness, engine: FakeEngine) -> None:
    alice = await asw.phone("acme", "1001")
    call = await app_call(asw, engine, alice)
    asw.switch.hangup(call.key)
    bye = await call.dialog.request("BYE")
    alice.reply(bye, 200)
    assert (await engine.wait("call_ended", call.key)).args == (False,)
    record = (await asw.events.wait(CallEnded)).record
    assert (record.disposition, record.hangup_side) == (Disposition.ANSWERED, HangupSide.SYSTEM)


async def test_caller_reinvite_before_an_agent_is_answered_by_minicc(
    asw: Harness, engine: FakeEngine
) -> None:
    alice = await asw.phone("acme", "1001")
    call = await app_call(asw, engine, alice)
    hold = make_sdp(call.rtp.port, direction="sendonly", version=2)
    ok = await call.dialog.send("INVITE", body=hold)
    assert ok.status == 200
    assert sdp_direction(ok.body) == "recvonly"
    assert sdp_audio(ok.body) == call.sends_to
    assert _rtpmaps(ok.body)[0] == "a=rtpmap:0 PCMU/8000"  # the codec prompts play in
    resume = await call.dialog.send("INVITE", body=make_sdp(call.rtp.port, version=3))
    assert resume.status == 200 and sdp_direction(resume.body) == "sendrecv"
    # A session refresh without SDP gets minicc's offer in the 200.
    refresh = await call.dialog.send("INVITE")
    assert refresh.status == 200 and sdp_audio(refresh.body) == call.sends_to


async def test_extension_route_rings_another_extension_than_dialled(
    make_switch: MakeSwitch,
) -> None:
    engine = FakeEngine(lambda c: Route(kind=RouteKind.EXTENSION, extension="1002"))
    sw = await make_switch(observer=engine)
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    call = await answered_call(sw, alice, bob, target="sip:5550100@acme.test")
    assert call.inc.invite.to.uri.user == "1002"
    assert call.inc.invite.from_.uri.user == "1001"
    assert [c.number for c in engine.incoming] == ["5550100"]
    await call.a.bye()
    bye = await call.b.request("BYE")
    bob.reply(bye, 200)
    record = (await sw.events.wait(CallEnded)).record
    assert (record.to_user, record.disposition) == ("5550100", Disposition.ANSWERED)
    assert not engine.told  # a plain call: the engine is not told about it


async def test_reject_route_answers_its_status(asw: Harness, engine: FakeEngine) -> None:
    alice = await asw.phone("acme", "1001")
    out = await alice.call("sip:999@acme.test", make_sdp(40000))
    assert (await out.final()).status == 404
    record = (await asw.events.wait(CallEnded)).record
    assert (record.to_user, record.sip_cause) == ("999", 404)
    assert record.hangup_side is HangupSide.SYSTEM and not engine.told


async def test_route_raising_gives_500_and_the_switch_lives_on(make_switch: MakeSwitch) -> None:
    def router(call: IncomingCall) -> Route:
        if call.number == "8666":
            raise RuntimeError("engine bug")
        return Route(kind=RouteKind.APPLICATION)

    engine = FakeEngine(router)
    sw = await make_switch(observer=engine)
    alice = await sw.phone("acme", "1001")
    out = await alice.call("sip:8666@acme.test", make_sdp(40000))
    assert (await out.final()).status == 500
    assert (await sw.events.wait(CallEnded)).record.sip_cause == 500

    call = await app_call(sw, engine, alice, "8000")
    assert call.key and sw.b2bua.active_calls == 1


async def test_engine_exceptions_in_callbacks_do_not_break_the_call(
    make_switch: MakeSwitch,
) -> None:
    class Grumpy(FakeEngine):
        def dtmf(self, key: str, digit: str) -> None:
            super().dtmf(key, digit)
            raise ValueError("cannot handle digits")

    engine = Grumpy()
    sw = await make_switch(observer=engine)
    alice = await sw.phone("acme", "1001")
    call = await app_call(sw, engine, alice)
    for digit in "12":
        body = f"Signal={digit}\r\n".encode()
        ok = await call.dialog.send("INFO", body=body, content_type="application/dtmf-relay")
        assert ok.status == 200
        assert (await engine.wait("dtmf", call.key)).args == (digit,)
    assert (await call.dialog.bye()).status == 200
    assert (await engine.wait("call_ended", call.key)).args == (True,)


async def test_cancel_before_minicc_answers(asw: Harness, engine: FakeEngine) -> None:
    """INVITE and CANCEL handled in one go, before the task that answers the call runs."""
    alice = await asw.phone("acme", "1001")
    first = await alice.call("sip:8000@acme.test", make_sdp(40000), auth=False)
    assert first.final_response is not None and first.final_response.status == 401
    invite = alice.authorize(first.invite, first.final_response)
    cancelling = OutgoingCall(alice, invite)
    source = Peer(Transport.UDP, HOST, alice.port)
    asw.switch.on_data(invite.to_bytes(), source)
    asw.switch.on_data(cancelling.cancel_request().to_bytes(), source)

    assert (await cancelling.final()).status == 487
    assert (await engine.wait("call_ended")).args == (True,)
    assert (await asw.events.wait(CallEnded)).record.disposition is Disposition.CANCELLED
    # A round trip through the switch after the answer task has had every chance to run.
    options = alice.build("OPTIONS", f"sip:{HOST}", to=f"<sip:{HOST}>")
    await asyncio.sleep(0)
    assert (await alice.transact(options)).status == 200
    assert not engine.of("call_answered")
    assert not asw.switch.media.sessions  # type: ignore[union-attr]


async def test_hangup_before_minicc_answers_sends_the_status(
    asw: Harness, engine: FakeEngine
) -> None:
    alice = await asw.phone("acme", "1001")
    first = await alice.call("sip:8000@acme.test", make_sdp(40000), auth=False)
    assert first.final_response is not None
    invite = alice.authorize(first.invite, first.final_response)
    refused = OutgoingCall(alice, invite)
    asw.switch.on_data(invite.to_bytes(), Peer(Transport.UDP, HOST, alice.port))
    # The engine decides at once, before the answer task ran (e.g. the queue is closed).
    asw.switch.hangup(engine.incoming[-1].key, status=486)

    assert (await refused.final()).status == 486
    assert (await engine.wait("call_ended")).args == (False,)
    record = (await asw.events.wait(CallEnded)).record
    assert (record.disposition, record.sip_cause) == (Disposition.BUSY, 486)
    assert not engine.of("call_answered")


async def test_without_observer_8000_is_an_unknown_extension(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    out = await alice.call("sip:8000@acme.test", make_sdp(40000))
    assert (await out.final()).status == 404
