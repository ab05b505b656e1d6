"""Hold and resume over the API (docs/hold.md): the agent on the call (or a supervisor) holds,
the caller hears music, the events say so, and resume brings the agent back."""

from __future__ import annotations

import asyncio

import httpx

from minicc.events import CallHeld, CallOffered, CallResumed, Event
from minicc.store.callcenter import CallCenterStore
from minicc.store.tokens import Role
from minicc.switch.sip.peer import Transport
from tests.unit.api.conftest import PASSWORDS, Live
from tests.unit.switch.ua import HOST, Account, RtpPeer, SipUA, make_sdp


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _next(events: asyncio.Queue[Event], kind: type) -> Event:
    while True:
        event = await asyncio.wait_for(events.get(), 10.0)
        if isinstance(event, kind):
            return event


async def test_agent_holds_and_resumes_through_the_api(
    live: Live, client: httpx.AsyncClient
) -> None:
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
    events = server.bus.subscribe("test-hold")
    caller_rtp, agent_rtp = await RtpPeer.open(), await RtpPeer.open()
    agent = await SipUA(Account("1001", PASSWORDS["1001"], "acme.test"), addr).start()
    caller = await SipUA(Account("1003", PASSWORDS["1003"], "acme.test"), addr).start()
    try:
        assert (await agent.register()).status == 200
        out = await caller.call("sip:8100@acme.test", make_sdp(caller_rtp.port))
        assert (await out.final()).status == 200
        incoming = await agent.incoming(timeout=10.0)
        offered = await _next(events, CallOffered)
        base = f"/api/calls/{offered.call_id}"  # type: ignore[attr-defined]
        # Only a call being talked on can be held.
        assert (await client.post(f"{base}/hold", headers=bearer(agent_token))).status_code == 404
        agent_leg = await incoming.answer(make_sdp(agent_rtp.port, codecs=[(0, "PCMU")]))
        for _ in range(100):
            live_call = server.callcenter.live_call("acme", offered.call_id)  # type: ignore[union-attr, attr-defined]
            if live_call is not None and live_call.agent == "1001":
                break
            await asyncio.sleep(0.02)
        other = await live.login(client, "1002")
        assert (await client.post(f"{base}/hold", headers=bearer(other))).status_code == 404

        reply = await client.post(f"{base}/hold", headers=bearer(agent_token))
        assert reply.status_code == 204, reply.text
        held = await _next(events, CallHeld)
        assert (held.agent, held.by, held.queue) == ("1001", "api", "support")  # type: ignore[attr-defined]
        again = await client.post(f"{base}/hold", headers=bearer(agent_token))
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
        # The caller hears the music: RTP from minicc while nobody talks.
        while not caller_rtp.inbox.empty():
            caller_rtp.inbox.get_nowait()
        packet, _ = await caller_rtp.recv(timeout=5.0)
        assert packet.header.payload_type == 0

        boss = live.long_lived("acme", Role.SUPERVISOR)
        reply = await client.post(f"{base}/resume", headers=bearer(boss))
        assert reply.status_code == 204, reply.text
        resumed = await _next(events, CallResumed)
        assert resumed.held >= 0  # type: ignore[attr-defined]
        again = await client.post(f"{base}/resume", headers=bearer(agent_token))
        assert again.status_code == 409
        queues = (await client.get("/api/queues", headers=bearer(agent_token))).json()
        support = next(q for q in queues if q["name"] == "support")
        assert support["holds"] == 1 and support["hold_total"] >= 0

        assert (await client.post(f"{base}/hangup", headers=bearer(agent_token))).status_code == 204
        assert out.dialog is not None
        caller.reply(await out.dialog.request("BYE"), 200)
        agent.reply(await agent_leg.request("BYE"), 200)
    finally:
        events.close()
        agent.close()
        caller.close()
        caller_rtp.close()
        agent_rtp.close()
