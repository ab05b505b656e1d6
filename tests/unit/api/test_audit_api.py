"""The supervisor's changes through the API land in the audit log with token and address."""

from __future__ import annotations

import asyncio
import json

import httpx

from minicc.store.audit import AuditLog
from minicc.store.tokens import Role
from tests.unit.api.conftest import Live


async def test_supervisor_changes_through_the_api_are_recorded(
    live: Live, client: httpx.AsyncClient
) -> None:
    token = live.long_lived("acme", Role.SUPERVISOR, "wallboard")
    reply = await client.put(
        "/api/agents/1002/state",
        json={"state": "paused", "reason": "meeting"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 200
    log = AuditLog(live.server.stores.control.db)
    for _ in range(100):
        entries = log.entries(tenant="acme")
        if entries:
            break
        await asyncio.sleep(0.02)
    (entry,) = entries
    assert entry.action == "set agent 1002 paused" and entry.actor == "supervisor wallboard"
    assert entry.source == "api@127.0.0.1" and json.loads(entry.detail)["reason"] == "meeting"
