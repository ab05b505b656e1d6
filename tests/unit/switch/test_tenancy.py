"""No call ever crosses tenants: acme and beta both have extensions 1001 and 1002."""

from __future__ import annotations

import secrets
from dataclasses import replace

from minicc.events import AuthFailed, CallEnded, CallStarted, DtmfReceived
from minicc.switch.media.dtmf import build_dtmf_rtp
from minicc.tenants.models import Quotas
from tests.unit.switch.flows import answered_call
from tests.unit.switch.harness import Harness
from tests.unit.switch.ua import HOST, make_sdp, new_tag


async def test_calls_stay_inside_their_tenant(sw: Harness) -> None:
    acme_alice = await sw.phone("acme", "1001")
    acme_bob = await sw.phone("acme", "1002")
    beta_x = await sw.phone("beta", "1001")
    beta_y = await sw.phone("beta", "1002")

    call = await answered_call(sw, beta_x, beta_y)
    started = await sw.events.wait(CallStarted)
    assert (started.tenant, started.caller, started.callee) == ("beta", "1001", "1002")
    assert call.inc.invite.from_.uri.host == "beta.test"
    assert (await call.a.bye()).status == 200
    beta_y.reply(await call.b.request("BYE"), 200)
    assert (await sw.events.wait(CallEnded)).tenant == "beta"
    assert not acme_bob.requests_seen("INVITE") and not acme_alice.requests_seen("INVITE")


async def test_own_address_means_the_default_tenant(sw: Harness) -> None:
    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    beta_bob = await sw.phone("beta", "1002")
    call = await answered_call(sw, alice, bob, target=f"sip:1002@{HOST}:{sw.addr[1]}")
    assert (await sw.events.wait(CallStarted)).tenant == "acme"
    assert (await call.a.bye()).status == 200
    assert not beta_bob.requests_seen("INVITE")


async def test_a_beta_phone_cannot_call_into_acme(sw: Harness) -> None:
    acme_bob = await sw.phone("acme", "1002")
    beta_x = await sw.phone("beta", "1001")
    beta_y = await sw.phone("beta", "1002")
    # The Request-URI names acme, so the caller must prove an acme identity: the challenge
    # is for realm acme.test and beta's password for 1001 is not acme's.
    out = await beta_x.call("sip:1002@acme.test", make_sdp(40000))
    assert out.challenge is not None
    assert 'realm="acme.test"' in (out.challenge.headers.get("WWW-Authenticate") or "")
    assert (await out.final()).status == 401
    failed = await sw.events.wait(AuthFailed)
    assert (failed.tenant, failed.username) == ("acme", "1001")
    assert not acme_bob.requests_seen("INVITE") and not beta_y.requests_seen("INVITE")
    assert not sw.events.of(CallStarted)


async def test_from_of_another_tenant_is_refused_even_with_valid_credentials(
    sw: Harness,
) -> None:
    alice = await sw.phone("acme", "1001")
    acme_bob = await sw.phone("acme", "1002")
    # Valid acme credentials for 1001, but the From claims to be beta's 1001.
    out = await alice.call(
        "sip:1002@acme.test", make_sdp(40000), from_=f"<sip:1001@beta.test>;tag={new_tag()}"
    )
    assert (await out.final()).status == 403
    assert not acme_bob.requests_seen("INVITE")


async def test_a_binding_of_one_tenant_never_serves_the_other(sw: Harness) -> None:
    acme_bob = await sw.phone("acme", "1002")
    beta_x = await sw.phone("beta", "1001")
    # beta's 1002 is not registered; acme's 1002 is. beta's caller must get 480.
    out = await beta_x.call("sip:1002@beta.test", make_sdp(40000))
    assert (await out.final()).status == 480
    assert not acme_bob.requests_seen("INVITE")
    assert (await sw.events.wait(CallEnded)).tenant == "beta"


async def test_same_call_id_in_two_tenants_keeps_calls_apart(sw: Harness) -> None:
    """A caller picks its Call-ID; another tenant's caller may pick the same one."""
    acme_a, acme_b = await sw.phone("acme", "1001"), await sw.phone("acme", "1002")
    beta_a, beta_b = await sw.phone("beta", "1001"), await sw.phone("beta", "1002")
    shared = f"{secrets.token_hex(6)}@{HOST}"
    acme = await answered_call(sw, acme_a, acme_b, call_id=shared)
    beta = await answered_call(sw, beta_a, beta_b, call_id=shared)
    assert sw.b2bua.active_calls == 2

    # DTMF on the beta call is beta's, reported once, and nowhere else.
    for packet in build_dtmf_rtp(
        "4", payload_type=101, ssrc=secrets.randbits(32), sequence_number=1, timestamp=160
    ):
        beta.caller_rtp.send_raw(beta.caller_sends_to, packet)
    event = await sw.events.wait(DtmfReceived)
    assert (event.tenant, event.digit) == ("beta", "4")

    # Media stays on its own call: acme's callee hears acme's caller, none of beta's DTMF.
    acme.caller_rtp.send(acme.caller_sends_to, seq=1, ts=1, ssrc=2, payload=b"\x02" * 160)
    packet, _ = await acme.callee_rtp.recv()
    assert (packet.header.payload_type, packet.payload) == (0, b"\x02" * 160)

    # Ending the beta call leaves the acme call up, and each record has its tenant.
    assert (await beta.a.bye()).status == 200
    beta_b.reply(await beta.b.request("BYE"), 200)
    assert (await sw.events.wait(CallEnded)).tenant == "beta"
    assert sw.b2bua.active_calls == 1
    assert (await acme.a.bye()).status == 200
    acme_b.reply(await acme.b.request("BYE"), 200)
    assert (await sw.events.wait(CallEnded)).tenant == "acme"
    assert len(sw.events.of(DtmfReceived)) == 1


async def test_register_for_an_unknown_domain_gets_404(sw: Harness) -> None:
    ua = await sw.phone("acme", "1001", register=False)
    request = ua.build("REGISTER", "sip:nowhere.test", to="<sip:1001@nowhere.test>")
    assert (await ua.transact(request)).status == 404


async def test_a_tenant_past_its_call_limit_gets_503_and_others_go_on(sw: Harness) -> None:
    directory = sw.switch.directory
    entries = []
    for entry in directory.entries():
        tenant = entry.tenant
        if tenant.name == "acme":
            tenant = replace(tenant, quotas=Quotas(max_calls=1))
        entries.append((tenant, entry.extensions))
    directory.replace(entries, default_tenant="acme")

    alice = await sw.phone("acme", "1001")
    bob = await sw.phone("acme", "1002")
    carol = await sw.phone("acme", "1003")
    first = await answered_call(sw, alice, bob)
    refused = await carol.call("sip:1001@acme.test", make_sdp(40000))
    final = await refused.final()
    assert (final.status, final.reason) == (503, "Call Limit Reached")
    assert 'text="tenant call limit of 1 reached"' in (final.headers.get("Reason") or "")
    assert not alice.requests_seen("INVITE")  # nobody was rung for it
    assert sw.switch.stats["quota_refused"] == 1
    # beta's calls are not counted against acme's limit.
    beta = await answered_call(sw, await sw.phone("beta", "1001"), await sw.phone("beta", "1002"))
    assert sw.b2bua.calls_of("acme") == 1 and sw.b2bua.calls_of("beta") == 1
    # The limit counts calls in progress: once the first ends, acme may call again.
    assert (await first.a.bye()).status == 200
    bob.reply(await first.b.request("BYE"), 200)
    await sw.events.wait(CallEnded)
    assert sw.b2bua.calls_of("acme") == 0
    again = await answered_call(sw, carol, alice)
    assert (await again.a.bye()).status == 200
    alice.reply(await again.b.request("BYE"), 200)
    assert (await beta.a.bye()).status == 200
