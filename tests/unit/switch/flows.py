"""Call set-ups that many tests share: get two phones to an answered call through the switch."""

from __future__ import annotations

from dataclasses import dataclass

from tests.unit.switch.harness import Harness
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
