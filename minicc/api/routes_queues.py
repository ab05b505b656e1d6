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
    holds: int = 0
    """Holds of answered calls that ended today (docs/hold.md)."""
    hold_total: float = 0.0
    """Their seconds (inside talk time, so inside AHT)."""


class CallView(BaseModel):
    call_id: str
    caller: str
    callee: str
    state: str
    started: str
    """ISO 8601, UTC."""


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
    return [queue_view(snapshot.queues[name]) for name in sorted(snapshot.queues)]


@router.get("/api/calls", response_model=list[CallView], responses=_ERRORS)
async def calls(who: Supervisor, ctx: Ctx) -> list[CallView]:
    """Calls in progress in the tenant."""
    b2bua = ctx.server.switch.b2bua
    live = b2bua.calls() if b2bua is not None else []
    return [
        CallView(
            call_id=call.call_id,
            caller=call.from_user,
            callee=call.to_user,
            state=call.state.value,
            started=call.started.isoformat(),
        )
        for call in live
        if call.tenant.name == who.tenant
    ]
