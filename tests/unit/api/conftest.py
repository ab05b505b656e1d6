"""A real ``minicc serve`` in the test's event loop, on free loopback ports, with two tenants.

The API is exercised over real HTTP and WebSocket connections (httpx, websockets) against
the real server: real SQLite files, the real queue engine, the real token store.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from minicc.config import ServeConfig
from minicc.queue.models import QueueConfig
from minicc.server import Server
from minicc.store.callcenter import CallCenterStore
from minicc.store.control import ControlStore
from minicc.store.tokens import Role, TokenKind, TokenStore
from tests.unit.switch.harness import RTP_MAX, RTP_MIN
from tests.unit.switch.ua import HOST

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


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    make_data_dir(tmp_path)
    config = ServeConfig(
        data_dir=tmp_path,
        bind=HOST,
        sip_port=0,
        http_port=0,
        rtp_port_min=RTP_MIN,
        rtp_port_max=RTP_MAX,
    )
    server = Server(config)
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
