"""Call set-ups that many tests share: get two phones to an answered call through the switch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tests.unit.switch.harness import FakeEngine, Harness
from tests.unit.switch.ua import (
    Address,
    IncomingCall,
    OutgoingCall,
    RtpPeer,
    SipUA,
    UaDialog,
    make_sdp,
    sdp_audio,
)


@dataclass(slots=True, eq=False)
class Connected:
    """An answered call: both phones' views, their RTP sockets and the relay addresses."""

    caller: SipUA
    callee: SipUA
    out: OutgoingCall
    inc: IncomingCall
    caller_rtp: RtpPeer
    callee_rtp: RtpPeer
    caller_sends_to: Address
    """The relay address in the 200 OK the caller got."""
    callee_sends_to: Address
    """The relay address in the INVITE the callee got."""

    @property
    def a(self) -> UaDialog:
        assert self.out.dialog is not None
        return self.out.dialog

    @property
    def b(self) -> UaDialog:
        assert self.inc.dialog is not None
        return self.inc.dialog


async def ringing_call(
    sw: Harness,
    caller: SipUA,
    callee: SipUA,
    *,
    target: str | None = None,
    call_id: str | None = None,
) -> tuple[OutgoingCall, IncomingCall, RtpPeer]:
    """Caller INVITEs ``target`` (the callee's AOR by default); the callee rings (180)."""
    caller_rtp = await sw.rtp()
    out = await caller.call(
        target or callee.account.aor, make_sdp(caller_rtp.port), call_id=call_id
    )
    inc = await callee.incoming()
    inc.ring()
    await out.status(180)
    return out, inc, caller_rtp


async def answered_call(
    sw: Harness,
    caller: SipUA,
    callee: SipUA,
    *,
    target: str | None = None,
    call_id: str | None = None,
) -> Connected:
    out, inc, caller_rtp = await ringing_call(sw, caller, callee, target=target, call_id=call_id)
    callee_rtp = await sw.rtp()
    assert inc.invite.body
    callee_sends_to = sdp_audio(inc.invite.body)
    await inc.answer(make_sdp(callee_rtp.port, session_id=7777))
    ok = await out.final()
    assert ok.status == 200, ok
    return Connected(
        caller=caller,
        callee=callee,
        out=out,
        inc=inc,
        caller_rtp=caller_rtp,
        callee_rtp=callee_rtp,
        caller_sends_to=sdp_audio(ok.body),
        callee_sends_to=callee_sends_to,
    )


@dataclass(slots=True, eq=False)
class AppCaller:
    """A call minicc answered itself (routed to APPLICATION): the caller's side of it."""

    key: str
    """The switch's key for the call (what the engine is told)."""
    caller: SipUA
    out: OutgoingCall
    rtp: RtpPeer
    sends_to: Address
    """The relay address (endpoint ``a``) in minicc's 200 OK."""

    @property
    def dialog(self) -> UaDialog:
        assert self.out.dialog is not None
        return self.out.dialog


async def app_call(
    sw: Harness,
    engine: FakeEngine,
    caller: SipUA,
    number: str = "8000",
    *,
    codecs: Sequence[tuple[int, str]] = ((0, "PCMU"), (8, "PCMA")),
    telephone_event: int | None = 101,
) -> AppCaller:
    """``caller`` dials ``number``; minicc answers (200 with the relay's SDP, ACKed), and the
    engine is told ``call_answered``."""
    rtp = await sw.rtp()
    offer = make_sdp(rtp.port, codecs=codecs, telephone_event=telephone_event)
    out = await caller.call(f"sip:{number}@{caller.account.domain}", offer)
    ok = await out.final()
    assert ok.status == 200, ok
    answered = await engine.wait("call_answered")
    return AppCaller(key=answered.key, caller=caller, out=out, rtp=rtp, sends_to=sdp_audio(ok.body))


@dataclass(slots=True, eq=False)
class Agent:
    """An agent's phone that answered an attempt: its dialog, RTP socket and relay address."""

    inc: IncomingCall
    rtp: RtpPeer
    sends_to: Address
    """The relay address (endpoint ``b``) in the INVITE the agent got."""

    @property
    def dialog(self) -> UaDialog:
        assert self.inc.dialog is not None
        return self.inc.dialog


async def answer_agent(sw: Harness, phone: SipUA) -> Agent:
    """The agent's phone rings (180) and answers with its own RTP socket; the ACK arrives."""
    inc = await phone.incoming()
    inc.ring()
    rtp = await sw.rtp()
    assert inc.invite.body
    sends_to = sdp_audio(inc.invite.body)
    await inc.answer(make_sdp(rtp.port, codecs=[(0, "PCMU")], session_id=9999))
    return Agent(inc=inc, rtp=rtp, sends_to=sends_to)
