"""The screen pop of a real queue call: a SIP caller dials the queue, the agent's phone rings,
and the agent's token (and only theirs, or a supervisor's) reads who is calling."""

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
