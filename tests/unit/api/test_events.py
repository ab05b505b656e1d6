"""The event stream: live events, replay after a reconnect, and the gap when too far behind."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from minicc.api.eventlog import EventLog
from minicc.store.tokens import Role
from tests.unit.api.conftest import Live


async def receive(ws: websockets.ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5.0))
    return message


async def pause(client: httpx.AsyncClient, token: str, ext: str, reason: str) -> None:
    reply = await client.put(
        f"/api/agents/{ext}/state",
        json={"state": "paused", "reason": reason},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 200


async def test_events_arrive_live_and_replay_after_reconnect(
    live: Live, client: httpx.AsyncClient
) -> None:
    token = live.long_lived("acme", Role.SUPERVISOR)
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(live.ws_url("/api/events"), additional_headers=headers) as ws:
        hello = await receive(ws)
        assert hello["type"] == "hello" and hello["gap"] is False
        await pause(client, token, "1001", "lunch")
        event = await receive(ws)
        assert event["type"] == "agent.state_changed"
        assert event["data"]["agent"] == "1001" and event["data"]["reason"] == "lunch"
        last, epoch = event["seq"], hello["epoch"]

    # Away for a while: two changes happen; on return exactly those two come, in order.
    await pause(client, token, "1002", "meeting")
    await pause(client, token, "1002", "training")
    url = live.ws_url(f"/api/events?since={last}&epoch={epoch}")
    async with websockets.connect(url, additional_headers=headers) as ws:
        hello = await receive(ws)
        assert hello["gap"] is False and hello["replayed"] >= 2
        replayed = [await receive(ws) for _ in range(hello["replayed"])]
        assert [m["seq"] for m in replayed] == list(range(last + 1, hello["last"] + 1))
        reasons = [m["data"].get("reason") for m in replayed if m["type"] == "agent.state_changed"]
        assert reasons[-2:] == ["meeting", "training"]


async def test_a_client_too_far_behind_is_told_to_resync(
    live: Live, client: httpx.AsyncClient
) -> None:
    assert live.server.api is not None
    live.server.api.events = EventLog(window=2)
    token = live.long_lived("acme", Role.SUPERVISOR)
    headers = {"Authorization": f"Bearer {token}"}
    for reason in ("a", "b", "c", "d"):
        await pause(client, token, "1001", reason)
    await asyncio.sleep(0.05)  # the feed copies bus events on its own turn
    async with websockets.connect(
        live.ws_url("/api/events?since=0"), additional_headers=headers
    ) as ws:
        hello = await receive(ws)
        assert hello["gap"] is True
    # Another epoch (the server restarted since) is a gap too, whatever the number.
    url = live.ws_url("/api/events?since=1&epoch=00000000")
    async with websockets.connect(url, additional_headers=headers) as ws:
        assert (await receive(ws))["gap"] is True


async def test_tenants_streams_are_separate(live: Live, client: httpx.AsyncClient) -> None:
    acme = live.long_lived("acme", Role.SUPERVISOR)
    other = live.long_lived("other", Role.SUPERVISOR)
    url = live.ws_url(f"/api/events?token={other}")  # the browser form of the token
    async with websockets.connect(url) as ws:
        assert (await receive(ws))["type"] == "hello"
        await pause(client, acme, "1001", "lunch")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)


async def test_stream_refuses_bad_tokens_and_bad_since(live: Live) -> None:
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        async with websockets.connect(live.ws_url("/api/events")) as ws:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    token = live.long_lived("acme", Role.AGENT)
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        async with websockets.connect(live.ws_url(f"/api/events?token={token}&since=x")) as ws:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4422
