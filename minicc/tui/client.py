"""The API client of the terminal apps: REST calls (httpx) and the resumable event stream
(websockets). No Textual here, so scripts and tests use it as it is.

Every failure becomes an :class:`ApiError` whose message a person can act on ("the server
at ... does not answer", "wrong tenant, extension or password"); the apps show that line and
never a traceback. :class:`EventFollower` keeps one WebSocket open, reconnects with
exponential back-off and jitter, resumes with ``since``/``epoch`` and says when events were
lost (``gap``) so the app re-reads its picture over REST.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import websockets

__all__ = [
    "ApiClient",
    "ApiError",
    "Connected",
    "Disconnected",
    "EventFollower",
    "NotAvailable",
    "ServerEvent",
    "Unauthorized",
    "Unreachable",
    "backoff_delay",
]

TIMEOUT = 5.0


class ApiError(Exception):
    """A request failed; ``str(error)`` is one line fit for the screen."""

    def __init__(self, message: str, *, status: int = 0, code: str = "", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field


class Unreachable(ApiError):
    """No answer from the server (refused, timed out, bad address)."""


class Unauthorized(ApiError):
    """Wrong password at login, or a token the server no longer accepts (expired, revoked)."""


class NotAvailable(ApiError):
    """The server has no such route (yet): an older server than the app."""


def _error(reply: httpx.Response) -> ApiError:
    try:
        body = reply.json().get("error", {})
    except (ValueError, AttributeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or reply.reason_phrase or f"HTTP {reply.status_code}")
    code = str(body.get("code") or "")
    kind: type[ApiError] = ApiError
    if reply.status_code == 401:
        kind = Unauthorized
    elif reply.status_code == 405 or (reply.status_code == 404 and message == "Not Found"):
        # An unknown route gets Starlette's bare "Not Found"; a minicc 404 ("no call ... of
        # yours") always says what is missing.
        kind = NotAvailable
        message = "not available on this server yet"
    return kind(message, status=reply.status_code, code=code, field=body.get("field"))


def _path_id(call_id: str) -> str:
    return quote(call_id, safe="/@:.-_~")


class ApiClient:
    """One server, one token. Methods return the decoded JSON; failures raise ApiError."""

    def __init__(
        self, base_url: str, token: str | None = None, *, timeout: float = TIMEOUT
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; return its JSON (None for an empty answer).

        Raises:
            Unreachable: no connection to the server.
            Unauthorized: 401 (wrong password, or the token expired or was revoked).
            NotAvailable: the server does not have this route.
            ApiError: any other refusal, with the server's message.
        """
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            reply = await self._http.request(method, path, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise Unreachable(f"the server at {self.base_url} did not answer in time") from exc
        except (httpx.TransportError, OSError) as exc:
            raise Unreachable(f"cannot reach the server at {self.base_url}") from exc
        if reply.status_code >= 400:
            raise _error(reply)
        if not reply.content:
            return None
        try:
            return reply.json()
        except ValueError as exc:
            raise ApiError(f"the server at {self.base_url} is not a minicc server") from exc

    # -- sessions ------------------------------------------------------------------------

    async def login(self, tenant: str, extension: str, password: str) -> dict[str, Any]:
        """Log in; on success the client keeps the session token."""
        session: dict[str, Any] = await self.request(
            "POST",
            "/api/sessions",
            {"tenant": tenant, "extension": extension, "password": password},
        )
        self.token = session["token"]
        return session

    async def logout(self) -> None:
        await self.request("DELETE", "/api/sessions/current")
        self.token = None

    async def me(self) -> dict[str, Any]:
        return await self.request("GET", "/api/me")  # type: ignore[no-any-return]

    async def status(self) -> dict[str, Any]:
        return await self.request("GET", "/api/status")  # type: ignore[no-any-return]

    # -- agent ---------------------------------------------------------------------------

    async def agent(self) -> dict[str, Any]:
        return await self.request("GET", "/api/agent")  # type: ignore[no-any-return]

    async def set_state(self, state: str, reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"state": state}
        if state == "paused" and reason:
            body["reason"] = reason
        return await self.request("PUT", "/api/agent/state", body)  # type: ignore[no-any-return]

    async def pop(self, call_id: str) -> dict[str, Any]:
        return await self.request(  # type: ignore[no-any-return]
            "GET", f"/api/calls/{_path_id(call_id)}/pop"
        )

    async def hangup(self, call_id: str) -> None:
        await self.request("POST", f"/api/calls/{_path_id(call_id)}/hangup")

    async def hold(self, call_id: str) -> None:
        await self.request("POST", f"/api/calls/{_path_id(call_id)}/hold")

    async def resume(self, call_id: str) -> None:
        await self.request("POST", f"/api/calls/{_path_id(call_id)}/resume")

    async def transfer(self, call_id: str, target: str) -> None:
        await self.request("POST", f"/api/calls/{_path_id(call_id)}/transfer", {"target": target})

    async def disposition(self, call_id: str, code: str, note: str = "") -> None:
        await self.request(
            "PUT", f"/api/calls/{_path_id(call_id)}/disposition", {"code": code, "note": note}
        )

    async def dispositions(self) -> list[dict[str, Any]]:
        return await self.request("GET", "/api/dispositions")  # type: ignore[no-any-return]

    async def callbacks(self) -> list[dict[str, Any]]:
        return await self.request("GET", "/api/callbacks")  # type: ignore[no-any-return]

    # -- supervisor ----------------------------------------------------------------------

    async def queues(self) -> list[dict[str, Any]]:
        return await self.request("GET", "/api/queues")  # type: ignore[no-any-return]

    async def agents(self) -> list[dict[str, Any]]:
        return await self.request("GET", "/api/agents")  # type: ignore[no-any-return]

    async def calls(self) -> list[dict[str, Any]]:
        return await self.request("GET", "/api/calls")  # type: ignore[no-any-return]

    async def force_state(
        self, extension: str, state: str, reason: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"state": state}
        if state == "paused" and reason:
            body["reason"] = reason
        return await self.request(  # type: ignore[no-any-return]
            "PUT", f"/api/agents/{quote(extension, safe='')}/state", body
        )

    async def monitor(self, call_id: str, mode: str, extension: str) -> None:
        await self.request(
            "POST",
            f"/api/calls/{_path_id(call_id)}/monitor",
            {"mode": mode, "extension": extension},
        )


# -- the event stream ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected:
    """The stream is (again) open. ``gap``: events were lost, re-read the state."""

    gap: bool
    replayed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected:
    """The stream broke; the next attempt is in ``retry_in`` seconds."""

    reason: str
    retry_in: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerEvent:
    seq: int
    type: str
    at: float
    data: dict[str, Any] = field(default_factory=dict)


StreamItem = Connected | Disconnected | ServerEvent


def backoff_delay(
    attempt: int,
    *,
    base: float = 0.5,
    cap: float = 30.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before reconnect ``attempt`` (0 = first retry): exponential, capped,
    with "equal jitter" (half fixed, half random) so a server restart is not met by every
    console at the same instant."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return ceiling / 2 + rand() * ceiling / 2


class EventFollower:
    """Follow ``/api/events`` for ever: ``async for item in follower`` yields
    :class:`Connected`, :class:`ServerEvent` and :class:`Disconnected` items.

    It ends only by raising :class:`Unauthorized` (the server closed the stream with 4401:
    the token is no longer good) or when cancelled.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.ws_url = "ws" + base_url.rstrip("/").removeprefix("http")
        self.token = token
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.rand = rand
        self.last: int | None = None
        self.epoch: str | None = None

    def url(self) -> str:
        query: dict[str, str] = {}
        if self.last is not None and self.epoch is not None:
            query = {"since": str(self.last), "epoch": self.epoch}
        return f"{self.ws_url}/api/events" + (f"?{urlencode(query)}" if query else "")

    async def __aiter__(self) -> AsyncIterator[StreamItem]:
        attempt = 0
        while True:
            reason = ""
            try:
                async with websockets.connect(
                    self.url(),
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    open_timeout=TIMEOUT,
                    ping_interval=5.0,
                    ping_timeout=5.0,
                ) as ws:
                    async for text in ws:
                        message = json.loads(text)
                        kind = message.get("type")
                        if kind == "hello":
                            attempt = 0
                            self.epoch = message["epoch"]
                            self.last = int(message["last"]) - int(message["replayed"])
                            yield Connected(
                                gap=bool(message["gap"]), replayed=int(message["replayed"])
                            )
                        elif kind == "gap":
                            self.last = int(message["last"])
                            yield Connected(gap=True, replayed=0)
                        elif "seq" in message:
                            self.last = int(message["seq"])
                            yield ServerEvent(
                                seq=self.last,
                                type=str(kind),
                                at=float(message.get("at", 0.0)),
                                data=dict(message.get("data") or {}),
                            )
                    reason = "the server closed the event stream"
            except websockets.exceptions.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code == 4401:
                    raise Unauthorized(
                        exc.rcvd.reason if exc.rcvd and exc.rcvd.reason else "session ended",
                        status=401,
                    ) from exc
                reason = "lost the connection to the server"
            except websockets.exceptions.InvalidStatus as exc:
                reason = f"the server refused the event stream ({exc.response.status_code})"
            except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake):
                reason = "cannot reach the server"
            except (ValueError, KeyError, TypeError):
                # Not minicc's stream (a proxy's page, another version): say so and retry.
                reason = "the server sent an unreadable event"
            delay = backoff_delay(attempt, base=self.base_delay, cap=self.max_delay, rand=self.rand)
            attempt += 1
            yield Disconnected(reason=reason, retry_in=delay)
            await asyncio.sleep(delay)
