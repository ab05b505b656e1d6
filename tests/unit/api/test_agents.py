"""Agent state, queues and live calls over the API, against the real engine."""

from __future__ import annotations

import httpx

from minicc.store.tokens import Role
from tests.unit.api.conftest import Live


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_agent_sees_and_changes_own_state(live: Live, client: httpx.AsyncClient) -> None:
    auth = bearer(await live.login(client, "1001"))
    mine = (await client.get("/api/agent", headers=auth)).json()
    assert mine["extension"] == "1001" and mine["name"] == "Agent 1001"
    assert mine["queues"] == ["sales", "support"]

    reply = await client.put("/api/agent/state", json={"state": "available"}, headers=auth)
    assert reply.status_code == 200 and reply.json()["state"] == "available"
    reply = await client.put(
        "/api/agent/state", json={"state": "paused", "reason": "lunch"}, headers=auth
    )
    assert reply.json()["state"] == "paused" and reply.json()["reason"] == "lunch"
    # The engine itself moved: its statistics agree with what the API said.
    snapshot = live.server.callcenter.stats_snapshot("acme")  # type: ignore[union-attr]
    assert snapshot.agents["1001"].reason == "lunch"

    reply = await client.put("/api/agent/state", json={"state": "logged-out"}, headers=auth)
    assert reply.json()["state"] == "logged-out"


async def test_bad_state_changes_name_the_field(live: Live, client: httpx.AsyncClient) -> None:
    auth = bearer(await live.login(client, "1001"))
    reply = await client.put("/api/agent/state", json={"state": "asleep"}, headers=auth)
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["field"] == "state" and "available" in error["message"]

    reply = await client.put(
        "/api/agent/state", json={"state": "available", "reason": "x"}, headers=auth
    )
    assert reply.status_code == 422
    assert reply.json()["error"]["field"] == "reason"  # no reason unless paused


async def test_agent_cannot_use_supervisor_routes(live: Live, client: httpx.AsyncClient) -> None:
    auth = bearer(await live.login(client, "1002"))
    for method, path in (
        ("GET", "/api/agents"),
        ("PUT", "/api/agents/1001/state"),
        ("GET", "/api/calls"),
    ):
        reply = await client.request(method, path, json={"state": "available"}, headers=auth)
        assert reply.status_code == 403, path
        assert "supervisor role" in reply.json()["error"]["message"]


async def test_supervisor_sees_agents_and_forces_a_state(
    live: Live, client: httpx.AsyncClient
) -> None:
    auth = bearer(live.long_lived("acme", Role.SUPERVISOR))
    agents = (await client.get("/api/agents", headers=auth)).json()
    assert [a["extension"] for a in agents] == ["1001", "1002"]

    reply = await client.put(
        "/api/agents/1002/state", json={"state": "paused", "reason": "meeting"}, headers=auth
    )
    assert reply.status_code == 200 and reply.json()["state"] == "paused"
    agent = await live.login(client, "1002")
    assert (await client.get("/api/agent", headers=bearer(agent))).json()["reason"] == "meeting"

    # A supervisor token is not an agent's login: it has no "own" state.
    reply = await client.get("/api/agent", headers=auth)
    assert reply.status_code == 403 and "not an agent's login" in reply.json()["error"]["message"]

    reply = await client.put("/api/agents/4711/state", json={"state": "available"}, headers=auth)
    assert reply.status_code == 404 and reply.json()["error"]["field"] == "extension"


async def test_tenants_never_see_each_other(live: Live, client: httpx.AsyncClient) -> None:
    other = bearer(await live.login(client, "1001", tenant="other.test"))
    queues = (await client.get("/api/queues", headers=other)).json()
    assert [q["name"] for q in queues] == ["billing"]
    boss = bearer(live.long_lived("other", Role.SUPERVISOR))
    assert [a["extension"] for a in (await client.get("/api/agents", headers=boss)).json()] == [
        "1001"
    ]
    # acme's 1002 does not exist for other's supervisor.
    reply = await client.put("/api/agents/1002/state", json={"state": "available"}, headers=boss)
    assert reply.status_code == 404


async def test_queue_figures_and_live_calls(live: Live, client: httpx.AsyncClient) -> None:
    auth = bearer(await live.login(client, "1001"))
    queues = (await client.get("/api/queues", headers=auth)).json()
    assert [q["name"] for q in queues] == ["sales", "support"]
    support = queues[1]
    assert support["waiting"] == 0 and support["offered"] == 0 and support["left"] == {}
    boss = bearer(live.long_lived("acme", Role.ADMIN))
    assert (await client.get("/api/calls", headers=boss)).json() == []
