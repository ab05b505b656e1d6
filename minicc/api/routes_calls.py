"""One call as the agent's screen pop shows it: who calls, from which queue, what the IVR
collected, and the caller's last calls with the tenant."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Path
from pydantic import BaseModel

from minicc.api.context import Caller, Ctx
from minicc.api.errors import ApiError, ErrorResponse
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
    call = ctx.callcenter.live_call(who.tenant, call_id)
    mine = (
        call is not None
        and who.extension is not None
        and (call.agent == who.extension or who.extension in call.attempts.values())
    )
    if call is None or not (mine or who.role.allows(Role.SUPERVISOR)):
        # The same answer for "gone" and "not yours": no probing other agents' calls.
        raise ApiError(404, "not_found", f"no call {call_id} of yours is in progress")
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
