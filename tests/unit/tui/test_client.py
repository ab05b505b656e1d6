"""The API client against the real server: logins, errors as one clear line, routes the
server does not have yet, and the event follower's resume through a proxy that is cut."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from minicc.store.tokens import Role
from minicc.tui.client import (
    ApiClient,
    ApiError,
    Connected,
    Disconnected,
    EventFollower,
    NotAvailable,
    ServerEvent,
    StreamItem,
    Unauthorized,
    Unreachable,
)
from tests.unit.tui.conftest import PASSWORDS, Live, Proxy


async def test_login_then_calls_with_the_token(live: Live) -> None:
    async with ApiClient(live.url) as api:
        session = await api.login("acme.test", "1001", PASSWORDS["1001"])
        assert api.token == session["token"] and session["role"] == "agent"
        assert (await api.me())["extension"] == "1001"
        assert (await api.set_state("paused", "lunch"))["reason"] == "lunch"
        assert {q["name"] for q in await api.queues()} == {"support", "sales"}
        await api.logout()
        assert api.token is None


async def test_failures_are_one_clear_line(live: Live) -> None:
    async with ApiClient(live.url) as api:
        with pytest.raises(Unauthorized, match="wrong tenant, extension or password"):
            await api.login("acme.test", "1001", "nope")
        api.token = "mcc_not-a-token"
        with pytest.raises(Unauthorized):
            await api.agent()
        api.token = live.long_lived("acme", Role.AGENT)
        with pytest.raises(ApiError, match="not an agent's login") as refused:
            await api.agent()
        assert refused.value.status == 403
        # A minicc 404 (no such call) is not "route missing".
        with pytest.raises(ApiError, match="no call") as missing:
            await api.pop("nothing/here@x")
        assert not isinstance(missing.value, NotAvailable)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with ApiClient(f"http://127.0.0.1:{port}", timeout=2.0) as api:
        with pytest.raises(Unreachable, match="cannot reach the server"):
            await api.queues()


async def test_routes_not_on_this_server_yet_say_so(live: Live) -> None:
    token = live.long_lived("acme", Role.SUPERVISOR)
    async with ApiClient(live.url, token) as api:
        for call in (
            api.dispositions(),
            api.callbacks(),
            api.hangup("abc/1@x"),
            api.transfer("abc/1@x", "1002"),
            api.monitor("abc/1@x", "listen", "1003"),
        ):
            try:
                await call
            except NotAvailable as exc:
                assert str(exc) == "not available on this server yet"
            except ApiError as exc:  # the route exists by now: a real answer is fine too
                assert exc.status in (404, 409, 422), exc


async def take(stream: AsyncIterator[StreamItem], kind: type, timeout: float = 5.0) -> StreamItem:
    async def first() -> StreamItem:
        async for item in stream:
            if isinstance(item, kind):
                return item
        raise AssertionError("stream ended")

    return await asyncio.wait_for(first(), timeout)


async def test_follower_resumes_after_the_connection_is_cut(live: Live, proxy: Proxy) -> None:
    boss = live.long_lived("acme", Role.SUPERVISOR)
    follower = EventFollower(proxy.url, boss, base_delay=0.05, max_delay=0.2)
    stream = aiter(follower)
    async with ApiClient(live.url, boss) as api:
        hello = await take(stream, Connected)
        assert isinstance(hello, Connected) and hello.gap is False
        await api.force_state("1001", "paused", "lunch")
        event = await take(stream, ServerEvent)
        assert isinstance(event, ServerEvent) and event.data["reason"] == "lunch"

        proxy.cut()  # the server's WebSocket dies mid-stream; the server stays refused
        lost = await take(stream, Disconnected)
        assert isinstance(lost, Disconnected) and lost.retry_in <= 0.2
        await api.force_state("1001", "paused", "meeting")  # happens while away
        proxy.restore()

        back = await take(stream, Connected)
        assert isinstance(back, Connected) and back.gap is False and back.replayed >= 1
        missed = await take(stream, ServerEvent)
        assert isinstance(missed, ServerEvent) and missed.seq == event.seq + 1
        assert missed.data["reason"] == "meeting"
    with contextlib.suppress(Exception):
        await stream.aclose()  # type: ignore[attr-defined]


async def test_follower_stops_on_a_refused_token(live: Live) -> None:
    follower = EventFollower(live.url, "mcc_revoked", base_delay=0.05)
    with pytest.raises(Unauthorized):
        await asyncio.wait_for(take(aiter(follower), ServerEvent), 5.0)
