"""The switch: wires transports, the sans-IO SIP core, the registrar and the B2BUA on one loop.

It follows aioquic's shape: bytes in (``on_data``), the transaction layer's events out
(``_drain``), datagrams flushed to the transports, and one ``call_at`` timer armed for the
earliest transaction deadline.

The switch is also the :class:`~minicc.switch.control.CallControl` the queue engine drives
(``play``, ``ring``, ``hangup``, ``originate``, ``monitor``, ``conference``...), and takes
the engine as its :class:`~minicc.switch.control.CallObserver`; see
:mod:`minicc.switch.appcalls`, :mod:`minicc.switch.originate` and :mod:`minicc.switch.monitor`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from minicc.bus import EventBus
from minicc.events import AuthFailed, Registered, Unregistered
from minicc.switch.appcalls import AppCalls
from minicc.switch.b2bua import ALLOW, B2BUA, SwitchIdentity
from minicc.switch.control import CallObserver, MonitorMode
from minicc.switch.media.relay import MediaEngine
from minicc.switch.monitor import Monitors
from minicc.switch.registrar import Binding, Registrar
from minicc.switch.sip import transaction as txm
from minicc.switch.sip.auth import DigestServer, algorithms_for_client
from minicc.switch.sip.errors import SipError, SipKeepAlive, SipParseError
from minicc.switch.sip.guard import FloodGuard, GuardSettings
from minicc.switch.sip.message import URI_CACHE, VIA_CACHE, Request, make_response
from minicc.switch.sip.parser import parse_message, validate_request, validate_response
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.sip.tokens import BufferedSystemRandom
from minicc.switch.sip.txlayer import response_destination, stamp_via
from minicc.switch.transport import StreamTransport, UdpTransport
from minicc.tenants.directory import TenantDirectory, TenantEntry
from minicc.tenants.models import TenantStatus
from minicc.tenants.trunks import Trunk, TrunkTable, clean_number

log = logging.getLogger(__name__)
# Every SIP message in and out, at debug level only (``--log-level debug``): the first thing
# to look at when a phone does not register or a call fails.
_trace = logging.getLogger("minicc.sip.trace")

USER_AGENT = "minicc"

# Binding port 0: how many kernel-picked UDP ports to try before one is free for TCP too.
_PORT_ATTEMPTS = 20

_AWAITING_FINAL = frozenset(
    {
        txm.InviteClientState.CALLING,
        txm.InviteClientState.PROCEEDING,
        txm.NonInviteClientState.TRYING,
        txm.NonInviteClientState.PROCEEDING,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchSettings:
    """What the switch needs from the server's configuration."""

    bind: str
    """Address the SIP and RTP sockets listen on."""
    advertised_host: str
    """Address put in Via, Contact and SDP (differs from ``bind`` when bind is 0.0.0.0)."""
    sip_port: int
    """UDP and TCP port (0 picks a free one, for tests)."""
    tls_port: int | None = None
    """TLS port, only when a certificate is configured."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    rtp_port_min: int = 20000
    rtp_port_max: int = 29999
    ring_timeout: float = 60.0
    """Seconds a callee may ring before the caller gets 408."""
    media_relay: bool = True
    """Anchor media in minicc's RTP relay; off passes SDP through unchanged."""
    recordings_dir: Path | None = None
    guard: GuardSettings = field(default_factory=GuardSettings)
    """The flood and fraud guard's thresholds and allow-list."""


class Switch:
    def __init__(
        self,
        settings: SwitchSettings,
        directory: TenantDirectory,
        bus: EventBus,
        *,
        persist_binding: Callable[[str, Binding], None] = lambda _t, _b: None,
        forget_binding: Callable[[str, Binding], None] = lambda _t, _b: None,
        should_record: Callable[[TenantEntry], bool] = lambda _t: False,
        observer: CallObserver | None = None,
    ) -> None:
        """Args:
        settings: addresses, ports and timers.
        directory: the tenants and their extensions.
        bus: where calls, registrations and DTMF are published.
        persist_binding: stores a registration (called on the loop; must not block).
        forget_binding: removes a stored registration.
        should_record: whether a tenant's calls are recorded.
        observer: routes every new call and drives the calls routed to APPLICATION (the
            queue engine); None keeps every call a plain extension-to-extension one. It can
            also be set later through :attr:`observer`, e.g. once the engine is built with
            this switch as its :class:`~minicc.switch.control.CallControl`.
        """
        self.settings = settings
        self.directory = directory
        self.bus = bus
        self._persist_binding = persist_binding
        self._forget_binding = forget_binding
        self._should_record = should_record
        self._observer = observer
        self.tx = txm.TransactionLayer()
        self.registrar = Registrar()
        # Tags and nonces from kernel randomness read 4 KiB at a time (a system call per
        # token showed in profiles: several per call).
        self._tokens = BufferedSystemRandom()
        self.digest = DigestServer(secrets.token_bytes(32), token_bytes=self._tokens.randbytes)
        self.guard = FloodGuard(settings.guard)
        self.trunks = TrunkTable()
        self.media: MediaEngine | None = (
            MediaEngine(
                settings.bind, settings.rtp_port_min, settings.rtp_port_max, on_dtmf=self._on_dtmf
            )
            if settings.media_relay
            else None
        )
        self._udp = UdpTransport(self.on_data)
        self._tcp = StreamTransport(Transport.TCP, self.on_data)
        self._tls: StreamTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._expiry_task: asyncio.Task[None] | None = None
        self.b2bua: B2BUA | None = None
        self.monitors: Monitors | None = None
        self.stats = {"received": 0, "malformed": 0, "auth_failures": 0, "quota_refused": 0}

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        udp_port = await self._listen_udp_and_tcp(s.bind, s.sip_port)
        ports = {Transport.UDP: udp_port, Transport.TCP: udp_port}
        if s.tls_port is not None and s.tls_cert and s.tls_key:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(s.tls_cert, s.tls_key)
            self._tls = StreamTransport(Transport.TLS, self.on_data, ctx)
            await self._tls.listen(s.bind, s.tls_port)
            ports[Transport.TLS] = self._tls.local[1]
        self.tx = txm.TransactionLayer(local_via_host=s.advertised_host, local_via_port=udp_port)
        self.b2bua = B2BUA(
            tx=self.tx,
            media=self.media,
            contacts=self,
            identity=SwitchIdentity(host=s.advertised_host, ports=ports, user_agent=USER_AGENT),
            bus=self.bus,
            clock=loop.time,
            ring_timeout=s.ring_timeout,
            recordings_dir=s.recordings_dir,
            should_record=self._should_record,
            flush=self._flush,
            observer=self._observer,
        )
        self.monitors = Monitors(self.b2bua, self.b2bua.app)
        self._expiry_task = loop.create_task(self._expire_bindings())

    async def _listen_udp_and_tcp(self, bind: str, port: int) -> int:
        """Bind UDP and TCP on one port; returns it.

        With port 0 the kernel picks a free UDP port, which may be taken for TCP: then another
        one is tried (a few times) rather than failing a start-up, or a test, at random.
        """
        for _ in range(_PORT_ATTEMPTS - 1 if port == 0 else 0):
            try:
                return await self._bind_udp_and_tcp(bind, port)
            except OSError as exc:
                log.debug("UDP and TCP not both free on one port (%s), trying another", exc)
        return await self._bind_udp_and_tcp(bind, port)

    async def _bind_udp_and_tcp(self, bind: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self._udp, local_addr=(bind, port))
        udp_port = self._udp.local[1]
        try:
            await self._tcp.listen(bind, udp_port)
        except OSError:
            self._udp.close()
            self._udp = UdpTransport(self.on_data)
            raise
        return udp_port

    @property
    def ports(self) -> dict[Transport, int]:
        ports = {Transport.UDP: self._udp.local[1], Transport.TCP: self._tcp.local[1]}
        if self._tls is not None:
            ports[Transport.TLS] = self._tls.local[1]
        return ports

    async def stop(self, grace: float = 2.0) -> None:
        """Hang up every call, wait up to ``grace`` seconds for the phones to answer, close."""
        if self.b2bua is not None:
            waiting = self.b2bua.hangup_all()
            self._flush()
            # Wait for the BYEs and cancelled INVITEs to be answered, not for every
            # transaction to end: completed ones linger for Timer K/D/L (up to 32 s).
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(map(self._unanswered, waiting)):
                await asyncio.sleep(0.02)
        if self._expiry_task is not None:
            self._expiry_task.cancel()
        if self._timer is not None:
            self._timer.cancel()
        self._udp.close()
        self._tcp.close()
        if self._tls is not None:
            self._tls.close()
        if self.media is not None:
            await self.media.close()

    # ----------------------------------------------------------------- call control

    @property
    def observer(self) -> CallObserver | None:
        """The engine that routes new calls (see ``__init__``)."""
        return self._observer

    @observer.setter
    def observer(self, observer: CallObserver | None) -> None:
        self._observer = observer
        if self.b2bua is not None:
            self.b2bua.app.observer = observer

    def play(self, key: str, files: Sequence[Path], *, loop: bool = False) -> int:
        """:meth:`CallControl.play <minicc.switch.control.CallControl.play>`."""
        return self._app.play(key, files, loop=loop)

    def stop_playback(self, key: str) -> None:
        """:meth:`CallControl.stop_playback <minicc.switch.control.CallControl.stop_playback>`."""
        self._app.stop_playback(key)

    def ring(self, key: str, extension: str, *, timeout: float) -> int:
        """:meth:`CallControl.ring <minicc.switch.control.CallControl.ring>`."""
        return self._app.ring(key, extension, timeout=timeout)

    def cancel_ring(self, key: str, attempt: int) -> None:
        """:meth:`CallControl.cancel_ring <minicc.switch.control.CallControl.cancel_ring>`."""
        self._app.cancel_ring(key, attempt)

    def hangup(self, key: str, *, status: int = 200) -> None:
        """:meth:`CallControl.hangup <minicc.switch.control.CallControl.hangup>`."""
        self._app.hangup(key, status=status)

    def transfer(self, key: str, target: str) -> None:
        """:meth:`CallControl.transfer <minicc.switch.control.CallControl.transfer>`;
        see :mod:`minicc.switch.transfer`."""
        self._app_b2bua.transfers.transfer(key, target)

    def hold(self, key: str) -> bool:
        """:meth:`CallControl.hold <minicc.switch.control.CallControl.hold>`."""
        return self._app.hold(key)

    def resume(self, key: str) -> bool:
        """:meth:`CallControl.resume <minicc.switch.control.CallControl.resume>`."""
        return self._app.resume(key)

    def ring_back(self, key: str, extension: str, *, timeout: float) -> int:
        """:meth:`CallControl.ring_back <minicc.switch.control.CallControl.ring_back>`."""
        return self._app.ring_back(key, extension, timeout=timeout)

    def originate(
        self,
        tenant: str,
        agent: str,
        number: str,
        *,
        timeout: float,
        dial_timeout: float,
        caller_id: str | None = None,
    ) -> str:
        """:meth:`CallControl.originate <minicc.switch.control.CallControl.originate>`;
        see :mod:`minicc.switch.originate`.

        Raises:
            ValueError: an empty agent or number, or a timeout not above 0.
        """
        originator = self._app_b2bua.originator
        key = originator.originate(
            tenant,
            self.directory.get(tenant),
            agent,
            number,
            timeout=timeout,
            dial_timeout=dial_timeout,
            caller_id=caller_id,
        )
        self._flush()
        return key

    def record_call(self, key: str, on: bool) -> bool:
        """:meth:`CallControl.record_call <minicc.switch.control.CallControl.record_call>`."""
        return self._app.recordings.record_call(key, on)

    def pause_recording(self, key: str) -> bool:
        """:meth:`CallControl.pause_recording
        <minicc.switch.control.CallControl.pause_recording>`."""
        return self._app.recordings.pause_recording(key)

    def resume_recording(self, key: str) -> bool:
        """:meth:`CallControl.resume_recording
        <minicc.switch.control.CallControl.resume_recording>`."""
        return self._app.recordings.resume_recording(key)

    def record(
        self,
        key: str,
        box: str,
        *,
        max_seconds: float,
        stop_digits: str = "#",
        silence_timeout: float | None = None,
    ) -> int:
        """:meth:`CallControl.record <minicc.switch.control.CallControl.record>`."""
        return self._app.recordings.record(
            key,
            box,
            max_seconds=max_seconds,
            stop_digits=stop_digits,
            silence_timeout=silence_timeout,
        )

    def find_call(self, tenant: str, extension: str) -> str | None:
        """:meth:`CallControl.find_call <minicc.switch.control.CallControl.find_call>`."""
        return self._monitors.find_call(tenant, extension)

    def monitor(self, key: str, supervisor: str, mode: MonitorMode, *, timeout: float) -> str:
        """:meth:`CallControl.monitor <minicc.switch.control.CallControl.monitor>`; see
        :mod:`minicc.switch.monitor`.

        Raises:
            ValueError: an empty extension or a timeout not above 0.
        """
        monitor = self._monitors.monitor(key, supervisor, mode, timeout=timeout)
        self._flush()
        return monitor

    def attach_monitor(self, monitor: str, key: str, mode: MonitorMode) -> None:
        """:meth:`CallControl.attach_monitor <minicc.switch.control.CallControl.attach_monitor>`."""
        self._monitors.attach_monitor(monitor, key, mode)
        self._flush()

    def set_monitor_mode(self, monitor: str, mode: MonitorMode) -> None:
        """:meth:`CallControl.set_monitor_mode
        <minicc.switch.control.CallControl.set_monitor_mode>`."""
        self._monitors.set_monitor_mode(monitor, mode)

    def stop_monitor(self, monitor: str) -> None:
        """:meth:`CallControl.stop_monitor <minicc.switch.control.CallControl.stop_monitor>`."""
        self._monitors.stop_monitor(monitor)
        self._flush()

    def conference(self, key: str, extension: str, *, timeout: float) -> int:
        """:meth:`CallControl.conference <minicc.switch.control.CallControl.conference>`.

        Raises:
            ValueError: an empty extension or a timeout not above 0.
        """
        attempt = self._monitors.conference(key, extension, timeout=timeout)
        self._flush()
        return attempt

    @property
    def _monitors(self) -> Monitors:
        if self.monitors is None:
            raise RuntimeError("the switch is not started: no call to control yet")
        return self.monitors

    @property
    def _app(self) -> AppCalls:
        return self._app_b2bua.app

    @property
    def _app_b2bua(self) -> B2BUA:
        if self.b2bua is None:
            raise RuntimeError("the switch is not started: no call to control yet")
        return self.b2bua

    def _unanswered(self, key: object) -> bool:
        """True while our client transaction ``key`` has had no final response."""
        state = self.tx.client_state(key)  # type: ignore[arg-type]
        return state in _AWAITING_FINAL

    def load_bindings(self, tenant: str, bindings: list[Binding]) -> None:
        self.registrar.load(bindings, time.time())

    # ----------------------------------------------------------------- input

    def on_data(self, data: bytes, peer: Peer) -> None:
        self.stats["received"] += 1
        if _trace.isEnabledFor(logging.DEBUG):
            _trace.debug("<<< from %s\n%s", peer, data.decode("utf-8", "replace"))
        try:
            message = parse_message(data)
            if isinstance(message, Request):
                validate_request(message)
            else:
                validate_response(message)
        except SipKeepAlive:
            return
        except SipParseError as exc:
            self.stats["malformed"] += 1
            self._reject_malformed(exc, peer)
            return
        now = asyncio.get_running_loop().time()
        if isinstance(message, Request) and not self.guard.admit(
            peer.host, now, user_agent=message.headers.get("User-Agent")
        ):
            return  # blocked or a scanner: no answer at all
        try:
            self.tx.receive(message, peer, now)
        except SipError as exc:
            log.info("dropped message from %s: %s", peer, exc)
            return
        self._drain()

    def _tag(self) -> str:
        """A To tag for a response minicc answers itself: 64 random bits, hex."""
        return f"{self._tokens.getrandbits(64):016x}"

    def _reject_malformed(self, exc: SipParseError, peer: Peer) -> None:
        partial = getattr(exc, "partial", None)
        if isinstance(partial, Request) and partial.method != "ACK":
            try:
                via = stamp_via(partial, peer)
                response = make_response(partial, exc.status_hint, to_tag=self._tag())
                response.headers.add("Warning", f'399 minicc "{_quote_safe(exc.reason)}"')
                self.tx.send_stateless(response, response_destination(via, peer))
                self._flush()
                log.info("%d to %s: %s", exc.status_hint, peer, exc.reason)
                return
            except SipError:
                pass
        log.info("dropped malformed message from %s: %s", peer, exc.reason)

    # ----------------------------------------------------------------- events

    def _drain(self) -> None:
        assert self.b2bua is not None
        b2bua = self.b2bua
        while (event := self.tx.next_event()) is not None:
            try:
                if isinstance(event, txm.RequestReceived):
                    self._on_request(event.request, event.source, event.server_key)
                elif isinstance(event, txm.ResponseReceived):
                    b2bua.on_response(event.response, event.client_key)
                elif isinstance(event, txm.AckReceived):
                    b2bua.on_ack(event.request)
                elif isinstance(event, txm.CancelReceived):
                    if event.invite_key is not None:
                        b2bua.handle_cancel(event.invite_key)
                elif isinstance(event, txm.TransactionTimeout):
                    b2bua.on_timeout(event.client_key)
                elif isinstance(event, txm.StrayResponse):
                    b2bua.on_stray_response(event.response, event.source)
                elif isinstance(event, txm.AckTimeout):
                    b2bua.on_ack_timeout(event.response)
            except SipError as exc:
                log.info("could not handle %s: %s", type(event).__name__, exc)
            except Exception:
                log.exception("error handling %s", type(event).__name__)
        self._flush()

    def _flush(self) -> None:
        for peer, data in self.tx.datagrams_to_send():
            if _trace.isEnabledFor(logging.DEBUG):
                _trace.debug(">>> to %s\n%s", peer, data.decode("utf-8", "replace"))
            if peer.transport is Transport.UDP:
                self._udp.send(data, peer)
            elif peer.transport is Transport.TCP:
                self._tcp.send(data, peer)
            elif self._tls is not None:
                self._tls.send(data, peer)
        self._arm_timer()

    def _arm_timer(self) -> None:
        when = self.tx.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = asyncio.get_running_loop().call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.tx.handle_timer(asyncio.get_running_loop().time())
        self._drain()

    # ----------------------------------------------------------------- requests

    def _on_request(self, request: Request, source: Peer, key: object) -> None:
        assert self.b2bua is not None
        method = request.method
        if self._refuse_unsupported(request):
            return
        if request.to.tag:
            if not self.b2bua.handle_in_dialog(request, source, key):
                self._reply(request, 481)
            return
        if method == "OPTIONS":
            self._reply(request, 200, extra=[("Allow", ALLOW), ("Accept", "application/sdp")])
            return
        if method not in ("INVITE", "REGISTER"):
            if method in ("BYE", "INFO", "CANCEL", "ACK"):
                self._reply(request, 481)
            else:
                self._reply(request, 501, extra=[("Allow", ALLOW)])
            return
        trunk = self.trunks.inbound(source.host) if method == "INVITE" else None
        if trunk is not None:
            self._from_trunk(request, source, key, trunk)
            return
        tenant = self._tenant_for(request)
        if tenant is None:
            if self._suspended(request):
                # Said plainly, so the tenant's admin sees why every phone stopped working.
                self._reply(
                    request,
                    403,
                    reason="Tenant Suspended",
                    extra=[("Warning", '399 minicc "tenant suspended by the service provider"')],
                )
            else:
                self._reply(request, 404, reason="Unknown Domain")
            return
        if method == "REGISTER":
            self._on_register(request, source, tenant)
            return
        mf = request.max_forwards
        if mf is not None and mf <= 0:
            self._reply(request, 483)
            return
        if self._is_loop(request):
            self._reply(request, 482)
            return
        caller = self._authenticate(request, source, tenant)
        if caller is None:
            return
        self._admit_call(request, source, key, tenant, caller)

    def _from_trunk(self, request: Request, source: Peer, key: object, trunk: Trunk) -> None:
        """An INVITE from a carrier's address: its tenant is the trunk's, no challenge (the
        address is the credential), and the caller is the number the carrier says."""
        tenant = self.directory.get(trunk.tenant)
        if tenant is None or tenant.tenant.status is not TenantStatus.ACTIVE:
            self._reply(request, 403, reason="Tenant Suspended")
            return
        mf = request.max_forwards
        if mf is not None and mf <= 0:
            self._reply(request, 483)
            return
        if self._is_loop(request):
            self._reply(request, 482)
            return
        caller = clean_number(request.from_.uri.user_unescaped or "") or "anonymous"
        self._admit_call(request, source, key, tenant, caller)

    def _admit_call(
        self, request: Request, source: Peer, key: object, tenant: TenantEntry, caller: str
    ) -> None:
        limit = tenant.tenant.quotas.max_calls
        if limit is not None and self.b2bua.calls_of(tenant.name) >= limit:
            # RFC 3326 Reason: the phone (and the tenant's admin reading its log) sees why.
            self.stats["quota_refused"] += 1
            self._reply(
                request,
                503,
                reason="Call Limit Reached",
                extra=[("Reason", f'SIP;cause=503;text="tenant call limit of {limit} reached"')],
            )
            return
        self.b2bua.handle_invite(request, source, key, tenant, caller)

    def _refuse_unsupported(self, request: Request) -> bool:
        """RFC 3261 §8.2.2 and §8.2.3: refuse what we cannot honour before acting on it."""
        scheme = request.uri.partition(":")[0].lower()
        if scheme not in ("sip", "sips"):
            self._reply(request, 416)
            return True
        if request.method not in ("ACK", "CANCEL"):
            required = request.headers.get_list("Require")
            if required:  # minicc implements no option tags
                self._reply(request, 420, extra=[("Unsupported", ", ".join(required))])
                return True
        if request.method == "INVITE" and request.body:
            ctype = request.content_type
            if ctype is not None and ctype != "application/sdp":
                self._reply(request, 415, extra=[("Accept", "application/sdp")])
                return True
        return False

    def _tenant_for(self, request: Request) -> TenantEntry | None:
        try:
            # The shared parsed value (read only): no parse, no copy per request.
            host = URI_CACHE(request.uri).host_plain
        except SipError:
            return None
        return self.directory.resolve_host(host)

    def _suspended(self, request: Request) -> bool:
        try:
            host = URI_CACHE(request.uri).host_plain
        except SipError:
            return False
        return self.directory.suspended(host) is not None

    def _is_loop(self, request: Request) -> bool:
        """Our own Via in the INVITE means it went out from us and came back (RFC 3261 §16.3 4)."""
        me = self.settings.advertised_host.lower()
        vias = [VIA_CACHE(v) for v in request.headers.get_list("Via")]  # shared, read only
        if not any(v.host.lower() == me for v in vias):
            return False
        ports = set(self.ports.values())
        return any(v.host.lower() == me and (v.port or 5060) in ports for v in vias)

    def _authenticate(self, request: Request, source: Peer, tenant: TenantEntry) -> str | None:
        """Return the authenticated extension, or None after answering 401/403."""
        now = asyncio.get_running_loop().time()
        result = self.digest.verify(
            request, tenant.realm, lambda user, alg: _ha1(tenant, user, alg), now
        )
        if result.ok and result.username is not None:
            # The identity asserted is From (To for REGISTER, the address of record): its
            # user must be the one who authenticated, and its host must not name another
            # tenant, or a phone of one tenant could present itself as another's extension.
            identity = request.to.uri if request.method == "REGISTER" else request.from_.uri
            owner = self.directory.resolve_host(identity.host_plain)
            if identity.user_unescaped != result.username or (
                owner is not None and owner.name != tenant.name
            ):
                self._reply(request, 403, reason="Identity Mismatch")
                return None
            return result.username
        if result.counts_as_bad_password:
            self.stats["auth_failures"] += 1
            self.guard.auth_failed(source.host, now)
            self.bus.publish(
                AuthFailed(
                    tenant=tenant.name,
                    source_ip=source.host,
                    username=result.username,
                    method=request.method,
                )
            )
            log.info(
                "auth failed for %r from %s (%s)", result.username, source.host, result.failure
            )
        offer = algorithms_for_client(request.headers.get("User-Agent"), self.digest.algorithms)
        response = self.digest.challenge_response(
            request, tenant.realm, now, result, to_tag=self._tag(), offer=offer
        )
        self.tx.send_response(response, now)
        return None

    def _on_register(self, request: Request, source: Peer, tenant: TenantEntry) -> None:
        user = self._authenticate(request, source, tenant)
        if user is None:
            return
        outcome = self.registrar.register(
            tenant.name, user, request, source, time.time(), to_tag=self._tag()
        )
        self.tx.send_response(outcome.response, asyncio.get_running_loop().time())
        for binding in outcome.removed:
            self._forget_binding(tenant.name, binding)
            self.bus.publish(
                Unregistered(tenant=tenant.name, extension=user, contact=binding.contact)
            )
        for binding in outcome.added:
            self._persist_binding(tenant.name, binding)
            self.bus.publish(
                Registered(
                    tenant=tenant.name,
                    extension=user,
                    contact=binding.contact,
                    expires_at=binding.expires_at,
                )
            )

    def _reply(
        self,
        request: Request,
        status: int,
        *,
        reason: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        response = make_response(request, status, reason, to_tag=self._tag(), extra=extra)
        self.tx.send_response(response, asyncio.get_running_loop().time())

    # ----------------------------------------------------------------- registrar

    def targets(
        self, tenant: str, extension: str, *, outside: bool = False
    ) -> list[tuple[str, Peer]]:
        """Where to send a call for ``extension``: its registered phones; or, for a number
        that is no extension and ``outside`` calls allowed (the caller is one of the
        tenant's own), the tenant's outbound trunk, if its dial rules allow the number."""
        entry = self.directory.get(tenant)
        if entry is not None and extension in entry.extensions:
            now = time.time()
            return [(b.contact, b.source) for b in self.registrar.lookup(tenant, extension, now)]
        trunk = self.trunks.outbound(tenant) if outside else None
        if trunk is None:
            return []
        refusal = self.trunks.rules(tenant).refusal(extension)
        if refusal is not None:
            log.info("tenant %s: not dialling out: %s", tenant, refusal)
            return []
        # Digits and a leading "+" (the rules checked), an IP address (the store checked).
        host = f"[{trunk.host}]" if ":" in trunk.host else trunk.host
        uri = f"sip:{clean_number(extension)}@{host}:{trunk.port}"
        return [(uri, Peer(Transport.UDP, trunk.host, trunk.port))]

    def dialable(self, tenant: str, number: str) -> bool:
        """An extension of ``tenant``, or an outside number its trunk and rules allow."""
        entry = self.directory.get(tenant)
        if entry is not None and number in entry.extensions:
            return True
        return (
            self.trunks.outbound(tenant) is not None
            and self.trunks.rules(tenant).refusal(number) is None
        )

    async def _expire_bindings(self) -> None:
        while True:
            await asyncio.sleep(5.0)
            for binding in self.registrar.expire(time.time()):
                self._forget_binding(binding.tenant, binding)
                self.bus.publish(
                    Unregistered(
                        tenant=binding.tenant, extension=binding.user, contact=binding.contact
                    )
                )

    def _on_dtmf(self, call_id: str, side: str, digit: object) -> None:
        if self.b2bua is not None:
            self.b2bua.on_dtmf(call_id, side, getattr(digit, "digit", str(digit)))


def _ha1(tenant: TenantEntry, user: str, algorithm: object) -> str | None:
    ext = tenant.extensions.get(user)
    return None if ext is None else ext.ha1(algorithm)  # type: ignore[arg-type]


def _quote_safe(text: str) -> str:
    return text.replace('"', "'").replace("\\", "/")[:120]
