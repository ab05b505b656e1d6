"""``minicc serve``: the switch, the stores and the HTTP API composed on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from minicc import gcpolicy, runtime
from minicc.bus import EventBus
from minicc.config import ServeConfig
from minicc.diagnostics import StallMonitor
from minicc.events import CallEnded, CallTransferred, DispositionSet, VoicemailLeft
from minicc.queue.agents import AgentState
from minicc.queue.engine import CallbackOutcome, CallCenter
from minicc.queue.prompts import ClipCache, PromptCatalogue
from minicc.queue.setup import AgentSetting, CallCenterSetup, PendingCallback
from minicc.store.callcenter import CallCenterStore, tenant_prompts_dir
from minicc.store.control import ControlStore
from minicc.store.supervisors import read_supervisors
from minicc.store.tenant import TenantStore
from minicc.store.transfers import record_transfer
from minicc.store.trunks import TrunkStore
from minicc.switch.control import CallObserver
from minicc.switch.registrar import Binding as RegBinding
from minicc.switch.sip.guard import GuardSettings
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.switch import Switch, SwitchSettings
from minicc.tenants import models
from minicc.tenants.directory import TenantDirectory
from minicc.tenants.trunks import DialRules, Trunk

if TYPE_CHECKING:
    from minicc.api.context import ApiContext

log = logging.getLogger(__name__)

# How often the server looks for changes the CLI made to the databases (PRAGMA
# data_version is one cheap read per database, run in a thread).
REFRESH_INTERVAL = 1.0
# How often the queue engine's live statistics are saved for `minicc queue stats`.
STATS_INTERVAL = 5.0


@dataclass(slots=True)
class Stores:
    """The control database and one open store per tenant, keyed by tenant name."""

    control: ControlStore
    tenants: dict[str, TenantStore] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    callcenters: dict[str, CallCenterStore] = field(default_factory=dict)

    def tenant(self, name: str) -> TenantStore | None:
        return self.tenants.get(name)

    def callcenter(self, name: str) -> CallCenterStore | None:
        return self.callcenters.get(name)

    def close(self) -> None:
        for store in self.tenants.values():
            store.close()
        self.control.close()


@dataclass(slots=True)
class Snapshot:
    """What one refresh read from the databases (in a worker thread)."""

    tenants: list[tuple[models.Tenant, dict[str, models.Extension]]]
    default: str | None
    changed: bool
    """Tenants or extensions changed: the directory must be swapped."""
    setups: dict[str, CallCenterSetup]
    """Call-center setups of the tenants whose database changed."""
    supervisors: dict[str, frozenset[str]] = field(default_factory=dict)
    """Supervisor extensions of the tenants whose database changed."""
    trunks: tuple[list[Trunk], dict[str, DialRules]] | None = None
    """Every trunk and tenant's dial rules, read when the control database changed."""


def _load_snapshot(stores: Stores) -> Snapshot:
    """Read tenants, extensions and, for tenants whose database changed, their call-center
    setup. Runs in a worker thread, never on the loop."""
    changed = False
    version = stores.control.data_version()
    if stores.versions.get("") != version:
        stores.versions[""] = version
        changed = True
    tenants = stores.control.list_tenants()
    result = []
    setups: dict[str, CallCenterSetup] = {}
    supervisors: dict[str, frozenset[str]] = {}
    for tenant in tenants:
        store = stores.tenants.get(tenant.name)
        if store is None:
            store = stores.control.open_tenant(tenant)
            stores.tenants[tenant.name] = store
            stores.callcenters[tenant.name] = CallCenterStore(store)
            changed = True
        tv = store.data_version()
        if stores.versions.get(tenant.name) != tv:
            stores.versions[tenant.name] = tv
            changed = True
            setups[tenant.name] = stores.callcenters[tenant.name].setup()
            supervisors[tenant.name] = read_supervisors(store)
        result.append((tenant, store.all_extensions()))
    names = {t.name for t in tenants}
    for gone in [name for name in stores.tenants if name not in names]:
        # Deleted (minicc tenant delete): let go of its database file.
        stores.callcenters.pop(gone, None)
        stores.versions.pop(gone, None)
        stores.tenants.pop(gone).close()
        changed = True
    default = stores.control.default_tenant()
    trunks = None
    if stores.versions.get("::trunks") != version:
        stores.versions["::trunks"] = version
        table = TrunkStore(stores.control)
        trunks = (table.list(), table.rules())
    return Snapshot(result, default.name if default else None, changed, setups, supervisors, trunks)


_AGENT_STATES = {
    "available": AgentState.AVAILABLE,
    "paused": AgentState.PAUSED,
    "logged-out": AgentState.LOGGED_OUT,
}


def _log_failure(done: Future[Any], what: str) -> None:
    """Log a queued write that failed (nobody waits for these futures)."""
    exc = done.exception()
    if exc is not None:
        log.error("%s: %s", what, exc)


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
                guard=GuardSettings(allow=config.guard_allow),
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
        self.api: ApiContext | None = None
        """The HTTP API's state (tokens, event log), once the HTTP server runs."""
        self.started = time.time()
        self.callcenter: CallCenter | None = None
        if observer is None:
            clips = ClipCache()
            self.callcenter = CallCenter(
                self.switch,
                bus=self.bus,
                persist_callback=self._persist_callback,
                persist_agent=self._persist_agent,
                catalogue_for=lambda tenant: PromptCatalogue(
                    tenant_prompts_dir(config.data_dir, tenant), cache=clips
                ),
                is_extension=self._is_extension,
                is_supervisor=self.is_supervisor,
            )
            self.switch.observer = self.callcenter
        self._setups: dict[str, CallCenterSetup] = {}
        self._supervisors: dict[str, frozenset[str]] = {}
        self._directory: tuple[object, str | None] = ([], None)

    async def start(self) -> None:
        snapshot = await asyncio.to_thread(_load_snapshot, self.stores)
        self._directory = (snapshot.tenants, snapshot.default)
        self.directory.replace(snapshot.tenants, snapshot.default)
        self._apply_trunks(snapshot)
        self._apply_setups(snapshot.setups)
        self._supervisors.update(snapshot.supervisors)
        now = time.time()
        for name, store in self.stores.tenants.items():
            records = await asyncio.to_thread(store.load_bindings, now)
            self.switch.load_bindings(name, [from_record(name, r) for r in records])
        cdrs = self.bus.subscribe("cdr-writer")
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._write_cdrs(cdrs)))
        self._tasks.append(loop.create_task(self._refresh_directory()))
        if self.callcenter is not None:
            self._tasks.append(self.callcenter.watch_registrations(self.bus))
            self._tasks.append(loop.create_task(self._save_stats()))
        # HTTP first, SIP last: once SIP answers, everything is up (tests and load balancers
        # probe SIP OPTIONS).
        await self._start_http()
        await self.switch.start()

    async def stop(self) -> None:
        await self.switch.stop()
        if self.callcenter is not None:
            self.callcenter.close()
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
                self._store_record(event)
        finally:
            # Whatever is still queued at shutdown is written, not lost.
            while (event := sub.get_nowait()) is not None:
                self._store_record(event)

    def _store_record(self, event: object) -> None:
        """What the store keeps of an event: CDRs, transfers, voicemails, dispositions."""
        if isinstance(event, CallEnded):
            self._store_cdr(event)
        elif isinstance(event, CallTransferred):
            self._store_transfer(event)
        elif isinstance(event, VoicemailLeft | DispositionSet):
            store = self.stores.callcenter(event.tenant)
            if store is None:
                log.error("no store for tenant %s; %s lost", event.tenant, event)
                return
            future: Future[Any] = (
                store.save_voicemail(event)
                if isinstance(event, VoicemailLeft)
                else store.save_call_disposition(event)
            )
            what = f"tenant {event.tenant}: {type(event).__name__} of {event.call_key}"
            future.add_done_callback(lambda done: _log_failure(done, f"{what} not stored"))

    def _store_cdr(self, event: CallEnded) -> None:
        store = self.stores.tenant(event.tenant)
        if store is None:
            log.error("no store for tenant %s; CDR %s lost", event.tenant, event.record.call_id)
            return
        # submit() queues to the writer thread: the loop never waits on SQLite.
        store.insert_cdr(event.record)

    def _store_transfer(self, event: CallTransferred) -> None:
        store = self.stores.tenant(event.tenant)
        if store is not None:
            record_transfer(store.db, event, time.time())

    async def _refresh_directory(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            try:
                snapshot = await asyncio.to_thread(_load_snapshot, self.stores)
            except Exception:
                log.exception("could not reload tenants")
                continue
            # A tenant database also changes for the engine's own writes (statistics, agent
            # states): swap the directory only when tenants or extensions really changed.
            if snapshot.changed and (snapshot.tenants, snapshot.default) != self._directory:
                self._directory = (snapshot.tenants, snapshot.default)
                self.directory.replace(snapshot.tenants, snapshot.default)
                log.info("tenant directory reloaded (%d tenants)", len(snapshot.tenants))
            self._apply_trunks(snapshot)
            self._apply_setups(snapshot.setups)
            self._supervisors.update(snapshot.supervisors)

    # ----------------------------------------------------------------- call center

    def _apply_setups(self, setups: dict[str, CallCenterSetup]) -> None:
        """Hand changed call-center setups to the engine; agent states set from outside
        (``minicc agent set-state``) are applied to the live board."""
        if self.callcenter is None:
            return
        for tenant, setup in setups.items():
            previous = self._setups.get(tenant)
            if setup == previous:
                continue  # only the engine's own writes (stats, its state) changed the file
            self._setups[tenant] = setup
            try:
                engine = self.callcenter.load(setup)
            except Exception:
                log.exception("tenant %s: call center not loaded", tenant)
                continue
            if previous is None:
                continue
            for ext, setting in setup.agents.items():
                if previous.agents.get(ext) == setting or ext not in engine.board:
                    continue
                live = engine.board[ext]
                wanted = _AGENT_STATES.get(setting.state)
                if wanted is None or (live.state is wanted and live.pause_reason == setting.reason):
                    continue
                if wanted is AgentState.AVAILABLE and live.state not in (
                    AgentState.PAUSED,
                    AgentState.LOGGED_OUT,
                ):
                    continue  # busy agents become available by themselves
                try:
                    self.callcenter.set_agent_state(tenant, ext, wanted, reason=setting.reason)
                except Exception as exc:
                    log.warning(
                        "tenant %s: agent %s not set %s: %s", tenant, ext, setting.state, exc
                    )

    def is_supervisor(self, tenant: str, extension: str) -> bool:
        """Whether ``extension`` is marked a supervisor (``minicc user set --supervisor``)."""
        return extension in self._supervisors.get(tenant, ())

    def _is_extension(self, tenant: str, number: str) -> bool:
        """What the engine may route as a direct call: an extension, or an outside number
        the tenant's trunk and dial rules allow."""
        return self.switch.dialable(tenant, number)

    def _apply_trunks(self, snapshot: Snapshot) -> None:
        if snapshot.trunks is None:
            return
        trunks, rules = snapshot.trunks
        self.switch.trunks.replace(trunks, rules)
        # A carrier's address is never blocked by the flood guard: its callers' mistyped
        # numbers are not a password attack on the trunk.
        self.switch.guard.allow(self.switch.trunks.addresses())
        log.info("trunks loaded: %d", len(trunks))

    def _persist_agent(self, tenant: str, setting: AgentSetting) -> None:
        store = self.stores.callcenter(tenant)
        if store is not None:
            store.submit_agent_state(setting.extension, setting.state, setting.reason)

    def _persist_callback(
        self, tenant: str, pending: PendingCallback, outcome: CallbackOutcome | None
    ) -> None:
        store = self.stores.callcenter(tenant)
        if store is None:
            return
        if outcome is not None:
            status = "done" if outcome is CallbackOutcome.CONNECTED else "failed"
            future: Future[Any] = store.update_callback(
                pending.id, status=status, attempts=pending.attempts, result=outcome.value
            )
        else:
            # The engine named the callback itself: the write is queued, never waited for.
            future = store.add_callback(
                pending.queue,
                pending.number,
                joined_at=pending.joined_at,
                name=pending.name,
                priority=pending.priority,
                attempts=pending.attempts,
                callback_id=pending.id,
            )
        future.add_done_callback(
            lambda done: _log_failure(done, f"tenant {tenant}: callback {pending.id} not stored")
        )

    async def _save_stats(self) -> None:
        assert self.callcenter is not None
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            for tenant in list(self._setups):
                store = self.stores.callcenter(tenant)
                try:
                    snapshot = self.callcenter.stats_snapshot(tenant)
                except KeyError:
                    continue
                if store is not None:
                    store.save_stats_snapshot(snapshot, taken_at=time.time())

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
        from minicc.api.events_stream import feed

        app = create_app(self)
        self.api = app.state.ctx
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(feed(app.state.ctx, self.bus)))
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
        if self.http_port is not None:
            runtime.write(
                self.config.data_dir,
                pid=os.getpid(),
                bind=self.config.bind,
                http_port=self.http_port,
            )

    @property
    def http_port(self) -> int | None:
        """The HTTP port actually bound (``--http-port 0`` picks a free one)."""
        servers = getattr(self._http, "servers", None)
        if not servers:
            return None
        for sock in servers[0].sockets:
            return int(sock.getsockname()[1])
        return None

    async def _stop_http(self) -> None:
        runtime.clear(self.config.data_dir, os.getpid())
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
    monitor = StallMonitor.from_env()
    if monitor is not None:
        monitor.start()
    if on_ready is not None:
        on_ready(server)
    ports = ", ".join(f"{t.value.lower()} {p}" for t, p in server.switch.ports.items())
    log.info("minicc serving SIP on %s (%s)", config.bind, ports)
    await stop.wait()
    if monitor is not None:
        monitor.stop()
    log.info(
        "shutting down: %d active calls",
        server.switch.b2bua.active_calls if server.switch.b2bua else 0,
    )
    await server.stop()


def run(config: ServeConfig, on_ready: Callable[[Server], None] | None = None) -> None:
    """Blocking entry point used by ``minicc serve``.

    The process runs only the server, so the garbage collector is set up for it here
    (:mod:`minicc.gcpolicy`): rare collections, the start-up heap frozen once ready.
    """
    gcpolicy.tune()

    def ready(server: Server) -> None:
        gcpolicy.freeze_startup_heap()
        if on_ready is not None:
            on_ready(server)

    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        asyncio.run(serve(config, ready))
    else:
        uvloop.run(serve(config, ready))
