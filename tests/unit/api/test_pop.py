"""Real queue calls through the API: a SIP caller dials the queue, the agent's phone rings,
and the agent's token (and only theirs, or a supervisor's) reads who is calling and can hang
up; the callbacks waiting are listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from minicc.store.tokens import Role
from minicc.tenants.models import CallRecord, Disposition, HangupSide
from tests.unit.api.conftest import Live, bearer, ringing_call


async def test_agent_rung_for_a_call_sees_its_pop(live: Live, client: httpx.AsyncClient) -> None:
    store = live.server.stores.tenant("acme")
    assert store is not None
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
    async with ringing_call(live, client) as call:
        path = f"/api/calls/{call.call_id}/pop"
        reply = await client.get(path, headers=bearer(call.agent_token))
        assert reply.status_code == 200, reply.text
        pop = reply.json()
        assert pop["caller"] == "1003" and pop["number"] == "8100"
        assert pop["queue"] == "support" and pop["waited"] is not None and pop["waited"] >= 0
        assert [h["call_id"] for h in pop["history"]] == ["yesterday@test"]
        assert pop["history"][0]["duration"] == 120.0

        # Another agent learns nothing, not even that the call exists; a supervisor sees it.
        other = await live.login(client, "1002")
        assert (await client.get(path, headers=bearer(other))).status_code == 404
        boss = live.long_lived("acme", Role.SUPERVISOR)
        reply = await client.get(path, headers=bearer(boss))
        assert reply.status_code == 200 and reply.json()["caller"] == "1003"


async def test_agent_hangs_up_a_call_through_the_api(live: Live, client: httpx.AsyncClient) -> None:
    async with ringing_call(live, client) as call:
        path = f"/api/calls/{call.call_id}/hangup"
        # Ringing is not talking: an agent cannot hang up a call before answering it.
        assert (await client.post(path, headers=bearer(call.agent_token))).status_code == 404
        agent_leg = await call.answer()
        other = await live.login(client, "1002")
        assert (await client.post(path, headers=bearer(other))).status_code == 404

        assert (await client.post(path, headers=bearer(call.agent_token))).status_code == 204
        assert call.outgoing.dialog is not None
        call.caller.reply(await call.outgoing.dialog.request("BYE"), 200)
        call.agent.reply(await agent_leg.request("BYE"), 200)


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
