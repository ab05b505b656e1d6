"""Calls over the API: the agent's screen pop (who calls, from which queue, what the IVR
collected, the caller's last calls), hanging up, hold and resume, and the callbacks waiting."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from minicc.api.auth import Principal
from minicc.api.context import ApiContext, Caller, Ctx
from minicc.api.errors import ApiError, ErrorResponse
from minicc.queue.engine_calls import LiveCall
from minicc.store.tokens import Role

router = APIRouter(tags=["calls"])

HISTORY = 5
"""Past calls the pop shows."""


class PastCall(BaseModel):
    call_id: str
    started: str
    """ISO 8601, UTC."""
    caller: str
    callee: str
    disposition: str
    """``answered``, ``no-answer``, ``busy``, ``failed``, ``cancelled``..."""
    duration: float | None
    """Seconds from answer to end (None: never answered)."""


class Pop(BaseModel):
    call_id: str
    caller: str
    """The caller's number or extension."""
    caller_name: str | None
    number: str
    """The number the caller dialled."""
    queue: str | None
    waited: float | None
    """Seconds waited in the queue so far (while still waiting)."""
    language: str
    variables: dict[str, str]
    """What the IVR collected (e.g. an order number)."""
    priority: int
    """Queue priority; VIPs are above every IVR priority."""
    agent: str | None
    """The agent who answered, once one has."""
    history: list[PastCall]
    """The caller's latest calls with this tenant, newest first."""


@router.get(
    "/api/calls/{call_id:path}/pop",
    response_model=Pop,
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def pop(
    who: Caller,
    ctx: Ctx,
    call_id: str = Path(min_length=1, max_length=128),
) -> Pop:
    """The screen pop of a call offered to (or answered by) the caller's extension.

    Agents see the calls that ring or rang them; supervisors see every call of the tenant.
    """
    call = visible_call(ctx, who, call_id)
    store = ctx.server.stores.tenant(who.tenant)
    past = await asyncio.to_thread(store.calls_with, call.caller, HISTORY + 1) if store else []
    history = [
        PastCall(
            call_id=r.call_id,
            started=r.start.isoformat(),
            caller=r.from_user,
            callee=r.to_user,
            disposition=r.disposition.value,
            duration=(r.end - r.answer).total_seconds() if r.answer else None,
        )
        for r in past
        if r.call_id != call.sip_call_id
    ][:HISTORY]
    return Pop(
        call_id=call.key,
        caller=call.caller,
        caller_name=call.caller_name,
        number=call.number,
        queue=call.queue,
        waited=ctx.callcenter.waited(who.tenant, call_id),
        language=call.language,
        variables=dict(call.variables),
        priority=call.priority,
        agent=call.agent,
        history=history,
    )


class CallbackView(BaseModel):
    id: str
    """The callback's id (stable across restarts)."""
    queue: str
    number: str
    """Where the caller wants to be called."""
    name: str | None
    requested_at: float
    """Unix time the caller joined the queue: the place kept."""
    attempts: int
    """Dial-back attempts so far."""
    status: str
    """``waiting``, ``agent-ringing``, ``dialling`` or ``connected``."""
    agent: str | None
    """The agent rung or talking, while one is."""


@router.get(
    "/api/callbacks",
    response_model=list[CallbackView],
    responses={401: {"model": ErrorResponse}},
)
async def callbacks(who: Caller, ctx: Ctx) -> list[CallbackView]:
    """Callbacks waiting in the tenant's queues, oldest place first."""
    return [
        CallbackView(
            id=str(job.callback_id or job.call_id),
            queue=job.queue,
            number=job.number,
            name=job.name,
            requested_at=job.joined_wall,
            attempts=job.attempts,
            status=job.state.value.replace(" ", "-"),
            agent=job.agent,
        )
        for job in ctx.callcenter.callbacks(who.tenant)
    ]


@router.post(
    "/api/calls/{call_id:path}/hangup",
    status_code=204,
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def hangup(
    who: Caller,
    ctx: Ctx,
    call_id: str = Path(min_length=1, max_length=128),
) -> Response:
    """End a call the caller's extension is talking on (a supervisor: any of the tenant's)."""
    call = visible_call(ctx, who, call_id, answered_only=True)
    ctx.server.switch.hangup(call.key)
    return Response(status_code=204)


_HOLD_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse, "description": "the call cannot be held or resumed now"},
}


@router.post("/api/calls/{call_id:path}/hold", status_code=204, responses=_HOLD_RESPONSES)
async def hold(
    who: Caller,
    ctx: Ctx,
    call_id: str = Path(min_length=1, max_length=128),
) -> Response:
    """Put the caller on hold (music) and the agent's phone on silence, with no SIP toward
    the phone (docs/hold.md)."""
    call = visible_call(ctx, who, call_id, answered_only=True)
    if not ctx.server.switch.hold(call.key):
        raise ApiError(409, "conflict", f"call {call_id} is on hold already or not connected")
    return Response(status_code=204)


@router.post("/api/calls/{call_id:path}/resume", status_code=204, responses=_HOLD_RESPONSES)
async def resume(
    who: Caller,
    ctx: Ctx,
    call_id: str = Path(min_length=1, max_length=128),
) -> Response:
    """End a hold made with ``hold``; a hold made on the phone is resumed on the phone."""
    call = visible_call(ctx, who, call_id, answered_only=True)
    if not ctx.server.switch.resume(call.key):
        raise ApiError(
            409,
            "conflict",
            f"call {call_id} is not on hold from the API (a phone's hold is resumed on the phone)",
        )
    return Response(status_code=204)


def visible_call(
    ctx: ApiContext, who: Principal, call_id: str, *, answered_only: bool = False
) -> LiveCall:
    """The call if the caller may act on it: their own (rung or answered) or, for a
    supervisor, any of the tenant's.

    Raises:
        ApiError: 404 for a call that is gone and for one that is not theirs alike, so no
            agent can probe another's calls.
    """
    call = ctx.callcenter.live_call(who.tenant, call_id)
    ext = who.extension
    mine = (
        call is not None
        and ext is not None
        and (call.agent == ext or (not answered_only and ext in call.attempts.values()))
    )
    if call is None or not (mine or who.role.allows(Role.SUPERVISOR)):
        raise ApiError(404, "not_found", f"no call {call_id} of yours is in progress")
    return call
