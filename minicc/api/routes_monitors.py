"""Supervisor monitoring over the API: listen to, whisper to or barge into an agent's call.

The supervisor's phone is rung (their own extension for a supervisor's login, or the one
named in the request) and, once answered, mixed into the call; the mode can change live
and the monitor can be ended. The same switch machinery serves the ``*81``/``*82``/``*83``
feature codes (docs/supervisor.md).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from minicc.api.context import ApiContext, Ctx, Supervisor
from minicc.api.errors import ApiError, ErrorResponse
from minicc.api.routes_calls import visible_call
from minicc.queue.monitors import MonitorError, MonitorInfo
from minicc.switch.control import MonitorMode

router = APIRouter(tags=["supervisor"])

Mode = Literal["listen", "whisper", "barge"]
_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse, "description": "the call cannot be monitored now"},
    422: {"model": ErrorResponse},
}


class MonitorRequest(BaseModel):
    mode: Mode
    extension: str | None = Field(
        default=None, min_length=1, max_length=32, pattern=r"^[0-9A-Za-z._-]+$"
    )
    """The supervisor's phone to ring; by default the extension that logged in."""


class ModeChange(BaseModel):
    mode: Mode


class MonitorView(BaseModel):
    id: str
    supervisor: str
    agent: str
    call_id: str
    mode: Mode
    joined: bool
    """False while the supervisor's phone still rings."""
    since: float
    """Unix time the monitor was asked for."""


def _view(info: MonitorInfo) -> MonitorView:
    return MonitorView(
        id=info.monitor,
        supervisor=info.supervisor,
        agent=info.agent,
        call_id=info.call,
        mode=info.mode.value,  # type: ignore[arg-type]
        joined=info.started,
        since=info.since,
    )


def _find(ctx: ApiContext, tenant: str, monitor: str) -> MonitorInfo:
    for info in ctx.callcenter.desk.monitors(tenant):
        if info.monitor == monitor:
            return info
    raise ApiError(404, "not_found", f"no monitor {monitor} in progress", field="monitor_id")


@router.get("/api/monitors", response_model=list[MonitorView], responses=_ERRORS)
async def monitors(who: Supervisor, ctx: Ctx) -> list[MonitorView]:
    """Monitors in progress in the tenant."""
    return [_view(info) for info in ctx.callcenter.desk.monitors(who.tenant)]


@router.post(
    "/api/calls/{call_id:path}/monitor",
    status_code=202,
    response_model=MonitorView,
    responses=_ERRORS,
)
async def start(
    body: MonitorRequest,
    who: Supervisor,
    ctx: Ctx,
    request: Request,
    call_id: str = Path(min_length=1, max_length=128),
) -> MonitorView:
    """Ring the supervisor's phone and, once answered, join the call in ``mode``."""
    call = visible_call(ctx, who, call_id, answered_only=True)
    phone = body.extension or who.extension
    if phone is None:
        raise ApiError(
            422,
            "validation",
            "extension: required with a token that is no login",
            field="extension",
        )
    if call.agent is None:
        raise ApiError(409, "conflict", f"call {call_id} has no agent on it yet")
    try:
        monitor = ctx.callcenter.desk.start(who.tenant, call.agent, phone, MonitorMode(body.mode))
    except MonitorError as exc:
        raise ApiError(409 if exc.status == 480 else 403, "refused", str(exc)) from exc
    ctx.audit(who, request, f"monitor {call.agent} ({body.mode})", f"supervisor phone {phone}")
    return _view(_find(ctx, who.tenant, monitor))


@router.put("/api/monitors/{monitor_id:path}", response_model=MonitorView, responses=_ERRORS)
async def change_mode(
    body: ModeChange,
    who: Supervisor,
    ctx: Ctx,
    monitor_id: str = Path(min_length=1, max_length=128),
) -> MonitorView:
    """Switch a monitor between listen, whisper and barge."""
    _find(ctx, who.tenant, monitor_id)
    ctx.callcenter.desk.set_mode(monitor_id, MonitorMode(body.mode))
    return _view(_find(ctx, who.tenant, monitor_id))


@router.delete("/api/monitors/{monitor_id:path}", status_code=204, responses=_ERRORS)
async def stop(
    who: Supervisor,
    ctx: Ctx,
    monitor_id: str = Path(min_length=1, max_length=128),
) -> Response:
    """End a monitor: the supervisor's phone is hung up, the call goes on."""
    _find(ctx, who.tenant, monitor_id)
    ctx.callcenter.desk.stop(monitor_id)
    return Response(status_code=204)
