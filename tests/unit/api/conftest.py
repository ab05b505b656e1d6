"""A real ``minicc serve`` in the test's event loop, on free loopback ports, with two tenants.

The API is exercised over real HTTP and WebSocket connections (httpx, websockets) against
the real server: real SQLite files, the real queue engine, the real token store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from minicc.bus import Subscription
from minicc.config import ServeConfig
from minicc.events import CallOffered, Event
from minicc.queue.models import QueueConfig
from minicc.server import Server
from minicc.store.callcenter import CallCenterStore
from minicc.store.control import ControlStore
from minicc.store.tokens import Role, TokenKind, TokenStore
from minicc.switch.sip.peer import Transport
from tests.unit.switch.harness import RTP_MAX, RTP_MIN
from tests.unit.switch.ua import (
    HOST,
    Account,
    IncomingCall,
    OutgoingCall,
    RtpPeer,
    SipUA,
    UaDialog,
    make_sdp,
)

E = TypeVar("E", bound=Event)

PASSWORDS = {"1001": "alice-secret", "1002": "bob-secret", "1003": "carol-secret"}
OTHER_PASSWORD = "other-secret"


def make_data_dir(path: Path) -> None:
    with ControlStore(path) as control:
        acme = control.add_tenant("acme", "acme.test")
        with control.open_tenant(acme) as store:
            for ext, password in PASSWORDS.items():
                store.add_extension(ext, password, acme.domain, f"Agent {ext}")
            callcenter = CallCenterStore(store)
            callcenter.add_queue(QueueConfig(name="support"))
            callcenter.add_queue(QueueConfig(name="sales"))
            callcenter.add_member("support", "1001")
            callcenter.add_member("support", "1002")
            callcenter.add_member("sales", "1001")
        other = control.add_tenant("other", "other.test")
        with control.open_tenant(other) as store:
            store.add_extension("1001", OTHER_PASSWORD, other.domain, "Other's agent")
            CallCenterStore(store).add_queue(QueueConfig(name="billing"))
            CallCenterStore(store).add_member("billing", "1001")
        control.set_default_tenant("acme")


@dataclass(slots=True)
class Live:
    server: Server
    url: str
    """``http://127.0.0.1:PORT``"""
    data_dir: Path

    def ws_url(self, path: str) -> str:
        return "ws" + self.url.removeprefix("http") + path

    def long_lived(self, tenant: str, role: Role, label: str = "robot") -> str:
        """An administrator's token, made the way ``minicc token create`` makes one."""
        token, _ = TokenStore(self.server.stores.control.db).issue(
            tenant=tenant,
            role=role,
            subject=label,
            kind=TokenKind.LONG_LIVED,
            now=time.time(),
            lifetime=None,
        )
        return token

    async def login(self, client: httpx.AsyncClient, ext: str, tenant: str = "acme.test") -> str:
        password = PASSWORDS[ext] if tenant == "acme.test" else OTHER_PASSWORD
        reply = await client.post(
            "/api/sessions", json={"tenant": tenant, "extension": ext, "password": password}
        )
        assert reply.status_code == 201, reply.text
        token: str = reply.json()["token"]
        return token


def serve_config(data_dir: Path) -> ServeConfig:
    """A server on free loopback ports (0: the system picks) over ``data_dir``."""
    return ServeConfig(
        data_dir=data_dir,
        bind=HOST,
        sip_port=0,
        http_port=0,
        rtp_port_min=RTP_MIN,
        rtp_port_max=RTP_MAX,
    )


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    make_data_dir(tmp_path)
    server = Server(serve_config(tmp_path))
    await server.start()
    try:
        assert server.http_port is not None
        yield Live(server=server, url=f"http://{HOST}:{server.http_port}", data_dir=tmp_path)
    finally:
        await server.stop()


@pytest.fixture
async def client(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=10.0) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def next_event(events: Subscription, kind: type[E]) -> E:
    """The next event of ``kind`` on the bus (others are skipped), within 10 s."""
    while True:
        event = await asyncio.wait_for(events.get(), 10.0)
        if isinstance(event, kind):
            return event


@dataclass(slots=True, eq=False)
class RingingCall:
    """A caller (1003) in queue ``support`` through number 8100, ringing agent 1001's phone."""

    live: Live
    call_id: str
    """The engine's (and the API's) id of the call."""
    agent_token: str
    """Agent 1001's session."""
    agent: SipUA
    caller: SipUA
    outgoing: OutgoingCall
    incoming: IncomingCall
    events: Subscription
    """The server's bus, subscribed before the call."""
    caller_rtp: RtpPeer
    agent_rtp: RtpPeer
    agent_leg: UaDialog | None = None

    async def answer(self) -> UaDialog:
        """The agent picks up; returns once the engine has the call as answered by 1001."""
        self.agent_leg = await self.incoming.answer(
            make_sdp(self.agent_rtp.port, codecs=[(0, "PCMU")])
        )
        callcenter = self.live.server.callcenter
        assert callcenter is not None
        for _ in range(250):
            live_call = callcenter.live_call("acme", self.call_id)
            if live_call is not None and live_call.agent == "1001":
                break
            await asyncio.sleep(0.02)
        return self.agent_leg


async def until(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait for ``check()`` to be true: the server rereads its databases every second."""
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@asynccontextmanager
async def ringing_call(live: Live, client: httpx.AsyncClient) -> AsyncIterator[RingingCall]:
    """Number 8100 -> queue support; agent 1001 available and registered; 1003 calls."""
    server = live.server
    store = server.stores.tenant("acme")
    callcenter = server.callcenter
    assert store is not None and callcenter is not None
    CallCenterStore(store).add_number("8100", "queue:support")
    agent_token = await live.login(client, "1001")
    reply = await client.put(
        "/api/agent/state", json={"state": "available"}, headers=bearer(agent_token)
    )
    assert reply.status_code == 200
    await until(lambda: "8100" in callcenter.engine("acme").setup.numbers)
    addr = (HOST, server.switch.ports[Transport.UDP])
    events = server.bus.subscribe("test-ringing-call")
    caller_rtp, agent_rtp = await RtpPeer.open(), await RtpPeer.open()
    agent = await SipUA(Account("1001", PASSWORDS["1001"], "acme.test"), addr).start()
    caller = await SipUA(Account("1003", PASSWORDS["1003"], "acme.test"), addr).start()
    try:
        assert (await agent.register()).status == 200
        outgoing = await caller.call("sip:8100@acme.test", make_sdp(caller_rtp.port))
        assert (await outgoing.final()).status == 200  # minicc answers: music while it rings
        incoming = await agent.incoming(timeout=10.0)
        offered = await next_event(events, CallOffered)
        yield RingingCall(
            live=live,
            call_id=offered.call_id,
            agent_token=agent_token,
            agent=agent,
            caller=caller,
            outgoing=outgoing,
            incoming=incoming,
            events=events,
            caller_rtp=caller_rtp,
            agent_rtp=agent_rtp,
        )
    finally:
        events.close()
        agent.close()
        caller.close()
        caller_rtp.close()
        agent_rtp.close()
