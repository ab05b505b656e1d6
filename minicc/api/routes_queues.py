"""Live queue statistics and live calls of the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from minicc.api.context import Caller, Ctx, Supervisor
from minicc.api.errors import ApiError, ErrorResponse
from minicc.queue.stats import QueueSnapshot

router = APIRouter(tags=["queues"])

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
}


class QueueView(BaseModel):
    name: str
    waiting: int
    """Calls waiting now, callbacks included."""
    callbacks_waiting: int
    longest_wait: float
    """Seconds the oldest waiting call has waited."""
    offered: int
    answered: int
    abandoned: int
    left: dict[str, int]
    """Calls that left unanswered for another reason (max wait, empty...), by reason."""
    callbacks_requested: int
    service_level_threshold: float
    service_level: float | None
    """Percent answered within the threshold, today."""
    asa: float | None
    """Average speed of answer, seconds."""
    aht: float | None
    """Average handle time (talk + wrap-up), seconds."""
    avg_abandon_wait: float | None
    occupancy: float | None
    wrap_up: float | None = None
    """Seconds of wrap-up after each call (the console's countdown)."""
    service_level_target: float | None = None
    """Percent the service level should reach (the wallboard's alert)."""
    holds: int = 0
    """Holds of answered calls that ended today (docs/hold.md)."""
    hold_total: float = 0.0
    """Their seconds (inside talk time, so inside AHT)."""


class CallView(BaseModel):
    call_id: str
    """minicc's id for the call: what the call routes take (pop, hangup, monitor...)."""
    sip_call_id: str
    """The Call-ID of the caller's leg (what call records carry)."""
    caller: str
    callee: str
    state: str
    started: str
    """ISO 8601, UTC."""
    queue: str | None = None
    """The queue the call waits in or came from (queue calls)."""
    agent: str | None = None
    """The agent talking to the caller, once one has answered."""


def queue_view(q: QueueSnapshot) -> QueueView:
    return QueueView(
        name=q.name,
        waiting=q.waiting,
        callbacks_waiting=q.callbacks_waiting,
        longest_wait=round(q.longest_wait, 3),
        offered=q.offered,
        answered=q.answered,
        abandoned=q.abandoned,
        left={reason.value: count for reason, count in q.left.items()},
        callbacks_requested=q.callbacks_requested,
        service_level_threshold=q.service_level_threshold,
        service_level=q.service_level,
        asa=q.asa,
        aht=q.aht,
        avg_abandon_wait=q.avg_abandon_wait,
        occupancy=q.occupancy,
        holds=q.holds,
        hold_total=round(q.hold_total, 3),
    )


@router.get("/api/queues", response_model=list[QueueView], responses=_ERRORS)
async def queues(who: Caller, ctx: Ctx) -> list[QueueView]:
    """Every queue of the tenant with today's figures."""
    try:
        snapshot = ctx.callcenter.stats_snapshot(who.tenant)
    except KeyError as exc:
        raise ApiError(503, "unavailable", "this tenant's call center is not loaded yet") from exc
    configs = ctx.callcenter.engine(who.tenant).setup.queues
    views = []
    for name in sorted(snapshot.queues):
        view = queue_view(snapshot.queues[name])
        config = configs.get(name)
        if config is not None:
            view.wrap_up = config.wrap_up
            view.service_level_target = config.service_level_target
        views.append(view)
    return views


@router.get("/api/calls", response_model=list[CallView], responses=_ERRORS)
async def calls(who: Supervisor, ctx: Ctx) -> list[CallView]:
    """Calls in progress in the tenant."""
    b2bua = ctx.server.switch.b2bua
    live = b2bua.calls() if b2bua is not None else []
    views = []
    for call in live:
        if call.tenant.name != who.tenant:
            continue
        engine_call = ctx.callcenter.live_call(who.tenant, call.key)
        views.append(
            CallView(
                call_id=call.key,
                sip_call_id=call.call_id,
                caller=call.from_user,
                callee=call.to_user,
                state=call.state.value,
                started=call.started.isoformat(),
                queue=engine_call.queue if engine_call is not None else None,
                agent=engine_call.agent if engine_call is not None else None,
            )
        )
    return views
