"""Tenant isolation over the whole API, generated from its route table.

Tenant ``other`` has an extension, a queue, a live call and a callback that ``acme`` does
not. With acme's most powerful token (admin), every route is tried against other's objects:
a route with a path parameter is called with other's id and must refuse (404/403); a route
without one must answer with nothing of other's in its body. A route added to the API
without an entry in :data:`PROBES` fails this test until someone says how to probe it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import websockets
from fastapi.routing import APIRoute, APIWebSocketRoute

from minicc.events import CallOffered
from minicc.store.callcenter import CallCenterStore
from minicc.store.tokens import Role
from minicc.switch.sip.peer import Transport
from tests.unit.api.conftest import OTHER_PASSWORD, Live
from tests.unit.switch.ua import HOST, Account, RtpPeer, SipUA, make_sdp

OTHER_ONLY_EXTENSION = "1777"
OTHER_CALLER = "1778"

# (method, path) -> the path parameters to use (other's objects), or None for a route
# without parameters, whose answer is searched for other's names instead.
PROBES: dict[tuple[str, str], dict[str, str] | None] = {
    ("POST", "/api/sessions"): None,
    ("DELETE", "/api/sessions/current"): None,
    ("GET", "/api/me"): None,
    ("GET", "/api/agent"): None,
    ("PUT", "/api/agent/state"): None,
    ("GET", "/api/agents"): None,
    ("PUT", "/api/agents/{extension}/state"): {"extension": OTHER_ONLY_EXTENSION},
    ("GET", "/api/queues"): None,
    ("GET", "/api/calls"): None,
    ("GET", "/api/calls/{call_id}/pop"): {"call_id": "@other-call"},
    ("POST", "/api/calls/{call_id}/hangup"): {"call_id": "@other-call"},
    ("POST", "/api/calls/{call_id}/hold"): {"call_id": "@other-call"},
    ("POST", "/api/calls/{call_id}/resume"): {"call_id": "@other-call"},
    ("GET", "/api/callbacks"): None,
    ("POST", "/api/calls/{call_id}/transfer"): {"call_id": "@other-call"},
    ("POST", "/api/calls/{call_id}/conference"): {"call_id": "@other-call"},
    ("POST", "/api/calls/{call_id}/recording"): {"call_id": "@other-call"},
    ("PUT", "/api/calls/{call_id}/disposition"): {"call_id": "@other-call"},
    ("GET", "/api/dispositions"): None,
    ("POST", "/api/calls/{call_id}/monitor"): {"call_id": "@other-call"},
    ("GET", "/api/monitors"): None,
    ("PUT", "/api/monitors/{monitor_id}"): {"monitor_id": "@other-call"},
    ("DELETE", "/api/monitors/{monitor_id}"): {"monitor_id": "@other-call"},
    ("GET", "/api/health"): None,
    ("GET", "/api/status"): None,
    ("WEBSOCKET", "/api/events"): None,
    # Click-to-call (minicc/webcall): the widget's routes take a widget session token, not a
    # bearer token; tests/unit/webcall checks one tenant's widget token against another's.
    ("POST", "/webcall/session"): None,
    ("POST", "/webcall/calls"): None,
    ("POST", "/webcall/calls/{call_id}/state"): {"call_id": "@other-call"},
    ("POST", "/webcall/calls/{call_id}/dtmf"): {"call_id": "@other-call"},
    ("POST", "/webcall/calls/{call_id}/mute"): {"call_id": "@other-call"},
    ("POST", "/webcall/calls/{call_id}/hangup"): {"call_id": "@other-call"},
    ("POST", "/webcall/callbacks"): None,
    ("GET", "/webcall/widget.js"): None,
    ("GET", "/webcall/demo/{tenant}"): {"tenant": "other"},
    ("GET", "/api/webcall/calls/{call_id}/context"): {"call_id": "@other-call"},
}
# Bodies for the routes that need one.
BODIES: dict[tuple[str, str], object] = {
    ("POST", "/api/sessions"): {
        "tenant": "other.test",
        "extension": OTHER_ONLY_EXTENSION,
        "password": "wrong-for-acme",
    },
    ("PUT", "/api/agent/state"): {"state": "available"},
    ("PUT", "/api/agents/{extension}/state"): {"state": "paused", "reason": "x"},
    ("POST", "/api/calls/{call_id}/monitor"): {"mode": "listen", "extension": "1003"},
    ("PUT", "/api/monitors/{monitor_id}"): {"mode": "barge"},
    ("POST", "/api/calls/{call_id}/transfer"): {"target": "1001"},
    ("POST", "/api/calls/{call_id}/conference"): {"target": "1001"},
    ("POST", "/api/calls/{call_id}/recording"): {"action": "start"},
    ("PUT", "/api/calls/{call_id}/disposition"): {"code": "sale"},
    ("POST", "/webcall/calls/{call_id}/state"): {"token": "x"},
    ("POST", "/webcall/calls/{call_id}/dtmf"): {"token": "x", "digit": "1"},
    ("POST", "/webcall/calls/{call_id}/mute"): {"token": "x", "on": True},
    ("POST", "/webcall/calls/{call_id}/hangup"): {"token": "x"},
}
# Routes that by design show the whole server and are served only on its own machine.
SERVER_WIDE = {("GET", "/api/status"), ("GET", "/api/health")}


@dataclass(slots=True)
class OtherWorld:
    call_id: str
    """A live queue call of tenant other."""
    markers: tuple[str, ...]
    """Strings only tenant other's data contains."""


def _walk(routes: list[object]) -> list[object]:
    """Every route, also inside included routers (FastAPI may keep those as one entry)."""
    found: list[object] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        found.extend(_walk(list(inner.routes)) if inner is not None else [route])
    return found


def route_table(live: Live) -> set[tuple[str, str]]:
    app = live.server._http.config.app  # type: ignore[union-attr]
    found: set[tuple[str, str]] = set()
    for route in _walk(list(app.routes)):
        if isinstance(route, APIRoute):
            found.update((method, route.path.replace(":path", "")) for method in route.methods)
        elif isinstance(route, APIWebSocketRoute):
            found.add(("WEBSOCKET", route.path))
    # Nothing the API serves may escape the table: the OpenAPI document lists them too.
    documented = {
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    }
    assert documented <= found, documented - found
    assert len(found) >= 15
    return found


@pytest.fixture
async def other_world(live: Live) -> AsyncIterator[OtherWorld]:
    """A queue call ringing tenant other's agent, and a callback waiting in other's queue."""
    server = live.server
    store = server.stores.tenant("other")
    assert store is not None
    store.add_extension(OTHER_ONLY_EXTENSION, OTHER_PASSWORD, "other.test", "Only Other")
    store.add_extension(OTHER_CALLER, OTHER_PASSWORD, "other.test", "Other Caller")
    callcenter_store = CallCenterStore(store)
    callcenter_store.add_member("billing", OTHER_ONLY_EXTENSION)
    callcenter_store.add_number("8200", "queue:billing")
    callcenter = server.callcenter
    assert callcenter is not None
    for _ in range(200):
        setup = callcenter.engine("other").setup
        if "8200" in setup.numbers and server.directory.get("other").extensions.get(  # type: ignore[union-attr]
            OTHER_CALLER
        ):
            break
        await asyncio.sleep(0.05)
    callcenter.set_agent_state("other", OTHER_ONLY_EXTENSION, _available())

    addr = (HOST, server.switch.ports[Transport.UDP])
    events = server.bus.subscribe("isolation")
    rtp = await RtpPeer.open()
    agent = await SipUA(Account(OTHER_ONLY_EXTENSION, OTHER_PASSWORD, "other.test"), addr).start()
    caller = await SipUA(Account(OTHER_CALLER, OTHER_PASSWORD, "other.test"), addr).start()
    try:
        assert (await agent.register()).status == 200
        await caller.call("sip:8200@other.test", make_sdp(rtp.port))
        await agent.incoming(timeout=10.0)
        event = None
        while not isinstance(event, CallOffered):
            event = await asyncio.wait_for(events.get(), 10.0)
        # The agent is being rung now, so the callback waits in the queue.
        callcenter.request_callback("other", "billing", "+15559990001", name="Secret Customer")
        yield OtherWorld(
            call_id=event.call_id,
            markers=("billing", "Only Other", "Secret Customer", "+15559990001", event.call_id),
        )
    finally:
        events.close()
        agent.close()
        caller.close()
        rtp.close()


def _available():  # type: ignore[no-untyped-def]
    from minicc.queue.agents import AgentState

    return AgentState.AVAILABLE


async def test_every_route_keeps_tenants_apart(
    live: Live, client: httpx.AsyncClient, other_world: OtherWorld
) -> None:
    routes = route_table(live)
    unprobed = routes - set(PROBES)
    assert not unprobed, f"add an isolation probe for each new route: {sorted(unprobed)}"

    for method, path in sorted(routes):
        # A fresh token each time: DELETE /api/sessions/current revokes the one it carries.
        admin = live.long_lived("acme", Role.ADMIN, "isolation")
        headers = {"Authorization": f"Bearer {admin}"}
        params = PROBES[(method, path)]
        used = set()
        if method == "WEBSOCKET":
            body = await _stream_body(live, admin)
        else:
            url = path
            used: set[str] = set()
            for name, value in (params or {}).items():
                value = other_world.call_id if value == "@other-call" else value
                used.add(value)
                url = url.replace("{" + name + "}", value)
            reply = await client.request(
                method, url, headers=headers, json=BODIES.get((method, path))
            )
            # 401 would mean the probe never got past the door and proved nothing (but for
            # the login itself, where it is the refusal).
            if (method, path) == ("POST", "/api/sessions"):
                assert reply.status_code == 401, reply.text
            elif params:
                assert reply.status_code in (403, 404), (method, path, reply.text)
            else:
                assert reply.status_code < 500 and reply.status_code != 401, (method, path)
            body = reply.text
        if (method, path) in SERVER_WIDE:
            continue
        # An error may repeat the id the request itself carried: that tells nothing.
        leaked = [m for m in other_world.markers if m in body and m not in used]
        assert not leaked, f"{method} {path} shows tenant other's {leaked}: {body[:300]}"

    # The objects were there all along: other's own admin sees them.
    assert live.server.callcenter.live_call("other", other_world.call_id) is not None  # type: ignore[union-attr]
    boss = live.long_lived("other", Role.ADMIN, "their-admin")
    callbacks = await client.get("/api/callbacks", headers={"Authorization": f"Bearer {boss}"})
    assert "Secret Customer" in callbacks.text
    pop = await client.get(
        f"/api/calls/{other_world.call_id}/pop", headers={"Authorization": f"Bearer {boss}"}
    )
    assert pop.status_code == 200


async def test_server_wide_routes_answer_only_on_the_servers_machine(
    live: Live, client: httpx.AsyncClient
) -> None:
    # /api/status shows every tenant: loopback only (this client is loopback, so it gets
    # it); the check that refuses other addresses is in the route itself.
    reply = await client.get("/api/status")
    assert reply.status_code == 200 and "tenants" in reply.json()


async def _stream_body(live: Live, token: str) -> str:
    """Everything the event stream sends acme's admin for a short while."""
    seen: list[str] = []
    url = live.ws_url("/api/events?since=0")
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        try:
            while True:
                seen.append(str(await asyncio.wait_for(ws.recv(), 0.5)))
        except TimeoutError:
            pass
    return json.dumps(seen)
