"""``minicc serve``: the switch, the stores and the HTTP API composed on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from minicc.bus import EventBus
from minicc.config import ServeConfig
from minicc.events import CallEnded
from minicc.store.control import ControlStore
from minicc.store.tenant import TenantStore
from minicc.switch.control import CallObserver
from minicc.switch.registrar import Binding as RegBinding
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.switch import Switch, SwitchSettings
from minicc.tenants import models
from minicc.tenants.directory import TenantDirectory

log = logging.getLogger(__name__)

# How often the server looks for changes the CLI made to the databases (PRAGMA
# data_version is one cheap read per database, run in a thread).
REFRESH_INTERVAL = 1.0


@dataclass(slots=True)
class Stores:
    """The control database and one open store per tenant, keyed by tenant name."""

    control: ControlStore
    tenants: dict[str, TenantStore] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def tenant(self, name: str) -> TenantStore | None:
        return self.tenants.get(name)

    def close(self) -> None:
        for store in self.tenants.values():
            store.close()
        self.control.close()


def _load_snapshot(stores: Stores) -> tuple[list[tuple[models.Tenant, dict]], str | None, bool]:
    """Read tenants and extensions (runs in a worker thread). Returns also whether anything
    changed since the last snapshot, so the loop only swaps when it must."""
    changed = False
    version = stores.control.data_version()
    if stores.versions.get("") != version:
        stores.versions[""] = version
        changed = True
    tenants = stores.control.list_tenants()
    result = []
    for tenant in tenants:
        store = stores.tenants.get(tenant.name)
        if store is None:
            store = stores.control.open_tenant(tenant)
            stores.tenants[tenant.name] = store
            changed = True
        tv = store.data_version()
        if stores.versions.get(tenant.name) != tv:
            stores.versions[tenant.name] = tv
            changed = True
        result.append((tenant, store.all_extensions()))
    default = stores.control.default_tenant()
    return result, (default.name if default else None), changed


def to_record(tenant: str, b: RegBinding) -> models.Binding:
    return models.Binding(
        extension=b.user,
        contact_uri=b.contact,
        expires_at=b.expires_at,
        call_id=b.call_id,
        cseq=b.cseq,
        transport=b.source.transport.value.lower(),
        source_host=b.source.host,
        source_port=b.source.port,
        user_agent=b.user_agent,
    )


def from_record(tenant: str, b: models.Binding) -> RegBinding:
    return RegBinding(
        tenant=tenant,
        user=b.extension,
        contact=b.contact_uri,
        expires_at=b.expires_at,
        call_id=b.call_id,
        cseq=b.cseq,
        source=Peer(Transport(b.transport.upper()), b.source_host, b.source_port),
        user_agent=b.user_agent,
        q=None,
        instance=None,
    )


class Server:
    def __init__(self, config: ServeConfig, observer: CallObserver | None = None) -> None:
        """Args:
        config: the serve configuration.
        observer: the call-center engine that routes calls and drives application calls
            (``server.switch`` is its CallControl); it may also be set later with
            ``server.switch.observer = ...``.
        """
        self.config = config
        self.bus = EventBus()
        self.stores = Stores(control=ControlStore(config.data_dir))
        self.directory = TenantDirectory(set(config.own_addresses()))
        self.switch = Switch(
            SwitchSettings(
                bind=config.bind,
                advertised_host=config.advertised_address,
                sip_port=config.sip_port,
                tls_port=config.sip_tls_port if config.tls_enabled else None,
                tls_cert=config.tls_cert,
                tls_key=config.tls_key,
                rtp_port_min=config.rtp_port_min,
                rtp_port_max=config.rtp_port_max,
                ring_timeout=config.ring_timeout,
                media_relay=config.media_relay,
                recordings_dir=config.data_dir / "recordings",
            ),
            self.directory,
            self.bus,
            persist_binding=self._persist_binding,
            forget_binding=self._forget_binding,
            should_record=lambda entry: entry.tenant.record_calls,
            observer=observer,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._http: object | None = None
        self.started = time.time()

    async def start(self) -> None:
        snapshot, default, _ = await asyncio.to_thread(_load_snapshot, self.stores)
        self.directory.replace(snapshot, default)
        now = time.time()
        for name, store in self.stores.tenants.items():
            records = await asyncio.to_thread(store.load_bindings, now)
            self.switch.load_bindings(name, [from_record(name, r) for r in records])
        cdrs = self.bus.subscribe("cdr-writer")
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._write_cdrs(cdrs)))
        self._tasks.append(loop.create_task(self._refresh_directory()))
        # HTTP first, SIP last: once SIP answers, everything is up (tests and load balancers
        # probe SIP OPTIONS).
        await self._start_http()
        await self.switch.start()

    async def stop(self) -> None:
        await self.switch.stop()
        # Let the CDR writer take what the hang-ups just published.
        await asyncio.sleep(0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._stop_http()
        await asyncio.to_thread(self.stores.close)

    # ----------------------------------------------------------------- background work

    async def _write_cdrs(self, sub) -> None:  # type: ignore[no-untyped-def]
        try:
            async for event in sub:
                if isinstance(event, CallEnded):
                    self._store_cdr(event)
        finally:
            # Whatever is still queued at shutdown is written, not lost.
            while (event := sub.get_nowait()) is not None:
                if isinstance(event, CallEnded):
                    self._store_cdr(event)

    def _store_cdr(self, event: CallEnded) -> None:
        store = self.stores.tenant(event.tenant)
        if store is None:
            log.error("no store for tenant %s; CDR %s lost", event.tenant, event.record.call_id)
            return
        # submit() queues to the writer thread: the loop never waits on SQLite.
        store.insert_cdr(event.record)

    async def _refresh_directory(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            try:
                snapshot, default, changed = await asyncio.to_thread(_load_snapshot, self.stores)
            except Exception:
                log.exception("could not reload tenants")
                continue
            if changed:
                self.directory.replace(snapshot, default)
                log.info("tenant directory reloaded (%d tenants)", len(snapshot))

    def _persist_binding(self, tenant: str, binding: RegBinding) -> None:
        store = self.stores.tenant(tenant)
        if store is not None:
            store.save_binding(to_record(tenant, binding))

    def _forget_binding(self, tenant: str, binding: RegBinding) -> None:
        store = self.stores.tenant(tenant)
        if store is not None:
            store.delete_binding(binding.user, binding.contact)

    # ----------------------------------------------------------------- HTTP

    async def _start_http(self) -> None:
        import uvicorn

        from minicc.api.app import create_app

        app = create_app(self)
        config = uvicorn.Config(
            app,
            host=self.config.bind,
            port=self.config.http_port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._http = server
        self._tasks.append(asyncio.get_running_loop().create_task(server.serve()))
        while not server.started:
            await asyncio.sleep(0.01)
            if self._tasks[-1].done():
                raise OSError(
                    f"HTTP server did not start on {self.config.bind}:{self.config.http_port}"
                )

    async def _stop_http(self) -> None:
        if self._http is not None:
            self._http.should_exit = True  # type: ignore[attr-defined]


async def serve(config: ServeConfig, on_ready: Callable[[Server], None] | None = None) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    server = Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    if on_ready is not None:
        on_ready(server)
    log.info("minicc serving SIP on %s:%s", config.bind, server.switch.ports)
    await stop.wait()
    log.info(
        "shutting down: %d active calls",
        server.switch.b2bua.active_calls if server.switch.b2bua else 0,
    )
    await server.stop()


def run(config: ServeConfig, on_ready: Callable[[Server], None] | None = None) -> None:
    """Blocking entry point used by ``minicc serve``."""
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        asyncio.run(serve(config, on_ready))
    else:
        uvloop.run(serve(config, on_ready))
