"""Agent state over the API: an agent's own state, and every agent's for supervisors.

``GET/PUT /api/agent`` act on the extension that logged in; ``GET /api/agents`` and
``PUT /api/agents/{extension}/state`` are the supervisor's view and override. States are
spelled as slugs (``logged-out``, ``on-call``) so clients can use them as identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from minicc.api.auth import Principal
from minicc.api.context import ApiContext, Caller, Ctx, Supervisor
from minicc.api.errors import ApiError, ErrorResponse
from minicc.queue.agents import AgentState, AgentStateError
from minicc.queue.stats import AgentSnapshot, StatsSnapshot

router = APIRouter(tags=["agents"])

StateSlug = Literal["logged-out", "available", "reserved", "on-call", "wrap-up", "paused"]
SettableState = Literal["available", "paused", "logged-out"]
_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse, "description": "the agent's state does not allow it now"},
    422: {"model": ErrorResponse},
}


def slug(state: AgentState) -> StateSlug:
    return state.value.replace(" ", "-")  # type: ignore[return-value]


class AgentView(BaseModel):
    extension: str
    name: str | None
    state: StateSlug
    reason: str | None
    """Pause reason (paused only)."""
    since: float
    """Unix time the current state began."""
    queues: list[str]
    """Queues the agent is a member of."""
    calls_handled: int
    """Calls answered today."""
    occupancy: float | None
    """0-1: on call or wrap-up over staffed time, today."""
    time_in: dict[str, float] = {}
    """Seconds today per state (``paused:lunch`` for a pause with a reason)."""
    call_id: str | None = None
    """The call the agent is rung for, talks on or wraps up."""


class Pause(BaseModel):
    state: Literal["paused"]
    reason: str | None = Field(default=None, max_length=64)
    """Pause reason (e.g. ``lunch``); the tenant's default reason when left out."""


class Unpaused(BaseModel):
    # No reason here: only a pause has one, and saying so beats ignoring it.
    model_config = ConfigDict(extra="forbid")
    state: Literal["available", "logged-out"]


StateChange = Annotated[Pause | Unpaused, Field(discriminator="state")]


@router.get("/api/agent", response_model=AgentView, responses=_ERRORS)
async def my_state(who: Caller, ctx: Ctx) -> AgentView:
    """The logged-in agent's state."""
    return _view(ctx, who.tenant, _own_extension(who))


@router.put("/api/agent/state", response_model=AgentView, responses=_ERRORS)
async def set_my_state(change: StateChange, who: Caller, ctx: Ctx) -> AgentView:
    """Become available, pause (with a reason) or log out of every queue.

    A pause asked for during a call takes effect when its wrap-up ends.
    """
    extension = _own_extension(who)
    _apply(ctx, who.tenant, extension, change)
    return _view(ctx, who.tenant, extension)


@router.get("/api/agents", response_model=list[AgentView], responses=_ERRORS)
async def all_agents(who: Supervisor, ctx: Ctx) -> list[AgentView]:
    """Every agent of the tenant (members of a queue, or anyone with a state)."""
    snapshot = _snapshot(ctx, who.tenant)
    ids = sorted(set(_memberships(ctx, who.tenant)) | set(snapshot.agents), key=_sort_key)
    return [_view(ctx, who.tenant, ext, snapshot) for ext in ids]


@router.put("/api/agents/{extension}/state", response_model=AgentView, responses=_ERRORS)
async def force_state(
    change: StateChange,
    who: Supervisor,
    ctx: Ctx,
    request: Request,
    extension: str = Path(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z._-]+$"),
) -> AgentView:
    """A supervisor sets an agent's state (e.g. logs out an agent who left)."""
    _known(ctx, who.tenant, extension)
    _apply(ctx, who.tenant, extension, change)
    ctx.audit(
        who,
        request,
        f"set agent {extension} {change.state}",
        change.model_dump_json(exclude_none=True),
    )
    return _view(ctx, who.tenant, extension)


# ---------------------------------------------------------------------------- helpers


def _own_extension(who: Principal) -> str:
    if who.extension is None:
        raise ApiError(
            403,
            "forbidden",
            "this token is not an agent's login: use an agent's session "
            "(POST /api/sessions) or /api/agents/{extension}",
        )
    return who.extension


def _known(ctx: ApiContext, tenant: str, extension: str) -> None:
    entry = ctx.server.directory.get(tenant)
    if entry is None or extension not in entry.extensions:
        raise ApiError(
            404, "not_found", f"no extension {extension} in this tenant", field="extension"
        )


def _apply(ctx: ApiContext, tenant: str, extension: str, change: StateChange) -> None:
    state = {
        "available": AgentState.AVAILABLE,
        "paused": AgentState.PAUSED,
        "logged-out": AgentState.LOGGED_OUT,
    }[change.state]
    try:
        reason = change.reason if isinstance(change, Pause) else None
        ctx.callcenter.set_agent_state(tenant, extension, state, reason=reason)
    except AgentStateError as exc:
        raise ApiError(409, "conflict", f"{exc}", field="state") from exc
    except KeyError as exc:
        raise ApiError(503, "unavailable", "this tenant's call center is not loaded yet") from exc


def _snapshot(ctx: ApiContext, tenant: str) -> StatsSnapshot:
    try:
        return ctx.callcenter.stats_snapshot(tenant)
    except KeyError as exc:
        raise ApiError(503, "unavailable", "this tenant's call center is not loaded yet") from exc


def _memberships(ctx: ApiContext, tenant: str) -> Mapping[str, list[str]]:
    setup = ctx.callcenter.engine(tenant).setup
    queues: dict[str, list[str]] = {}
    for queue, members in setup.members.items():
        for member in members:
            queues.setdefault(member.agent_id, []).append(queue)
    return queues


def _view(
    ctx: ApiContext, tenant: str, extension: str, snapshot: StatsSnapshot | None = None
) -> AgentView:
    snapshot = snapshot or _snapshot(ctx, tenant)
    agent: AgentSnapshot | None = snapshot.agents.get(extension)
    entry = ctx.server.directory.get(tenant)
    known = entry.extensions.get(extension) if entry is not None else None
    now = ctx.clock()
    return AgentView(
        extension=extension,
        name=known.name if known is not None else None,
        state=slug(agent.state) if agent else "logged-out",
        reason=agent.reason if agent else None,
        # Engine times are monotonic; the API speaks wall-clock time.
        since=round(now - (snapshot.at - agent.since), 3) if agent else now,
        queues=sorted(_memberships(ctx, tenant).get(extension, [])),
        calls_handled=agent.calls_handled if agent else 0,
        occupancy=agent.occupancy if agent else None,
        time_in=_time_in(agent) if agent else {},
        call_id=_current_call(ctx, tenant, extension),
    )


def _time_in(agent: AgentSnapshot) -> dict[str, float]:
    totals: dict[str, float] = {}
    for (state, reason), seconds in agent.time_in.items():
        key = slug(state) + (f":{reason}" if reason else "")
        totals[key] = round(totals.get(key, 0.0) + seconds, 1)
    return totals


def _current_call(ctx: ApiContext, tenant: str, extension: str) -> str | None:
    board = ctx.callcenter.engine(tenant).board
    return board[extension].call_id if extension in board else None


def _sort_key(extension: str) -> tuple[int, str]:
    return (len(extension), extension)
