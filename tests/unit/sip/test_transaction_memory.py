"""What a transaction keeps once its final response is out: bytes, not messages.

Transactions outlive their call by up to 64*T1 (Timers J, L, M); under load that is tens of
thousands of them, so each must hold only what it still re-sends or reports.
"""

from __future__ import annotations

import random

from minicc.switch.sip.headers import Headers
from minicc.switch.sip.message import Request, Response, make_response
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.sip.transaction import RequestReceived
from minicc.switch.sip.txlayer import TransactionLayer

UAC = Peer(Transport.UDP, "192.0.2.10", 5062)
UAS = Peer(Transport.UDP, "192.0.2.20", 5060)


def invite(branch: str = "z9hG4bKmem1") -> Request:
    return Request(
        headers=Headers(
            [
                ("Via", f"SIP/2.0/UDP 192.0.2.10:5062;branch={branch}"),
                ("From", "<sip:alice@example.com>;tag=a1"),
                ("To", "<sip:bob@example.com>"),
                ("Call-ID", "mem-1"),
                ("CSeq", "1 INVITE"),
                ("Contact", "<sip:alice@192.0.2.10:5062>"),
            ]
        ),
        method="INVITE",
        uri="sip:bob@example.com",
    )


def ack_for_2xx(ok: Response) -> Request:
    return Request(
        headers=Headers(
            [
                ("Via", "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKmemack"),
                ("From", ok.headers.get("From") or ""),
                ("To", ok.headers.get("To") or ""),
                ("Call-ID", "mem-1"),
                ("CSeq", "1 ACK"),
            ]
        ),
        method="ACK",
        uri="sip:bob@192.0.2.20",
    )


def test_server_invite_keeps_the_2xx_until_its_ack_then_nothing() -> None:
    layer = TransactionLayer(rng=random.Random(1))
    layer.receive(invite(), UAC, 0.0)
    event = layer.next_event()
    assert isinstance(event, RequestReceived)
    tx = layer._server[event.server_key]
    layer.send_response(make_response(event.request, 180, to_tag="b1"), 0.0)
    assert tx.request is not None and tx.last_response is not None  # CANCEL needs both
    ok = make_response(event.request, 200, to_tag="b1")
    layer.send_response(ok, 0.1)
    assert tx.request is None
    assert tx.last_response is ok and tx.last_bytes == ok.to_bytes()  # AckTimeout, re-sends
    layer.datagrams_to_send()
    layer.receive(ack_for_2xx(ok), UAC, 0.2)
    assert tx.last_response is None and tx.last_bytes is None
    layer.receive(invite(), UAC, 0.3)  # a late retransmission is absorbed, not answered
    assert layer.datagrams_to_send() == []


def test_server_non_invite_keeps_only_the_final_bytes() -> None:
    layer = TransactionLayer(rng=random.Random(1))
    bye = invite("z9hG4bKmembye")
    bye.method = "BYE"
    bye.headers.set("CSeq", "2 BYE")
    layer.receive(bye, UAC, 0.0)
    event = layer.next_event()
    assert isinstance(event, RequestReceived)
    tx = layer._server[event.server_key]
    layer.send_response(make_response(event.request, 200), 0.0)
    sent = layer.datagrams_to_send()
    assert tx.request is None and tx.last_response is None
    layer.receive(bye, UAC, 1.0)  # retransmitted BYE: the same bytes again
    assert layer.datagrams_to_send() == sent


def test_client_transaction_drops_its_request_at_the_final_response() -> None:
    layer = TransactionLayer(rng=random.Random(1))
    request = invite("z9hG4bKmemout")
    key = layer.send_request(request, UAS, 0.0)
    first = layer.datagrams_to_send()
    layer.handle_timer(0.5)  # Timer A: the stored bytes, re-sent
    assert layer.datagrams_to_send() == first
    tx = layer._client[key]
    response = make_response(request, 200, to_tag="b2")
    layer.receive(response, UAS, 0.6)
    assert tx.request is None and tx.data == b""
    assert tx.to_tags == {"b2"}
