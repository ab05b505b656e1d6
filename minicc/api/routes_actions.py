"""What an agent does to the call they are on, over the API: transfer it, bring a third
party in, record it (or pause the recording while a card number is read out), and give the
wrap-up its code.

Each is the same operation a desk phone reaches by REFER or by feature codes
(docs/transfers.md, docs/recording.md); refusals come back as 409 with the engine's reason.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from minicc.api.context import Caller, Ctx
from minicc.api.errors import ApiError, ErrorResponse
from minicc.api.routes_calls import visible_call
from minicc.queue.monitors import MonitorError
from minicc.queue.recording import FeatureError

router = APIRouter(tags=["calls"])

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse, "description": "not possible on this call now; says why"},
    422: {"model": ErrorResponse},
}


class TransferRequest(BaseModel):
    target: str = Field(min_length=1, max_length=32, pattern=r"^\+?[0-9*#]+$")
    """An extension, a queue or IVR number of the tenant, or (with a trunk) an outside one."""


class RecordingAction(BaseModel):
    action: Literal["start", "stop", "pause", "resume"]


class DispositionRequest(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    note: str | None = Field(default=None, max_length=2000)


class DispositionView(BaseModel):
    code: str
    label: str


@router.post("/api/calls/{call_id:path}/transfer", status_code=202, responses=_ERRORS)
async def transfer(
    body: TransferRequest,
    who: Caller,
    ctx: Ctx,
    call_id: str = Path(min_length=1, max_length=128),
) -> Response:
    """Blind-transfer the caller (the outcome arrives as a ``call.transferred`` event)."""
    call = visible_call(ctx, who, call_id, answered_only=True)
    ctx.server.switch.transfer(call.key, body.target)
    return Response(status_code=202)


class ConferenceRequest(BaseModel):
    target: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z._-]+$")
    """The extension to ring in as a third party."""


@router.post("/api/calls/{call_id:path}/conference", status_code=202, responses=_ERRORS)
async def conference(
    body: ConferenceRequest,
    who: Caller,
    ctx: Ctx,
    call_id: str = Path(min_length=1, max_length=128),
) -> Response:
    """Ring an extension into the call; once it answers, all three hear each other (the
    outcome arrives as a ``conference.changed`` event)."""
    call = visible_call(ctx, who, call_id, answered_only=True)
    try:
        ctx.callcenter.desk.conference(who.tenant, call.key, body.target)
    except MonitorError as exc:
        raise ApiError(
            404 if exc.status == 404 else 409, "refused", str(exc), field="target"
        ) from exc
    return Response(status_code=202)


@router.post("/api/calls/{call_id:path}/recording", status_code=204, responses=_ERRORS)
async def recording(
    body: RecordingAction,
    who: Caller,
    ctx: Ctx,
    call_id: str = Path(min_length=1, max_length=128),
) -> Response:
    """Start (on-demand queues), stop, pause or resume the call's recording."""
    call = visible_call(ctx, who, call_id, answered_only=True)
    callcenter = ctx.callcenter
    try:
        if body.action in ("start", "stop"):
            callcenter.record_call(who.tenant, call.key, body.action == "start")
        elif body.action == "pause":
            callcenter.pause_recording(who.tenant, call.key)
        else:
            callcenter.resume_recording(who.tenant, call.key)
    except FeatureError as exc:
        raise ApiError(409, "conflict", str(exc), field="action") from exc
    return Response(status_code=204)


@router.put("/api/calls/{call_id:path}/disposition", status_code=204, responses=_ERRORS)
async def disposition(
    body: DispositionRequest,
    who: Caller,
    ctx: Ctx,
    call_id: str = Path(min_length=1, max_length=128),
) -> Response:
    """The agent's wrap-up code and note for a call they are on or wrapping up."""
    if who.extension is None:
        raise ApiError(403, "forbidden", "only the agent who took the call gives its wrap-up code")
    try:
        ctx.callcenter.set_disposition(who.tenant, who.extension, call_id, body.code, body.note)
    except FeatureError as exc:
        field = "code" if "code" in str(exc) else None
        raise ApiError(409, "conflict", str(exc), field=field) from exc
    return Response(status_code=204)


@router.get("/api/dispositions", response_model=list[DispositionView], responses=_ERRORS)
async def dispositions(who: Caller, ctx: Ctx) -> list[DispositionView]:
    """The tenant's wrap-up codes."""
    store = ctx.server.stores.callcenter(who.tenant)
    if store is None:
        return []
    rows = await asyncio.to_thread(store.list_dispositions)
    return [DispositionView(code=code, label=label or code) for code, label in rows]
