"""What the switch tests run against: a real :class:`Switch` on 127.0.0.1, ports picked by
the kernel, with these tenants.

``acme`` (domain ``acme.test``, extensions 1001-1003, also the default tenant for 127.0.0.1)
and ``beta`` (``beta.test``, 1001-1002) share extension numbers on purpose, so a request that
leaks across tenants reaches a phone that exists. ``gamma`` is suspended. Every extension's
password is ``<tenant>-<ext>-pw``, so a beta phone's credentials never work in acme.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from minicc.bus import EventBus
from minicc.events import Event
from minicc.switch.sip.auth import DigestAlgorithm, compute_ha1
from minicc.switch.sip.peer import Transport
from minicc.switch.switch import Switch, SwitchSettings
from minicc.tenants.directory import TenantDirectory
from minicc.tenants.models import Extension, Tenant, TenantStatus
from tests.unit.switch.ua import HOST, Account, RtpPeer, SipUA

# Relay ports for these tests (ports taken by anything else are skipped by the engine).
RTP_MIN, RTP_MAX = 43000, 43999
TIMEOUT = 3.0

TENANTS: dict[str, tuple[str, dict[str, str], TenantStatus]] = {
    "acme": (
        "acme.test",
        {"1001": "Alice Acme", "1002": "Bob Acme", "1003": "Carol Acme"},
        TenantStatus.ACTIVE,
    ),
    "beta": ("beta.test", {"1001": "Xavier Beta", "1002": "Yvonne Beta"}, TenantStatus.ACTIVE),
    "gamma": ("gamma.test", {"1001": "Zed Gamma"}, TenantStatus.SUSPENDED),
}


def password(tenant: str, ext: str) -> str:
    return f"{tenant}-{ext}-pw"


def build_directory() -> TenantDirectory:
    directory = TenantDirectory({HOST})
    snapshot = []
    created = datetime(2024, 1, 1, tzinfo=UTC)
    for i, (name, (domain, extensions, status)) in enumerate(TENANTS.items(), start=1):
        tenant = Tenant(id=i, name=name, domain=domain, created_at=created, status=status)
        exts = {
            ext: Extension(
                extension=ext,
                realm=domain,
                ha1_md5=compute_ha1(ext, domain, password(name, ext), DigestAlgorithm.MD5),
                ha1_sha256=compute_ha1(ext, domain, password(name, ext), DigestAlgorithm.SHA256),
                name=display,
            )
            for ext, display in extensions.items()
        }
        snapshot.append((tenant, exts))
    directory.replace(snapshot, default_tenant="acme")
    return directory


E = TypeVar("E", bound=Event)


class EventLog:
    """Everything the switch published, with bounded waits for the next one of a kind."""

    def __init__(self, bus: EventBus) -> None:
        self._sub = bus.subscribe("tests")
        self.seen: list[Event] = []
        self._taken: set[int] = set()

    def _pull(self) -> None:
        while (event := self._sub.get_nowait()) is not None:
            self.seen.append(event)

    def of(self, kind: type[E]) -> list[E]:
        self._pull()
        return [e for e in self.seen if isinstance(e, kind)]

    async def wait(
        self,
        kind: type[E],
        where: Callable[[E], bool] = lambda _e: True,
        *,
        timeout: float = TIMEOUT,
    ) -> E:
        """The first not yet waited-for event of ``kind`` that ``where`` accepts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._pull()
            for i, event in enumerate(self.seen):
                if i not in self._taken and isinstance(event, kind) and where(event):
                    self._taken.add(i)
                    return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                names = [type(e).__name__ for e in self.seen]
                raise AssertionError(f"no {kind.__name__} within {timeout}s; seen {names}")
            try:
                self.seen.append(await asyncio.wait_for(self._sub.get(), remaining))
            except TimeoutError:
                continue


@dataclass(eq=False)
class Harness:
    switch: Switch
    events: EventLog
    _phones: list[SipUA] = field(default_factory=list)
    _rtp: list[RtpPeer] = field(default_factory=list)

    @property
    def addr(self) -> tuple[str, int]:
        return HOST, self.switch.ports[Transport.UDP]

    @property
    def b2bua(self) -> Any:
        assert self.switch.b2bua is not None
        return self.switch.b2bua

    def account(self, tenant: str, ext: str, *, display: str | None = None) -> Account:
        domain, names, _ = TENANTS[tenant]
        return Account(
            user=ext,
            password=password(tenant, ext),
            domain=domain,
            display=display if display is not None else names.get(ext),
        )

    async def phone(
        self,
        tenant: str,
        ext: str,
        *,
        register: bool = True,
        transport: str = "UDP",
        name: str | None = None,
        display: str | None = None,
    ) -> SipUA:
        ua = SipUA(
            self.account(tenant, ext, display=display),
            self.addr,
            transport=transport,
            name=name or f"{tenant}/{ext}",
        )
        await ua.start()
        self._phones.append(ua)
        if register:
            response = await ua.register()
            assert response.status == 200, f"REGISTER {tenant}/{ext}: {response.status}"
        return ua

    async def rtp(self) -> RtpPeer:
        peer = await RtpPeer.open()
        self._rtp.append(peer)
        return peer

    async def close(self) -> None:
        await self.switch.stop(grace=0)
        for ua in self._phones:
            ua.close()
        for peer in self._rtp:
            peer.close()


MakeSwitch = Callable[..., Awaitable[Harness]]


async def start_switch(**overrides: Any) -> Harness:
    """A started switch with the test tenants; ``overrides`` go to :class:`SwitchSettings`."""
    settings = {
        "bind": HOST,
        "advertised_host": HOST,
        "sip_port": 0,
        "rtp_port_min": RTP_MIN,
        "rtp_port_max": RTP_MAX,
        "ring_timeout": 5.0,
        **overrides,
    }
    bus = EventBus()
    events = EventLog(bus)
    switch = Switch(SwitchSettings(**settings), build_directory(), bus)
    await switch.start()
    return Harness(switch=switch, events=events)
