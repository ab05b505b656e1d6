"""Every RFC 3261 / RFC 6026 transaction timer, scripted on a fake clock.

The aioquic pattern: nothing sleeps; ``now = layer.get_timer(); layer.handle_timer(now)``
steps time to the next deadline, and the tests check the exact instants things happen.
"""

from __future__ import annotations

import random

import pytest

from minicc.switch.sip.headers import Headers
from minicc.switch.sip.message import Request, Response, make_response
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.sip.timers import TimerConfig
from minicc.switch.sip.transaction import (
    AckReceived,
    AckTimeout,
    ClientTxKey,
    InviteClientState,
    InviteServerState,
    RequestReceived,
    ResponseReceived,
    ServerTxTimeout,
    StrayResponse,
    TransactionTimeout,
    TxEvent,
)
from minicc.switch.sip.txlayer import TransactionLayer

UAS_UDP = Peer(Transport.UDP, "192.0.2.20", 5060)
UAS_TCP = Peer(Transport.TCP, "192.0.2.20", 5060)
UAC_UDP = Peer(Transport.UDP, "192.0.2.10", 5062)
UAC_TCP = Peer(Transport.TCP, "192.0.2.10", 40001)


# --- helpers -------------------------------------------------------------------------------


def new_layer(**kwargs: object) -> TransactionLayer:
    return TransactionLayer(rng=random.Random(7), **kwargs)  # type: ignore[arg-type]


def outgoing(method: str, *, cseq: int = 1, call_id: str = "call-1") -> Request:
    """A request as a TU hands it to the layer: no Via (the layer adds one)."""
    headers = Headers(
        [
            ("Max-Forwards", "70"),
            ("From", "<sip:alice@192.0.2.10>;tag=alice1"),
            ("To", "<sip:bob@192.0.2.20>"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
    )
    return Request(headers=headers, method=method, uri="sip:bob@192.0.2.20")


def incoming(
    method: str,
    *,
    peer: Peer = UAC_UDP,
    branch: str = "z9hG4bKin1",
    cseq: int = 1,
    call_id: str = "call-9",
    to_tag: str | None = None,
) -> Request:
    """A request as it arrives from ``peer``."""
    to = "<sip:bob@192.0.2.20>" + (f";tag={to_tag}" if to_tag else "")
    headers = Headers(
        [
            ("Via", f"SIP/2.0/{peer.transport.value} {peer.host}:{peer.port};branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", "<sip:carol@192.0.2.10>;tag=carol1"),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
    )
    return Request(headers=headers, method=method, uri="sip:bob@192.0.2.20")


def ack_for(invite: Request, response: Response, *, branch: str | None = None) -> Request:
    """An ACK as the UAC sends it: same branch for a non-2xx, a new one for a 2xx."""
    via = invite.headers.get_list("Via")[0]
    if branch is not None:
        via = via.replace(invite.top_via.branch or "", branch)
    headers = Headers(
        [
            ("Via", via),
            ("From", invite.headers.get("From") or ""),
            ("To", response.headers.get("To") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq.seq} ACK"),
        ]
    )
    return Request(headers=headers, method="ACK", uri=invite.uri)


def events(layer: TransactionLayer) -> list[TxEvent]:
    out = []
    while (ev := layer.next_event()) is not None:
        out.append(ev)
    return out


def first_lines(layer: TransactionLayer) -> list[str]:
    return [data.split(b"\r\n", 1)[0].decode() for _, data in layer.datagrams_to_send()]


def run_timers(layer: TransactionLayer, until: float = 1e9) -> list[tuple[float, list[str]]]:
    """Step the fake clock through every deadline up to ``until``; what went out when."""
    log: list[tuple[float, list[str]]] = []
    while (now := layer.get_timer()) is not None and now <= until:
        layer.handle_timer(now)
        log.append((now, first_lines(layer)))
    return log


def sent_at(log: list[tuple[float, list[str]]]) -> list[float]:
    return [t for t, lines in log if lines]


def send_invite(layer: TransactionLayer, dest: Peer = UAS_UDP) -> tuple[ClientTxKey, Request]:
    invite = outgoing("INVITE")
    key = layer.send_request(invite, dest, now=0.0)
    assert first_lines(layer) == ["INVITE sip:bob@192.0.2.20 SIP/2.0"]
    return key, invite


def receive_invite(
    layer: TransactionLayer, peer: Peer = UAC_UDP, now: float = 0.0
) -> tuple[Request, RequestReceived]:
    layer.receive(incoming("INVITE", peer=peer), peer, now)
    (ev,) = events(layer)
    assert isinstance(ev, RequestReceived)
    layer.datagrams_to_send()  # the automatic 100 Trying
    return ev.request, ev


# --- client INVITE: A, B, D, M -------------------------------------------------------------


def test_timer_a_doubles_and_timer_b_gives_up_at_64_t1() -> None:
    layer = new_layer()
    key, invite = send_invite(layer)
    log = run_timers(layer)
    # RFC 3261 §17.1.1.2: retransmit at T1, then 2T1, 4T1, ... until Timer B (64*T1 = 32 s).
    assert sent_at(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(lines == ["INVITE sip:bob@192.0.2.20 SIP/2.0"] for _, lines in log[:-1])
    assert log[-1] == (32.0, [])
    assert events(layer) == [TransactionTimeout(client_key=key, request=invite)]
    assert len(layer) == 0 and layer.get_timer() is None


def test_timer_a_follows_t1() -> None:
    layer = new_layer(timers=TimerConfig(T1=0.1, T2=4.0))
    send_invite(layer)
    log = run_timers(layer)
    assert sent_at(log) == pytest.approx([0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    assert log[-1][0] == pytest.approx(6.4)


def test_no_timer_a_over_tcp_only_timer_b() -> None:
    layer = new_layer()
    key, _ = send_invite(layer, UAS_TCP)
    assert layer.get_timer() == 32.0
    assert run_timers(layer) == [(32.0, [])]
    (ev,) = events(layer)
    assert isinstance(ev, TransactionTimeout) and ev.client_key == key


def test_provisional_stops_timer_a_and_b() -> None:
    layer = new_layer()
    key, invite = send_invite(layer)
    layer.receive(make_response(invite, 180, to_tag="b1"), UAS_UDP, 0.3)
    assert layer.client_state(key) is InviteClientState.PROCEEDING
    # No retransmission, no timeout while ringing: the TU bounds it with CANCEL.
    assert layer.get_timer() is None


def test_timer_b_rearmed_after_cancel_gives_up_64_t1_later() -> None:
    layer = new_layer()
    key, invite = send_invite(layer)
    layer.receive(make_response(invite, 180, to_tag="b1"), UAS_UDP, 0.3)
    events(layer)
    layer.cancel(key, now=10.0)
    assert first_lines(layer) == ["CANCEL sip:bob@192.0.2.20 SIP/2.0"]
    layer.receive(
        make_response(_cancel_of(invite), 200, to_tag="b1"), UAS_UDP, 10.1
    )  # the CANCEL is answered but the 487 never comes (§9.1)
    log = run_timers(layer)
    assert log[-1][0] == 42.0
    timeouts = [e for e in events(layer) if isinstance(e, TransactionTimeout)]
    assert [t.client_key for t in timeouts] == [key]
    assert len(layer) == 0


def _cancel_of(invite: Request) -> Request:
    cancel = outgoing("CANCEL")
    cancel.headers.prepend("Via", invite.headers.get_list("Via")[0])
    return cancel


def test_timer_d_absorbs_final_retransmissions_on_udp() -> None:
    layer = new_layer()
    key, invite = send_invite(layer)
    busy = make_response(invite, 486, to_tag="b1")
    layer.receive(busy, UAS_UDP, 1.0)
    assert first_lines(layer) == ["ACK sip:bob@192.0.2.20 SIP/2.0"]
    assert [type(e) for e in events(layer)] == [ResponseReceived]
    assert layer.client_state(key) is InviteClientState.COMPLETED
    assert layer.get_timer() == 33.0  # Timer D: 32 s, A and B cancelled
    layer.receive(busy, UAS_UDP, 2.0)  # the 486 retransmitted: ACK again, TU not told
    assert first_lines(layer) == ["ACK sip:bob@192.0.2.20 SIP/2.0"]
    assert events(layer) == []
    assert run_timers(layer) == [(33.0, [])]
    assert len(layer) == 0


def test_timer_d_is_zero_over_tcp() -> None:
    layer = new_layer()
    _, invite = send_invite(layer, UAS_TCP)
    layer.receive(make_response(invite, 486, to_tag="b1"), UAS_TCP, 1.0)
    assert first_lines(layer) == ["ACK sip:bob@192.0.2.20 SIP/2.0"]
    assert [type(e) for e in events(layer)] == [ResponseReceived]
    assert len(layer) == 0 and layer.get_timer() is None


def test_timer_m_keeps_accepted_and_reacks_2xx_retransmissions() -> None:
    layer = new_layer()
    key, invite = send_invite(layer)
    ok = make_response(invite, 200, to_tag="b1")
    layer.receive(ok, UAS_UDP, 1.0)
    (ev,) = events(layer)
    assert isinstance(ev, ResponseReceived) and ev.response.status == 200
    assert layer.client_state(key) is InviteClientState.ACCEPTED
    assert layer.get_timer() == 33.0  # Timer M = 64*T1
    layer.receive(ok, UAS_UDP, 1.4)  # retransmitted before the TU ACKed: absorbed
    assert events(layer) == [] and layer.datagrams_to_send() == []
    ack = outgoing("ACK")
    ack.headers.set("To", "<sip:bob@192.0.2.20>;tag=b1")
    layer.send_ack_for_2xx(ack, UAS_UDP, now=1.5)
    assert first_lines(layer) == ["ACK sip:bob@192.0.2.20 SIP/2.0"]
    layer.receive(ok, UAS_UDP, 2.0)  # our ACK was lost: the layer re-sends it by itself
    assert first_lines(layer) == ["ACK sip:bob@192.0.2.20 SIP/2.0"]
    assert events(layer) == []
    run_timers(layer, until=33.0)
    assert len(layer) == 0  # Timer M fired at 33
    layer.receive(ok, UAS_UDP, 33.2)  # still re-ACKed: the ACK is kept 64*T1 after sending
    assert first_lines(layer) == ["ACK sip:bob@192.0.2.20 SIP/2.0"]
    assert run_timers(layer) == [(33.5, [])]  # the kept ACK expires
    layer.receive(ok, UAS_UDP, 40.0)
    assert [type(e) for e in events(layer)] == [StrayResponse]


# --- client non-INVITE: E, F, K ------------------------------------------------------------


def test_timer_e_doubles_up_to_t2_and_timer_f_gives_up() -> None:
    layer = new_layer()
    key = layer.send_request(outgoing("OPTIONS"), UAS_UDP, now=0.0)
    layer.datagrams_to_send()
    log = run_timers(layer)
    # §17.1.2.2: E = T1, 2T1, 4T1, then T2 (4 s) until F at 64*T1.
    assert sent_at(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-1] == (32.0, [])
    (ev,) = events(layer)
    assert isinstance(ev, TransactionTimeout) and ev.client_key == key


def test_timer_e_is_t2_in_proceeding() -> None:
    layer = new_layer()
    request = outgoing("OPTIONS")
    layer.send_request(request, UAS_UDP, now=0.0)
    layer.datagrams_to_send()
    layer.receive(make_response(request, 100), UAS_UDP, 0.2)
    log = run_timers(layer)
    # The pending E (0.5) fires, then E is reset to T2 each time (§17.1.2.2).
    assert sent_at(log) == [0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert log[-1] == (32.0, [])


def test_timer_f_over_tcp_without_retransmission() -> None:
    layer = new_layer()
    layer.send_request(outgoing("OPTIONS"), UAS_TCP, now=0.0)
    layer.datagrams_to_send()
    assert run_timers(layer) == [(32.0, [])]
    assert [type(e) for e in events(layer)] == [TransactionTimeout]


def test_timer_k_absorbs_response_retransmissions() -> None:
    layer = new_layer()
    request = outgoing("OPTIONS")
    layer.send_request(request, UAS_UDP, now=0.0)
    ok = make_response(request, 200, to_tag="b1")
    layer.receive(ok, UAS_UDP, 1.0)
    assert [type(e) for e in events(layer)] == [ResponseReceived]
    assert layer.get_timer() == 6.0  # K = T4 = 5 s
    layer.receive(ok, UAS_UDP, 2.0)
    assert events(layer) == []
    run_timers(layer)
    assert len(layer) == 0


def test_timer_k_is_zero_over_tcp() -> None:
    layer = new_layer()
    request = outgoing("OPTIONS")
    layer.send_request(request, UAS_TCP, now=0.0)
    layer.receive(make_response(request, 200, to_tag="b1"), UAS_TCP, 1.0)
    assert [type(e) for e in events(layer)] == [ResponseReceived]
    assert len(layer) == 0 and layer.get_timer() is None


# --- server INVITE: G, H, I, L and the 2xx retransmission -----------------------------------


def test_timer_g_retransmits_final_and_timer_h_gives_up() -> None:
    layer = new_layer()
    invite, ev = receive_invite(layer)
    layer.send_response(make_response(invite, 486, to_tag="u1"), now=0.0)
    assert first_lines(layer) == ["SIP/2.0 486 Busy Here"]
    log = run_timers(layer)
    assert sent_at(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-1] == (32.0, [])
    assert events(layer) == [ServerTxTimeout(server_key=ev.server_key)]
    assert len(layer) == 0


def test_no_timer_g_over_tcp_only_h() -> None:
    layer = new_layer()
    invite, _ = receive_invite(layer, UAC_TCP)
    layer.send_response(make_response(invite, 486, to_tag="u1"), now=0.0)
    layer.datagrams_to_send()
    assert run_timers(layer) == [(32.0, [])]
    assert [type(e) for e in events(layer)] == [ServerTxTimeout]


def test_ack_stops_g_and_h_then_timer_i_absorbs_acks() -> None:
    layer = new_layer()
    invite, ev = receive_invite(layer)
    busy = make_response(invite, 486, to_tag="u1")
    layer.send_response(busy, now=0.0)
    layer.datagrams_to_send()
    layer.handle_timer(0.5)
    assert first_lines(layer) == ["SIP/2.0 486 Busy Here"]
    ack = ack_for(invite, busy)
    layer.receive(ack, UAC_UDP, 0.7)
    assert layer.server_state(ev.server_key) is InviteServerState.CONFIRMED
    assert events(layer) == []  # the ACK of a non-2xx never reaches the TU
    assert layer.get_timer() == 5.7  # Timer I = T4
    layer.receive(ack, UAC_UDP, 1.0)  # absorbed
    assert events(layer) == [] and layer.datagrams_to_send() == []
    assert run_timers(layer) == [(5.7, [])]
    assert len(layer) == 0


def test_timer_i_is_zero_over_tcp() -> None:
    layer = new_layer()
    invite, _ = receive_invite(layer, UAC_TCP)
    busy = make_response(invite, 486, to_tag="u1")
    layer.send_response(busy, now=0.0)
    layer.receive(ack_for(invite, busy), UAC_TCP, 0.1)
    assert len(layer) == 0 and layer.get_timer() is None


def test_2xx_retransmitted_until_64_t1_then_ack_timeout() -> None:
    layer = new_layer()
    invite, ev = receive_invite(layer)
    ok = make_response(invite, 200, to_tag="u1")
    layer.send_response(ok, now=0.0)
    assert first_lines(layer) == ["SIP/2.0 200 OK"]
    assert layer.server_state(ev.server_key) is InviteServerState.ACCEPTED
    log = run_timers(layer)
    # §13.3.1.4: T1, doubling, capped at T2; give up at 64*T1 (Timer L, RFC 6026).
    assert sent_at(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-1] == (32.0, [])
    assert events(layer) == [AckTimeout(server_key=ev.server_key, response=ok)]
    assert len(layer) == 0


def test_2xx_retransmitted_over_tcp_too() -> None:
    # The 2xx is end-to-end (§13.3.1.4): a UDP hop may follow the TCP one.
    layer = new_layer()
    invite, _ = receive_invite(layer, UAC_TCP)
    layer.send_response(make_response(invite, 200, to_tag="u1"), now=0.0)
    layer.datagrams_to_send()
    log = run_timers(layer, until=4.0)
    assert sent_at(log) == [0.5, 1.5, 3.5]


def test_ack_for_2xx_stops_retransmission_and_timer_l_ends_quietly() -> None:
    layer = new_layer()
    invite, ev = receive_invite(layer)
    ok = make_response(invite, 200, to_tag="u1")
    layer.send_response(ok, now=0.0)
    layer.datagrams_to_send()
    layer.handle_timer(0.5)
    assert first_lines(layer) == ["SIP/2.0 200 OK"]
    ack = ack_for(invite, ok, branch="z9hG4bKack1")  # a new branch: its own "transaction"
    layer.receive(ack, UAC_UDP, 0.9)
    (got,) = events(layer)
    assert isinstance(got, AckReceived) and got.server_key == ev.server_key
    assert layer.get_timer() == 32.0  # only Timer L left
    layer.receive(ack, UAC_UDP, 1.0)  # a duplicate ACK: absorbed
    layer.receive(incoming("INVITE"), UAC_UDP, 1.1)  # a late INVITE copy: absorbed
    assert events(layer) == [] and layer.datagrams_to_send() == []
    assert run_timers(layer) == [(32.0, [])]
    assert events(layer) == [] and len(layer) == 0


# --- server non-INVITE: J -------------------------------------------------------------------


def test_timer_j_absorbs_request_retransmissions() -> None:
    layer = new_layer()
    options = incoming("OPTIONS")
    layer.receive(options, UAC_UDP, 0.0)
    (ev,) = events(layer)
    assert isinstance(ev, RequestReceived)
    layer.send_response(make_response(ev.request, 200, to_tag="u1"), now=0.1)
    assert first_lines(layer) == ["SIP/2.0 200 OK"]
    layer.receive(incoming("OPTIONS"), UAC_UDP, 0.6)  # retransmission: answered again
    assert first_lines(layer) == ["SIP/2.0 200 OK"]
    assert events(layer) == []
    assert run_timers(layer) == [(32.1, [])]
    assert len(layer) == 0


def test_timer_j_is_zero_over_tcp() -> None:
    layer = new_layer()
    layer.receive(incoming("OPTIONS", peer=UAC_TCP), UAC_TCP, 0.0)
    (ev,) = events(layer)
    layer.send_response(make_response(ev.request, 200, to_tag="u1"), now=0.1)
    assert first_lines(layer) == ["SIP/2.0 200 OK"]
    assert len(layer) == 0 and layer.get_timer() is None
