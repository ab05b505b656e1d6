"""What every route needs: the running server's parts and the caller's identity.

Route handlers are ``async def`` on purpose: they then run on the server's event loop, the
only thread that may touch the queue engine and the switch. Anything that waits on the
database goes through the store's writer thread and is awaited, never blocked on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from minicc.api.auth import LoginGuard, Principal
from minicc.api.errors import ApiError
from minicc.api.eventlog import EventLog
from minicc.store.audit import AuditLog
from minicc.store.tokens import Role, TokenStore
from minicc.tenants.models import TenantStatus

if TYPE_CHECKING:
    from minicc.queue.engine import CallCenter
    from minicc.server import Server

__all__ = ["ApiContext", "Caller", "authenticate", "require"]

SESSION_LIFETIME = 12 * 3600.0
"""A login lasts a working day and a bit; long-lived tokens are for machines."""


@dataclass(slots=True, eq=False)
class ApiContext:
    server: Server
    tokens: TokenStore
    events: EventLog = field(default_factory=EventLog)
    guard: LoginGuard = field(default_factory=LoginGuard)
    clock: Callable[[], float] = time.time
    session_lifetime: float = SESSION_LIFETIME
    _wakeups: dict[str, asyncio.Event] = field(default_factory=dict)

    @property
    def callcenter(self) -> CallCenter:
        callcenter = self.server.callcenter
        if callcenter is None:
            raise ApiError(503, "unavailable", "the call-center engine is not running")
        return callcenter

    def audit(self, who: Principal, request: Request, action: str, detail: str = "") -> None:
        """Record an administrative change made through the API (never blocks)."""
        client = request.client.host if request.client else "?"
        AuditLog(self.server.stores.control.db).record(
            at=self.clock(),
            actor=f"{who.role.value} {who.subject}",
            source=f"api@{client}",
            action=action,
            tenant=who.tenant,
            detail=detail,
        )

    def wakeup(self, tenant: str) -> asyncio.Event:
        """Set when the tenant has a new event; the event stream waits on it."""
        event = self._wakeups.get(tenant)
        if event is None:
            event = self._wakeups[tenant] = asyncio.Event()
        return event

    def notify(self, tenant: str) -> None:
        event = self._wakeups.pop(tenant, None)
        if event is not None:
            event.set()


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def principal_for(ctx: ApiContext, token: str | None) -> Principal:
    """The caller a token stands for.

    Raises:
        ApiError: 401 without a token, with an unknown, expired or revoked one, or for a
            tenant that no longer exists.
    """
    if token is None:
        raise ApiError(
            401,
            "unauthorized",
            "send 'Authorization: Bearer <token>' (POST /api/sessions gives one)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    record = ctx.tokens.find(token)
    if record is None or not record.valid_at(ctx.clock()):
        why = "unknown token" if record is None else "token expired or revoked"
        raise ApiError(
            401,
            "unauthorized",
            f"{why}: log in again (POST /api/sessions)",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    entry = ctx.server.directory.get(record.tenant)
    if entry is None:
        raise ApiError(401, "unauthorized", f"tenant {record.tenant!r} is not served here")
    if entry.tenant.status is not TenantStatus.ACTIVE:
        raise ApiError(
            403, "suspended", f"tenant {record.tenant!r} is suspended by the service provider"
        )
    return Principal.of(record)


async def authenticate(request: Request) -> Principal:
    return principal_for(context(request), bearer_token(request.headers.get("authorization")))


def require(role: Role) -> Callable[..., object]:
    """A dependency that lets through callers with ``role`` or a higher one."""

    async def check(who: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not who.role.allows(role):
            raise ApiError(
                403,
                "forbidden",
                f"this needs the {role.value} role; your token is {who.role.value}",
            )
        return who

    return check


Ctx = Annotated[ApiContext, Depends(context)]
Caller = Annotated[Principal, Depends(authenticate)]
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
