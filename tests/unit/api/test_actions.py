"""Call actions over the API on real calls: transfer, recording, wrap-up codes."""

from __future__ import annotations

import httpx
from click.testing import CliRunner

from minicc.cli import cli
from minicc.events import CallTransferred, ConferenceChanged, DispositionSet
from minicc.store.tokens import Role
from minicc.switch.sip.peer import Transport
from tests.unit.api.conftest import PASSWORDS, Live, bearer, next_event, ringing_call, until
from tests.unit.switch.ua import HOST, Account, SipUA, make_sdp


def run(live: Live, *args: str) -> None:
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(live.data_dir)])
    assert result.exit_code == 0, result.output


async def test_agent_transfers_the_caller_to_a_colleague(
    live: Live, client: httpx.AsyncClient
) -> None:
    async with ringing_call(live, client) as call:
        path = f"/api/calls/{call.call_id}/transfer"
        bad = await client.post(path, json={"target": "sales"}, headers=bearer(call.agent_token))
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "target"
        await call.answer()
        reply = await client.post(path, json={"target": "1002"}, headers=bearer(call.agent_token))
        assert reply.status_code == 202, reply.text
        report = await next_event(call.events, CallTransferred)
        assert (report.by, report.target) == ("1001", "1002")  # type: ignore[attr-defined]


async def test_wrap_up_code_and_recording_actions(live: Live, client: httpx.AsyncClient) -> None:
    run(live, "disposition", "add", "sale", "--label", "Sale made", "--tenant", "acme")
    run(live, "queue", "update", "support", "--recording", "on-demand", "--tenant", "acme")
    callcenter = live.server.callcenter
    assert callcenter is not None
    await until(lambda: "sale" in callcenter.engine("acme").setup.dispositions)
    token = await live.login(client, "1002")
    listed = (await client.get("/api/dispositions", headers=bearer(token))).json()
    assert listed == [{"code": "sale", "label": "Sale made"}]

    async with ringing_call(live, client) as call:
        await call.answer()
        base = f"/api/calls/{call.call_id}"
        auth = bearer(call.agent_token)
        # Nothing to pause before recording started; then on demand: start, pause, resume.
        reply = await client.post(f"{base}/recording", json={"action": "pause"}, headers=auth)
        assert reply.status_code == 409 and reply.json()["error"]["field"] == "action"
        for action in ("start", "pause", "resume"):
            reply = await client.post(f"{base}/recording", json={"action": action}, headers=auth)
            assert reply.status_code == 204, (action, reply.text)

        reply = await client.put(f"{base}/disposition", json={"code": "nope"}, headers=auth)
        assert reply.status_code == 409 and "sale" in reply.json()["error"]["message"]
        reply = await client.put(
            f"{base}/disposition", json={"code": "sale", "note": "2 licences"}, headers=auth
        )
        assert reply.status_code == 204, reply.text
        saved = await next_event(call.events, DispositionSet)
        assert (saved.code, saved.note) == ("sale", "2 licences")  # type: ignore[attr-defined]
        # Another agent cannot code this call.
        other = await client.put(
            f"{base}/disposition", json={"code": "sale"}, headers=bearer(token)
        )
        assert other.status_code == 409


async def test_views_carry_what_the_consoles_need(live: Live, client: httpx.AsyncClient) -> None:
    boss = bearer(live.long_lived("acme", Role.SUPERVISOR))
    queues = (await client.get("/api/queues", headers=boss)).json()
    support = next(q for q in queues if q["name"] == "support")
    assert support["wrap_up"] == 10.0 and support["service_level_target"] == 80.0
    async with ringing_call(live, client) as call:
        await call.answer()
        calls = (await client.get("/api/calls", headers=boss)).json()
        (mine,) = [c for c in calls if c["call_id"] == call.call_id]
        assert (mine["queue"], mine["agent"]) == ("support", "1001")
        agent = (await client.get("/api/agent", headers=bearer(call.agent_token))).json()
        assert agent["call_id"] == call.call_id and agent["state"] == "on-call"
        assert "available" in agent["time_in"]


async def test_a_transfer_to_an_outside_number_goes_out_through_the_trunk(
    live: Live, client: httpx.AsyncClient
) -> None:
    carrier = await SipUA(
        Account("gw", "-", "carrier.example"),
        (HOST, live.server.switch.ports[Transport.UDP]),
        host="127.0.0.2",
    ).start()
    try:
        args = ["--tenant", "acme", "--address", "127.0.0.2", "--port", str(carrier.port)]
        run(live, "trunk", "add", "carrier", *args)
        run(live, "trunk", "rules", "--tenant", "acme", "--allow", "030")
        switch = live.server.switch
        await until(lambda: switch.dialable("acme", "0301234567"))
        async with ringing_call(live, client) as call:
            await call.answer()
            path = f"/api/calls/{call.call_id}/transfer"
            auth = bearer(call.agent_token)
            reply = await client.post(path, json={"target": "0301234567"}, headers=auth)
            assert reply.status_code == 202
            inc = await carrier.incoming(timeout=10.0)
            assert inc.invite.uri == f"sip:0301234567@127.0.0.2:{carrier.port}"
    finally:
        carrier.close()


async def test_agent_brings_a_third_party_into_the_call(
    live: Live, client: httpx.AsyncClient
) -> None:
    addr = (HOST, live.server.switch.ports[Transport.UDP])
    third = await SipUA(Account("1002", PASSWORDS["1002"], "acme.test"), addr).start()
    try:
        assert (await third.register()).status == 200
        async with ringing_call(live, client) as call:
            await call.answer()
            path = f"/api/calls/{call.call_id}/conference"
            auth = bearer(call.agent_token)
            nobody = await client.post(path, json={"target": "4711"}, headers=auth)
            assert nobody.status_code == 404 and nobody.json()["error"]["field"] == "target"
            reply = await client.post(path, json={"target": "1002"}, headers=auth)
            assert reply.status_code == 202, reply.text
            ring = await third.incoming(timeout=10.0)
            await ring.answer(make_sdp(call.agent_rtp.port))
            joined = await next_event(call.events, ConferenceChanged)
            assert (joined.extension, joined.state) == ("1002", "joined")  # type: ignore[attr-defined]
    finally:
        third.close()
