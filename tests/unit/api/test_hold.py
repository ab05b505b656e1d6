"""Hold and resume over the API (docs/hold.md): the agent on the call (or a supervisor) holds,
the caller hears music, the events say so, and resume brings the agent back."""

from __future__ import annotations

import httpx

from minicc.events import CallHeld, CallResumed
from minicc.store.tokens import Role
from tests.unit.api.conftest import Live, bearer, next_event, ringing_call


async def test_agent_holds_and_resumes_through_the_api(
    live: Live, client: httpx.AsyncClient
) -> None:
    async with ringing_call(live, client) as call:
        base = f"/api/calls/{call.call_id}"
        # Only a call being talked on can be held.
        assert (
            await client.post(f"{base}/hold", headers=bearer(call.agent_token))
        ).status_code == 404
        agent_leg = await call.answer()
        other = await live.login(client, "1002")
        assert (await client.post(f"{base}/hold", headers=bearer(other))).status_code == 404

        reply = await client.post(f"{base}/hold", headers=bearer(call.agent_token))
        assert reply.status_code == 204, reply.text
        held = await next_event(call.events, CallHeld)
        assert (held.agent, held.by, held.queue) == ("1001", "api", "support")  # type: ignore[attr-defined]
        again = await client.post(f"{base}/hold", headers=bearer(call.agent_token))
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
        # The caller hears the music: RTP from minicc while nobody talks.
        while not call.caller_rtp.inbox.empty():
            call.caller_rtp.inbox.get_nowait()
        packet, _ = await call.caller_rtp.recv(timeout=5.0)
        assert packet.header.payload_type == 0

        boss = live.long_lived("acme", Role.SUPERVISOR)
        reply = await client.post(f"{base}/resume", headers=bearer(boss))
        assert reply.status_code == 204, reply.text
        resumed = await next_event(call.events, CallResumed)
        assert resumed.held >= 0  # type: ignore[attr-defined]
        again = await client.post(f"{base}/resume", headers=bearer(call.agent_token))
        assert again.status_code == 409
        queues = (await client.get("/api/queues", headers=bearer(call.agent_token))).json()
        support = next(q for q in queues if q["name"] == "support")
        assert support["holds"] == 1 and support["hold_total"] >= 0

        assert (
            await client.post(f"{base}/hangup", headers=bearer(call.agent_token))
        ).status_code == 204
        assert call.outgoing.dialog is not None
        call.caller.reply(await call.outgoing.dialog.request("BYE"), 200)
        call.agent.reply(await agent_leg.request("BYE"), 200)
