"""FastAPI application factory. For now: health and a live status summary."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

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
    def status() -> dict[str, Any]:
        """Live summary: calls, registrations, SIP counters."""
        switch = server.switch
        b2bua = switch.b2bua
        return {
            "uptime_seconds": round(time.time() - server.started, 1),
            "active_calls": b2bua.active_calls if b2bua else 0,
            "registrations": switch.registrar.count(),
            "transactions": len(switch.tx),
            "sip": dict(switch.stats),
            "tenants": [e.name for e in server.directory.entries()],
        }

    return app
