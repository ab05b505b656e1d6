"""The HTTP API: FastAPI application factory.

Routes live in the ``routes_*`` modules and :mod:`minicc.api.events_stream`; this module
puts them together with the JSON error handling (:mod:`minicc.api.errors`) and keeps the
two routes that need no token: the health check and the loopback-only status summary.
The OpenAPI document is at ``/api/openapi.json``, browsable docs at ``/api/docs``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request

from minicc import __version__
from minicc.api import (
    errors,
    events_stream,
    routes_actions,
    routes_agents,
    routes_calls,
    routes_monitors,
    routes_queues,
    routes_sessions,
)
from minicc.api.context import ApiContext
from minicc.store.tokens import TokenStore
from minicc.switch.sip.guard import FloodGuard
from minicc.webcall import signaling as webcall_signaling

if TYPE_CHECKING:
    from minicc.server import Server


def guard_status(guard: FloodGuard) -> dict[str, Any]:
    """The flood guard's blocks, for ``/api/status`` and ``minicc status``."""
    now = asyncio.get_running_loop().time()
    return {
        "dropped": guard.dropped,
        "blocked": [
            {
                "address": b.address,
                "offence": b.offence.value,
                "offences": b.offences,
                "seconds_left": round(b.until - now, 1),
            }
            for b in guard.blocks(now)
        ],
    }


def create_app(server: Server) -> FastAPI:
    app = FastAPI(
        title="minicc",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.ctx = ApiContext(server=server, tokens=TokenStore(server.stores.control.db))
    errors.install(app)
    for module in (
        routes_sessions,
        routes_agents,
        routes_queues,
        routes_calls,
        routes_actions,
        routes_monitors,
        events_stream,
    ):
        app.include_router(module.router)
    webcall_signaling.install(app)

    @app.get("/api/health")
    def health() -> dict[str, str]:
        """Liveness: answers as soon as the switch is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/status")
    async def status(request: Request, calls: bool = True) -> dict[str, Any]:
        """Live summary: calls, registrations, SIP counters.

        It shows every tenant's calls, so until API tokens exist it answers only on the
        server's own machine (loopback clients). ``?calls=false`` leaves the list of calls
        out: with thousands of calls, encoding it holds the interpreter for tens of
        milliseconds, which a monitor polling every second should not cost the switch.
        """
        client = request.client.host if request.client else ""
        if client not in ("127.0.0.1", "::1"):
            raise HTTPException(403, "status is only served to clients on this machine")
        switch = server.switch
        b2bua = switch.b2bua
        return {
            "uptime_seconds": round(time.time() - server.started, 1),
            "active_calls": b2bua.active_calls if b2bua else 0,
            "calls": [
                {
                    "tenant": call.tenant.name,
                    "call_id": call.call_id,
                    "from": call.from_user,
                    "to": call.to_user,
                    "state": call.state.value,
                    "started": call.started.isoformat(),
                }
                for call in (b2bua.calls() if b2bua and calls else [])
            ],
            "registrations": switch.registrar.count(),
            "transactions": len(switch.tx),
            "sip": dict(switch.stats),
            "guard": guard_status(switch.guard),
            "tenants": [e.name for e in server.directory.entries()],
        }

    return app
