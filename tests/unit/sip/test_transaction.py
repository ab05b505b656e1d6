"""The transaction layer: state tables, matching, RFC 3581, CANCEL, ACK, and a lossy UA pair."""

from __future__ import annotations

import contextlib
import logging
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicc.switch.sip.errors import LocalProtocolError, RemoteProtocolError
from minicc.switch.sip.headers import Headers, parse_via
from minicc.switch.sip.message import Request, Response, make_response
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.sip.timers import Timer, TimerHeap
from minicc.switch.sip.transaction import (
    INITIAL_STATE,
    STATES,
    TRANSITIONS,
    AckReceived,
    CancelReceived,
    ClientTxKey,
    InviteClientState,
    InviteServerState,
    Machine,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TxEvent,
    TxInput,
    next_state,
)
from minicc.switch.sip.txlayer import (
    TransactionLayer,
    response_destination,
    server_key_of,
    stamp_via,
)

UAS = Peer(Transport.UDP, "192.0.2.20", 5060)
UAC = Peer(Transport.UDP, "192.0.2.10", 5062)
NATTED = Peer(Transport.UDP, "203.0.113.7", 61000)  # the UAC as seen through a NAT


def new_layer(**kwargs: object) -> TransactionLayer:
    return TransactionLayer(rng=random.Random(1), **kwargs)  # type: ignore[arg-type]


def outgoing(method: str, *, cseq: int = 1, routes: tuple[str, ...] = ()) -> Request:
    headers = Headers([("Route", r) for r in routes])
    for name, value in (
        ("Max-Forwards", "70"),
        ("From", "<sip:alice@192.0.2.10>;tag=alice1"),
        ("To", "<sip:bob@192.0.2.20>"),
        ("Call-ID", "call-1"),
        ("CSeq", f"{cseq} {method}"),
    ):
        headers.add(name, value)
    return Request(headers=headers, method=method, uri="sip:bob@192.0.2.20")


def incoming(
    method: str,
    *,
    via: str = "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKin1",
    cseq: int = 1,
    cseq_method: str | None = None,
    to_tag: str | None = None,
) -> Request:
    to = "<sip:bob@192.0.2.20>" + (f";tag={to_tag}" if to_tag else "")
    headers = Headers(
        [
            ("Via", via),
            ("From", "<sip:carol@192.0.2.10>;tag=carol1"),
            ("To", to),
            ("Call-ID", "call-9"),
            ("CSeq", f"{cseq} {cseq_method or method}"),
        ]
    )
    return Request(headers=headers, method=method, uri="sip:bob@192.0.2.20")


def events(layer: TransactionLayer) -> list[TxEvent]:
    out = []
    while (ev := layer.next_event()) is not None:
        out.append(ev)
    return out


def sent(layer: TransactionLayer) -> list[tuple[Peer, str]]:
    return [(p, d.split(b"\r\n", 1)[0].decode()) for p, d in layer.datagrams_to_send()]


def parse(data: bytes) -> Request | Response:
    """Just enough of a parser for the layer's own output (the real one is tested elsewhere)."""
    head, _, body = data.partition(b"\r\n\r\n")
    start, *lines = head.decode().split("\r\n")
    headers = Headers()
    for line in lines:
        name, _, value = line.partition(":")
        headers.add(name.strip(), value.strip())
    if start.startswith("SIP/2.0 "):
        _, status, reason = start.split(" ", 2)
        return Response(headers=headers, body=body, status=int(status), reason=reason)
    method, uri, _ = start.split(" ")
    return Request(headers=headers, body=body, method=method, uri=uri)


# --- the tables, h2 style -------------------------------------------------------------------


@pytest.mark.parametrize("machine", list(Machine))
@given(data=st.data())
def test_every_state_input_pair_is_legal_or_a_protocol_error(
    machine: Machine, data: st.DataObject
) -> None:
    state = data.draw(st.sampled_from(list(STATES[machine])))
    event = data.draw(st.sampled_from(list(TxInput)))
    try:
        new = next_state(machine, state, event)
    except RemoteProtocolError:
        assert event.remote and (state, event) not in TRANSITIONS[machine]
    except LocalProtocolError:
        assert not event.remote and (state, event) not in TRANSITIONS[machine]
    else:
        assert isinstance(new, STATES[machine])
        assert state.name != "TERMINATED"  # nothing leaves Terminated


@pytest.mark.parametrize("machine", list(Machine))
def test_every_state_is_reachable_and_can_reach_terminated(machine: Machine) -> None:
    table = TRANSITIONS[machine]
    edges: dict[object, set[object]] = {}
    for (state, _), new in table.items():
        edges.setdefault(state, set()).add(new)

    def reachable(start: object) -> set[object]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert reachable(INITIAL_STATE[machine]) == set(STATES[machine])
    terminated = STATES[machine]["TERMINATED"]  # type: ignore[index]
    assert all(terminated in reachable(s) for s in STATES[machine])


def test_tu_errors_are_local_and_peer_errors_are_remote() -> None:
    with pytest.raises(LocalProtocolError, match="not allowed in Completed"):
        next_state(Machine.INVITE_SERVER, InviteServerState.COMPLETED, TxInput.SEND_2XX)
    with pytest.raises(RemoteProtocolError):
        next_state(Machine.INVITE_SERVER, InviteServerState.PROCEEDING, TxInput.RECV_ACK)


# --- the timer heap -------------------------------------------------------------------------


def test_timer_heap_rearm_cancel_and_ties() -> None:
    heap = TimerHeap()
    heap.arm("x", Timer.A, 2.0)
    heap.arm("y", Timer.E, 1.0)
    heap.arm("z", Timer.E, 1.0)
    heap.arm("x", Timer.A, 0.5)  # moved earlier: the 2.0 entry is stale
    heap.cancel("z", Timer.E, Timer.F)
    assert heap.next_deadline() == 0.5 and len(heap) == 2
    assert heap.pop_due(0.4) is None
    assert heap.pop_due(5.0) == ("x", Timer.A)
    assert heap.pop_due(5.0) == ("y", Timer.E)
    assert heap.pop_due(5.0) is None and heap.next_deadline() is None


def test_timer_heap_stays_bounded_under_cancellation() -> None:
    heap = TimerHeap()
    for i in range(10_000):
        heap.arm(i, Timer.B, 100.0 + i)
        heap.cancel(i, Timer.B)
    assert len(heap._heap) <= 64 * 3  # stale entries are compacted away
    assert heap.next_deadline() is None


# --- RFC 3581 and response routing ---------------------------------------------------------


def test_received_added_when_source_differs_from_sent_by() -> None:
    request = incoming("OPTIONS")
    stamp_via(request, NATTED)
    assert request.top_via.params["received"] == "203.0.113.7"
    assert "rport" not in request.top_via.params
    assert response_destination(request.top_via, NATTED) == Peer(Transport.UDP, "203.0.113.7", 5062)


def test_nothing_added_when_source_matches_and_no_rport() -> None:
    request = incoming("OPTIONS")
    before = request.headers.get("Via")
    stamp_via(request, UAC)
    assert request.headers.get("Via") == before
    assert response_destination(request.top_via, UAC) == UAC


def test_rport_filled_and_received_added_even_when_host_matches() -> None:
    request = incoming("OPTIONS", via="SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKx;rport")
    stamp_via(request, Peer(Transport.UDP, "192.0.2.10", 40000))
    via = request.top_via
    assert via.params["rport"] == "40000" and via.params["received"] == "192.0.2.10"
    assert response_destination(via, UAC) == Peer(Transport.UDP, "192.0.2.10", 40000)


def test_only_the_top_via_is_stamped() -> None:
    request = incoming(
        "OPTIONS", via="SIP/2.0/UDP proxy.example;branch=z9hG4bKp;rport, SIP/2.0/UDP h2;branch=b"
    )
    request.headers.add("Via", "SIP/2.0/UDP h3;branch=c")
    stamp_via(request, NATTED)
    values = request.headers.get_list("Via")
    assert values[0] == (
        "SIP/2.0/UDP proxy.example;branch=z9hG4bKp;rport=61000;received=203.0.113.7"
    )
    assert values[1:] == ["SIP/2.0/UDP h2;branch=b", "SIP/2.0/UDP h3;branch=c"]


def test_response_destination_defaults_and_reliable() -> None:
    via = parse_via("SIP/2.0/UDP example.com;branch=z9hG4bKx;received=198.51.100.1")
    assert response_destination(via, NATTED) == Peer(Transport.UDP, "198.51.100.1", 5060)
    via = parse_via("SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKx;maddr=224.0.0.1")
    assert response_destination(via, UAC) == Peer(Transport.UDP, "192.0.2.10", 5070)
    tcp = Peer(Transport.TCP, "203.0.113.7", 50123)
    assert response_destination(via, tcp) is tcp  # back over the connection it came on


def test_responses_follow_rport_through_nat() -> None:
    layer = new_layer()
    request = incoming("OPTIONS", via="SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKn;rport")
    layer.receive(request, NATTED, 0.0)
    (ev,) = events(layer)
    assert isinstance(ev, RequestReceived)
    assert ev.request.top_via.params["received"] == "203.0.113.7"
    layer.send_response(make_response(ev.request, 200, to_tag="t"), 0.0)
    assert sent(layer) == [(NATTED, "SIP/2.0 200 OK")]


# --- server matching -------------------------------------------------------------------------


def test_invite_gets_100_at_once_and_retransmission_resends_it() -> None:
    layer = new_layer()
    layer.receive(incoming("INVITE"), UAC, 0.0)
    assert [type(e) for e in events(layer)] == [RequestReceived]
    assert sent(layer) == [(UAC, "SIP/2.0 100 Trying")]
    layer.receive(incoming("INVITE"), UAC, 0.5)
    assert events(layer) == []
    assert sent(layer) == [(UAC, "SIP/2.0 100 Trying")]
    assert len(layer) == 1


def test_auto_100_off_leaves_the_tu_to_answer() -> None:
    layer = new_layer(auto_100=False)
    layer.receive(incoming("INVITE"), UAC, 0.0)
    (ev,) = events(layer)
    assert sent(layer) == []
    layer.receive(incoming("INVITE"), UAC, 0.5)  # nothing to re-send yet
    assert sent(layer) == [] and events(layer) == []
    assert isinstance(ev, RequestReceived)
    layer.send_response(make_response(ev.request, 180, to_tag="u1"), 0.6)
    layer.receive(incoming("INVITE"), UAC, 1.0)
    assert sent(layer) == [(UAC, "SIP/2.0 180 Ringing"), (UAC, "SIP/2.0 180 Ringing")]


def test_same_branch_other_sent_by_or_method_is_another_transaction() -> None:
    layer = new_layer()
    layer.receive(incoming("OPTIONS"), UAC, 0.0)
    layer.receive(
        incoming("OPTIONS", via="SIP/2.0/UDP 192.0.2.11:5062;branch=z9hG4bKin1"),
        Peer(Transport.UDP, "192.0.2.11", 5062),
        0.0,
    )
    layer.receive(incoming("INFO"), UAC, 0.0)
    assert [type(e) for e in events(layer)] == [RequestReceived] * 3
    assert len(layer) == 3


def test_legacy_rfc2543_branch_still_matches() -> None:
    layer = new_layer()
    via = "SIP/2.0/UDP 192.0.2.10:5062"
    layer.receive(incoming("INVITE", via=via), UAC, 0.0)
    (ev,) = events(layer)
    assert isinstance(ev, RequestReceived) and ev.server_key.branch.startswith("legacy:")
    layer.receive(incoming("INVITE", via=via), UAC, 0.3)
    assert events(layer) == [] and len(layer) == 1
    busy = make_response(ev.request, 486, to_tag="u1")
    layer.send_response(busy, 0.4)
    ack = incoming("ACK", via=via, cseq_method="ACK", to_tag="u1")
    assert server_key_of(ack) == ev.server_key
    layer.receive(ack, UAC, 0.5)
    assert layer.server_state(ev.server_key) is InviteServerState.CONFIRMED


def test_ack_without_any_transaction_goes_to_the_tu() -> None:
    layer = new_layer()
    ack = incoming("ACK", to_tag="u1")
    layer.receive(ack, UAC, 0.0)
    (ev,) = events(layer)
    assert isinstance(ev, AckReceived) and ev.server_key is None and len(layer) == 0


def test_peer_protocol_error_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    layer = new_layer()
    layer.receive(incoming("INVITE"), UAC, 0.0)
    events(layer)
    sent(layer)
    with caplog.at_level(logging.WARNING):
        # An ACK with the INVITE's branch before any final: the peer is confused.
        layer.receive(incoming("ACK", cseq_method="ACK"), UAC, 0.1)
    assert "not allowed in Proceeding" in caplog.text
    assert events(layer) == [] and len(layer) == 1


def test_message_missing_matching_headers_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    layer = new_layer()
    request = incoming("OPTIONS")
    request.headers.remove("CSeq")
    with caplog.at_level(logging.WARNING):
        layer.receive(request, UAC, 0.0)
    assert "missing CSeq" in caplog.text and len(layer) == 0


def test_tu_mistakes_raise_local_errors() -> None:
    layer = new_layer()
    layer.receive(incoming("OPTIONS"), UAC, 0.0)
    (ev,) = events(layer)
    assert isinstance(ev, RequestReceived)
    layer.send_response(make_response(ev.request, 200, to_tag="u"), 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_response(make_response(ev.request, 500, to_tag="u"), 0.0)  # second final
    with pytest.raises(LocalProtocolError, match="no server transaction"):
        layer.send_response(make_response(incoming("INFO"), 200), 0.0)


# --- CANCEL, server side (§9.2) --------------------------------------------------------------


def test_cancel_of_a_proceeding_invite_is_answered_200_and_reported() -> None:
    layer = new_layer()
    layer.receive(incoming("INVITE"), UAC, 0.0)
    (inv,) = events(layer)
    assert isinstance(inv, RequestReceived)
    ringing = make_response(inv.request, 180, to_tag="u1")
    layer.send_response(ringing, 0.1)
    sent(layer)
    layer.receive(incoming("CANCEL"), UAC, 1.0)
    (ev,) = events(layer)
    assert isinstance(ev, CancelReceived)
    assert ev.invite_key == inv.server_key and ev.to_tag == "u1"
    out = layer.datagrams_to_send()
    assert [parse(d).to.tag for _, d in out] == ["u1"]  # the 200 reuses the 180's tag
    assert [parse(d).cseq.method for _, d in out] == ["CANCEL"]
    # A retransmitted CANCEL is answered again by its own transaction, the TU not bothered.
    layer.receive(incoming("CANCEL"), UAC, 1.5)
    assert events(layer) == [] and sent(layer) == [(UAC, "SIP/2.0 200 OK")]
    # The TU ends the INVITE with 487; its ACK (same branch) is absorbed.
    terminated = make_response(inv.request, 487, to_tag="u1")
    layer.send_response(terminated, 1.1)
    layer.receive(incoming("ACK", cseq_method="ACK", to_tag="u1"), UAC, 1.2)
    assert layer.server_state(inv.server_key) is InviteServerState.CONFIRMED
    assert events(layer) == []


def test_cancel_matching_nothing_or_a_finished_invite_gets_481() -> None:
    layer = new_layer()
    layer.receive(incoming("CANCEL"), UAC, 0.0)
    (ev,) = events(layer)
    assert isinstance(ev, CancelReceived) and ev.invite_key is None
    assert sent(layer) == [(UAC, "SIP/2.0 481 Call/Transaction Does Not Exist")]

    layer = new_layer()
    layer.receive(incoming("INVITE"), UAC, 0.0)
    (inv,) = events(layer)
    assert isinstance(inv, RequestReceived)
    layer.send_response(make_response(inv.request, 200, to_tag="u1"), 0.1)
    sent(layer)
    layer.receive(incoming("CANCEL"), UAC, 0.2)
    (ev,) = events(layer)
    assert isinstance(ev, CancelReceived) and ev.invite_key is None
    assert sent(layer) == [(UAC, "SIP/2.0 481 Call/Transaction Does Not Exist")]


# --- client side -----------------------------------------------------------------------------


def test_layer_adds_via_with_branch_and_rport_when_the_tu_did_not() -> None:
    layer = new_layer(local_via_host="192.0.2.1", local_via_port=5080)
    request = outgoing("OPTIONS")
    key = layer.send_request(request, UAS, 0.0)
    via = request.top_via
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.1", 5080)
    assert "rport" in via.params and key == ClientTxKey(via.branch or "", "OPTIONS")
    assert key.branch.startswith("z9hG4bK") and len(key.branch) == 23
    ((peer, data),) = layer.datagrams_to_send()
    assert peer == UAS and parse(data).top_via.branch == key.branch


def test_tu_via_is_kept_and_given_a_branch_if_it_lacks_one() -> None:
    layer = new_layer()
    request = outgoing("OPTIONS")
    request.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKmine")
    assert layer.send_request(request, UAS, 0.0).branch == "z9hG4bKmine"
    request = outgoing("INFO")
    request.headers.prepend("Via", "SIP/2.0/TCP 192.0.2.1:5060")
    key = layer.send_request(request, UAS, 0.0)
    assert request.top_via.branch == key.branch and key.branch.startswith("z9hG4bK")


def test_send_request_refuses_what_the_rfc_forbids() -> None:
    layer = new_layer()
    with pytest.raises(LocalProtocolError, match="ACK"):
        layer.send_request(outgoing("ACK"), UAS, 0.0)
    bad = outgoing("OPTIONS")
    bad.headers.prepend("Via", "SIP/2.0/UDP h;branch=old-style")
    with pytest.raises(LocalProtocolError, match="magic cookie"):
        layer.send_request(bad, UAS, 0.0)
    twice = outgoing("OPTIONS")
    layer.send_request(twice, UAS, 0.0)
    with pytest.raises(LocalProtocolError, match="already exists"):
        layer.send_request(twice, UAS, 0.0)
    mismatch = outgoing("OPTIONS")
    mismatch.headers.set("CSeq", "1 INFO")
    with pytest.raises(LocalProtocolError, match="CSeq"):
        layer.send_request(mismatch, UAS, 0.0)


def test_every_provisional_and_the_final_reach_the_tu_once() -> None:
    layer = new_layer()
    invite = outgoing("INVITE")
    key = layer.send_request(invite, UAS, 0.0)
    for status in (100, 180, 183):
        layer.receive(make_response(invite, status, to_tag="b1"), UAS, 0.1)
    busy = make_response(invite, 486, to_tag="b1")
    layer.receive(busy, UAS, 0.2)
    layer.receive(busy, UAS, 0.3)
    layer.receive(make_response(invite, 180, to_tag="b1"), UAS, 0.4)  # overtaken: absorbed
    got = events(layer)
    assert [e.response.status for e in got if isinstance(e, ResponseReceived)] == [
        100,
        180,
        183,
        486,
    ]
    assert all(isinstance(e, ResponseReceived) and e.client_key == key for e in got)


def test_ack_for_non_2xx_is_built_by_the_transaction() -> None:
    layer = new_layer()
    invite = outgoing("INVITE", routes=("<sip:p1.example;lr>", "<sip:p2.example;lr>"))
    layer.send_request(invite, UAS, 0.0)
    layer.datagrams_to_send()
    layer.receive(make_response(invite, 404, to_tag="b9"), UAS, 0.1)
    ((peer, data),) = layer.datagrams_to_send()
    ack = parse(data)
    assert isinstance(ack, Request) and peer == UAS
    # §17.1.1.3: same R-URI, Call-ID, From, CSeq number; To from the response; one Via,
    # the INVITE's (same branch); the INVITE's Route set.
    assert ack.method == "ACK" and ack.uri == invite.uri
    assert str(ack.cseq) == "1 ACK" and ack.to.tag == "b9" and ack.call_id == invite.call_id
    assert ack.headers.get_list("Via") == invite.headers.get_list("Via")[:1]
    assert ack.headers.get_all("Route") == invite.headers.get_all("Route")


def test_forked_2xx_each_reach_the_tu_once() -> None:
    layer = new_layer()
    invite = outgoing("INVITE")
    layer.send_request(invite, UAS, 0.0)
    first, second = (make_response(invite, 200, to_tag=t) for t in ("fork1", "fork2"))
    for response in (first, first, second, second):
        layer.receive(response, UAS, 0.5)
    got = events(layer)
    assert [e.response.to.tag for e in got if isinstance(e, ResponseReceived)] == [
        "fork1",
        "fork2",
    ]


def test_response_matching_nothing_is_stray() -> None:
    layer = new_layer()
    invite = outgoing("INVITE")
    layer.send_request(invite, UAS, 0.0)
    other_method = make_response(invite, 200)
    other_method.headers.set("CSeq", "1 CANCEL")  # same branch, other method: no match
    layer.receive(other_method, UAS, 0.1)
    (ev,) = events(layer)
    assert isinstance(ev, StrayResponse) and ev.source == UAS


# --- CANCEL, client side (§9.1) -------------------------------------------------------------


def test_cancel_waits_for_a_provisional_then_copies_the_invite() -> None:
    layer = new_layer()
    invite = outgoing("INVITE", routes=("<sip:p1.example;lr>",))
    key = layer.send_request(invite, UAS, 0.0)
    layer.datagrams_to_send()
    layer.cancel(key, 0.2)
    assert layer.datagrams_to_send() == []  # §9.1: not before a provisional
    layer.receive(make_response(invite, 180, to_tag="b1"), UAS, 0.3)
    ((peer, data),) = layer.datagrams_to_send()
    cancel = parse(data)
    assert isinstance(cancel, Request) and peer == UAS
    assert cancel.method == "CANCEL" and cancel.uri == invite.uri
    assert cancel.headers.get_list("Via") == invite.headers.get_list("Via")[:1]
    assert str(cancel.cseq) == "1 CANCEL" and cancel.to.tag is None
    assert cancel.headers.get_all("Route") == ["<sip:p1.example;lr>"]
    assert (cancel.call_id, cancel.from_.tag) == (invite.call_id, invite.from_.tag)
    layer.cancel(key, 0.4)  # only once
    assert layer.datagrams_to_send() == []
    (ringing,) = events(layer)
    assert isinstance(ringing, ResponseReceived)
    # The 200 to the CANCEL and the 487 both reach the TU, each with its own key.
    layer.receive(make_response(cancel, 200, to_tag="b1"), UAS, 0.5)
    layer.receive(make_response(invite, 487, to_tag="b1"), UAS, 0.6)
    got = [(e.client_key.method, e.response.status) for e in events(layer)]  # type: ignore[union-attr]
    assert got == [("CANCEL", 200), ("INVITE", 487)]
    assert layer.client_state(key) is InviteClientState.COMPLETED


def test_cancel_after_a_final_sends_nothing() -> None:
    layer = new_layer()
    invite = outgoing("INVITE")
    key = layer.send_request(invite, UAS, 0.0)
    layer.cancel(key, 0.1)
    layer.receive(make_response(invite, 200, to_tag="b1"), UAS, 0.2)
    layer.cancel(key, 0.3)
    assert [line for _, line in sent(layer)] == ["INVITE sip:bob@192.0.2.20 SIP/2.0"]


# --- a UA pair over a lossy link (aiortc's loss_pattern) -------------------------------------


class LossyLink:
    """Carries datagrams between two layers, dropping them per ``loss`` (True = drop)."""

    def __init__(self, a: TransactionLayer, a_peer: Peer, b: TransactionLayer, b_peer: Peer):
        self.ends = {a_peer: (a, b_peer), b_peer: (b, a_peer)}  # dest -> (layer, source)
        self.layers = ((a, b_peer), (b, a_peer))
        self.loss: deque[bool] = deque()
        self.delivered: list[tuple[float, str]] = []
        self.attempts: list[tuple[float, str]] = []  # delivered or lost

    def pump(self, now: float) -> None:
        moved = True
        while moved:
            moved = False
            for layer, dest_as_seen in self.layers:
                for dest, data in layer.datagrams_to_send():
                    moved = True
                    self.attempts.append((now, data.split(b"\r\n", 1)[0].decode()))
                    if self.loss and self.loss.popleft():
                        continue
                    target, source = self.ends[dest]
                    assert dest == dest_as_seen
                    self.delivered.append((now, data.split(b"\r\n", 1)[0].decode()))
                    target.receive(parse(data), source, now)

    def run(self, until: float) -> None:
        """Step both fake clocks to each next deadline, delivering as we go."""
        self.pump(0.0)
        while True:
            deadlines = [t for layer, _ in self.layers if (t := layer.get_timer()) is not None]
            if not deadlines or min(deadlines) > until:
                return
            now = min(deadlines)
            for layer, _ in self.layers:
                layer.handle_timer(now)
            self.pump(now)


@pytest.mark.parametrize("lost", [0, 1, 2, 3])
def test_invite_retransmitted_at_t1_2t1_4t1_over_a_lossy_link(lost: int) -> None:
    uac, uas = new_layer(), new_layer()
    link = LossyLink(uac, UAC, uas, UAS)
    link.loss.extend([True] * lost)  # the first `lost` INVITE copies vanish
    key = uac.send_request(outgoing("INVITE"), UAS, now=0.0)
    link.run(until=10.0)
    # Sent at 0, T1, 3T1, 7T1 (intervals T1, 2T1, 4T1) until one gets through; its 100
    # Trying moves the client to Proceeding and retransmission stops.
    times = [0.0, 0.5, 1.5, 3.5][: lost + 1]
    assert [t for t, line in link.attempts if line.startswith("INVITE")] == times
    assert [t for t, line in link.delivered if line.startswith("INVITE")] == times[-1:]
    assert [type(e) for e in events(uas)] == [RequestReceived]
    assert uac.client_state(key) is InviteClientState.PROCEEDING


def test_full_call_over_a_lossy_link_recovers_every_message() -> None:
    uac, uas = new_layer(), new_layer()
    link = LossyLink(uac, UAC, uas, UAS)
    invite = outgoing("INVITE")
    key = uac.send_request(invite, UAS, now=0.0)
    link.pump(0.0)
    (req,) = events(uas)
    assert isinstance(req, RequestReceived)
    # The UAS answers 200; the first two copies of it are lost on the way.
    link.loss.extend([True, True])
    ok = make_response(req.request, 200, to_tag="u1")
    uas.send_response(ok, now=0.1)
    link.run(until=1.6)  # retransmitted at 0.6 (lost), then 1.6 (arrives)
    assert [t for t, line in link.delivered if line == "SIP/2.0 200 OK"] == [1.6]
    got = [e for e in events(uac) if isinstance(e, ResponseReceived)]
    assert [e.response.status for e in got] == [100, 200] and got[-1].client_key == key
    ack = Request(
        headers=Headers(
            [
                ("From", invite.headers.get("From") or ""),
                ("To", got[-1].response.headers.get("To") or ""),
                ("Call-ID", invite.call_id),
                ("CSeq", "1 ACK"),
            ]
        ),
        method="ACK",
        uri="sip:bob@192.0.2.20",
    )
    link.loss.append(True)  # the ACK is lost: the next 2xx copy is re-ACKed by the layer
    uac.send_ack_for_2xx(ack, UAS, now=1.7)
    link.run(until=10.0)
    assert [t for t, line in link.delivered if line == "SIP/2.0 200 OK"] == [1.6, 3.6]
    assert [t for t, line in link.delivered if line.startswith("ACK")] == [3.6]
    (acked,) = events(uas)
    assert isinstance(acked, AckReceived) and acked.server_key == req.server_key
    assert events(uac) == []
    link.run(until=100.0)
    assert len(uac) == len(uas) == 0
    assert uac.get_timer() is None and uas.get_timer() is None


# --- every transaction ends, whatever happens -------------------------------------------------

_ACTIONS = st.lists(
    st.sampled_from(
        ["invite", "options", "retransmit", "provisional", "ok", "busy", "ack", "cancel", "tick"]
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(actions=_ACTIONS, reliable=st.booleans())
def test_random_scripts_never_raise_and_always_drain(actions: list[str], reliable: bool) -> None:
    peer = Peer(Transport.TCP if reliable else Transport.UDP, "192.0.2.10", 5062)
    layer = new_layer()
    now = 0.0
    last: Request | None = None
    pending: list[RequestReceived] = []
    for action in actions:
        now += 0.25
        try:
            if action in ("invite", "options"):
                last = incoming(
                    action.upper(), via=f"SIP/2.0/{peer.transport.value} h:1;branch=z9hG4bK{now}"
                )
                layer.receive(last, peer, now)
            elif action == "retransmit" and last is not None:
                layer.receive(last, peer, now)
            elif action == "ack" and last is not None:
                layer.receive(
                    incoming("ACK", via=last.headers.get("Via") or "", cseq_method="ACK"), peer, now
                )
            elif action == "cancel" and last is not None:
                layer.receive(incoming("CANCEL", via=last.headers.get("Via") or ""), peer, now)
            elif action == "tick":
                layer.handle_timer(now + 2.0)
            elif pending:
                status = {"provisional": 180, "ok": 200, "busy": 486}[action]
                layer.send_response(make_response(pending[-1].request, status, to_tag="t"), now)
        except LocalProtocolError:
            pass  # the script played a TU sending a second final: refused, state unchanged
        pending.extend(e for e in events(layer) if isinstance(e, RequestReceived))
    # Answer whatever the TU still owes, then let every timer run out.
    for ev in pending:
        with contextlib.suppress(LocalProtocolError):
            layer.send_response(make_response(ev.request, 500, to_tag="t"), now)
    while (deadline := layer.get_timer()) is not None:
        layer.handle_timer(deadline)
        now = deadline
    assert len(layer) == 0 and not layer._accepted
