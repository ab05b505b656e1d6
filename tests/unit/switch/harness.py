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
from minicc.switch.control import (
    CallObserver,
    HoldBy,
    IncomingCall,
    MonitorEnd,
    MonitorMode,
    OriginateLeg,
    PlaybackOutcome,
    RingResult,
    Route,
    RouteKind,
    TransferReport,
)
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


async def start_switch(*, observer: CallObserver | None = None, **overrides: Any) -> Harness:
    """A started switch with the test tenants; ``overrides`` go to :class:`SwitchSettings`,
    ``observer`` (the engine's part) to the switch."""
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
    switch = Switch(SwitchSettings(**settings), build_directory(), bus, observer=observer)
    await switch.start()
    return Harness(switch=switch, events=events)


# ----------------------------------------------------------------------------- the engine's part


@dataclass(frozen=True, slots=True)
class Told:
    """One observer callback: its name, the call key and the other arguments."""

    method: str
    key: str
    args: tuple[Any, ...]


def default_route(call: IncomingCall) -> Route:
    """``8xxx`` numbers are minicc's own (IVR, queues), extensions ring, the rest is 404."""
    if call.number.startswith("8"):
        return Route(kind=RouteKind.APPLICATION)
    if call.number.startswith("1"):
        return Route(kind=RouteKind.EXTENSION, extension=call.number)
    return Route(kind=RouteKind.REJECT, status=404)


class FakeEngine:
    """A test double of the queue engine: routes with ``router`` and records every callback,
    with bounded waits for the next one. The tests drive the switch's CallControl."""

    def __init__(self, router: Callable[[IncomingCall], Route] = default_route) -> None:
        self.router = router
        self.incoming: list[IncomingCall] = []
        self.told: list[Told] = []
        self._inbox: asyncio.Queue[Told] = asyncio.Queue()
        self._backlog: list[Told] = []

    def _record(self, method: str, key: str, *args: Any) -> None:
        told = Told(method, key, args)
        self.told.append(told)
        self._inbox.put_nowait(told)

    # -- CallObserver -----------------------------------------------------------------------

    def route(self, call: IncomingCall) -> Route:
        self.incoming.append(call)
        return self.router(call)

    def call_answered(self, key: str) -> None:
        self._record("call_answered", key)

    def dtmf(self, key: str, digit: str) -> None:
        self._record("dtmf", key, digit)

    def playback_done(self, key: str, playback: int, outcome: PlaybackOutcome) -> None:
        self._record("playback_done", key, playback, outcome)

    def ring_result(self, key: str, attempt: int, result: RingResult) -> None:
        self._record("ring_result", key, attempt, result)

    def call_ended(self, key: str, by_caller: bool) -> None:
        self._record("call_ended", key, by_caller)

    def originate_result(self, key: str, leg: OriginateLeg, result: RingResult) -> None:
        self._record("originate_result", key, leg, result)

    def transfer_route(self, key: str, number: str) -> Route:
        """Blind transfers: extensions ring, ``8xxx`` back to the engine, the rest is 403."""
        self._record("transfer_route", key, number)
        if number.startswith("8"):
            return Route(kind=RouteKind.APPLICATION)
        if number.startswith("1"):
            return Route(kind=RouteKind.EXTENSION, extension=number)
        return Route(kind=RouteKind.REJECT, status=403)

    def call_transferred(self, key: str, report: TransferReport) -> None:
        self._record("call_transferred", key, report)

    def agent_dtmf(self, key: str, digit: str) -> None:
        self._record("agent_dtmf", key, digit)

    def record_done(self, key: str, record: int, result: Any) -> None:
        self._record("record_done", key, record, result)

    def call_held(self, key: str, by: HoldBy) -> None:
        self._record("call_held", key, by)

    def call_resumed(self, key: str) -> None:
        self._record("call_resumed", key)

    def monitor_started(self, monitor: str, key: str, mode: MonitorMode) -> None:
        self._record("monitor_started", monitor, key, mode)

    def monitor_mode_changed(self, monitor: str, mode: MonitorMode) -> None:
        self._record("monitor_mode_changed", monitor, mode)

    def monitor_ended(self, monitor: str, reason: MonitorEnd) -> None:
        self._record("monitor_ended", monitor, reason)

    def conference_result(self, key: str, attempt: int, result: RingResult) -> None:
        self._record("conference_result", key, attempt, result)

    def conference_ended(self, key: str, attempt: int) -> None:
        self._record("conference_ended", key, attempt)

    # -- for the tests ----------------------------------------------------------------------

    def of(self, method: str, key: str | None = None) -> list[Told]:
        return [t for t in self.told if t.method == method and key in (None, t.key)]

    async def wait(self, method: str, key: str | None = None, *, timeout: float = TIMEOUT) -> Told:
        """The next callback ``method`` (for ``key``) not yet waited for; others are kept."""

        def match(t: Told) -> bool:
            return t.method == method and key in (None, t.key)

        for i, told in enumerate(self._backlog):
            if match(told):
                return self._backlog.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                told = await asyncio.wait_for(self._inbox.get(), max(deadline - loop.time(), 0))
            except TimeoutError:
                seen = [f"{t.method}{t.args}" for t in self.told]
                raise AssertionError(f"no {method} within {timeout}s; told {seen}") from None
            if match(told):
                return told
            self._backlog.append(told)
