"""A supervisor monitors a real queue call over the API: ring, join, change mode, end."""

from __future__ import annotations

import asyncio

import httpx
from click.testing import CliRunner

from minicc.cli import cli
from minicc.events import CallOffered, MonitorStarted
from minicc.store.callcenter import CallCenterStore
from minicc.switch.sip.peer import Transport
from tests.unit.api.conftest import PASSWORDS, Live
from tests.unit.switch.ua import HOST, Account, RtpPeer, SipUA, make_sdp


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_supervisor_monitors_a_call_through_the_api(
    live: Live, client: httpx.AsyncClient
) -> None:
    server = live.server
    store = server.stores.tenant("acme")
    assert store is not None
    CallCenterStore(store).add_number("8100", "queue:support")
    args = ["user", "set", "--tenant", "acme", "--extension", "1003", "--supervisor"]
    assert CliRunner().invoke(cli, [*args, "--data-dir", str(live.data_dir)]).exit_code == 0
    agent_token = await live.login(client, "1001")
    await client.put("/api/agent/state", json={"state": "available"}, headers=bearer(agent_token))
    for _ in range(100):
        engine = server.callcenter.engine("acme")  # type: ignore[union-attr]
        if "8100" in engine.setup.numbers and server.is_supervisor("acme", "1003"):
            break
        await asyncio.sleep(0.05)

    addr = (HOST, server.switch.ports[Transport.UDP])
    events = server.bus.subscribe("test-monitor")
    rtp = await RtpPeer.open()
    agent = await SipUA(Account("1001", PASSWORDS["1001"], "acme.test"), addr).start()
    caller = await SipUA(Account("1002", PASSWORDS["1002"], "acme.test"), addr).start()
    boss_phone = await SipUA(Account("1003", PASSWORDS["1003"], "acme.test"), addr).start()
    try:
        assert (await agent.register()).status == 200
        assert (await boss_phone.register()).status == 200
        await caller.call("sip:8100@acme.test", make_sdp(rtp.port))
        incoming = await agent.incoming(timeout=10.0)
        offered = None
        while not isinstance(offered, CallOffered):
            offered = await asyncio.wait_for(events.get(), 10.0)
        await incoming.answer(make_sdp(rtp.port))
        for _ in range(100):
            live_call = server.callcenter.live_call("acme", offered.call_id)  # type: ignore[union-attr]
            if live_call is not None and live_call.agent == "1001":
                break
            await asyncio.sleep(0.02)

        path = f"/api/calls/{offered.call_id}/monitor"
        refused = await client.post(path, json={"mode": "listen"}, headers=bearer(agent_token))
        assert refused.status_code == 403  # agents do not monitor
        boss = await live.login(client, "1003")
        reply = await client.post(path, json={"mode": "whisper"}, headers=bearer(boss))
        assert reply.status_code == 202, reply.text
        monitor = reply.json()
        assert (monitor["agent"], monitor["supervisor"], monitor["joined"]) == (
            "1001",
            "1003",
            False,
        )

        ring = await boss_phone.incoming(timeout=10.0)  # the supervisor's own phone rings
        await ring.answer(make_sdp(rtp.port))
        started = None
        while not isinstance(started, MonitorStarted):
            started = await asyncio.wait_for(events.get(), 10.0)
        listed = (await client.get("/api/monitors", headers=bearer(boss))).json()
        assert [(m["id"], m["mode"], m["joined"]) for m in listed] == [
            (monitor["id"], "whisper", True)
        ]
        reply = await client.put(
            f"/api/monitors/{monitor['id']}", json={"mode": "barge"}, headers=bearer(boss)
        )
        assert reply.status_code == 200
        for _ in range(100):
            listed = (await client.get("/api/monitors", headers=bearer(boss))).json()
            if listed and listed[0]["mode"] == "barge":
                break
            await asyncio.sleep(0.02)
        assert listed[0]["mode"] == "barge"

        reply = await client.delete(f"/api/monitors/{monitor['id']}", headers=bearer(boss))
        assert reply.status_code == 204
        assert ring.dialog is not None
        boss_phone.reply(await ring.dialog.request("BYE"), 200)  # the supervisor is let go
        assert server.callcenter.live_call("acme", offered.call_id) is not None  # type: ignore[union-attr]
        gone = await client.delete(f"/api/monitors/{monitor['id']}", headers=bearer(boss))
        assert gone.status_code in (204, 404)
    finally:
        events.close()
        for phone in (agent, caller, boss_phone):
            phone.close()
        rtp.close()
