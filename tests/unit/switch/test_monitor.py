"""Supervisor monitors and three-way conferences on a real switch (real UDP on loopback).

Each party sends a constant audio level so what a phone hears tells whom it hears: Alice
(the caller) sends 1000, Bob (the agent) silence, Carol (the supervisor or third party)
8000. Bob hearing about 9000 means Alice and Carol; about 1000, Alice only.
"""

from __future__ import annotations

import asyncio
import contextlib
from array import array
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from minicc.switch.control import MonitorEnd, MonitorMode, RingResult
from minicc.switch.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from minicc.switch.monitor import JoinStateError, Stage, Step, mode_for_key
from tests.unit.switch.flows import Agent, AppCaller, answer_agent, answered_call, app_call
from tests.unit.switch.harness import FakeEngine, Harness
from tests.unit.switch.ua import Address, RtpPeer, SipUA, Talker, make_sdp, sdp_audio

RING = 5.0
ALICE, CAROL = 1000, 8000


def _frame(level: int, pt: int = 0) -> bytes:
    samples = array("h", [level] * 160)
    return ulaw_encode(samples) if pt == 0 else alaw_encode(samples)


class Stream:
    """A phone sending a constant level every 20 ms until closed."""

    def __init__(self, peer: RtpPeer, dest: Address, level: int, pt: int = 0) -> None:
        self.talker = Talker(peer)
        self.dest, self.level, self.pt = dest, level, pt
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.talker.peer.send(
                self.dest,
                seq=self.talker.seq,
                ts=self.talker.ts,
                ssrc=self.talker.ssrc,
                pt=self.pt,
                payload=_frame(self.level, self.pt),
            )
            self.talker.seq = (self.talker.seq + 1) & 0xFFFF
            self.talker.ts = (self.talker.ts + 160) & 0xFFFFFFFF
            await asyncio.sleep(0.02)

    def close(self) -> None:
        self.task.cancel()


async def heard(peer: RtpPeer, *, packets: int = 12) -> int:
    """The level ``peer`` hears now: the mean magnitude of the last packets of a fresh run
    (the first ones may still carry the mix from before a change)."""
    while not peer.inbox.empty():
        peer.inbox.get_nowait()
    levels = []
    for _ in range(packets):
        packet, _ = await peer.recv()
        if packet.header.payload_type not in (0, 8):
            continue
        decode = ulaw_decode if packet.header.payload_type == 0 else alaw_decode
        samples = decode(packet.payload)
        levels.append(sum(abs(s) for s in samples) // max(len(samples), 1))
    return max(levels[-4:])


@dataclass(slots=True, eq=False)
class QueueCall:
    call: AppCaller
    agent: Agent
    streams: list[Stream]


@pytest.fixture
async def streams() -> AsyncIterator[list[Stream]]:
    made: list[Stream] = []
    yield made
    for stream in made:
        stream.close()
        with contextlib.suppress(asyncio.CancelledError):
            await stream.task


async def _queue_call(asw: Harness, engine: FakeEngine, streams: list[Stream]) -> QueueCall:
    """Alice (1001) calls 8000, Bob (1002) answers; Alice sends 1000, Bob silence."""
    alice = await asw.phone("acme", "1001")
    bob = await asw.phone("acme", "1002")
    call = await app_call(asw, engine, alice)
    asw.switch.ring(call.key, "1002", timeout=RING)
    agent = await answer_agent(asw, bob)
    assert (await engine.wait("ring_result", call.key)).args[1] is RingResult.ANSWERED
    streams.append(Stream(call.rtp, call.sends_to, ALICE))
    streams.append(Stream(agent.rtp, agent.sends_to, 0))
    return QueueCall(call=call, agent=agent, streams=streams)


@dataclass(slots=True, eq=False)
class Third:
    phone: SipUA
    rtp: RtpPeer
    inc: object


async def _answer_third(asw: Harness, carol: SipUA, streams: list[Stream], pt: int = 0) -> Third:
    inc = await carol.incoming()
    inc.ring()
    rtp = await asw.rtp()
    assert inc.invite.body
    codecs = [(0, "PCMU")] if pt == 0 else [(8, "PCMA")]
    await inc.answer(make_sdp(rtp.port, codecs=codecs, session_id=4242))
    streams.append(Stream(rtp, sdp_audio(inc.invite.body), CAROL, pt))
    return Third(phone=carol, rtp=rtp, inc=inc)


def _near(level: int, want: int) -> bool:
    return abs(level - want) <= max(want * 0.15, 150)


# ------------------------------------------------------------------------------ pure parts


def test_mode_keys() -> None:
    assert mode_for_key("1") is MonitorMode.LISTEN
    assert mode_for_key("2") is MonitorMode.WHISPER
    assert mode_for_key("3") is MonitorMode.BARGE
    assert mode_for_key("4") is None and mode_for_key("#") is None


def test_join_transitions_refuse_what_the_table_lacks() -> None:
    from minicc.switch.monitor import TRANSITIONS, Join, JoinKind

    join = Join(id="m", kind=JoinKind.MONITOR, target=None, party=None, mode=MonitorMode.LISTEN)  # type: ignore[arg-type]
    assert join.move(Step.ANSWERED) is Stage.JOINED
    with pytest.raises(JoinStateError):
        join.move(Step.ANSWERED)
    assert join.move(Step.END) is Stage.ENDED
    with pytest.raises(JoinStateError):
        join.move(Step.END)
    assert all(stage is not Stage.ENDED for stage, _ in TRANSITIONS)


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("step", list(Step))
def test_every_stage_and_step_is_legal_or_refused(stage: Stage, step: Step) -> None:
    from minicc.switch.monitor import TRANSITIONS, Join, JoinKind

    join = Join(id="m", kind=JoinKind.CONFERENCE, target=None, party=None, mode=MonitorMode.BARGE)  # type: ignore[arg-type]
    join.stage = stage
    if (stage, step) in TRANSITIONS:
        assert join.move(step) is TRANSITIONS[(stage, step)]
    else:
        with pytest.raises(JoinStateError, match=f"{step.value} in stage {stage.value}"):
            join.move(step)
        assert join.stage is stage


# ------------------------------------------------------------------------------ monitors


async def test_whisper_listen_barge_and_supervisor_hangs_up(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    assert asw.switch.find_call("acme", "1002") == q.call.key
    assert asw.switch.find_call("acme", "1001") == q.call.key
    assert asw.switch.find_call("acme", "1003") is None
    assert asw.switch.find_call("beta", "1002") is None

    monitor = asw.switch.monitor(q.call.key, "1003", MonitorMode.WHISPER, timeout=RING)
    third = await _answer_third(asw, carol, streams)
    invite = third.inc.invite  # type: ignore[attr-defined]
    assert invite.from_.display == "Monitor 1002" and invite.to.uri.user == "1003"
    started = await engine.wait("monitor_started", monitor)
    assert started.args == (q.call.key, MonitorMode.WHISPER)

    # Whisper: the agent hears caller + supervisor, the caller only the agent (silence),
    # the supervisor hears the caller and the agent.
    assert _near(await heard(q.agent.rtp), ALICE + CAROL)
    assert await heard(q.call.rtp) < 100
    assert _near(await heard(third.rtp), ALICE)

    # Key 1 (SIP INFO from the supervisor's phone): listen. Nobody hears the supervisor.
    dialog = third.inc.dialog  # type: ignore[attr-defined]
    ok = await dialog.send("INFO", body=b"Signal=1\r\n", content_type="application/dtmf-relay")
    assert ok.status == 200
    assert (await engine.wait("monitor_mode_changed", monitor)).args == (MonitorMode.LISTEN,)
    assert _near(await heard(q.agent.rtp), ALICE)
    assert await heard(q.call.rtp) < 100

    # Barge through the API: everybody hears everybody.
    asw.switch.set_monitor_mode(monitor, MonitorMode.BARGE)
    assert (await engine.wait("monitor_mode_changed", monitor)).args == (MonitorMode.BARGE,)
    assert _near(await heard(q.call.rtp), CAROL)
    assert _near(await heard(q.agent.rtp), ALICE + CAROL)

    # The supervisor hangs up: the call goes on untouched, on the plain relay.
    assert (await dialog.bye()).status == 200
    assert (await engine.wait("monitor_ended", monitor)).args == (MonitorEnd.SUPERVISOR_HUNG_UP,)
    media = asw.b2bua.call(q.call.key).media
    assert media.a.forward_from_peer and media.b.forward_from_peer
    assert media.a.tap is None and media.b.tap is None
    assert _near(await heard(q.agent.rtp), ALICE)
    assert await heard(q.call.rtp) < 100
    assert not engine.of("call_ended", q.call.key)


async def test_call_end_hangs_up_the_supervisor(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    monitor = asw.switch.monitor(q.call.key, "1003", MonitorMode.LISTEN, timeout=RING)
    third = await _answer_third(asw, carol, streams)
    await engine.wait("monitor_started", monitor)
    assert (await q.call.dialog.bye()).status == 200
    bye = await third.inc.dialog.request("BYE")  # type: ignore[attr-defined]
    carol.reply(bye, 200)
    assert (await engine.wait("monitor_ended", monitor)).args == (MonitorEnd.CALL_ENDED,)
    await engine.wait("call_ended", q.call.key)
    assert asw.switch.monitors is not None and not asw.switch.monitors.joins()


async def test_stop_monitor_leaves_the_call(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    monitor = asw.switch.monitor(q.call.key, "1003", MonitorMode.WHISPER, timeout=RING)
    third = await _answer_third(asw, carol, streams)
    await engine.wait("monitor_started", monitor)
    asw.switch.stop_monitor(monitor)
    bye = await third.inc.dialog.request("BYE")  # type: ignore[attr-defined]
    carol.reply(bye, 200)
    assert (await engine.wait("monitor_ended", monitor)).args == (MonitorEnd.STOPPED,)
    assert _near(await heard(q.agent.rtp), ALICE)
    # A new monitor of the same call is possible once the first is gone.
    again = asw.switch.monitor(q.call.key, "1003", MonitorMode.LISTEN, timeout=RING)
    await _answer_third(asw, carol, streams)
    await engine.wait("monitor_started", again)
    assert len(engine.of("monitor_ended")) == 1


async def test_supervisor_not_answering_or_absent(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    # No phone registered for 1003.
    absent = asw.switch.monitor(q.call.key, "1003", MonitorMode.LISTEN, timeout=RING)
    assert (await engine.wait("monitor_ended", absent)).args == (MonitorEnd.NOT_ANSWERED,)
    # Ringing, then stopped: the phone gets CANCEL.
    carol = await asw.phone("acme", "1003")
    ringing = asw.switch.monitor(q.call.key, "1003", MonitorMode.LISTEN, timeout=RING)
    inc = await carol.incoming()
    inc.ring()
    # While it rings, the call cannot take another third party.
    other = asw.switch.monitor(q.call.key, "1003", MonitorMode.LISTEN, timeout=RING)
    assert (await engine.wait("monitor_ended", other)).args == (MonitorEnd.REFUSED,)
    asw.switch.stop_monitor(ringing)
    await inc.cancelled()
    assert (await engine.wait("monitor_ended", ringing)).args == (MonitorEnd.STOPPED,)
    # The call ends while the supervisor's phone rings.
    ringing = asw.switch.monitor(q.call.key, "1003", MonitorMode.LISTEN, timeout=RING)
    inc = await carol.incoming()
    inc.ring()
    assert (await q.call.dialog.bye()).status == 200
    await inc.cancelled()
    assert (await engine.wait("monitor_ended", ringing)).args == (MonitorEnd.CALL_ENDED,)


async def test_refused_for_unknown_or_unanswered_calls(asw: Harness, engine: FakeEngine) -> None:
    monitor = asw.switch.monitor("nope", "1003", MonitorMode.LISTEN, timeout=RING)
    assert (await engine.wait("monitor_ended", monitor)).args == (MonitorEnd.REFUSED,)
    attempt = asw.switch.conference("nope", "1003", timeout=RING)
    told = await engine.wait("conference_result", "nope")
    assert told.args == (attempt, RingResult.FAILED)
    with pytest.raises(ValueError, match="timeout"):
        asw.switch.monitor("nope", "1003", MonitorMode.LISTEN, timeout=0)


async def test_feature_code_call_attached_in_pcma(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    """The supervisor's own call (routed to APPLICATION) joins; it speaks PCMA, the call
    PCMU: the mixer transcodes."""
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    sup = await app_call(asw, engine, carol, "8082", codecs=((8, "PCMA"),))
    streams.append(Stream(sup.rtp, sup.sends_to, CAROL, pt=8))
    asw.switch.attach_monitor(sup.key, q.call.key, MonitorMode.WHISPER)
    assert (await engine.wait("monitor_started", sup.key)).args == (
        q.call.key,
        MonitorMode.WHISPER,
    )
    assert _near(await heard(q.agent.rtp), ALICE + CAROL)
    assert await heard(q.call.rtp) < 100
    assert _near(await heard(sup.rtp), ALICE)
    assert {p.header.payload_type for p in sup.rtp.received[-5:]} == {8}
    # Key 3: barge.
    ok = await sup.dialog.send("INFO", body=b"Signal=3\r\n", content_type="application/dtmf-relay")
    assert ok.status == 200
    assert (await engine.wait("monitor_mode_changed", sup.key)).args == (MonitorMode.BARGE,)
    assert _near(await heard(q.call.rtp), CAROL)
    # The agent hangs up: the supervisor is hung up too.
    assert (await q.agent.dialog.bye()).status == 200
    bye = await sup.dialog.request("BYE")
    carol.reply(bye, 200)
    assert (await engine.wait("monitor_ended", sup.key)).args == (MonitorEnd.CALL_ENDED,)


async def test_attach_refused_hangs_up_the_supervisor(asw: Harness, engine: FakeEngine) -> None:
    carol = await asw.phone("acme", "1003")
    sup = await app_call(asw, engine, carol, "8082")
    asw.switch.attach_monitor(sup.key, "no-such-call", MonitorMode.LISTEN)
    bye = await sup.dialog.request("BYE")
    carol.reply(bye, 200)
    assert (await engine.wait("monitor_ended", sup.key)).args == (MonitorEnd.REFUSED,)


async def test_plain_extension_call_whisper(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    alice = await asw.phone("acme", "1001")
    bob = await asw.phone("acme", "1002")
    carol = await asw.phone("acme", "1003")
    c = await answered_call(asw, alice, bob)
    streams.append(Stream(c.caller_rtp, c.caller_sends_to, ALICE))
    streams.append(Stream(c.callee_rtp, c.callee_sends_to, 0))
    key = asw.switch.find_call("acme", "1002")
    assert key is not None
    monitor = asw.switch.monitor(key, "1003", MonitorMode.WHISPER, timeout=RING)
    third = await _answer_third(asw, carol, streams)
    await engine.wait("monitor_started", monitor)
    assert _near(await heard(c.callee_rtp), ALICE + CAROL)
    assert await heard(c.caller_rtp) < 100
    assert (await third.inc.dialog.bye()).status == 200  # type: ignore[attr-defined]
    await engine.wait("monitor_ended", monitor)
    assert _near(await heard(c.callee_rtp), ALICE)


# ------------------------------------------------------------------------------ conferences


async def test_conference_third_joins_then_leaves(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    attempt = asw.switch.conference(q.call.key, "1003", timeout=RING)
    third = await _answer_third(asw, carol, streams)
    told = await engine.wait("conference_result", q.call.key)
    assert told.args == (attempt, RingResult.ANSWERED)
    assert _near(await heard(q.call.rtp), CAROL)
    assert _near(await heard(q.agent.rtp), ALICE + CAROL)
    assert _near(await heard(third.rtp), ALICE)
    # The third party leaves: caller and agent are back on the plain relay.
    assert (await third.inc.dialog.bye()).status == 200  # type: ignore[attr-defined]
    assert (await engine.wait("conference_ended", q.call.key)).args == (attempt,)
    media = asw.b2bua.call(q.call.key).media
    assert media.a.forward_from_peer and media.b.forward_from_peer
    assert _near(await heard(q.agent.rtp), ALICE)
    assert await heard(q.call.rtp) < 100


async def test_conference_caller_leaves_the_other_two_talk(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    attempt = asw.switch.conference(q.call.key, "1003", timeout=RING)
    third = await _answer_third(asw, carol, streams)
    await engine.wait("conference_result", q.call.key)
    # Alice leaves: Bob and Carol go on.
    assert (await q.call.dialog.bye()).status == 200
    assert _near(await heard(q.agent.rtp), CAROL)
    assert _near(await heard(third.rtp), 0) or await heard(third.rtp) < 100
    assert not engine.of("call_ended", q.call.key)
    assert not q.agent.inc.ua.requests_seen("BYE")
    # Carol leaves: Bob is alone, so he is hung up and the call ends.
    assert (await third.inc.dialog.bye()).status == 200  # type: ignore[attr-defined]
    bye = await q.agent.dialog.request("BYE")
    q.agent.inc.ua.reply(bye, 200)
    assert (await engine.wait("conference_ended", q.call.key)).args == (attempt,)
    await engine.wait("call_ended", q.call.key)


async def test_conference_agent_leaves_then_caller(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    attempt = asw.switch.conference(q.call.key, "1003", timeout=RING)
    third = await _answer_third(asw, carol, streams)
    await engine.wait("conference_result", q.call.key)
    assert (await q.agent.dialog.bye()).status == 200
    assert _near(await heard(q.call.rtp), CAROL)
    assert _near(await heard(third.rtp), ALICE)
    # Alice leaves too: Carol is hung up.
    assert (await q.call.dialog.bye()).status == 200
    bye = await third.inc.dialog.request("BYE")  # type: ignore[attr-defined]
    carol.reply(bye, 200)
    assert (await engine.wait("conference_ended", q.call.key)).args == (attempt,)
    await engine.wait("call_ended", q.call.key)


async def test_conference_no_answer(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    attempt = asw.switch.conference(q.call.key, "1003", timeout=0.3)
    inc = await carol.incoming()
    inc.ring()
    await inc.cancelled()
    told = await engine.wait("conference_result", q.call.key)
    assert told.args == (attempt, RingResult.NO_ANSWER)
    assert not engine.of("conference_ended")
    assert _near(await heard(q.agent.rtp), ALICE)


async def test_shutdown_with_a_ringing_monitor(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    monitor = asw.switch.monitor(q.call.key, "1003", MonitorMode.LISTEN, timeout=RING)
    inc = await carol.incoming()
    inc.ring()
    await asw.switch.stop(grace=0)
    ended = await engine.wait("monitor_ended", monitor)
    assert ended.args[0] in (MonitorEnd.CALL_ENDED, MonitorEnd.NOT_ANSWERED)


async def test_refused_while_music_plays_to_a_party(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    from minicc.queue.prompts import PromptCatalogue

    q = await _queue_call(asw, engine, streams)
    await asw.phone("acme", "1003")
    asw.switch.play(q.call.key, [PromptCatalogue().find("en", "moh").path], loop=True)
    refused = asw.switch.monitor(q.call.key, "1003", MonitorMode.LISTEN, timeout=RING)
    assert (await engine.wait("monitor_ended", refused)).args == (MonitorEnd.REFUSED,)
    asw.switch.stop_playback(q.call.key)
    await engine.wait("playback_done", q.call.key)
    assert asw.switch.find_call("acme", "1002") == q.call.key


async def test_mode_set_while_ringing_applies_on_answer(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    monitor = asw.switch.monitor(q.call.key, "1003", MonitorMode.LISTEN, timeout=RING)
    asw.switch.set_monitor_mode(monitor, MonitorMode.BARGE)
    third = await _answer_third(asw, carol, streams)
    assert (await engine.wait("monitor_started", monitor)).args == (q.call.key, MonitorMode.BARGE)
    assert not engine.of("monitor_mode_changed")
    assert _near(await heard(q.call.rtp), CAROL)
    # Pressing the key of the mode in force changes nothing and reports nothing.
    dialog = third.inc.dialog  # type: ignore[attr-defined]
    await dialog.send("INFO", body=b"Signal=3\r\n", content_type="application/dtmf-relay")
    await dialog.send("INFO", body=b"Signal=9\r\n", content_type="application/dtmf-relay")
    assert _near(await heard(q.call.rtp), CAROL)
    assert not engine.of("monitor_mode_changed")


async def test_shutdown_with_a_joined_monitor(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    monitor = asw.switch.monitor(q.call.key, "1003", MonitorMode.WHISPER, timeout=RING)
    await _answer_third(asw, carol, streams)
    await engine.wait("monitor_started", monitor)
    await asw.switch.stop(grace=0)
    ended = await engine.wait("monitor_ended", monitor)
    assert ended.args[0] in (MonitorEnd.CALL_ENDED, MonitorEnd.SUPERVISOR_HUNG_UP)
    await engine.wait("call_ended", q.call.key)
    assert len(engine.of("monitor_ended", monitor)) == 1


async def test_attach_twice_keeps_the_first(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    sup = await app_call(asw, engine, carol, "8082")
    asw.switch.attach_monitor(sup.key, q.call.key, MonitorMode.LISTEN)
    await engine.wait("monitor_started", sup.key)
    asw.switch.attach_monitor(sup.key, q.call.key, MonitorMode.BARGE)
    streams.append(Stream(sup.rtp, sup.sends_to, CAROL))
    assert _near(await heard(q.agent.rtp), ALICE)  # still listening, nobody hears Carol
    assert not engine.of("monitor_ended")
    asw.switch.attach_monitor(sup.key, sup.key, MonitorMode.BARGE)
    assert not engine.of("monitor_ended")


async def test_engine_hangup_after_the_caller_left_a_conference(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    attempt = asw.switch.conference(q.call.key, "1003", timeout=RING)
    third = await _answer_third(asw, carol, streams)
    await engine.wait("conference_result", q.call.key)
    assert (await q.call.dialog.bye()).status == 200
    asw.switch.hangup(q.call.key)
    bye = await q.agent.dialog.request("BYE")
    q.agent.inc.ua.reply(bye, 200)
    bye = await third.inc.dialog.request("BYE")  # type: ignore[attr-defined]
    carol.reply(bye, 200)
    assert (await engine.wait("conference_ended", q.call.key)).args == (attempt,)
    await engine.wait("call_ended", q.call.key)
    assert not asw.b2bua.calls()


async def test_no_hold_while_a_supervisor_is_mixed_in(
    asw: Harness, engine: FakeEngine, streams: list[Stream]
) -> None:
    """Hold music and the mixer would both send to the caller: a hold is refused instead."""
    q = await _queue_call(asw, engine, streams)
    carol = await asw.phone("acme", "1003")
    monitor = asw.switch.monitor(q.call.key, "1003", MonitorMode.WHISPER, timeout=RING)
    await _answer_third(asw, carol, streams)
    await engine.wait("monitor_started", monitor)
    hold = make_sdp(q.agent.rtp.port, codecs=[(0, "PCMU")], direction="sendonly", version=2)
    reply = await q.agent.dialog.send("INVITE", body=hold)
    assert reply.status == 488
    assert "conference or monitor" in (reply.headers.get("Warning") or "")
    assert not asw.switch.hold(q.call.key)
    assert not engine.of("call_held")
    assert _near(await heard(q.agent.rtp), ALICE + CAROL)  # the whisper goes on
