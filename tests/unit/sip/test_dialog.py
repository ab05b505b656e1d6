"""Dialogs (RFC 3261 §12): construction on both sides, in-dialog requests, CSeq and targets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicc.switch.sip.dialog import (
    TRANSITIONS,
    Dialog,
    DialogId,
    DialogInput,
    DialogState,
)
from minicc.switch.sip.errors import LocalProtocolError, RemoteProtocolError
from minicc.switch.sip.headers import Headers
from minicc.switch.sip.message import Request, Response, make_response


def invite(*, record_route: tuple[str, ...] = (), uri: str = "sip:bob@192.0.2.20") -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKa1"),
            *(("Record-Route", rr) for rr in record_route),
            ("Max-Forwards", "70"),
            ("From", '"Alice" <sip:alice@example.com>;tag=alice1'),
            ("To", "<sip:bob@example.com>"),
            ("Call-ID", "dlg-1"),
            ("CSeq", "314 INVITE"),
            ("Contact", "<sip:alice@192.0.2.10:5062>"),
        ]
    )
    return Request(headers=headers, method="INVITE", uri=uri)


def answer(
    request: Request,
    status: int = 200,
    *,
    contact: str | None = "<sip:bob@192.0.2.20:5070>",
    record_route: tuple[str, ...] = (),
    to_tag: str | None = "bob1",
) -> Response:
    extra = [("Record-Route", rr) for rr in record_route]
    if contact:
        extra.append(("Contact", contact))
    return make_response(request, status, to_tag=to_tag, extra=extra)


RR = ("<sip:p1.example;lr>", "<sip:p2.example;lr>")


# --- construction ----------------------------------------------------------------------------


def test_from_uas_takes_the_request_side() -> None:
    req = invite(record_route=RR)
    dialog = Dialog.from_uas(req, answer(req))
    assert dialog.id == DialogId("dlg-1", "bob1", "alice1")
    assert dialog.state is DialogState.CONFIRMED and not dialog.is_uac
    assert dialog.route_set == list(RR)  # §12.1.1: in order
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5062"
    assert (dialog.remote_seq, dialog.local_seq) == (314, None)
    assert str(dialog.remote_uri) == "sip:alice@example.com"
    assert str(dialog.local_uri) == "sip:bob@example.com"
    assert dialog.secure is False


def test_from_uac_takes_the_response_side() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, answer(req, 180, record_route=RR))
    assert dialog.id == DialogId("dlg-1", "alice1", "bob1")
    assert dialog.state is DialogState.EARLY and dialog.is_uac
    assert dialog.route_set == list(reversed(RR))  # §12.1.2: reversed
    assert str(dialog.remote_target) == "sip:bob@192.0.2.20:5070"
    assert (dialog.local_seq, dialog.remote_seq, dialog.invite_seq) == (314, None, 314)


def test_sips_over_tls_is_secure() -> None:
    req = invite(uri="sips:bob@example.com")
    req.headers.set("Via", "SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bKa1")
    assert Dialog.from_uas(req, answer(req)).secure is True
    assert Dialog.from_uac(req, answer(req)).secure is True


def test_responses_that_create_no_dialog_are_refused() -> None:
    req = invite()
    with pytest.raises(LocalProtocolError):
        Dialog.from_uas(req, answer(req, 100))
    with pytest.raises(LocalProtocolError, match="To tag"):
        Dialog.from_uas(req, answer(req, to_tag=None))
    with pytest.raises(RemoteProtocolError, match="To tag"):
        Dialog.from_uac(req, answer(req, to_tag=None))
    with pytest.raises(RemoteProtocolError):
        Dialog.from_uac(req, answer(req, 486))


def test_missing_contact_falls_back() -> None:
    req = invite()
    req.headers.remove("Contact")
    assert str(Dialog.from_uas(req, answer(req)).remote_target) == "sip:alice@example.com"
    assert str(Dialog.from_uac(req, answer(req, contact=None)).remote_target) == (
        "sip:bob@192.0.2.20"
    )


# --- in-dialog requests (§12.2.1.1) ----------------------------------------------------------


def test_bye_from_the_uac_side() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, answer(req, record_route=RR))
    bye = dialog.create_request("BYE")
    assert bye.method == "BYE" and bye.uri == "sip:bob@192.0.2.20:5070"
    assert bye.headers.get_all("Route") == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    assert bye.headers.get("From") == "Alice <sip:alice@example.com>;tag=alice1"
    assert bye.headers.get("To") == "<sip:bob@example.com>;tag=bob1"
    assert (bye.call_id, str(bye.cseq)) == ("dlg-1", "315 BYE")
    assert bye.headers.get("Max-Forwards") == "70" and "Via" not in bye.headers
    assert dialog.local_seq == 315


def test_uas_starts_its_own_cseq_space() -> None:
    req = invite(record_route=RR)
    dialog = Dialog.from_uas(req, answer(req))
    info = dialog.create_request(
        "INFO",
        body=b"Signal=5\r\n",
        content_type="application/dtmf-relay",
        extra_headers=[("Max-Forwards", "69"), ("User-Agent", "minicc")],
    )
    assert str(info.cseq) == "1 INFO" and info.uri == "sip:alice@192.0.2.10:5062"
    assert info.headers.get_all("Route") == list(RR)
    assert info.headers.get("From") == "<sip:bob@example.com>;tag=bob1"
    assert info.headers.get("To") == "Alice <sip:alice@example.com>;tag=alice1"
    assert info.headers.get_all("Max-Forwards") == ["69"]  # not doubled
    assert info.headers.get("Content-Type") == "application/dtmf-relay"
    assert info.body == b"Signal=5\r\n"
    assert str(dialog.create_request("BYE").cseq) == "2 BYE"


def test_ack_for_2xx_reuses_the_invite_cseq() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, answer(req))
    ack = dialog.create_request("ACK")
    assert str(ack.cseq) == "314 ACK" and dialog.local_seq == 314
    reinvite = dialog.create_request("INVITE", body=b"v=0\r\n", content_type="application/sdp")
    assert str(reinvite.cseq) == "315 INVITE"
    assert str(dialog.create_request("ACK").cseq) == "315 ACK"
    assert str(dialog.create_request("ACK", cseq=314).cseq) == "314 ACK"
    uas = Dialog.from_uas(req, answer(req))
    with pytest.raises(LocalProtocolError, match="ACK"):
        uas.create_request("ACK")


def test_strict_router_goes_into_the_request_uri() -> None:
    req = invite()
    strict = ("<sip:old.example;method=INVITE>", "<sip:p2.example;lr>")
    dialog = Dialog.from_uac(req, answer(req, record_route=tuple(reversed(strict))))
    bye = dialog.create_request("BYE")
    assert bye.uri == "sip:old.example"
    assert bye.headers.get_all("Route") == ["<sip:p2.example;lr>", "<sip:bob@192.0.2.20:5070>"]


def test_both_sides_agree_on_the_dialog() -> None:
    req = invite()
    ok = answer(req)
    uac, uas = Dialog.from_uac(req, ok), Dialog.from_uas(req, ok)
    bye = uac.create_request("BYE")
    assert DialogId.of_incoming(bye) == uas.id
    assert uas.update_from_request(bye)
    back = uas.create_request("INFO")
    assert DialogId.of_incoming(back) == uac.id


# --- requests received (§12.2.2) -------------------------------------------------------------


def test_out_of_order_cseq_is_refused() -> None:
    req = invite()
    dialog = Dialog.from_uas(req, answer(req))
    assert not dialog.accept_remote_cseq(313)  # lower: 500
    assert dialog.accept_remote_cseq(314)  # equal: ACK/CANCEL of the INVITE
    assert dialog.accept_remote_cseq(400) and dialog.remote_seq == 400
    assert not dialog.accept_remote_cseq(399)


def test_unset_remote_seq_accepts_anything() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, answer(req))
    assert dialog.remote_seq is None
    assert dialog.accept_remote_cseq(7) and dialog.remote_seq == 7


def test_reinvite_refreshes_the_target_but_not_when_out_of_order() -> None:
    req = invite()
    dialog = Dialog.from_uas(req, answer(req))
    reinvite = invite()
    reinvite.headers.set("CSeq", "315 INVITE")
    reinvite.headers.set("Contact", "<sip:alice@198.51.100.9:6000>")
    assert dialog.update_from_request(reinvite)
    assert str(dialog.remote_target) == "sip:alice@198.51.100.9:6000"
    stale = invite()
    stale.headers.set("CSeq", "310 INVITE")
    stale.headers.set("Contact", "<sip:alice@203.0.113.1>")
    assert not dialog.update_from_request(stale)
    assert str(dialog.remote_target) == "sip:alice@198.51.100.9:6000"
    info = invite()
    info.method = "INFO"
    info.headers.set("CSeq", "316 INFO")
    info.headers.set("Contact", "<sip:alice@203.0.113.1>")  # INFO is no target refresh
    assert dialog.update_from_request(info)
    assert str(dialog.remote_target) == "sip:alice@198.51.100.9:6000"


def test_2xx_to_reinvite_refreshes_the_target() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, answer(req))
    reinvite = dialog.create_request("INVITE")
    reinvite.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKre")
    dialog.on_response(answer(reinvite, contact="<sip:bob@198.51.100.2>"))
    assert str(dialog.remote_target) == "sip:bob@198.51.100.2"
    assert dialog.state is DialogState.CONFIRMED


# --- life cycle ------------------------------------------------------------------------------


def test_early_dialog_confirmed_by_2xx_recomputes_route_set() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, answer(req, 180, record_route=("<sip:early.example;lr>",)))
    dialog.on_response(answer(req, 183))
    assert dialog.state is DialogState.EARLY
    dialog.on_response(answer(req, 200, record_route=RR))
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.route_set == list(reversed(RR))  # §13.2.2.4
    dialog.on_response(answer(req, 180))  # a late 1xx changes nothing
    assert dialog.state is DialogState.CONFIRMED


def test_early_dialog_ends_with_a_failure() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, answer(req, 180))
    dialog.on_response(answer(req, 486))
    assert dialog.state is DialogState.TERMINATED
    with pytest.raises(LocalProtocolError, match="terminated"):
        dialog.create_request("BYE")


def test_uas_early_dialog_follows_what_it_sends() -> None:
    req = invite()
    dialog = Dialog.from_uas(req, answer(req, 180))
    assert dialog.state is DialogState.EARLY
    dialog.on_response_sent(answer(req, 200))
    assert dialog.state is DialogState.CONFIRMED
    other = Dialog.from_uas(req, answer(req, 183))
    other.on_response_sent(answer(req, 487))
    assert other.state is DialogState.TERMINATED


def test_failed_reinvite_keeps_the_dialog_but_481_and_408_end_it() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, answer(req))
    reinvite = dialog.create_request("INVITE")
    reinvite.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKre")
    dialog.on_response(answer(reinvite, 488))
    assert dialog.state is DialogState.CONFIRMED
    info = dialog.create_request("INFO")
    info.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKin")
    dialog.on_response(answer(info, 481))
    assert dialog.state is DialogState.TERMINATED


def test_bye_ends_the_dialog() -> None:
    req = invite()
    dialog = Dialog.from_uas(req, answer(req))
    dialog.on_bye()
    assert dialog.state is DialogState.TERMINATED
    with pytest.raises(LocalProtocolError):
        dialog.on_bye()


@given(state=st.sampled_from(DialogState), event=st.sampled_from(DialogInput))
def test_every_state_input_pair_is_legal_or_an_error(
    state: DialogState, event: DialogInput
) -> None:
    req = invite()
    dialog = Dialog.from_uas(req, answer(req))
    dialog.state = state
    if (state, event) in TRANSITIONS:
        assert dialog.transition(event) is TRANSITIONS[(state, event)]
    else:
        with pytest.raises(LocalProtocolError):
            dialog.transition(event)
        assert dialog.state is state  # a refused input changes nothing
    assert not any(s is DialogState.TERMINATED for s, _ in TRANSITIONS)
