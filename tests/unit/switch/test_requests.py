"""Requests refused or answered without a call: hops, loops, offers, OPTIONS, unknown methods,
garbage on UDP and TCP, and calls over TCP."""

from __future__ import annotations

import asyncio

from minicc.events import CallEnded, CallStarted
from tests.unit.switch.flows import answered_call
from tests.unit.switch.harness import Harness
from tests.unit.switch.ua import HOST, make_sdp, new_branch, new_tag


async def test_max_forwards_zero_gets_483(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    out = await alice.call(
        "sip:1002@acme.test", make_sdp(40000), extra=[("X-Test", "hops")], auth=False
    )
    assert out.final_response is not None and out.final_response.status == 401
    invite = out.invite
    invite.set_header("Max-Forwards", "0")
    invite.set_header("Via", alice.via())
    alice.send(invite)
    final = await alice.response(invite.branch, "INVITE", final=True)
    assert final.status == 483
    alice.send(alice.ack_for_error(invite, final))
    assert not bob.requests_seen("INVITE")


async def test_invite_through_minicc_already_gets_482(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    invite = alice.build("INVITE", "sip:1002@acme.test", to="<sip:1002@acme.test>")
    invite.body = make_sdp(40000)
    invite.headers.append(("Content-Type", "application/sdp"))
    # The INVITE says it already went through this switch (RFC 3261 §16.3 step 4).
    own_via = f"SIP/2.0/UDP {HOST}:{sw.addr[1]};branch={new_branch()}"
    invite.headers.insert(1, ("Via", own_via))
    alice.send(invite)
    final = await alice.response(invite.branch, "INVITE", final=True)
    assert final.status == 482
    assert not bob.requests_seen("INVITE")


async def test_invite_without_sdp_gets_488_saying_late_offer(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    await sw.phone("acme", "1002")
    out = await alice.call("sip:1002@acme.test", None)
    final = await out.final()
    assert final.status == 488
    warning = final.headers.get("Warning") or ""
    assert "late offer" in warning.lower() or "without sdp" in warning.lower(), warning
    assert not sw.events.of(CallStarted)


async def test_g729_only_gets_488_with_a_warning(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    offer = make_sdp(40000, codecs=[(18, "G729")], telephone_event=None)
    out = await alice.call("sip:1002@acme.test", offer)
    final = await out.final()
    assert final.status == 488
    warning = final.headers.get("Warning") or ""
    assert warning.startswith("305 ") and "PCMU" in warning, warning
    assert not bob.requests_seen("INVITE")


async def test_options_is_answered_and_unknown_methods_get_501(sw: Harness) -> None:
    ua = await sw.phone("acme", "1001", register=False)
    options = ua.build("OPTIONS", f"sip:{HOST}:{sw.addr[1]}", to=f"<sip:{HOST}>")
    ok = await ua.transact(options)
    assert ok.status == 200
    allow = {m.strip() for m in (ok.headers.get("Allow") or "").split(",")}
    assert {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO"} <= allow

    foo = ua.build("FOO", "sip:1002@acme.test", to="<sip:1002@acme.test>")
    refused = await ua.transact(foo)
    assert refused.status == 501
    assert "INVITE" in (refused.headers.get("Allow") or "")


async def test_requests_for_unknown_dialogs_get_481(sw: Harness) -> None:
    ua = await sw.phone("acme", "1001")
    for method in ("BYE", "INFO", "INVITE"):
        request = ua.build(
            method,
            "sip:1002@acme.test",
            to=f"<sip:1002@acme.test>;tag={new_tag()}",
            body=make_sdp(40000) if method == "INVITE" else b"",
        )
        response = await ua.transact(request, auth=False)
        assert response.status == 481, method
        if method == "INVITE":
            ua.send(ua.ack_for_error(request, response))


async def test_udp_garbage_is_answered_400_or_dropped_and_service_goes_on(sw: Harness) -> None:
    ua = await sw.phone("acme", "1001", register=False)
    branch = new_branch()
    broken = (
        "INVITE sip:1002@acme.test SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{ua.port};branch={branch};rport\r\n"
        "Max-Forwards: plenty\r\n"
        "From: <sip:1001@acme.test>;tag=1\r\n"
        "To: <sip:1002@acme.test>\r\n"
        "Call-ID: broken-1\r\n"
        "CSeq: 1 INVITE\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    ua.send_bytes(broken)
    bad = await ua.response(branch, "INVITE")
    assert bad.status == 400
    assert "Max-Forwards" in (bad.headers.get("Warning") or "")
    # Not even a request line: nothing can be answered, so it is dropped.
    malformed_before = sw.switch.stats["malformed"]
    for junk in (b"\x00\xff\xfe" * 40, b"hello there\r\n\r\n", b"SIP/2.0 200\r\n\r\n"):
        ua.send_bytes(junk)
    options = ua.build("OPTIONS", f"sip:{HOST}", to=f"<sip:{HOST}>")
    assert (await ua.transact(options)).status == 200  # still serving, in order
    assert sw.switch.stats["malformed"] >= malformed_before + 2
    assert [m for m in ua.pending()] == []  # no answer to the junk
    assert not ua.garbage


async def test_tcp_garbage_closes_the_connection(sw: Harness) -> None:
    for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GET / HTTP/1.1\r\n\r\n"):
        reader, writer = await asyncio.open_connection(*sw.addr)
        writer.write(junk)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 3.0) == b""  # closed by the switch
        writer.close()
    # The listener itself is fine.
    ua = await sw.phone("acme", "1001", register=False, transport="TCP")
    options = ua.build("OPTIONS", f"sip:{HOST}", to=f"<sip:{HOST}>")
    assert (await ua.transact(options)).status == 200


async def test_register_and_calls_over_tcp(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001", transport="TCP")
    bob = await sw.phone("acme", "1002")  # UDP
    carol = await sw.phone("acme", "1003", transport="TCP")

    # TCP caller to UDP callee.
    call = await answered_call(sw, alice, bob)
    assert call.out.responses[-1].vias[0].transport == "TCP"
    assert (await call.a.bye()).status == 200
    bob.reply(await call.b.request("BYE"), 200)
    await sw.events.wait(CallEnded)

    # UDP caller to TCP callee: the INVITE comes down the connection carol registered on.
    call = await answered_call(sw, bob, carol)
    assert call.inc.invite.vias[0].transport == "TCP"
    assert ";transport=tcp" in (call.inc.invite.headers.get("Contact") or "").lower()
    assert (await call.b.bye()).status == 200
    bob.reply(await call.a.request("BYE"), 200)
    await sw.events.wait(CallEnded)
    assert not carol.tcp_closed.done()


async def test_unsupported_scheme_extension_and_body_are_refused(sw: Harness) -> None:
    """RFC 3261 §8.2.2-8.2.3: 416, 420 with Unsupported, 415 with Accept."""
    ua = await sw.phone("acme", "1001", register=False)
    tel = ua.build("OPTIONS", "tel:+15551234", to="<tel:+15551234>")
    assert (await ua.transact(tel, auth=False)).status == 416

    required = ua.build(
        "OPTIONS",
        f"sip:{HOST}:{sw.addr[1]}",
        to=f"<sip:{HOST}>",
        extra=[("Require", "100rel, foo")],
    )
    refused = await ua.transact(required, auth=False)
    assert refused.status == 420
    assert refused.headers.get("Unsupported") == "100rel, foo"

    xml = ua.build(
        "INVITE",
        "sip:1002@acme.test",
        to="<sip:1002@acme.test>",
        body=b"<xml/>",
        content_type="application/xml",
    )
    wrong_type = await ua.transact(xml, auth=False)
    assert wrong_type.status == 415
    assert wrong_type.headers.get("Accept") == "application/sdp"


async def test_crlf_keepalive_is_not_counted_as_malformed(sw: Harness) -> None:
    ua = await sw.phone("acme", "1001", register=False)
    before = sw.switch.stats["malformed"]
    # Longer than the transport's 4-byte shortcut, so it reaches the parser (SipKeepAlive).
    ua.send_bytes(b"\r\n\r\n\r\n\r\n")
    options = ua.build("OPTIONS", f"sip:{HOST}:{sw.addr[1]}", to=f"<sip:{HOST}>")
    assert (await ua.transact(options, auth=False)).status == 200
    assert sw.switch.stats["malformed"] == before
