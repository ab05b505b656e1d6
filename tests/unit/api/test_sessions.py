"""Logins, tokens and their failures, over real HTTP against a running server."""

from __future__ import annotations

import asyncio

import httpx
from click.testing import CliRunner

from minicc.cli import cli
from minicc.store.tokens import Role, TokenStore
from tests.unit.api.conftest import PASSWORDS, Live


async def test_login_gives_a_token_scoped_to_the_tenant_and_extension(
    live: Live, client: httpx.AsyncClient
) -> None:
    reply = await client.post(
        "/api/sessions",
        json={"tenant": "acme.test", "extension": "1001", "password": PASSWORDS["1001"]},
    )
    assert reply.status_code == 201
    body = reply.json()
    assert body["tenant"] == "acme" and body["extension"] == "1001" and body["role"] == "agent"
    assert body["token"].startswith("mcc_") and body["expires_at"] > 0
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json() == {
        "tenant": "acme",
        "role": "agent",
        "subject": "1001",
        "extension": "1001",
        "kind": "session",
    }
    # Only a digest is stored: the database never holds the token itself.
    stored = live.server.stores.control.db.query("SELECT digest FROM api_tokens")
    assert all(body["token"] not in row[0] for row in stored)


async def test_wrong_password_unknown_extension_and_unknown_tenant_look_the_same(
    client: httpx.AsyncClient,
) -> None:
    attempts = [
        {"tenant": "acme.test", "extension": "1001", "password": "wrong"},
        {"tenant": "acme.test", "extension": "1999", "password": "whatever"},
        {"tenant": "nowhere.test", "extension": "1001", "password": "whatever"},
        # Right password, wrong tenant: tenants are separate worlds.
        {"tenant": "other.test", "extension": "1001", "password": PASSWORDS["1001"]},
    ]
    for attempt in attempts:
        reply = await client.post("/api/sessions", json=attempt)
        assert reply.status_code == 401, attempt
        assert reply.json() == {
            "error": {
                "code": "unauthorized",
                "message": "wrong tenant, extension or password",
                "field": None,
            }
        }


async def test_validation_errors_name_the_field(client: httpx.AsyncClient) -> None:
    reply = await client.post("/api/sessions", json={"tenant": "acme.test", "password": "x"})
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["code"] == "validation" and error["field"] == "extension"
    assert "extension" in error["message"] and "required" in error["message"]

    reply = await client.post(
        "/api/sessions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 422
    assert reply.json()["error"]["message"] == "the request body is not valid JSON"

    reply = await client.post(
        "/api/sessions", json={"tenant": "acme.test", "extension": "10 01", "password": "x"}
    )
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "extension"


async def test_repeated_failures_lock_the_login_out_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    bad = {"tenant": "acme.test", "extension": "1002", "password": "guess"}
    statuses = [(await client.post("/api/sessions", json=bad)).status_code for _ in range(5)]
    assert statuses == [401] * 5
    locked = await client.post("/api/sessions", json=bad)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) >= 1
    assert "too many failed logins" in locked.json()["error"]["message"]
    # Locked out means locked out: even the right password waits.
    right = {**bad, "password": PASSWORDS["1002"]}
    assert (await client.post("/api/sessions", json=right)).status_code == 429


async def test_missing_malformed_expired_and_revoked_tokens_get_401(
    live: Live, client: httpx.AsyncClient
) -> None:
    reply = await client.get("/api/me")
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in reply.json()["error"]["message"]

    for header in ("Bearer", "Basic abc", "Bearer mcc_not-a-real-token"):
        reply = await client.get("/api/me", headers={"Authorization": header})
        assert reply.status_code == 401, header

    token = await live.login(client, "1001")
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.delete("/api/sessions/current", headers=auth)).status_code == 204
    reply = await client.get("/api/me", headers=auth)
    assert reply.status_code == 401
    assert "expired or revoked" in reply.json()["error"]["message"]

    # A session past its lifetime is refused the same way.
    ctx = live.server.api
    assert ctx is not None
    ctx.session_lifetime = 0.05
    token = await live.login(client, "1002")
    await asyncio.sleep(0.1)
    reply = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 401


async def test_long_lived_tokens_carry_their_role(live: Live, client: httpx.AsyncClient) -> None:
    token = live.long_lived("acme", Role.SUPERVISOR, "wallboard")
    reply = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert reply.json() == {
        "tenant": "acme",
        "role": "supervisor",
        "subject": "wallboard",
        "extension": None,
        "kind": "long-lived",
    }
    TokenStore(live.server.stores.control.db).revoke(1, now=0.0)
    assert (
        await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401


async def test_openapi_document_lists_every_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    paths = set(spec["paths"])
    assert {
        "/api/sessions",
        "/api/sessions/current",
        "/api/me",
        "/api/agent",
        "/api/agent/state",
        "/api/agents",
        "/api/agents/{extension}/state",
        "/api/queues",
        "/api/calls",
        "/api/health",
    } <= paths
    assert (await client.get("/api/docs")).status_code == 200


async def test_a_supervisor_extension_logs_in_as_supervisor(
    live: Live, client: httpx.AsyncClient
) -> None:
    args = ["user", "set", "--tenant", "acme", "--extension", "1003", "--supervisor"]
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(live.data_dir)])
    assert result.exit_code == 0, result.output
    for _ in range(100):  # the server rereads its databases every second
        if live.server.is_supervisor("acme", "1003"):
            break
        await asyncio.sleep(0.05)
    token = await live.login(client, "1003")
    me = (await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["role"] == "supervisor"
    agents = await client.get("/api/agents", headers={"Authorization": f"Bearer {token}"})
    assert agents.status_code == 200
