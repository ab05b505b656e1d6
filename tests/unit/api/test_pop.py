"""Real queue calls through the API: a SIP caller dials the queue, the agent's phone rings,
and the agent's token (and only theirs, or a supervisor's) reads who is calling and can hang
up; the callbacks waiting are listed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from minicc.events import CallOffered
from minicc.store.callcenter import CallCenterStore
from minicc.store.tokens import Role
from minicc.switch.sip.peer import Transport
from minicc.tenants.models import CallRecord, Disposition, HangupSide
from tests.unit.api.conftest import PASSWORDS, Live
from tests.unit.switch.ua import HOST, Account, RtpPeer, SipUA, make_sdp


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_agent_rung_for_a_call_sees_its_pop(live: Live, client: httpx.AsyncClient) -> None:
    server = live.server
    store = server.stores.tenant("acme")
    assert store is not None
    CallCenterStore(store).add_number("8100", "queue:support")
    earlier = datetime.now(UTC) - timedelta(days=1)
    store.insert_cdr(
        CallRecord(
            tenant="acme",
            call_id="yesterday@test",
            from_user="1003",
            to_user="8100",
            start=earlier,
            answer=earlier + timedelta(seconds=20),
            end=earlier + timedelta(seconds=140),
            disposition=Disposition.ANSWERED,
            hangup_side=HangupSide.CALLER,
        )
    ).result(5.0)
    agent_token = await live.login(client, "1001")
    assert (
        await client.put(
            "/api/agent/state", json={"state": "available"}, headers=bearer(agent_token)
        )
    ).status_code == 200
    # The running server picks up the new number from the database (no restart).
    for _ in range(100):
        if "8100" in server.callcenter.engine("acme").setup.numbers:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.05)

    addr = (HOST, server.switch.ports[Transport.UDP])
    offered = server.bus.subscribe("test-pop")
    rtp = await RtpPeer.open()
    agent = await SipUA(Account("1001", PASSWORDS["1001"], "acme.test"), addr).start()
    caller = await SipUA(Account("1003", PASSWORDS["1003"], "acme.test"), addr).start()
    try:
        assert (await agent.register()).status == 200
        await caller.call("sip:8100@acme.test", make_sdp(rtp.port))
        await agent.incoming(timeout=10.0)  # the agent's phone rings
        event = None
        while not isinstance(event, CallOffered):
            event = await asyncio.wait_for(offered.get(), 10.0)

        reply = await client.get(f"/api/calls/{event.call_id}/pop", headers=bearer(agent_token))
        assert reply.status_code == 200, reply.text
        pop = reply.json()
        assert pop["caller"] == "1003" and pop["number"] == "8100"
        assert pop["queue"] == "support" and pop["waited"] is not None and pop["waited"] >= 0
        assert [h["call_id"] for h in pop["history"]] == ["yesterday@test"]
        assert pop["history"][0]["duration"] == 120.0

        # Another agent learns nothing, not even that the call exists; a supervisor sees it.
        other = await live.login(client, "1002")
        reply = await client.get(f"/api/calls/{event.call_id}/pop", headers=bearer(other))
        assert reply.status_code == 404
        boss = live.long_lived("acme", Role.SUPERVISOR)
        reply = await client.get(f"/api/calls/{event.call_id}/pop", headers=bearer(boss))
        assert reply.status_code == 200 and reply.json()["caller"] == "1003"
    finally:
        offered.close()
        agent.close()
        caller.close()
        rtp.close()


async def test_agent_hangs_up_a_call_through_the_api(live: Live, client: httpx.AsyncClient) -> None:
    server = live.server
    store = server.stores.tenant("acme")
    assert store is not None
    CallCenterStore(store).add_number("8100", "queue:support")
    agent_token = await live.login(client, "1001")
    await client.put("/api/agent/state", json={"state": "available"}, headers=bearer(agent_token))
    for _ in range(100):
        if "8100" in server.callcenter.engine("acme").setup.numbers:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.05)
    addr = (HOST, server.switch.ports[Transport.UDP])
    events = server.bus.subscribe("test-hangup")
    rtp = await RtpPeer.open()
    agent = await SipUA(Account("1001", PASSWORDS["1001"], "acme.test"), addr).start()
    caller = await SipUA(Account("1003", PASSWORDS["1003"], "acme.test"), addr).start()
    try:
        assert (await agent.register()).status == 200
        out = await caller.call("sip:8100@acme.test", make_sdp(rtp.port))
        assert (await out.final()).status == 200  # minicc answers: music while it rings
        incoming = await agent.incoming(timeout=10.0)
        offered = None
        while not isinstance(offered, CallOffered):
            offered = await asyncio.wait_for(events.get(), 10.0)
        path = f"/api/calls/{offered.call_id}/hangup"
        # Ringing is not talking: an agent cannot hang up a call before answering it.
        assert (await client.post(path, headers=bearer(agent_token))).status_code == 404
        agent_leg = await incoming.answer(make_sdp(rtp.port))
        other = await live.login(client, "1002")
        assert (await client.post(path, headers=bearer(other))).status_code == 404
        for _ in range(100):
            live_call = server.callcenter.live_call("acme", offered.call_id)  # type: ignore[union-attr]
            if live_call is not None and live_call.agent == "1001":
                break
            await asyncio.sleep(0.02)

        assert (await client.post(path, headers=bearer(agent_token))).status_code == 204
        assert out.dialog is not None
        caller.reply(await out.dialog.request("BYE"), 200)
        agent.reply(await agent_leg.request("BYE"), 200)
    finally:
        events.close()
        agent.close()
        caller.close()
        rtp.close()


async def test_waiting_callbacks_are_listed(live: Live, client: httpx.AsyncClient) -> None:
    callcenter = live.server.callcenter
    assert callcenter is not None
    entry = callcenter.request_callback("acme", "support", "+15550100", name="Ada")
    assert entry is not None
    token = await live.login(client, "1002")
    listed = (await client.get("/api/callbacks", headers=bearer(token))).json()
    assert [(c["queue"], c["number"], c["name"], c["status"]) for c in listed] == [
        ("support", "+15550100", "Ada", "waiting")
    ]
    other = await live.login(client, "1001", tenant="other.test")
    assert (await client.get("/api/callbacks", headers=bearer(other))).json() == []
