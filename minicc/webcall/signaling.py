"""Webcall HTTP routes: the widget, the demo page, signaling and web callbacks.

The browser side of click-to-call (docs/webcall.md)::

    GET  /webcall/widget.js                 the widget (plain JS)
    GET  /webcall/demo/{tenant}             a page that embeds it
    POST /webcall/session                   public key + Origin -> short-lived session token
    POST /webcall/calls                     token + SDP offer (gathered candidates) -> answer
    POST /webcall/calls/{id}/state          state of the call (the widget polls it)
    POST /webcall/calls/{id}/dtmf|mute|hangup
    POST /webcall/callbacks                 "call me back instead"
    GET  /api/webcall/calls/{call_id}/context   page context, for the agent's screen pop

Every signaling request is checked in this order: the Origin header against the tenant's
allowed origins (the server's own origin is always allowed, for the demo page), the session
token (HMAC, bound to tenant and origin), the per-IP and per-tenant rate limits, the tenant's
cap on concurrent web calls, and the offer itself. Refusals are JSON errors naming the field
(:mod:`minicc.api.errors`); a bad offer never reaches the switch and never disturbs a worker.

The gateway workers start with the first session request, not with the server, so a server
that never takes a web call never starts one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import secrets
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Header, Path, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from minicc.api.context import Caller, Ctx
from minicc.api.errors import ApiError, ErrorResponse
from minicc.api.routes_calls import visible_call
from minicc.switch.sip.peer import Transport
from minicc.webcall.limits import RateLimiter
from minicc.webcall.records import PageContext, insert_record
from minicc.webcall.settings import WebcallSettings, load_settings, normalize_origin
from minicc.webcall.supervisor import GatewayConfig, LiveWebCall, Supervisor, WorkerError
from minicc.webcall.tokens import (
    TOKEN_LIFETIME,
    SessionClaims,
    TokenError,
    peek_tenant,
    sign_session,
    verify_session,
)

if TYPE_CHECKING:
    from minicc.server import Server

__all__ = ["WebcallGateway", "install", "router"]

router = APIRouter(tags=["webcall"])

MAX_SDP = 20_000
SETTINGS_TTL = 2.0
"""Seconds settings read from a tenant database are reused (the CLI may change them)."""
_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (400, 401, 403, 404, 409, 422, 429, 503)
}


@dataclass(slots=True, eq=False)
class WebcallGateway:
    """The webcall state of one server: settings cache, limits and the worker supervisor."""

    server: Server
    config: GatewayConfig
    per_ip: RateLimiter = field(default_factory=RateLimiter)
    per_tenant: RateLimiter = field(default_factory=RateLimiter)
    supervisor: Supervisor | None = None
    _settings: dict[str, tuple[float, WebcallSettings | None]] = field(default_factory=dict)
    _keys: dict[str, str] = field(default_factory=dict)
    clock: Any = time.time

    # -- settings ----------------------------------------------------------------------

    async def settings(self, tenant: str) -> WebcallSettings | None:
        now = time.monotonic()
        cached = self._settings.get(tenant)
        if cached is not None and now - cached[0] < SETTINGS_TTL:
            return cached[1]
        store = self.server.stores.tenant(tenant)
        if store is None:
            return None
        value = await asyncio.to_thread(load_settings, store.db)
        self._settings[tenant] = (now, value)
        if value is not None:
            self._keys[value.public_key] = tenant
        return value

    async def tenant_of_key(self, key: str) -> tuple[str, WebcallSettings]:
        tenant = self._keys.get(key)
        if tenant is None:
            for name in list(self.server.stores.tenants):
                await self.settings(name)
            tenant = self._keys.get(key)
        settings = await self.settings(tenant) if tenant else None
        if tenant is None or settings is None or settings.public_key != key:
            raise ApiError(
                404,
                "not_found",
                "unknown webcall key: copy the script tag from 'minicc webcall show'",
                field="key",
            )
        if not settings.enabled:
            raise ApiError(403, "forbidden", "click-to-call is switched off for this site")
        return tenant, settings

    # -- workers -----------------------------------------------------------------------

    def ensure_started(self) -> Supervisor:
        """The supervisor, started on first use.

        Raises:
            ApiError: 503 when aiortc is not installed (the ``webcall`` extra).
        """
        if self.supervisor is None:
            if importlib.util.find_spec("aiortc") is None:
                raise ApiError(
                    503,
                    "unavailable",
                    "click-to-call needs aiortc on the server: pip install 'minicc[webcall]'",
                )
            self.supervisor = Supervisor(
                self.config, on_record=self._record, on_orphan=self._hang_up_sip
            )
            self.supervisor.start()
            # Stopped with the server: Server.stop cancels its tasks, and this one stops the
            # workers when cancelled.
            self.server._tasks.append(asyncio.get_running_loop().create_task(self._keep()))
        return self.supervisor

    async def _keep(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            if self.supervisor is not None:
                await self.supervisor.stop()

    def _record(self, tenant: str, record: Any) -> None:
        store = self.server.stores.tenant(tenant)
        if store is not None:
            insert_record(store.db, record)

    def _hang_up_sip(self, sip_call_id: str) -> None:
        b2bua = self.server.switch.b2bua
        for call in b2bua.calls() if b2bua else []:
            if call.call_id == sip_call_id:
                with contextlib.suppress(Exception):
                    self.server.switch.hangup(call.key)


def gateway(request: Request) -> WebcallGateway:
    state = request.app.state
    gw: WebcallGateway | None = getattr(state, "webcall", None)
    if gw is None:
        gw = WebcallGateway(server=state.ctx.server, config=GatewayConfig.from_env(os.environ))
        state.webcall = gw
    return gw


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _origin(request: Request, origin: str | None, settings: WebcallSettings) -> str:
    """The caller's origin if the tenant allows it (or it is this server's own).

    Raises:
        ApiError: 403 naming the origin and the command that allows it.
    """
    if not origin:
        raise ApiError(403, "forbidden", "the request has no Origin header: call from a web page")
    try:
        normalized = normalize_origin(origin)
    except Exception:
        raise ApiError(403, "forbidden", f"origin {origin[:100]!r} is not allowed") from None
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    if normalized in settings.origins or normalized == own:
        return normalized
    raise ApiError(
        403,
        "forbidden",
        f"origin {normalized} is not allowed for this tenant: "
        f"'minicc webcall set --tenant T --origin {normalized}' allows it",
    )


def _limit(gw: WebcallGateway, limiter: RateLimiter, key: str, limit: int, what: str) -> None:
    now = gw.clock()
    if not limiter.allow(key, limit, now):
        wait = max(1, round(limiter.retry_after(key, now)))
        raise ApiError(
            429,
            "too_many_requests",
            f"too many {what}: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


# ----------------------------------------------------------------------------- models


class SessionRequest(BaseModel):
    key: str = Field(min_length=1, max_length=100)
    """The tenant's public webcall key (``data-key`` of the script tag)."""


class SessionReply(BaseModel):
    token: str
    expires: float
    targets: list[str]
    """Numbers this site may call; the first is the default."""


class PageInfo(BaseModel):
    url: str = Field(default="", max_length=2000)
    title: str = Field(default="", max_length=300)
    customer_id: str = Field(default="", max_length=100)


class CallRequest(BaseModel):
    token: str = Field(min_length=1, max_length=1000)
    sdp: str = Field(min_length=1, max_length=MAX_SDP)
    """The browser's offer, with its gathered candidates."""
    type: Literal["offer"] = "offer"
    number: str = Field(default="", max_length=32)
    """One of the session's targets; empty: the first."""
    page: PageInfo = Field(default_factory=PageInfo)


class CallReply(BaseModel):
    id: str
    sdp: str
    type: Literal["answer"] = "answer"


class CallState(BaseModel):
    id: str
    state: str
    """``connecting``, ``calling``, ``ringing``, ``answered`` or ``ended``."""
    reason: str | None = None
    duration: float


class DigitRequest(BaseModel):
    token: str = Field(min_length=1, max_length=1000)
    digit: str = Field(pattern=r"^[0-9*#A-Da-d]$")


class MuteRequest(BaseModel):
    token: str = Field(min_length=1, max_length=1000)
    on: bool


class TokenOnly(BaseModel):
    token: str = Field(min_length=1, max_length=1000)


class CallbackRequest(BaseModel):
    token: str = Field(min_length=1, max_length=1000)
    queue: str = Field(min_length=1, max_length=64)
    number: str = Field(pattern=r"^\+?[0-9]{2,20}$")
    """Where to call the visitor back: digits, optionally with a leading +."""
    name: str = Field(default="", max_length=100)
    preferred_time: str = Field(default="", max_length=40)
    """Free text the agent sees with the name (e.g. 'after 14:00')."""


class CallbackReply(BaseModel):
    id: str


class ContextReply(BaseModel):
    call_id: str
    url: str
    title: str
    customer_id: str
    origin: str


# ----------------------------------------------------------------------------- session


async def _session(
    request: Request, gw: WebcallGateway, token: str, origin: str | None
) -> tuple[str, WebcallSettings, str]:
    try:
        tenant = peek_tenant(token)
    except TokenError as exc:
        raise ApiError(401, "unauthorized", str(exc), field="token") from None
    settings = await gw.settings(tenant) if gw.server.stores.tenant(tenant) else None
    if settings is None or not settings.enabled:
        raise ApiError(401, "unauthorized", "session token is for no active site", field="token")
    allowed = _origin(request, origin, settings)
    try:
        verify_session(token, settings.secret, now=gw.clock(), origin=allowed)
    except TokenError as exc:
        raise ApiError(401, "unauthorized", str(exc), field="token") from None
    return tenant, settings, allowed


def _targets(settings: WebcallSettings) -> list[str]:
    return [t for t in settings.target.split(",") if t]


@router.post("/webcall/session", response_model=SessionReply, responses=_ERRORS)
async def session(
    body: SessionRequest, request: Request, origin: Annotated[str | None, Header()] = None
) -> SessionReply:
    """A session token for a page of an allowed origin (valid ten minutes)."""
    gw = gateway(request)
    _limit(gw, gw.per_ip, _client(request), _per_ip_default(gw), "requests from your address")
    tenant, settings = await gw.tenant_of_key(body.key)
    allowed = _origin(request, origin, settings)
    _limit(gw, gw.per_ip, "t:" + _client(request), settings.per_ip_per_minute, "requests")
    expires = gw.clock() + TOKEN_LIFETIME
    claims = SessionClaims(
        tenant=tenant, origin=allowed, expires=expires, nonce=secrets.token_hex(4)
    )
    gw.ensure_started()
    return SessionReply(
        token=sign_session(claims, settings.secret), expires=expires, targets=_targets(settings)
    )


def _per_ip_default(gw: WebcallGateway) -> int:
    return 120  # a coarse guard before the key is known; the tenant's own limit follows


# ----------------------------------------------------------------------------- calls


def _check_offer(sdp: str) -> None:
    if not sdp.startswith("v=0"):
        raise ApiError(
            400, "bad_request", "sdp: not an SDP offer (must start with v=0)", field="sdp"
        )
    if "\nm=audio " not in sdp.replace("\r\n", "\n"):
        raise ApiError(
            400, "bad_request", "sdp: the offer has no audio (m=audio) line", field="sdp"
        )


@router.post("/webcall/calls", response_model=CallReply, responses=_ERRORS)
async def start_call(
    body: CallRequest, request: Request, origin: Annotated[str | None, Header()] = None
) -> CallReply:
    """Start a web call: the browser's offer in, the gateway's answer out."""
    gw = gateway(request)
    tenant, settings, allowed = await _session(request, gw, body.token, origin)
    _limit(
        gw,
        gw.per_ip,
        "c:" + _client(request),
        settings.per_ip_per_minute,
        "calls from your address",
    )
    _limit(gw, gw.per_tenant, tenant, settings.per_tenant_per_minute, "calls to this company")
    targets = _targets(settings)
    number = body.number or (targets[0] if targets else "")
    if number not in targets:
        raise ApiError(
            403,
            "forbidden",
            f"number {number!r} may not be called from the web: use one of {targets}",
            field="number",
        )
    _check_offer(body.sdp)
    supervisor = gw.ensure_started()
    if supervisor.live_count(tenant) >= settings.max_calls:
        raise ApiError(
            409, "conflict", "all web lines are busy: try again later, or ask for a callback"
        )
    entry = gw.server.directory.get(tenant)
    if entry is None:
        raise ApiError(503, "unavailable", "this company is not served right now")
    port = gw.server.switch.ports.get(Transport.UDP)
    if port is None:
        raise ApiError(503, "unavailable", "the switch takes no SIP over UDP here")
    # The worker reaches the switch on loopback unless it listens on one address only.
    config = gw.server.config
    switch_host = "127.0.0.1" if config.is_wildcard_bind else config.bind
    call = LiveWebCall(
        id=secrets.token_urlsafe(12),
        tenant=tenant,
        sip_call_id=f"webcall-{secrets.token_hex(10)}@127.0.0.1",
        number=number,
        origin=allowed,
        page=PageContext(
            url=body.page.url, title=body.page.title, customer_id=body.page.customer_id
        ),
        worker=0,
    )
    title = body.page.title.strip()
    target = {
        "switch_host": switch_host,
        "switch_port": port,
        "domain": entry.tenant.domain,
        "user": settings.extension,
        "password": settings.secret,
        "number": number,
        "call_id": call.sip_call_id,
        "display": f"Web: {title}" if title else "Web caller",
    }
    try:
        answer = await supervisor.offer(call, body.sdp, target)
    except WorkerError as exc:
        message = str(exc)
        if message.startswith("offer refused"):
            raise ApiError(400, "bad_request", f"sdp: {message}", field="sdp") from None
        raise ApiError(503, "unavailable", message) from None
    return CallReply(id=call.id, sdp=answer)


async def _live(request: Request, call_id: str, token: str, origin: str | None) -> LiveWebCall:
    """The web call if the session's tenant owns it (404 alike for unknown and foreign ids;
    the ids are random, so looking first tells a prober nothing)."""
    gw = gateway(request)
    call = gw.supervisor.calls.get(call_id) if gw.supervisor else None
    if call is None:
        raise ApiError(404, "not_found", f"no web call {call_id}")
    tenant, _settings, _ = await _session(request, gw, token, origin)
    if call.tenant != tenant:
        raise ApiError(404, "not_found", f"no web call {call_id}")
    return call


@router.post("/webcall/calls/{call_id}/state", response_model=CallState, responses=_ERRORS)
async def call_state(
    body: TokenOnly,
    request: Request,
    call_id: Annotated[str, Path(max_length=64)],
    origin: Annotated[str | None, Header()] = None,
) -> CallState:
    """Where the call is (the widget polls this about once a second).

    A POST, not a GET: browsers send the Origin header with every POST, but not with a
    same-origin GET, and every signaling request is checked against it.
    """
    call = await _live(request, call_id, body.token, origin)
    end = call.ended or time.time()
    return CallState(
        id=call.id, state=call.state, reason=call.reason, duration=round(end - call.started, 1)
    )


async def _command(request: Request, call: LiveWebCall, op: str, **params: Any) -> Response:
    gw = gateway(request)
    assert gw.supervisor is not None
    try:
        await gw.supervisor.command(call, op, **params)
    except WorkerError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return Response(status_code=204)


@router.post("/webcall/calls/{call_id}/dtmf", status_code=204, responses=_ERRORS)
async def dtmf(
    body: DigitRequest,
    request: Request,
    call_id: Annotated[str, Path(max_length=64)],
    origin: Annotated[str | None, Header()] = None,
) -> Response:
    """Send one keypad digit (RFC 4733 towards the switch)."""
    call = await _live(request, call_id, body.token, origin)
    return await _command(request, call, "dtmf", digit=body.digit)


@router.post("/webcall/calls/{call_id}/mute", status_code=204, responses=_ERRORS)
async def mute(
    body: MuteRequest,
    request: Request,
    call_id: Annotated[str, Path(max_length=64)],
    origin: Annotated[str | None, Header()] = None,
) -> Response:
    """Mute or unmute the visitor (the agent hears silence)."""
    call = await _live(request, call_id, body.token, origin)
    return await _command(request, call, "mute", on=body.on)


@router.post("/webcall/calls/{call_id}/hangup", status_code=204, responses=_ERRORS)
async def hangup(
    body: TokenOnly,
    request: Request,
    call_id: Annotated[str, Path(max_length=64)],
    origin: Annotated[str | None, Header()] = None,
) -> Response:
    """Hang up (a call already over is not an error)."""
    call = await _live(request, call_id, body.token, origin)
    if call.ended is not None:
        return Response(status_code=204)
    return await _command(request, call, "hangup")


# ----------------------------------------------------------------------------- callbacks


@router.post("/webcall/callbacks", response_model=CallbackReply, responses=_ERRORS)
async def callback(
    body: CallbackRequest, request: Request, origin: Annotated[str | None, Header()] = None
) -> CallbackReply:
    """'Call me back instead': a place in the queue's virtual line."""
    gw = gateway(request)
    tenant, settings, _ = await _session(request, gw, body.token, origin)
    _limit(
        gw,
        gw.per_ip,
        "b:" + _client(request),
        settings.per_ip_per_minute,
        "callback requests from your address",
    )
    callcenter = gw.server.callcenter
    if callcenter is None:
        raise ApiError(503, "unavailable", "the call-center engine is not running")
    name = body.name.strip() or None
    if body.preferred_time.strip():
        name = f"{name or 'Web visitor'} (preferred: {body.preferred_time.strip()})"
    try:
        entry = callcenter.request_callback(tenant, body.queue, body.number, name=name)
    except KeyError:
        entry = None
    if entry is None:
        raise ApiError(404, "not_found", f"queue {body.queue!r} takes no callbacks", field="queue")
    return CallbackReply(id=entry)


# ----------------------------------------------------------------------------- agents


@router.get(
    "/api/webcall/calls/{call_id:path}/context",
    response_model=ContextReply,
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
async def context(
    who: Caller, ctx: Ctx, request: Request, call_id: str = Path(min_length=1, max_length=128)
) -> ContextReply:
    """The page a web caller called from (URL, title, customer id), for the screen pop.

    ``call_id`` is the call's id as in the event stream and ``/api/calls/{id}/pop``, or its
    SIP Call-ID as ``GET /api/calls`` lists it; the same visibility rule applies (an agent:
    calls that ring or rang them).
    """
    key = call_id
    b2bua = ctx.server.switch.b2bua
    for live in b2bua.calls() if b2bua else []:
        if live.call_id == call_id:  # a SIP Call-ID, as GET /api/calls lists them
            key = live.key
    call = visible_call(ctx, who, key)
    gw = gateway(request)
    web = gw.supervisor.find_sip(call.sip_call_id) if gw.supervisor else None
    if web is None:
        raise ApiError(404, "not_found", f"call {call_id} is not a web call")
    return ContextReply(
        call_id=call_id,
        url=web.page.url,
        title=web.page.title,
        customer_id=web.page.customer_id,
        origin=web.origin,
    )


# ----------------------------------------------------------------------------- static


def _static(name: str) -> str:
    return resources.files("minicc.webcall").joinpath("static", name).read_text("utf-8")


@router.get("/webcall/widget.js", include_in_schema=False)
async def widget() -> Response:
    return Response(
        _static("widget.js"),
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/webcall/demo/{tenant}", include_in_schema=False)
async def demo(request: Request, tenant: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
    gw = gateway(request)
    settings = await gw.settings(tenant) if gw.server.stores.tenant(tenant) else None
    if settings is None:
        raise ApiError(
            404,
            "not_found",
            f"tenant {tenant!r} has no click-to-call: "
            f"'minicc webcall set --tenant {tenant}' enables it",
        )
    page = _static("demo.html")
    targets = _targets(settings)
    queue = request.query_params.get("queue", "")
    html = (
        page.replace("{{KEY}}", settings.public_key)
        .replace("{{TARGET}}", targets[0] if targets else "")
        .replace("{{QUEUE}}", "".join(c for c in queue if c.isalnum() or c in "-_")[:64])
        .replace("{{TENANT}}", "".join(c for c in tenant if c.isalnum() or c in "-_"))
    )
    return HTMLResponse(html)


def install(app: FastAPI) -> None:
    """Add the routes to the API app, and CORS headers to the widget's answers (the widget
    runs on the tenant's site, another origin; access is checked per request above)."""
    app.include_router(router)

    @app.middleware("http")
    async def cors(request: Request, call_next: Any) -> Response:
        origin = request.headers.get("origin")
        if not request.url.path.startswith("/webcall/"):
            return await call_next(request)  # type: ignore[no-any-return]
        if request.method == "OPTIONS":
            # Preflight: let the browser send the request; the request itself is checked.
            response = Response(status_code=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await call_next(request)
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response
