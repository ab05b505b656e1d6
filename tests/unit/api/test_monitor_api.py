"""A supervisor monitors a real queue call over the API: ring, join, change mode, end."""

from __future__ import annotations

import asyncio

import httpx
from click.testing import CliRunner

from minicc.cli import cli
from minicc.events import MonitorStarted
from minicc.switch.sip.peer import Transport
from tests.unit.api.conftest import PASSWORDS, Live, bearer, next_event, ringing_call, until
from tests.unit.switch.ua import HOST, Account, SipUA, make_sdp


async def test_supervisor_monitors_a_call_through_the_api(
    live: Live, client: httpx.AsyncClient
) -> None:
    server = live.server
    args = ["user", "set", "--tenant", "acme", "--extension", "1002", "--supervisor"]
    assert CliRunner().invoke(cli, [*args, "--data-dir", str(live.data_dir)]).exit_code == 0
    await until(lambda: server.is_supervisor("acme", "1002"))
    addr = (HOST, server.switch.ports[Transport.UDP])
    boss_phone = await SipUA(Account("1002", PASSWORDS["1002"], "acme.test"), addr).start()
    try:
        assert (await boss_phone.register()).status == 200
        async with ringing_call(live, client) as call:
            await call.answer()
            path = f"/api/calls/{call.call_id}/monitor"
            refused = await client.post(
                path, json={"mode": "listen"}, headers=bearer(call.agent_token)
            )
            assert refused.status_code == 403  # agents do not monitor
            boss = await live.login(client, "1002")
            reply = await client.post(path, json={"mode": "whisper"}, headers=bearer(boss))
            assert reply.status_code == 202, reply.text
            monitor = reply.json()
            assert (monitor["agent"], monitor["supervisor"], monitor["joined"]) == (
                "1001",
                "1002",
                False,
            )

            ring = await boss_phone.incoming(timeout=10.0)  # the supervisor's own phone rings
            await ring.answer(make_sdp(call.caller_rtp.port))
            await next_event(call.events, MonitorStarted)
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
            callcenter = server.callcenter
            assert callcenter is not None
            assert callcenter.live_call("acme", call.call_id) is not None  # the call goes on
    finally:
        boss_phone.close()
