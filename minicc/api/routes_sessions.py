"""Logging in and out: ``POST /api/sessions``, ``DELETE /api/sessions/current``, ``GET /api/me``."""

from __future__ import annotations

import asyncio
import math

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from minicc.api.auth import Principal, check_password
from minicc.api.context import Caller, Ctx
from minicc.api.errors import ApiError, ErrorResponse
from minicc.store.tokens import Role, TokenKind
from minicc.tenants.models import TenantStatus

router = APIRouter(tags=["sessions"])

_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "wrong tenant, extension or password"},
    422: {"model": ErrorResponse, "description": "a field is missing or malformed"},
    403: {"model": ErrorResponse, "description": "the tenant is suspended"},
    429: {"model": ErrorResponse, "description": "too many failed logins; retry later"},
}


class Login(BaseModel):
    tenant: str = Field(
        min_length=1, max_length=253, description="The tenant's SIP domain (or name)."
    )
    extension: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z._-]+$")
    password: str = Field(min_length=1, max_length=256)


class Session(BaseModel):
    token: str
    """Send as ``Authorization: Bearer <token>``; shown only this once."""
    tenant: str
    extension: str
    role: Role
    expires_at: float
    """Unix time."""


class Me(BaseModel):
    tenant: str
    role: Role
    subject: str
    extension: str | None
    kind: TokenKind


@router.post("/api/sessions", status_code=201, response_model=Session, responses=_ERRORS)
async def login(body: Login, request: Request, ctx: Ctx) -> Session:
    """Log in with an extension's SIP password; returns a session token for that tenant."""
    now = ctx.clock()
    client = request.client.host if request.client else "?"
    keys: list[tuple[str, ...]] = [("ip", client)]
    directory = ctx.server.directory
    entry = directory.resolve_host(body.tenant) or directory.get(body.tenant)
    if directory.suspended(body.tenant) is not None or (
        entry is not None and entry.tenant.status is not TenantStatus.ACTIVE
    ):
        raise ApiError(403, "suspended", "this tenant is suspended by the service provider")
    if entry is not None:
        keys.append(("user", entry.name, body.extension))
    wait = ctx.guard.retry_after(keys, now)
    if wait > 0:
        raise ApiError(
            429,
            "too_many_requests",
            f"too many failed logins: try again in {math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    if entry is None or not check_password(entry, body.extension, body.password):
        ctx.guard.failed(keys, now)
        # One answer for every failure: no telling which tenants or extensions exist.
        raise ApiError(401, "unauthorized", "wrong tenant, extension or password")
    ctx.guard.succeeded(keys[1:])  # the address's count stays: one good login clears no guessing
    role = _role_of(ctx, entry.name, body.extension)
    token, record = await asyncio.to_thread(
        ctx.tokens.issue,
        tenant=entry.name,
        role=role,
        subject=body.extension,
        kind=TokenKind.SESSION,
        now=now,
        lifetime=ctx.session_lifetime,
    )
    assert record.expires_at is not None
    return Session(
        token=token,
        tenant=entry.name,
        extension=body.extension,
        role=role,
        expires_at=record.expires_at,
    )


@router.delete("/api/sessions/current", status_code=204, responses={401: {"model": ErrorResponse}})
async def logout(who: Caller, ctx: Ctx) -> Response:
    """Revoke the token this request carries."""
    await asyncio.to_thread(ctx.tokens.revoke, who.token_id, now=ctx.clock())
    return Response(status_code=204)


@router.get("/api/me", response_model=Me, responses={401: {"model": ErrorResponse}})
async def me(who: Caller) -> Me:
    """Who the token belongs to."""
    return Me(
        tenant=who.tenant,
        role=who.role,
        subject=who.subject,
        extension=who.extension,
        kind=who.kind,
    )


def _role_of(ctx: Ctx, tenant: str, extension: str) -> Role:
    """Extensions marked supervisors (``minicc user set --supervisor``) log in as
    supervisors; everyone else as an agent. Admin access comes from a long-lived token."""
    if ctx.server.is_supervisor(tenant, extension):
        return Role.SUPERVISOR
    return Role.AGENT


__all__ = ["Principal", "router"]
