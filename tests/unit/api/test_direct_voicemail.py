"""Voicemail on direct calls, end to end: the real server, real UDP phones and RTP.

1003 calls 1002, whose voicemail is on (5 s ring time): 1002's phone rings with 1003 as the
caller; nobody answers, so the caller hears "leave a message" and the beep, talks, hangs up,
and ``minicc voicemail list`` shows the message in box 1002. When 1002 answers, the call is
bridged as before and audio flows both ways.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from click.testing import CliRunner

from minicc.cli import cli
from minicc.queue.engine_calls import CallPhase, LiveCall
from minicc.store.mailboxes import set_mailbox
from minicc.switch.media import g711
from minicc.switch.sip.peer import Transport
from tests.unit.api.conftest import PASSWORDS, Live, until
from tests.unit.switch.ua import (
    HOST,
    Account,
    IncomingCall,
    OutgoingCall,
    RtpPeer,
    SipUA,
    Talker,
    make_sdp,
    sdp_audio,
)

RING_SECONDS = 5.0  # the shortest ring time allowed


def _tone(packets: int) -> list[bytes]:
    samples = [round(9000 * math.sin(2 * math.pi * 700 * n / 8000)) for n in range(160 * packets)]
    return [g711.ulaw_encode(samples[i * 160 : (i + 1) * 160]) for i in range(packets)]


@dataclass(slots=True, eq=False)
class DirectCall:
    caller: SipUA
    outgoing: OutgoingCall
    incoming: IncomingCall
    caller_rtp: RtpPeer
    bob_rtp: RtpPeer
    live: Live

    def live_call(self) -> LiveCall | None:
        callcenter = self.live.server.callcenter
        assert callcenter is not None
        engine = callcenter.engine("acme")
        for call in engine.calls.values():
            if call.sip_call_id == self.outgoing.call_id:
                return call
        return None


@asynccontextmanager
async def call_to_1002(live: Live) -> AsyncIterator[DirectCall]:
    """Voicemail on for 1002; 1002's phone registered; 1003 calls 1002 and is answered by
    minicc; 1002's phone is ringing."""
    server = live.server
    store = server.stores.tenant("acme")
    callcenter = server.callcenter
    assert store is not None and callcenter is not None
    set_mailbox(store, "1002", enabled=True, ring_seconds=RING_SECONDS)
    await until(lambda: callcenter.engine("acme").setup.voicemail.ring_time("1002") is not None)
    addr = (HOST, server.switch.ports[Transport.UDP])
    caller_rtp, bob_rtp = await RtpPeer.open(), await RtpPeer.open()
    bob = await SipUA(Account("1002", PASSWORDS["1002"], "acme.test"), addr).start()
    caller = await SipUA(Account("1003", PASSWORDS["1003"], "acme.test"), addr).start()
    try:
        assert (await bob.register()).status == 200
        outgoing = await caller.call("sip:1002@acme.test", make_sdp(caller_rtp.port))
        assert (await outgoing.final()).status == 200  # minicc answers: the ringing tone
        incoming = await bob.incoming(timeout=10.0)
        incoming.ring()
        yield DirectCall(caller, outgoing, incoming, caller_rtp, bob_rtp, live)
    finally:
        bob.close()
        caller.close()
        caller_rtp.close()
        bob_rtp.close()


def voicemails(live: Live) -> list[dict[str, object]]:
    result = CliRunner().invoke(
        cli, ["--data-dir", str(live.data_dir), "voicemail", "list", "--tenant", "acme", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


async def test_nobody_answers_the_caller_leaves_a_message_in_1002s_box(live: Live) -> None:
    async with call_to_1002(live) as call:
        # The rung phone sees the original caller, as on a plain call.
        assert "sip:1003@" in (call.incoming.invite.headers.get("From") or "")
        assert call.caller_rtp.received or await call.caller_rtp.recv(timeout=5.0)  # ringing tone
        await call.incoming.cancelled(timeout=RING_SECONDS + 5)  # the ring time is up
        # "Leave a message", the beep, then the recording: the engine's call is closing
        # with nothing playing once the message is being taken.
        await until(
            lambda: (
                (c := call.live_call()) is not None
                and c.phase is CallPhase.CLOSING
                and c.playback is None
            ),
            timeout=15.0,
        )
        assert call.outgoing.final_response is not None
        to_minicc = sdp_audio(call.outgoing.final_response.body)
        talker = Talker(call.caller_rtp)
        for payload in _tone(50):  # one second of speech, paced like a phone
            talker.send(to_minicc, payload=payload)
            await asyncio.sleep(0.02)
        assert call.outgoing.dialog is not None
        assert (await call.outgoing.dialog.bye()).status == 200
        await until(lambda: bool(voicemails(live)), timeout=10.0)
    [message] = voicemails(live)
    assert (message["box"], message["caller"]) == ("1002", "1003")
    assert 0.5 <= float(message["duration"]) <= 2.0  # type: ignore[arg-type]


async def test_1002_answers_and_the_call_is_bridged(live: Live) -> None:
    async with call_to_1002(live) as call:
        bob = await call.incoming.answer(make_sdp(call.bob_rtp.port, codecs=[(0, "PCMU")]))
        await until(lambda: (c := call.live_call()) is not None and c.phase is CallPhase.CONNECTED)
        assert call.outgoing.final_response is not None and call.incoming.invite.body
        to_bob_side = sdp_audio(call.outgoing.final_response.body)
        to_caller_side = sdp_audio(call.incoming.invite.body)
        caller_talks, bob_talks = Talker(call.caller_rtp), Talker(call.bob_rtp)
        bob_talks.send(to_caller_side, 3, payload=b"\x11" * 160)
        caller_talks.send(to_bob_side, 3, payload=b"\x22" * 160)
        for _ in range(50):  # skip anything the ringing tone left in flight
            packet, _ = await call.bob_rtp.recv(timeout=5.0)
            if packet.payload == b"\x22" * 160:
                break
        else:
            raise AssertionError("the caller's audio never reached 1002")
        for _ in range(100):
            packet, _ = await call.caller_rtp.recv(timeout=5.0)
            if packet.payload == b"\x11" * 160:
                break
        else:
            raise AssertionError("1002's audio never reached the caller")
        assert (await bob.bye()).status == 200
        await until(lambda: call.live_call() is None)
    assert voicemails(live) == []
