"""Re-INVITE for hold and resume, from either side, with media kept continuous by the relay."""

from __future__ import annotations

import itertools

from minicc.events import CallEnded
from minicc.tenants.models import Disposition
from tests.unit.switch.flows import Connected, answered_call
from tests.unit.switch.harness import Harness
from tests.unit.switch.ua import (
    HOST,
    Address,
    RtpPeer,
    Talker,
    UaDialog,
    make_sdp,
    sdp_audio,
    sdp_direction,
    sdp_origin_version,
)

ANSWER = {"sendonly": "recvonly", "sendrecv": "sendrecv", "inactive": "inactive"}


async def reinvite(
    sender: UaDialog,
    sender_rtp: RtpPeer,
    receiver: UaDialog,
    receiver_rtp: RtpPeer,
    direction: str,
    *,
    expect_relay_to_receiver: Address,
    expect_relay_to_sender: Address,
) -> tuple[bytes, bytes]:
    """``sender`` re-INVITEs with ``direction``; the far phone answers as RFC 3264 §6.1 says.

    Returns the offer the receiver got and the answer the sender got.
    """
    offer = make_sdp(sender_rtp.port, direction=direction, session_id=1, version=2)
    request = sender.build("INVITE", body=offer)
    sender.ua.send(request)

    relayed = await receiver.request("INVITE")
    assert relayed.body
    assert sdp_audio(relayed.body) == expect_relay_to_receiver
    assert sdp_direction(relayed.body) == direction
    answer = make_sdp(receiver_rtp.port, direction=ANSWER[direction], session_id=2, version=2)
    receiver.ua.reply(relayed, 200, body=answer, contact=True)
    ack = await receiver.request("ACK")
    assert ack.cseq.seq == relayed.cseq.seq

    ok = await sender.ua.response(request.branch, "INVITE", final=True)
    assert ok.status == 200
    sender.ack(request.cseq)
    assert sdp_audio(ok.body) == expect_relay_to_sender
    assert sdp_direction(ok.body) == ANSWER[direction]
    return relayed.body, ok.body


async def hear(peer: RtpPeer, count: int) -> list[tuple[int, int, int, bool]]:
    """(ssrc, seq, timestamp, marker) of the next ``count`` packets."""
    out = []
    for _ in range(count):
        packet, _source = await peer.recv()
        h = packet.header
        out.append((h.ssrc, h.sequence_number, h.timestamp, h.marker))
    return out


def assert_one_continuous_stream(heard: list[tuple[int, int, int, bool]]) -> None:
    assert len({ssrc for ssrc, *_ in heard}) == 1, "SSRC changed toward the phone"
    seqs = [seq for _, seq, _, _ in heard]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), seqs
    stamps = [ts for _, _, ts, _ in heard]
    assert all(0 < (b - a) & 0xFFFFFFFF < 8000 * 5 for a, b in itertools.pairwise(stamps))


async def test_hold_and_resume_both_directions_keep_media_continuous(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    call: Connected = await answered_call(sw, alice, bob)
    a_talk, b_talk = Talker(call.caller_rtp), Talker(call.callee_rtp)
    to_bob: list[tuple[int, int, int, bool]] = []
    to_alice: list[tuple[int, int, int, bool]] = []

    async def media() -> None:
        a_talk.send(call.caller_sends_to, 2)
        to_bob.extend(await hear(call.callee_rtp, 2))
        b_talk.send(call.callee_sends_to, 2)
        to_alice.extend(await hear(call.caller_rtp, 2))

    await media()
    first_offer_to_bob = call.inc.invite.body
    # Alice holds, then resumes; after resuming her phone restarts its RTP stream.
    hold_offer, _ = await reinvite(
        call.a,
        call.caller_rtp,
        call.b,
        call.callee_rtp,
        "sendonly",
        expect_relay_to_receiver=call.callee_sends_to,
        expect_relay_to_sender=call.caller_sends_to,
    )
    # Bob's leg is one SDP session: same o= session id, version bumped on the change.
    session, version = sdp_origin_version(first_offer_to_bob)
    assert sdp_origin_version(hold_offer) == (session, version + 1)
    assert sdp_audio(hold_offer)[0] == HOST
    await media()
    await reinvite(
        call.a,
        call.caller_rtp,
        call.b,
        call.callee_rtp,
        "sendrecv",
        expect_relay_to_receiver=call.callee_sends_to,
        expect_relay_to_sender=call.caller_sends_to,
    )
    a_talk.new_source()
    await media()

    # Now Bob holds and resumes, and restarts his stream too.
    await reinvite(
        call.b,
        call.callee_rtp,
        call.a,
        call.caller_rtp,
        "sendonly",
        expect_relay_to_receiver=call.caller_sends_to,
        expect_relay_to_sender=call.callee_sends_to,
    )
    await media()
    await reinvite(
        call.b,
        call.callee_rtp,
        call.a,
        call.caller_rtp,
        "sendrecv",
        expect_relay_to_receiver=call.caller_sends_to,
        expect_relay_to_sender=call.callee_sends_to,
    )
    b_talk.new_source()
    await media()

    # Each phone saw one SSRC with gapless sequence numbers across all four re-INVITEs,
    # though the other phone changed its SSRC; the switch marks the restart (RFC 3551 §4.1).
    assert_one_continuous_stream(to_bob)
    assert_one_continuous_stream(to_alice)
    assert to_bob[4][3] and to_alice[8][3]
    assert (await call.a.bye()).status == 200
    call.callee.reply(await call.b.request("BYE"), 200)
    assert (await sw.events.wait(CallEnded)).record.disposition is Disposition.ANSWERED


async def test_reinvite_rejected_by_far_side_is_relayed(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    call = await answered_call(sw, alice, bob)
    request = call.a.build("INVITE", body=make_sdp(call.caller_rtp.port, direction="sendonly"))
    alice.send(request)
    relayed = await call.b.request("INVITE")
    bob.reply(relayed, 488, reason="Not Acceptable Here")
    assert (await call.b.request("ACK")).cseq.method == "ACK"
    final = await alice.response(request.branch, "INVITE", final=True)
    assert final.status == 488
    alice.send(alice.ack_for_error(request, final))
    # The call survives a refused re-INVITE.
    assert sw.b2bua.active_calls == 1
    a_talk = Talker(call.caller_rtp)
    a_talk.send(call.caller_sends_to)
    await call.callee_rtp.recv()


async def test_a_reinvite_2xx_contact_refreshes_the_target(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    call = await answered_call(sw, alice, bob)
    request = call.a.build("INVITE", body=make_sdp(call.caller_rtp.port, direction="sendonly"))
    alice.send(request)
    relayed = await call.b.request("INVITE")
    moved = f"<sip:1002@{HOST}:{bob.port};ob>"
    answer = make_sdp(call.callee_rtp.port, direction="recvonly")
    bob.reply(relayed, 200, body=answer, contact=False, extra=[("Contact", moved)])
    ack = await call.b.request("ACK")
    assert ack.uri == moved.strip("<>")
    assert (await alice.response(request.branch, "INVITE", final=True)).status == 200
    call.a.ack(request.cseq)
    assert (await call.a.bye()).status == 200
    assert (await call.b.request("BYE")).uri == moved.strip("<>")


async def test_reinvite_glare_gets_491(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    call = await answered_call(sw, alice, bob)
    from_alice = call.a.build("INVITE", body=make_sdp(call.caller_rtp.port, direction="sendonly"))
    alice.send(from_alice)
    relayed = await call.b.request("INVITE")
    # Bob's own re-INVITE crosses the one relayed to him (RFC 3261 §14.2).
    from_bob = call.b.build("INVITE", body=make_sdp(call.callee_rtp.port, direction="sendonly"))
    bob.send(from_bob)
    pending = await bob.response(from_bob.branch, "INVITE", final=True)
    assert pending.status == 491
    bob.send(bob.ack_for_error(from_bob, pending))
    # Alice's goes through as usual.
    bob.reply(relayed, 200, body=make_sdp(call.callee_rtp.port, direction="recvonly"))
    await call.b.request("ACK")
    assert (await alice.response(from_alice.branch, "INVITE", final=True)).status == 200
    call.a.ack(from_alice.cseq)


async def test_rfc2543_hold_with_null_address(sw: Harness) -> None:
    """c=0.0.0.0 (RFC 3264 §8.4): the far phone is told sendonly, at the relay's address."""
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    call = await answered_call(sw, alice, bob)
    offer = make_sdp(call.caller_rtp.port, host="0.0.0.0")
    request = call.a.build("INVITE", body=offer)
    alice.send(request)
    relayed = await call.b.request("INVITE")
    assert relayed.body
    assert sdp_audio(relayed.body) == call.callee_sends_to
    assert sdp_direction(relayed.body) == "sendonly"
    bob.reply(relayed, 200, body=make_sdp(call.callee_rtp.port, direction="recvonly"))
    await call.b.request("ACK")
    ok = await alice.response(request.branch, "INVITE", final=True)
    assert ok.status == 200 and sdp_audio(ok.body) == call.caller_sends_to
    call.a.ack(request.cseq)
    # Resumed: media flows to Alice's real address again.
    await reinvite(
        call.a,
        call.caller_rtp,
        call.b,
        call.callee_rtp,
        "sendrecv",
        expect_relay_to_receiver=call.callee_sends_to,
        expect_relay_to_sender=call.caller_sends_to,
    )
    Talker(call.callee_rtp).send(call.callee_sends_to)
    assert (await call.caller_rtp.recv())[1] == call.caller_sends_to


async def test_reinvite_moving_the_media_port(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    call = await answered_call(sw, alice, bob)
    new_rtp = await sw.rtp()
    await reinvite(
        call.a,
        new_rtp,
        call.b,
        call.callee_rtp,
        "sendrecv",
        expect_relay_to_receiver=call.callee_sends_to,
        expect_relay_to_sender=call.caller_sends_to,
    )
    b_talk = Talker(call.callee_rtp)
    b_talk.send(call.callee_sends_to)
    _, source = await new_rtp.recv()
    assert source == call.caller_sends_to
    # And Alice's new socket is heard by Bob.
    Talker(new_rtp).send(call.caller_sends_to)
    await call.callee_rtp.recv()
    assert not call.caller_rtp.received
