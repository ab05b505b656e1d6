"""A tenant's life against a running server: suspended (phones and tokens refused, saying
why), resumed, not deletable during a call, and exported to a second server where its
agents log in and its history is there."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from click.testing import CliRunner

from minicc.cli import cli
from minicc.server import Server
from minicc.switch.sip.peer import Transport
from minicc.tenants.models import CallRecord, Disposition, HangupSide, TenantStatus
from tests.unit.api.conftest import PASSWORDS, Live, serve_config, until
from tests.unit.switch.ua import HOST, Account, RtpPeer, SipUA, make_sdp


async def run_cli(*args: str) -> tuple[int, str]:
    # In a thread: the command may ask this very server (on this loop) for its status.
    result = await asyncio.to_thread(CliRunner().invoke, cli, list(args))
    return result.exit_code, result.output


async def test_suspended_tenant_is_refused_with_the_reason(
    live: Live, client: httpx.AsyncClient
) -> None:
    token = await live.login(client, "1001")
    directory = live.server.directory
    code, out = await run_cli("tenant", "suspend", "acme", "--data-dir", str(live.data_dir))
    assert code == 0 and "suspended" in out
    await until(lambda: directory.get("acme").tenant.status is TenantStatus.SUSPENDED)  # type: ignore[union-attr]

    addr = (HOST, live.server.switch.ports[Transport.UDP])
    phone = await SipUA(Account("1002", PASSWORDS["1002"], "acme.test"), addr).start()
    try:
        reply = await phone.register()
        assert (reply.status, reply.reason) == (403, "Tenant Suspended")
        assert "suspended" in (reply.headers.get("Warning") or "")
    finally:
        phone.close()
    auth = {"Authorization": f"Bearer {token}"}
    reply = await client.get("/api/me", headers=auth)
    assert reply.status_code == 403 and reply.json()["error"]["code"] == "suspended"
    reply = await client.post(
        "/api/sessions",
        json={"tenant": "acme.test", "extension": "1002", "password": PASSWORDS["1002"]},
    )
    assert reply.status_code == 403 and "suspended" in reply.json()["error"]["message"]
    # The other tenant goes on as before.
    assert (await live.login(client, "1001", tenant="other.test")).startswith("mcc_")

    code, _ = await run_cli("tenant", "resume", "acme", "--data-dir", str(live.data_dir))
    assert code == 0
    await until(lambda: directory.get("acme").tenant.status is TenantStatus.ACTIVE)  # type: ignore[union-attr]
    assert (await client.get("/api/me", headers=auth)).status_code == 200


async def test_delete_is_refused_while_the_tenant_has_a_call(live: Live) -> None:
    addr = (HOST, live.server.switch.ports[Transport.UDP])
    rtp = await RtpPeer.open()
    alice = await SipUA(Account("1001", PASSWORDS["1001"], "acme.test"), addr).start()
    bob = await SipUA(Account("1002", PASSWORDS["1002"], "acme.test"), addr).start()
    try:
        assert (await bob.register()).status == 200
        out = await alice.call("sip:1002@acme.test", make_sdp(rtp.port))
        incoming = await bob.incoming()
        await incoming.answer(make_sdp(rtp.port))
        assert (await out.final()).status == 200

        code, output = await run_cli(
            "tenant", "delete", "acme", "--yes", "--data-dir", str(live.data_dir)
        )
        assert code == 1 and "1 call(s) in progress" in output and "suspend it first" in output
        assert live.server.stores.control.get_tenant("acme") is not None
    finally:
        alice.close()
        bob.close()
        rtp.close()


async def test_exported_tenant_works_on_another_server(live: Live, tmp_path: Path) -> None:
    store = live.server.stores.tenant("acme")
    assert store is not None
    start = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    record = CallRecord(
        tenant="acme",
        call_id="history-1",
        from_user="+15550100",
        to_user="8000",
        start=start,
        end=start + timedelta(minutes=3),
        disposition=Disposition.ANSWERED,
        hangup_side=HangupSide.CALLER,
        answer=start,
    )
    store.insert_cdr(record).result(5.0)
    archive = tmp_path / "acme.tar.gz"
    code, _ = await run_cli(
        "tenant", "export", "acme", "-o", str(archive), "--data-dir", str(live.data_dir)
    )
    assert code == 0
    second = tmp_path / "second"
    code, output = await run_cli("tenant", "import", str(archive), "--data-dir", str(second))
    assert code == 0, output
    server = Server(serve_config(second))
    await server.start()
    try:
        history = server.stores.tenant("acme")
        assert history is not None
        assert [c.call_id for c in history.export_cdrs()] == ["history-1"]
        addr = (HOST, server.switch.ports[Transport.UDP])
        phone = await SipUA(Account("1001", PASSWORDS["1001"], "acme.test"), addr).start()
        try:
            assert (await phone.register()).status == 200  # same password, new server
        finally:
            phone.close()
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{server.http_port}") as client:
            reply = await client.post(
                "/api/sessions",
                json={"tenant": "acme.test", "extension": "1002", "password": PASSWORDS["1002"]},
            )
            assert reply.status_code == 201
            auth = {"Authorization": f"Bearer {reply.json()['token']}"}
            queues = (await client.get("/api/queues", headers=auth)).json()
            assert [q["name"] for q in queues] == ["sales", "support"]
    finally:
        await server.stop()
