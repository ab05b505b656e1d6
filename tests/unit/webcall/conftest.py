"""A real server (see tests/unit/api/conftest.py) with click-to-call enabled for ``acme``:
allowed origin ``https://shop.example``, number 8100 -> queue support, and a fake browser
built on aiortc that talks to the signaling routes over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from minicc.config import ServeConfig
from minicc.server import Server
from minicc.store.callcenter import CallCenterStore
from minicc.store.control import ControlStore
from minicc.store.tokens import Role, TokenKind, TokenStore
from minicc.webcall.settings import WebcallSettings, enable_webcall
from tests.unit.api.conftest import make_data_dir
from tests.unit.switch.harness import RTP_MAX, RTP_MIN
from tests.unit.switch.ua import HOST

ORIGIN = "https://shop.example"


@dataclass(slots=True)
class Web:
    server: Server
    url: str
    settings: WebcallSettings
    data_dir: Path

    def long_lived(self, tenant: str) -> str:
        """A supervisor's API token."""
        token, _ = TokenStore(self.server.stores.control.db).issue(
            tenant=tenant,
            role=Role.SUPERVISOR,
            subject="test",
            kind=TokenKind.LONG_LIVED,
            now=time.time(),
            lifetime=None,
        )
        return token

    @property
    def gateway(self) -> Any:
        return self.server._http.config.app.state.webcall  # type: ignore[attr-defined]


def enable(data_dir: Path, **options: Any) -> WebcallSettings:
    """Click-to-call for acme (returned) and, with defaults, for other."""
    with ControlStore(data_dir) as control:
        other = control.get_tenant("other")
        assert other is not None
        with control.open_tenant(other) as store:
            enable_webcall(store, other.domain, origins=(ORIGIN,), target="8100")
        tenant = control.get_tenant("acme")
        assert tenant is not None
        with control.open_tenant(tenant) as store:
            CallCenterStore(store).add_number("8100", "queue:support")
            return enable_webcall(store, tenant.domain, origins=(ORIGIN,), target="8100", **options)


@pytest.fixture
def webcall_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def web(
    tmp_path: Path, webcall_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Web]:
    monkeypatch.setenv("MINICC_WEBCALL_ICE_HOSTS", HOST)
    make_data_dir(tmp_path)
    settings = enable(tmp_path, **webcall_options)
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
        yield Web(
            server=server,
            url=f"http://{HOST}:{server.http_port}",
            settings=settings,
            data_dir=tmp_path,
        )
    finally:
        await server.stop()


@pytest.fixture
async def client(web: Web) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=web.url, timeout=15.0, headers={"Origin": ORIGIN}
    ) as http:
        yield http


async def session(client: httpx.AsyncClient, web: Web, key: str | None = None) -> str:
    reply = await client.post("/webcall/session", json={"key": key or web.settings.public_key})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["token"])


class FakeBrowser:
    """An aiortc peer offering audio (a tone) with gathered loopback candidates."""

    def __init__(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.connected = asyncio.Event()

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()

    async def offer(self) -> str:
        from aiortc.mediastreams import AudioStreamTrack

        self.pc.addTrack(AudioStreamTrack())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, sdp: str) -> None:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        await self.pc.close()


@pytest.fixture
async def browser(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBrowser]:
    import aioice.ice

    # ICE host candidates on loopback only (aioice skips 127.0.0.1 by default).
    monkeypatch.setattr(
        aioice.ice, "get_host_addresses", lambda use_ipv4=True, use_ipv6=True: [HOST]
    )
    fake = FakeBrowser()
    try:
        yield fake
    finally:
        await fake.close()


async def wait_state(
    client: httpx.AsyncClient, call_id: str, token: str, want: str, timeout: float = 15.0
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            reply = await client.post(f"/webcall/calls/{call_id}/state", json={"token": token})
            assert reply.status_code == 200, reply.text
            state: dict[str, Any] = reply.json()
            if state["state"] == want:
                return state
            await asyncio.sleep(0.1)
