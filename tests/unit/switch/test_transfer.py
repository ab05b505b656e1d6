"""Call transfer through the switch: REFER from real SIP over loopback (minicc.switch.transfer).

The engine's part is :class:`~tests.unit.switch.harness.FakeEngine` (``transfer_route``:
``1xxx`` extensions, ``8xxx`` back to the engine, anything else refused with 403); the tests
play the engine by calling the switch's CallControl methods.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import quote

import pytest

from minicc.events import CallEnded
from minicc.switch import transfer
from minicc.switch.control import RingResult, RouteKind, TransferKind, TransferReport
from minicc.switch.sip.message import Request, Response
from minicc.tenants.models import Disposition
from tests.unit.switch.flows import Agent, AppCaller, answer_agent, answered_call, app_call
from tests.unit.switch.harness import FakeEngine, Harness
from tests.unit.switch.ua import (
    Address,
    RtpPeer,
    SipUA,
    Talker,
    UaDialog,
    make_sdp,
    sdp_audio,
    sdp_direction,
)

RING = 5.0


async def _agent_call(asw: Harness, engine: FakeEngine) -> tuple[AppCaller, Agent, SipUA]:
    """Alice (1001) calls 8000; minicc rings Bob (1002), the agent, who answers."""
    alice = await asw.phone("acme", "1001")
    call = await app_call(asw, engine, alice)
    bob = await asw.phone("acme", "1002")
    asw.switch.ring(call.key, "1002", timeout=RING)
    agent = await answer_agent(asw, bob)
    assert (await engine.wait("ring_result", call.key)).args[1] is RingResult.ANSWERED
    return call, agent, bob


async def _refer(dialog: UaDialog, refer_to: str | None, *more: str) -> Response:
    extra = [("Referred-By", f"<sip:{dialog.ua.account.user}@acme.test>")]
    extra += [("Refer-To", value) for value in ((refer_to,) if refer_to else ()) + more]
    return await dialog.send("REFER", extra=extra)


async def _notify(dialog: UaDialog) -> Request:
    """The next NOTIFY on the dialog, answered 200 as a phone does."""
    notify = await dialog.request("NOTIFY")
    dialog.ua.reply(notify, 200)
    assert notify.headers.get("Event") == "refer"
    assert notify.content_type == "message/sipfrag"
    return notify


async def _notified(dialog: UaDialog, final: int) -> None:
    """NOTIFY 100 Trying, then the final status, as RFC 3515 §2.4.4 asks."""
    trying = await _notify(dialog)
    assert trying.body == b"SIP/2.0 100 Trying\r\n"
    assert (trying.headers.get("Subscription-State") or "").startswith("active")
    done = await _notify(dialog)
    assert done.body.startswith(f"SIP/2.0 {final} ".encode()), done.body
    assert done.headers.get("Subscription-State") == "terminated;reason=noresource"


async def _hears(
    rtp: RtpPeer, payload: bytes, *, count: int = 3, never: bytes | None = None
) -> Address:
    """Wait for ``count`` packets carrying ``payload`` (others, e.g. music, are skipped,
    but none may carry ``never``)."""
    source: Address | None = None
    heard = 0
    while heard < count:
        packet, source = await rtp.recv()
        assert never is None or packet.payload != never, "a released party was heard"
        if packet.payload == payload:
            heard += 1
    assert source is not None
    return source


async def _two_way(a: RtpPeer, a_to: Address, b: RtpPeer, b_to: Address) -> None:
    Talker(a).send(a_to, 3, payload=b"\x31" * 160)
    assert await _hears(b, b"\x31" * 160) == b_to
    Talker(b).send(b_to, 3, payload=b"\x32" * 160)
    assert await _hears(a, b"\x32" * 160) == a_to


async def _hold(holder: UaDialog, held: UaDialog, holder_port: int, held_port: int) -> None:
    """``holder`` puts ``held`` on hold; minicc relays the re-INVITE (sendonly/recvonly)."""
    offer = make_sdp(holder_port, direction="sendonly", session_id=5151, version=5)
    task = asyncio.create_task(holder.send("INVITE", body=offer))
    reinvite = await held.request("INVITE")
    assert reinvite.body and sdp_direction(reinvite.body) == "sendonly"
    held.ua.reply(reinvite, 200, body=make_sdp(held_port, direction="recvonly", version=3))
    assert (await task).status == 200


async def _taken_off_hold(dialog: UaDialog, port: int) -> None:
    """minicc re-INVITEs a phone that was on hold with sendrecv; it answers."""
    reinvite = await dialog.request("INVITE")
    assert reinvite.body and sdp_direction(reinvite.body) == "sendrecv"
    dialog.ua.reply(reinvite, 200, body=make_sdp(port, version=4))


async def _agent_holds(agent: Agent, engine: FakeEngine, key: str) -> None:
    """The agent's phone holds: minicc answers it itself (minicc.switch.hold) and tells the
    engine; the caller's phone hears of nothing."""
    offer = make_sdp(agent.rtp.port, direction="sendonly", session_id=9999, version=5)
    ok = await agent.dialog.send("INVITE", body=offer)
    assert ok.status == 200 and sdp_direction(ok.body) == "recvonly"
    await engine.wait("call_held", key)


def _tag(value: str) -> str:
    match = re.search(r";tag=([^;>]+)", value)
    assert match is not None, value
    return match.group(1)


def _replaces_uri(ext: str, dialog: UaDialog) -> str:
    """Refer-To for an attended transfer: ``dialog`` (the phone's, with minicc) replaced.
    RFC 3891: to-tag is the receiver's (minicc's) tag, from-tag the phone's."""
    value = f"{dialog.call_id};to-tag={_tag(dialog.remote)};from-tag={dialog.local_tag}"
    return f"<sip:{ext}@acme.test?Replaces={quote(value, safe='')}>"


async def test_blind_transfer_to_an_extension(asw: Harness, engine: FakeEngine) -> None:
    call, agent, _bob = await _agent_call(asw, engine)
    await _agent_holds(agent, engine, call.key)  # as phones do before they transfer
    accepted = await _refer(agent.dialog, "<sip:1003@acme.test>")
    assert accepted.status == 202
    await _notified(agent.dialog, 200)
    assert (await agent.dialog.bye()).status == 200  # the phone hangs up after NOTIFY 200

    # The hold ends with the transfer, and the engine hears that first.
    resumed = await engine.wait("call_resumed", call.key)
    told = await engine.wait("call_transferred", call.key)
    assert engine.told.index(resumed) < engine.told.index(told)
    report = told.args[0]
    assert isinstance(report, TransferReport)
    assert (report.kind, report.by, report.target, report.status) == (
        TransferKind.BLIND,
        "1002",
        "1003",
        200,
    )
    assert report.route is not None and report.route.kind is RouteKind.EXTENSION
    assert engine.of("call_ended", call.key) == []
    # Nothing of the old agent reaches the caller any more.
    Talker(agent.rtp).send(agent.sends_to, 3, payload=b"\x77" * 160)

    # The engine rings the extension for the caller; Carol answers and talks to Alice.
    carol = await asw.phone("acme", "1003")
    asw.switch.ring(call.key, "1003", timeout=RING)
    new = await answer_agent(asw, carol)
    assert (await engine.wait("ring_result", call.key)).args[1] is RingResult.ANSWERED
    Talker(new.rtp).send(new.sends_to, 3, payload=b"\x32" * 160)
    assert await _hears(call.rtp, b"\x32" * 160, never=b"\x77" * 160) == call.sends_to
    await _two_way(call.rtp, call.sends_to, new.rtp, new.sends_to)

    await call.dialog.bye()
    await new.dialog.request("BYE")
    ended = await asw.events.wait(CallEnded)
    assert ended.record.disposition is Disposition.ANSWERED


async def test_transferor_that_does_not_hang_up_is_released(
    asw: Harness, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "RELEASE_GRACE", 0.2)
    call, agent, _bob = await _agent_call(asw, engine)
    assert (await _refer(agent.dialog, "<sip:8001@acme.test>")).status == 202
    await _notified(agent.dialog, 200)
    # The released dialog belongs to no call any more: a second REFER is 481.
    assert (await _refer(agent.dialog, "<sip:1003@acme.test>")).status == 481
    bye = await agent.dialog.request("BYE")  # minicc ends the leg itself
    agent.dialog.ua.reply(bye, 200)
    report = (await engine.wait("call_transferred", call.key)).args[0]
    assert report.route.kind is RouteKind.APPLICATION and report.target == "8001"
    # The caller is the engine's again: a prompt reaches them.
    assert engine.of("call_ended", call.key) == []
    assert asw.b2bua.call(call.key).callee is None


async def test_transfer_to_an_outside_number_is_refused_and_the_call_stays(
    asw: Harness, engine: FakeEngine
) -> None:
    call, agent, _bob = await _agent_call(asw, engine)
    assert (await _refer(agent.dialog, "<sip:%2B4930123456@acme.test>")).status == 202
    await _notified(agent.dialog, 403)
    report = (await engine.wait("call_transferred", call.key)).args[0]
    assert (report.status, report.target, report.route) == (403, "+4930123456", None)
    await _two_way(call.rtp, call.sends_to, agent.rtp, agent.sends_to)


async def test_malformed_refer_gets_400_and_the_call_is_unaffected(
    asw: Harness, engine: FakeEngine
) -> None:
    call, agent, _bob = await _agent_call(asw, engine)
    missing = await _refer(agent.dialog, None)
    assert missing.status == 400
    assert "without Refer-To" in (missing.headers.get("Warning") or "")
    two = await _refer(agent.dialog, "<sip:1003@acme.test>", "<sip:1001@acme.test>")
    assert two.status == 400 and "more than one" in (two.headers.get("Warning") or "")
    bad = await _refer(agent.dialog, "<sip:1003@acme.test?Replaces=x%3Bto-tag%3D1>")
    assert bad.status == 400 and "from-tag" in (bad.headers.get("Warning") or "")
    # The caller cannot transfer the agent away.
    refused = await _refer(call.dialog, "<sip:1003@acme.test>")
    assert refused.status == 403
    await _two_way(call.rtp, call.sends_to, agent.rtp, agent.sends_to)
    assert engine.of("call_transferred") == [] and engine.of("call_ended") == []
    assert agent.dialog.ua.requests_seen("NOTIFY") == []


async def test_attended_transfer_joins_the_caller_with_the_consulted_party(
    asw: Harness, engine: FakeEngine
) -> None:
    call, agent, bob = await _agent_call(asw, engine)
    await _agent_holds(agent, engine, call.key)  # Bob holds Alice (minicc keeps it)
    carol = await asw.phone("acme", "1003")
    consult = await answered_call(asw, bob, carol)  # Bob calls Carol: call 2
    await _two_way(
        consult.caller_rtp, consult.caller_sends_to, consult.callee_rtp, consult.callee_sends_to
    )

    # REFER on call 1 (with Alice) replacing Bob's dialog of call 2.
    accepted = await _refer(agent.dialog, _replaces_uri("1003", consult.a))
    assert accepted.status == 202
    trying = await _notify(agent.dialog)
    assert trying.body == b"SIP/2.0 100 Trying\r\n"
    # Carol is re-INVITEd onto the caller's relay endpoint.
    reinvite = await consult.b.request("INVITE")
    assert reinvite.body
    carol_sends_to = sdp_audio(reinvite.body)
    carol.reply(reinvite, 200, body=make_sdp(consult.callee_rtp.port, session_id=7777, version=2))
    done = await _notify(agent.dialog)
    assert done.body == b"SIP/2.0 200 OK\r\n"
    # Bob's consultation dialog is ended by minicc; Bob hangs up call 1 himself.
    bye = await consult.a.request("BYE")
    bob.reply(bye, 200)
    assert (await agent.dialog.bye()).status == 200
    await engine.wait("call_resumed", call.key)  # the hold ended with the join

    await _two_way(call.rtp, call.sends_to, consult.callee_rtp, carol_sends_to)
    report = (await engine.wait("call_transferred", call.key)).args[0]
    assert (report.kind, report.by, report.party, report.status) == (
        TransferKind.ATTENDED,
        "1002",
        "1003",
        200,
    )
    assert engine.of("call_ended", call.key) == []
    # One call left, and hanging up reaches Carol.
    assert asw.b2bua.active_calls == 1
    await call.dialog.bye()
    await consult.b.request("BYE")
    await engine.wait("call_ended", call.key)


async def test_attended_transfer_sent_on_the_consultation_call(
    asw: Harness, engine: FakeEngine
) -> None:
    call, agent, bob = await _agent_call(asw, engine)
    carol = await asw.phone("acme", "1003")
    consult = await answered_call(asw, bob, carol)
    # Some phones send the REFER on call 2, replacing call 1 (their dialog with minicc).
    accepted = await _refer(consult.a, _replaces_uri("1001", agent.dialog))
    assert accepted.status == 202
    await _notify(consult.a)
    reinvite = await consult.b.request("INVITE")
    assert reinvite.body
    carol_sends_to = sdp_audio(reinvite.body)
    carol.reply(reinvite, 200, body=make_sdp(consult.callee_rtp.port, session_id=7777, version=2))
    await _notify(consult.a)
    bye = await agent.dialog.request("BYE")  # the replaced dialog: call 1's agent leg
    bob.reply(bye, 200)
    assert (await consult.a.bye()).status == 200
    await _two_way(call.rtp, call.sends_to, consult.callee_rtp, carol_sends_to)
    report = (await engine.wait("call_transferred", call.key)).args[0]
    assert report.kind is TransferKind.ATTENDED and report.party == "1003"


async def test_attended_transfer_refused_by_the_target_changes_nothing(
    asw: Harness, engine: FakeEngine
) -> None:
    call, agent, bob = await _agent_call(asw, engine)
    carol = await asw.phone("acme", "1003")
    consult = await answered_call(asw, bob, carol)
    assert (await _refer(agent.dialog, _replaces_uri("1003", consult.a))).status == 202
    await _notify(agent.dialog)
    reinvite = await consult.b.request("INVITE")
    carol.reply(reinvite, 488)
    done = await _notify(agent.dialog)
    assert done.body.startswith(b"SIP/2.0 488 ")
    await _two_way(call.rtp, call.sends_to, agent.rtp, agent.sends_to)
    await _two_way(
        consult.caller_rtp, consult.caller_sends_to, consult.callee_rtp, consult.callee_sends_to
    )
    # An unknown dialog to replace: 481 in the NOTIFY.
    value = quote(f"nope;to-tag={_tag(consult.a.remote)};from-tag={consult.a.local_tag}", safe="")
    stale = f"<sip:1003@acme.test?Replaces={value}>"
    assert (await _refer(agent.dialog, stale)).status == 202
    await _notified(agent.dialog, 481)
    # Each accepted REFER was reported to the engine once, with its outcome.
    statuses = [t.args[0].status for t in engine.of("call_transferred", call.key)]
    assert statuses == [488, 481]


async def test_plain_call_blind_transfer_rings_the_target(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    carol = await sw.phone("acme", "1003")
    call = await answered_call(sw, alice, bob)
    await _hold(call.b, call.a, call.callee_rtp.port, call.caller_rtp.port)
    assert (await _refer(call.b, "<sip:1003@acme.test>")).status == 202
    await _notified(call.b, 200)
    assert (await call.b.bye()).status == 200
    inc = await carol.incoming()
    assert inc.invite.from_.uri.user == "1001"  # Carol sees the caller
    inc.ring()
    carol_rtp = await sw.rtp()
    assert inc.invite.body
    carol_sends_to = sdp_audio(inc.invite.body)
    await inc.answer(make_sdp(carol_rtp.port))
    await _taken_off_hold(call.a, call.caller_rtp.port)  # the hold Bob left her on is undone
    await _two_way(call.caller_rtp, call.caller_sends_to, carol_rtp, carol_sends_to)
    await call.a.bye()
    await inc.dialog.request("BYE")  # type: ignore[union-attr]


async def test_plain_call_transfer_nobody_answers_rings_the_transferor_back(
    make_switch: object,
) -> None:
    sw = await make_switch(ring_timeout=0.5)  # type: ignore[operator]
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    carol = await sw.phone("acme", "1003")
    call = await answered_call(sw, alice, bob)
    assert (await _refer(call.b, "<sip:1003@acme.test>")).status == 202
    await _notified(call.b, 200)
    await call.b.bye()
    inc = await carol.incoming()
    inc.ring()
    await inc.cancelled()
    back = await bob.incoming()  # Bob is rung back for the caller
    back.ring()
    bob_rtp = await sw.rtp()
    await back.answer(make_sdp(bob_rtp.port))
    assert back.invite.body
    await _two_way(call.caller_rtp, call.caller_sends_to, bob_rtp, sdp_audio(back.invite.body))


async def test_attended_transfer_to_an_agent_who_answered_a_queue_consultation(
    asw: Harness, engine: FakeEngine
) -> None:
    call, agent, bob = await _agent_call(asw, engine)
    # Bob consults the queue: his call to 8001 is answered by minicc, then by Carol.
    consult = await app_call(asw, engine, bob, "8001")
    carol = await asw.phone("acme", "1003")
    asw.switch.ring(consult.key, "1003", timeout=RING)
    carol_agent = await answer_agent(asw, carol)
    assert (await engine.wait("ring_result", consult.key)).args[1] is RingResult.ANSWERED

    assert (await _refer(agent.dialog, _replaces_uri("8001", consult.dialog))).status == 202
    await _notify(agent.dialog)
    reinvite = await carol_agent.dialog.request("INVITE")
    assert reinvite.body
    carol_sends_to = sdp_audio(reinvite.body)
    carol.reply(reinvite, 200, body=make_sdp(carol_agent.rtp.port, session_id=9999, version=2))
    await _notify(agent.dialog)
    bob.reply(await consult.dialog.request("BYE"), 200)
    await agent.dialog.bye()
    await _two_way(call.rtp, call.sends_to, carol_agent.rtp, carol_sends_to)

    transferred = await engine.wait("call_transferred", call.key)
    ended = await engine.wait("call_ended", consult.key)
    # The engine hears of the transfer first, then of the consultation call's end.
    assert engine.told.index(transferred) < engine.told.index(ended)
    report = transferred.args[0]
    assert (report.replaced, report.party) == (consult.key, "1003")


async def test_transfer_started_by_the_engine(asw: Harness, engine: FakeEngine) -> None:
    """CallControl.transfer (the REST API's way for TUI agents): no REFER, same result."""
    call, agent, _bob = await _agent_call(asw, engine)
    asw.switch.transfer(call.key, "1003")
    bye = await agent.dialog.request("BYE")  # the agent's leg is released at once
    agent.dialog.ua.reply(bye, 200)
    report = (await engine.wait("call_transferred", call.key)).args[0]
    assert (report.by, report.target, report.status) == ("1002", "1003", 200)
    assert engine.of("call_ended", call.key) == []
    # Outside numbers are refused; a call that is gone is reported too.
    asw.switch.transfer("no-such-call", "1003")
    gone = (await engine.wait("call_transferred", "no-such-call")).args[0]
    assert gone.status == 481


async def test_caller_hanging_up_stops_the_transfer_target_ringing(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    carol = await sw.phone("acme", "1003")
    call = await answered_call(sw, alice, bob)
    assert (await _refer(call.b, "<sip:1003@acme.test>")).status == 202
    await _notified(call.b, 200)
    await call.b.bye()
    inc = await carol.incoming()
    inc.ring()
    assert (await call.a.bye()).status == 200
    await inc.cancelled()  # Carol's phone stops ringing at once
    ended = await sw.events.wait(CallEnded)
    assert ended.record.disposition is Disposition.ANSWERED
    assert sw.b2bua.active_calls == 0


async def test_no_transfer_while_a_supervisor_is_on_the_call(
    asw: Harness, engine: FakeEngine
) -> None:
    call, agent, _bob = await _agent_call(asw, engine)
    live = asw.b2bua.call(call.key)
    live.watchers.append(object())  # what a monitor or conference join registers
    refused = await _refer(agent.dialog, "<sip:1003@acme.test>")
    assert refused.status == 403 and "supervisor" in (refused.headers.get("Warning") or "")
    live.watchers.clear()
    await _two_way(call.rtp, call.sends_to, agent.rtp, agent.sends_to)
