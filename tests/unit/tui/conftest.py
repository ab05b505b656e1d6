"""Fixtures of the terminal-app tests: the real server of the API tests (``live``), a TCP
proxy in front of it that a test can cut, credential stores under ``tmp_path``, and a bounded
wait on an app's state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from minicc.tui.credentials import Credentials, CredentialStore, Profile
from tests.unit.api.conftest import PASSWORDS, Live, client, live
from tests.unit.switch.ua import HOST

__all__ = ["PASSWORDS", "Live", "Proxy", "client", "live", "until"]


class Proxy:
    """A loopback TCP proxy to the server. ``cut()`` drops every connection and refuses new
    ones (the server looks gone) until ``restore()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refusing = False
        self.port = 0
        self.accepted = 0
        self._links: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cut(self) -> None:
        self.refusing = True
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    def restore(self) -> None:
        self.refusing = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._links.discard(writer)
        self._links.discard(up_writer)


@pytest.fixture
async def proxy(live: Live) -> AsyncIterator[Proxy]:
    assert live.server.http_port is not None
    p = await Proxy(live.server.http_port).start()
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    return CredentialStore(tmp_path / "config", name="agent", use_keyring=False)


def stored(store: CredentialStore, url: str, ext: str, token: str) -> Credentials:
    return store.save(Profile(url=url, tenant="acme.test", extension=ext), token)


async def until(
    pilot: Pilot[None], predicate: Callable[[], bool], timeout: float = 5.0, what: str = ""
) -> float:
    """Let the app run until ``predicate()`` holds; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await pilot.pause(0.02)
    return loop.time() - start
