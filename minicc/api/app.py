"""FastAPI application factory. For now: health and a live status summary."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request

from minicc import __version__

if TYPE_CHECKING:
    from minicc.server import Server


def create_app(server: Server) -> FastAPI:
    app = FastAPI(
        title="minicc", version=__version__, openapi_url="/api/openapi.json", docs_url="/api/docs"
    )

    @app.get("/api/health")
    def health() -> dict[str, str]:
        """Liveness: answers as soon as the switch is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/status")
    def status(request: Request, calls: bool = True) -> dict[str, Any]:
        """Live summary: calls, registrations, SIP counters.

        It shows every tenant's calls, so until API tokens exist it answers only on the
        server's own machine (loopback clients). ``?calls=false`` leaves the list of calls
        out: with thousands of calls, encoding it holds the interpreter for tens of
        milliseconds, which a monitor polling every second should not cost the switch.
        """
        client = request.client.host if request.client else ""
        if client not in ("127.0.0.1", "::1"):
            raise HTTPException(403, "status is only served to local clients for now")
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
            "tenants": [e.name for e in server.directory.entries()],
        }

    return app
