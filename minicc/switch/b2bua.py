"""The back-to-back user agent: a call is a caller leg, one or more callee legs and a media bridge.

The caller's INVITE ends here (minicc is the UAS of leg A) and minicc starts new INVITEs as UAC
towards every registered contact of the callee (forking, RFC 3261 §16.7 semantics: the first
2xx wins, the others are cancelled). Every message of one leg is rebuilt for the other, so the
two parties never see each other's Call-ID, tags, Via or addresses, and media always flows
through the relay.

The transaction layer below is sans-IO; the B2BUA is driven by its events through
:meth:`B2BUA.handle` and answers by calling the layer. Every request it sends registers a
continuation for its responses, which keeps re-INVITE and BYE relaying in one place.

With a :class:`~minicc.switch.control.CallObserver` (the queue engine) every new call is
routed by it first: to an extension (a call as above), refused, or answered by minicc for the
engine to drive (:mod:`minicc.switch.appcalls`, built on the leg and dialog helpers here).
The engine may also have minicc place a call itself, agent first (a callback,
:mod:`minicc.switch.originate`): then both legs are INVITEs minicc sent.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from minicc.bus import EventBus
from minicc.events import CallAnswered, CallEnded, CallRinging, CallStarted, DtmfReceived
from minicc.switch import sdp as sdplib
from minicc.switch.control import CallObserver, Route, RouteKind
from minicc.switch.media.relay import MediaEngine, MediaError, MediaSession
from minicc.switch.sip.dialog import Dialog
from minicc.switch.sip.errors import SipError
from minicc.switch.sip.headers import Headers
from minicc.switch.sip.message import Request, Response, make_response
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.sip.tokens import BufferedSystemRandom
from minicc.switch.sip.transaction import TransactionLayer
from minicc.switch.sip.uri import parse_uri, quote
from minicc.tenants.directory import TenantEntry
from minicc.tenants.models import CallRecord, Disposition, HangupSide

if TYPE_CHECKING:
    from minicc.switch.appcalls import AppCall
    from minicc.switch.originate import Outbound

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER, REFER"


class Side(Enum):
    CALLER = "caller"
    CALLEE = "callee"

    @property
    def other(self) -> Side:
        return Side.CALLEE if self is Side.CALLER else Side.CALLER


class CallState(Enum):
    SETUP = "setup"  # media being allocated, no callee leg yet
    RINGING = "ringing"  # callee legs sent
    ANSWERED = "answered"  # a callee (or minicc, for an application call) answered the caller
    ENDED = "ended"


_RINGING = (CallState.SETUP, CallState.RINGING)


class Contacts(Protocol):
    """What the B2BUA needs from the registrar: where an extension can be reached."""

    def targets(
        self, tenant: str, extension: str, *, outside: bool = False
    ) -> list[tuple[str, Peer]]:
        """(Contact URI, the Peer its REGISTER came from) for each live binding; with
        ``outside``, a number that is no extension may go to the tenant's trunk."""
        ...


class CallWatcher(Protocol):
    """Hooks into one call (:attr:`Call.watchers`); each is called on the loop, and an
    exception is logged, never raised into SIP handling."""

    def leg_left(self, call: Call, side: Side) -> bool:
        """``side`` sent BYE (answered 200 already); True keeps the call going without it."""
        ...

    def call_dtmf(self, call: Call, side: Side, digit: str) -> None:
        """A key pressed on ``side``'s phone."""
        ...

    def call_ending(self, call: Call) -> None:
        """The call ends (once), before its media session closes."""
        ...


@dataclass(slots=True)
class SwitchIdentity:
    """How minicc presents itself in Contact, Via and SDP."""

    host: str
    ports: dict[Transport, int]
    user_agent: str

    def contact(self, transport: Transport, user: str = "minicc") -> str:
        port = self.ports.get(transport) or self.ports[Transport.UDP]
        tp = "" if transport is Transport.UDP else f";transport={transport.value.lower()}"
        return f"<sip:{user}@{self.host}:{port}{tp}>"


@dataclass(slots=True, eq=False)
class Leg:
    """One SIP dialog of a call, seen from minicc."""

    side: Side
    peer: Peer
    origin: sdplib.OriginState
    dialog: Dialog | None = None
    # The callee legs' INVITE client transaction (forking keeps several until one answers).
    invite: Request | None = None
    invite_key: object = None
    contact_uri: str = ""
    final_status: int | None = None
    pending_reinvite: bool = False
    held: bool = False
    """minicc last relayed a hold offer to this phone (a transfer takes it off hold)."""


@dataclass(slots=True, eq=False)
class Call:
    key: str
    """minicc's own id for the call: unique, unlike the Call-ID, which the caller chooses
    (two tenants' phones may well pick the same one). The media session is named by it."""
    call_id: str
    """The Call-ID of the caller's leg: what events and call records carry."""
    tenant: TenantEntry
    caller_invite: Request
    caller_key: object
    caller: Leg
    to_tag: str
    from_user: str
    from_display: str | None
    to_user: str
    """The dialled number (Request-URI user): what the call record names as the callee."""
    started: datetime
    offer: sdplib.SessionDescription
    target: str = ""
    """The extension a plain call rings (the engine may route a number to another one)."""
    app: AppCall | None = None
    """Set for calls minicc answered itself for the engine (:mod:`~minicc.switch.appcalls`)."""
    outbound: Outbound | None = None
    """Set for calls minicc places itself, agent first (:mod:`~minicc.switch.originate`):
    the caller leg is then the agent's phone, which minicc INVITEd too."""
    state: CallState = CallState.SETUP
    forks: list[Leg] = field(default_factory=list)
    callee: Leg | None = None
    media: MediaSession | None = None
    answered: datetime | None = None
    ring_timer: asyncio.TimerHandle | None = None
    caller_cancelled: bool = False
    recording: Path | None = None
    watchers: list[CallWatcher] = field(default_factory=list)
    """Who else must hear of this call's BYEs, DTMF and end (a supervisor's mixer, a
    conference: :mod:`~minicc.switch.monitor`)."""

    def leg(self, side: Side) -> Leg | None:
        return self.caller if side is Side.CALLER else self.callee


class CallTable(dict[str, "Call"]):
    """Live calls by key, also counted per tenant: a quota is checked on every INVITE,
    so the count is kept as calls come and go instead of counted each time.

    Only item assignment and ``pop`` keep the counts: no ``update``/``setdefault`` here.
    """

    def __init__(self) -> None:
        super().__init__()
        self.per_tenant: Counter[str] = Counter()

    def __setitem__(self, key: str, call: Call) -> None:
        if key not in self:
            self.per_tenant[call.tenant.name] += 1
        super().__setitem__(key, call)

    def pop(self, key: str, default: Call | None = None) -> Call | None:  # type: ignore[override]
        call = super().pop(key, None)
        if call is None:
            return default
        self.per_tenant[call.tenant.name] -= 1
        if self.per_tenant[call.tenant.name] <= 0:
            del self.per_tenant[call.tenant.name]
        return call


class B2BUA:
    def __init__(
        self,
        *,
        tx: TransactionLayer,
        media: MediaEngine | None,
        contacts: Contacts,
        identity: SwitchIdentity,
        bus: EventBus,
        clock: Callable[[], float],
        ring_timeout: float,
        recordings_dir: Path | None = None,
        should_record: Callable[[TenantEntry], bool] = lambda _t: False,
        rng: random.Random | None = None,
        flush: Callable[[], None] = lambda: None,
        observer: CallObserver | None = None,
    ) -> None:
        # appcalls and originate build on this module (legs, dialogs, forking), hence
        # imported here.
        from minicc.switch.appcalls import AppCalls
        from minicc.switch.originate import Originator
        from minicc.switch.transfer import Transfers

        self._tx = tx
        self._media = media
        self._contacts = contacts
        self._me = identity
        self._bus = bus
        self._clock = clock
        self._ring_timeout = ring_timeout
        self._recordings_dir = recordings_dir
        self._should_record = should_record
        self._rng = rng or BufferedSystemRandom()
        # What the B2BUA queues in the transaction layer goes out when the switch drains it
        # after an input. Work that runs on its own (call set-up after the media ports are
        # bound, the ring timer) calls this to have its messages sent at once.
        self._flush = flush
        self._calls = CallTable()  # by Call.key
        # (Call-ID, our tag) -> (call, side): how in-dialog requests find their leg.
        self._dialogs: dict[tuple[str, str], tuple[Call, Side]] = {}
        # Client transaction key -> continuation for its responses (None means timeout).
        self._pending: dict[object, Callable[[Response | None], None]] = {}
        self._forking: set[object] = set()
        self._ids = itertools.count(1)
        self.app = AppCalls(self, observer)
        """Application calls: what the engine drives through the CallControl methods."""
        self.originator = Originator(self, self.app)
        """Calls minicc places itself (CallControl.originate)."""
        self.transfers = Transfers(self)
        """REFER (blind and attended transfer) and CallControl.transfer."""

    # ----------------------------------------------------------------- public surface

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def calls_of(self, tenant: str) -> int:
        """Calls of ``tenant`` in progress (what its concurrent-call quota counts)."""
        return self._calls.per_tenant[tenant]

    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def call(self, key: str) -> Call | None:
        """A live call by its :attr:`Call.key`."""
        return self._calls.get(key)

    def on_response(self, response: Response, key: object) -> None:
        handler = self._pending.get(key)
        if handler is None:
            return
        # A forking proxy beyond a callee leg may send several 2xx for one INVITE (one per
        # To tag), so a callee INVITE's continuation lives until its call ends.
        if response.status >= 200 and not (response.is_success and key in self._forking):
            del self._pending[key]
        handler(response)

    def on_timeout(self, key: object) -> None:
        handler = self._pending.pop(key, None)
        if handler is not None:
            handler(None)

    def on_stray_response(self, response: Response, source: Peer) -> None:
        """A 2xx retransmitted after its transaction ended: our ACK was lost, send it again."""
        if not response.is_success or response.cseq.method != "INVITE":
            return
        found = self._dialogs.get((response.call_id, response.from_.tag or ""))
        if found is None:
            return
        call, side = found
        leg = call.leg(side)
        if leg is not None and leg.dialog is not None:
            self._send_ack(leg, response.cseq.seq)

    def on_ack(self, request: Request) -> None:
        # ACKs for our 2xx are absorbed by the transaction layer (it stops retransmitting);
        # nothing else to do until late offers (ACK with SDP) are supported.
        return

    def on_ack_timeout(self, response: Response) -> None:
        """The caller never ACKed our 200 (RFC 3261 §13.3.1.4): end the call with BYE."""
        found = self._dialogs.get((response.call_id, self._tag_of(response)))
        if found is not None:
            call, _ = found
            log.info("%s: no ACK for 200 OK, ending call", call.call_id)
            self._hangup(call, HangupSide.SYSTEM, cause=408)

    def handle_invite(
        self, request: Request, source: Peer, key: object, tenant: TenantEntry, caller_ext: str
    ) -> None:
        """A new, already authenticated INVITE from ``caller_ext`` of ``tenant``."""
        now_wall = datetime.now(UTC)
        to_user = _request_user(request)
        try:
            offer = sdplib.parse_sdp(request.body) if request.body else None
        except sdplib.SdpError as exc:
            self._reply(request, 400, extra=[_warning(399, f"bad SDP: {exc}")])
            return
        if offer is None:
            # Late offer (the offer in our 2xx, the answer in the ACK, RFC 3261 §13.2.1) is not
            # supported yet; the Warning says so, since 488 alone reads like a codec problem.
            warning = _warning(399, "late offer (INVITE without SDP) not supported")
            self._reply(request, 488, extra=[warning])
            return
        negotiation = sdplib.negotiate(offer)
        if not negotiation.usable:
            # RFC 3261 §20.43: 304 "media type not available" when there is no audio at all,
            # 305 "incompatible media format" when the codecs are the problem.
            code = 304 if offer.audio is None or offer.audio.port == 0 else 305
            warning = _warning(code, f"{negotiation.reason}: PCMU or PCMA required")
            self._reply(request, 488, extra=[warning])
            return
        call_key = f"{next(self._ids)}/{request.call_id}"
        route = Route(kind=RouteKind.EXTENSION, extension=to_user)
        if self.app.observer is not None:
            route = self.app.route(call_key, tenant, request, caller_ext)
        target = route.extension or to_user
        # Out through the tenant's trunk only for its own phones: a carrier's caller must
        # never be handed back to the carrier (toll fraud by bouncing calls).
        outside = caller_ext in tenant.extensions
        if (
            route.kind is RouteKind.EXTENSION
            and target not in tenant.extensions
            and not self._contacts.targets(tenant.name, target, outside=outside)
        ):
            why = "no such extension, and no trunk or dial rule lets the number out"
            self._reply(request, 404, extra=[_warning(399, why)])
            return
        from_ = request.from_
        call = Call(
            key=call_key,
            call_id=request.call_id,
            tenant=tenant,
            caller_invite=request,
            caller_key=key,
            caller=Leg(side=Side.CALLER, peer=source, origin=sdplib.OriginState()),
            to_tag=self._new_tag(),
            from_user=caller_ext,
            from_display=from_.display,
            to_user=to_user,
            started=now_wall,
            offer=offer,
            target=target,
        )
        self._calls[call.key] = call
        # The caller's early dialog (our To tag): a BYE on it must find the call.
        self._dialogs[(call.call_id, call.to_tag)] = (call, Side.CALLER)
        self._bus.publish(
            CallStarted(
                tenant=tenant.name,
                call_id=call.call_id,
                caller=caller_ext,
                caller_name=from_.display,
                callee=to_user,
            )
        )
        if route.kind is RouteKind.REJECT:
            self._reply(request, route.status, to_tag=call.to_tag)
            self._finish(call, HangupSide.SYSTEM, route.status)
            return
        if route.kind is RouteKind.APPLICATION:
            self.app.start(call, negotiation)
            return
        targets = self._contacts.targets(tenant.name, target, outside=outside)
        if not targets:
            # An existing extension with no phone online: a missed call, so it gets its record.
            self._reply(request, 480, to_tag=call.to_tag)
            self._finish(call, HangupSide.SYSTEM, 480)
            return
        asyncio.get_running_loop().create_task(self._setup(call, targets))

    def handle_cancel(self, invite_key: object) -> None:
        for call in self._calls.values():
            if call.caller_key == invite_key and call.state in _RINGING:
                self._caller_gave_up(call)
                return

    def _caller_gave_up(self, call: Call) -> None:
        call.caller_cancelled = True
        self._reply(call.caller_invite, 487, to_tag=call.to_tag)
        self._cancel_forks(call)
        self._finish(call, HangupSide.CALLER, 487)

    def handle_in_dialog(self, request: Request, source: Peer, key: object) -> bool:
        """Route a request carrying a To tag; False when no dialog matches (caller sends 481)."""
        found = self._dialogs.get((request.call_id, request.to.tag or ""))
        if found is None:
            return self.transfers.handle_released(request)
        call, side = found
        leg = call.leg(side)
        if leg is None or leg.dialog is None:
            if side is Side.CALLER and request.method == "BYE" and call.state in _RINGING:
                # RFC 3261 §15: the caller may end its early dialog with BYE; for the call
                # that is the same as a CANCEL (and the INVITE gets its 487, §15.1.2).
                self._reply(request, 200)
                self._caller_gave_up(call)
                return True
            return False
        if not leg.dialog.accept_remote_cseq(request.cseq.seq):
            self._reply(request, 500, extra=[("Retry-After", "1")])
            return True
        method = request.method
        if method == "BYE":
            self._reply(request, 200)
            if any(_watch(w.leg_left, call, side) for w in list(call.watchers)):
                return True  # a conference goes on without this leg
            hangup_side = HangupSide.CALLER if side is Side.CALLER else HangupSide.CALLEE
            self._hangup(call, hangup_side, cause=None, skip=side)
        elif method == "INVITE":
            self._relay_reinvite(call, side, request)
        elif method == "INFO":
            self._handle_info(call, side, request)
        elif method == "REFER":
            self.transfers.handle_refer(call, side, request)
        elif method == "OPTIONS":
            self._reply(request, 200, extra=[("Allow", ALLOW)])
        else:
            self._reply(request, 501, extra=[("Allow", ALLOW)])
        return True

    def hangup_all(self) -> list[object]:
        """Server shutdown: BYE every answered call, refuse every ringing one.

        Returns:
            The client transaction keys of the BYEs sent and of the callee INVITEs being
            cancelled: shutdown may wait for those to get their final responses.
        """
        sent: list[object] = []
        for call in list(self._calls.values()):
            # Still ringing: callee legs of a plain call, agent legs of an application call.
            sent += [f.invite_key for f in call.forks if f.final_status is None]
            if call.state is CallState.ANSWERED or call.outbound is not None:
                # An originated call has no INVITE of anyone's to refuse: its answered legs
                # get BYE, the ringing ones CANCEL (when it finishes).
                sent += self._hangup(call, HangupSide.SYSTEM, cause=503)
            else:
                self._reply(
                    call.caller_invite,
                    503,
                    to_tag=call.to_tag,
                    extra=[("Reason", 'SIP;cause=503;text="server shutting down"')],
                )
                self._cancel_forks(call)
                self._finish(call, HangupSide.SYSTEM, 503)
        return sent

    def on_dtmf(self, call_id: str, side: str, digit: str) -> None:
        """An RFC 4733 digit from the relay; ``call_id`` is the media session's name (the
        call's :attr:`Call.key`), ``side`` its endpoint, ``a`` for the caller."""
        call = self._calls.get(call_id)
        if call is not None:
            self._dtmf(call, Side.CALLER if side == "a" else Side.CALLEE, digit, "rfc4733")

    def _dtmf(self, call: Call, side: Side, digit: str, method: str) -> None:
        self._bus.publish(
            DtmfReceived(
                tenant=call.tenant.name,
                call_id=call.call_id,
                side=side.value,
                digit=digit,
                method=method,
            )
        )
        if call.app is not None and side is Side.CALLER:
            self.app.dtmf(call, digit)
        else:
            self.app.recordings.agent_dtmf(call, side, digit)
        for watcher in list(call.watchers):
            _watch(watcher.call_dtmf, call, side, digit)

    # ----------------------------------------------------------------- call setup

    async def _setup(self, call: Call, targets: list[tuple[str, Peer]]) -> None:
        try:
            await self._setup_media_and_ring(call, targets)
        finally:
            self._flush()

    async def _setup_media_and_ring(self, call: Call, targets: list[tuple[str, Peer]]) -> None:
        if call.state is CallState.ENDED:  # cancelled before this task got to run
            return
        if self._media is None:  # media relay off: SDP passes through, phones talk directly
            call.state = CallState.RINGING
            self._ring(call, targets, call.offer)
            return
        media = await self._bind_media(call)
        if media is None:
            return
        call.state = CallState.RINGING
        self._ring(
            call, targets, sdplib.rewrite_for_relay(call.offer, self._me.host, media.b.local_port)
        )

    async def _bind_media(self, call: Call) -> MediaSession | None:
        """The call's relay session, its caller side pointed at the caller's offer; None (and
        the caller refused with 503) when no port is free or the call ended meanwhile."""
        assert self._media is not None
        try:
            media = await self._media.create_session(call.key)
        except MediaError as exc:
            log.warning("%s: no media port: %s", call.key, exc)
            if call.state is not CallState.ENDED:
                self._reply(call.caller_invite, 503, to_tag=call.to_tag)
                self._finish(call, HangupSide.SYSTEM, 503)
            return None
        if call.state is CallState.ENDED:  # cancelled while the ports were being bound
            media.close()
            return None
        call.media = media
        _set_remote(call, Side.CALLER, call.offer)
        return media

    def _ring(
        self, call: Call, targets: list[tuple[str, Peer]], offer: sdplib.SessionDescription
    ) -> None:
        answers = self._on_fork_response
        for uri, peer in targets:
            self._fork(call, uri, peer, offer, to_user=call.target, on_response=answers)
        loop = asyncio.get_running_loop()
        call.ring_timer = loop.call_later(self._ring_timeout, self._ring_timeout_fired, call)

    def _fork(
        self,
        call: Call,
        contact_uri: str,
        peer: Peer,
        offer: sdplib.SessionDescription,
        *,
        to_user: str,
        on_response: Callable[[Call, Leg, Response | None], None],
        caller: tuple[str, str | None] | None = None,
    ) -> Leg:
        """INVITE one contact of ``to_user`` as a new callee leg; the phone sees the caller's
        name and number, or ``caller`` (a URI user part, escaped, and a display name) when
        given. Its responses go to ``on_response(call, leg, response)``."""
        leg = Leg(side=Side.CALLEE, peer=peer, origin=sdplib.OriginState(), contact_uri=contact_uri)
        domain = call.tenant.realm
        user, shown = caller or (call.from_user, call.caller_invite.from_.display)
        # Re-quoted: the parsed display name is unescaped, and a quote or backslash in it would
        # otherwise break the callee's From header (RFC 3261 §25.1 quoted-string).
        display = f"{quote(shown)} " if shown else ""
        headers = Headers()
        headers.add("Via", self._via(peer))
        mf = call.caller_invite.max_forwards
        headers.add("Max-Forwards", str(69 if mf is None else max(mf - 1, 0)))
        headers.add("From", f"{display}<sip:{user}@{domain}>;tag={self._new_tag()}")
        headers.add("To", f"<sip:{to_user}@{domain}>")
        headers.add("Call-ID", f"{self._new_tag()}-{next(self._ids)}@minicc")
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", self._me.contact(peer.transport, user))
        headers.add("Allow", ALLOW)
        headers.add("User-Agent", self._me.user_agent)
        headers.add("Content-Type", "application/sdp")
        body = leg.origin.stamp(offer.copy()).to_bytes()
        invite = Request(headers=headers, body=body, method="INVITE", uri=contact_uri)
        leg.invite = invite
        leg.invite_key = self._send(invite, peer, lambda r: on_response(call, leg, r))
        self._forking.add(leg.invite_key)
        call.forks.append(leg)
        return leg

    def _on_fork_response(self, call: Call, leg: Leg, response: Response | None) -> None:
        status = 408 if response is None else response.status
        if response is not None and status < 200:
            if status == 100 or call.state is not CallState.RINGING:
                return
            self._early_dialog(call, leg, response)
            self._relay_provisional(call, response)
            return
        if 200 <= status < 300:
            assert response is not None
            self._on_fork_answered(call, leg, response)
            return
        leg.final_status = status
        if leg.dialog is not None:
            self._dialogs.pop((leg.dialog.call_id, leg.dialog.local_tag), None)
        if call.state is not CallState.RINGING:
            return
        if 600 <= status < 700:
            # A global failure (603 Decline: the user rejected the call) ends the search;
            # the other phones stop ringing (as a forking proxy does, RFC 3261 §16.7 step 5).
            self._cancel_forks(call)
            self._all_forks_failed(call)
        elif all(f.final_status for f in call.forks):
            self._all_forks_failed(call)

    def _early_dialog(self, call: Call, leg: Leg, response: Response) -> None:
        if leg.dialog is None and response.to.tag and leg.invite is not None:
            leg.dialog = Dialog.from_uac(leg.invite, response)
            self._dialogs[(leg.dialog.call_id, leg.dialog.local_tag)] = (call, Side.CALLEE)

    def _relay_provisional(self, call: Call, response: Response) -> None:
        body = b""
        extra = [("Contact", self._me.contact(call.caller.peer.transport, call.to_user))]
        if response.body and response.content_type == "application/sdp":
            try:
                answer = sdplib.parse_sdp(response.body)
            except sdplib.SdpError:
                answer = None
            if answer is not None:
                _set_remote(call, Side.CALLEE, answer)
                body = self._sdp_for(call, Side.CALLER, answer)
                extra.append(("Content-Type", "application/sdp"))
        if response.status == 180 or body:
            self._bus.publish(CallRinging(tenant=call.tenant.name, call_id=call.call_id))
        self._reply(
            call.caller_invite,
            response.status,
            to_tag=call.to_tag,
            body=body,
            extra=extra,
            reason=response.reason,
        )

    def _on_fork_answered(self, call: Call, leg: Leg, response: Response) -> None:
        if call.state is not CallState.RINGING or call.callee is not None:
            self._ack_and_bye(leg, response)
            return
        self._confirm_callee(call, leg, response)
        self._cancel_forks(call, except_leg=leg)
        if call.ring_timer is not None:
            call.ring_timer.cancel()
        body = b""
        if response.body:
            try:
                answer = sdplib.parse_sdp(response.body)
                _set_remote(call, Side.CALLEE, answer)
                body = self._sdp_for(call, Side.CALLER, answer)
            except sdplib.SdpError as exc:
                log.warning("%s: callee sent bad SDP (%s), ending call", call.call_id, exc)
        if not body:
            self._reply(call.caller_invite, 502, to_tag=call.to_tag)
            self._send_in_dialog(leg, "BYE")
            self._finish(call, HangupSide.SYSTEM, 502)
            return
        self._answer_caller(call, body, answered_by=leg.contact_uri)

    def _late_answer(self, leg: Leg, response: Response | None) -> None:
        """A response for a callee INVITE of a call that has ended: a 2xx is unwanted."""
        if response is not None and response.is_success:
            self._ack_and_bye(leg, response)

    def _ack_and_bye(self, leg: Leg, response: Response) -> None:
        """A 2xx nobody wants: another fork (or another 2xx of this one) answered after the
        winner, or after CANCEL. RFC 3261 §13.2.2.4 says ACK it, then BYE it."""
        assert leg.invite is not None
        extra = Leg(
            side=Side.CALLEE,
            peer=leg.peer,
            origin=leg.origin,
            dialog=Dialog.from_uac(leg.invite, response),
        )
        self._send_ack(extra, leg.invite.cseq.seq)
        self._send_in_dialog(extra, "BYE")

    def _confirm_callee(self, call: Call, leg: Leg, response: Response) -> None:
        """The winning 2xx: confirm the leg's dialog, ACK it, make it the call's callee."""
        self._confirm_leg(call, leg, response, Side.CALLEE)

    def _confirm_leg(self, call: Call, leg: Leg, response: Response, side: Side) -> None:
        """A winning 2xx to a leg minicc INVITEd: confirm the dialog, ACK it, and make the leg
        the call's ``side`` (the caller side only for an originated call's agent)."""
        assert leg.invite is not None
        if leg.dialog is None or leg.dialog.remote_tag != response.to.tag:
            if leg.dialog is not None:
                self._dialogs.pop((leg.dialog.call_id, leg.dialog.local_tag), None)
            leg.dialog = Dialog.from_uac(leg.invite, response)
        else:
            # The early dialog of a 1xx becomes confirmed; the 2xx's Contact and
            # Record-Route replace what the 1xx said (RFC 3261 §12.1.2, §13.2.2.4).
            leg.dialog.on_response(response)
        leg.final_status = response.status
        self._send_ack(leg, leg.invite.cseq.seq)
        self._dialogs[(leg.dialog.call_id, leg.dialog.local_tag)] = (call, side)
        leg.side = side
        if side is Side.CALLEE:
            call.callee = leg
        else:
            call.caller = leg

    def _answer_caller(self, call: Call, body: bytes, *, answered_by: str) -> None:
        """200 OK to the caller's INVITE with ``body``: the call is answered (and recorded if
        the tenant records calls)."""
        call.state = CallState.ANSWERED
        call.answered = datetime.now(UTC)
        ok = make_response(
            call.caller_invite,
            200,
            to_tag=call.to_tag,
            body=body,
            extra=[
                ("Contact", self._me.contact(call.caller.peer.transport, call.to_user)),
                ("Allow", ALLOW),
                ("Server", self._me.user_agent),
                ("Content-Type", "application/sdp"),
            ],
        )
        call.caller.dialog = Dialog.from_uas(call.caller_invite, ok)
        self._dialogs[(call.call_id, call.to_tag)] = (call, Side.CALLER)
        self._tx.send_response(ok, self._clock())
        self._start_recording(call)
        self._bus.publish(
            CallAnswered(tenant=call.tenant.name, call_id=call.call_id, answered_by=answered_by)
        )

    def _forget_forks(self, keys: list[object]) -> None:
        for key in keys:
            self._forking.discard(key)
            self._pending.pop(key, None)

    def _all_forks_failed(self, call: Call) -> None:
        statuses = [f.final_status or 500 for f in call.forks]
        status = _best_final(statuses)
        if call.ring_timer is not None:
            call.ring_timer.cancel()
        self._reply(call.caller_invite, status, to_tag=call.to_tag)
        self._finish(call, HangupSide.CALLEE, status)

    def _ring_timeout_fired(self, call: Call) -> None:
        if call.state is not CallState.RINGING:
            return
        log.info("%s: no answer after %.0f s", call.call_id, self._ring_timeout)
        self._cancel_forks(call)
        self._reply(call.caller_invite, 408, to_tag=call.to_tag)
        self._finish(call, HangupSide.SYSTEM, 408)
        self._flush()

    def _cancel_forks(self, call: Call, except_leg: Leg | None = None) -> None:
        self._cancel_legs(call.forks, except_leg)

    def _cancel_legs(self, legs: list[Leg], except_leg: Leg | None = None) -> None:
        """CANCEL every callee leg still ringing (RFC 3261 §9.1), but ``except_leg``."""
        for fork in legs:
            if fork is not except_leg and fork.final_status is None:
                fork.final_status = 487
                self._tx.cancel(fork.invite_key, self._clock())

    # ----------------------------------------------------------------- mid-call

    def _relay_reinvite(self, call: Call, side: Side, request: Request) -> None:
        """Hold, resume or a codec change: pass the offer through the relay to the other side."""
        other = call.leg(side.other)
        me = call.leg(side)
        if call.app is not None and self.app.holds.on_reinvite(call, side, request):
            return  # hold / resume on a bridged application call (minicc.switch.hold)
        if call.app is not None and other is None and side is Side.CALLER:
            self.app.answer_reinvite(call, request)  # no agent yet: minicc is the other end
            return
        if other is None or other.dialog is None or me is None:
            self._reply(request, 491)
            return
        if other.pending_reinvite or me.pending_reinvite:
            self._reply(request, 491)  # RFC 3261 §14.2: glare
            return
        body = b""
        if request.body:
            try:
                offer = sdplib.parse_sdp(request.body)
            except sdplib.SdpError as exc:
                self._reply(request, 400, extra=[_warning(399, f"bad SDP: {exc}")])
                return
            _set_remote(call, side, offer)
            other.held = offer.is_hold
            body = self._sdp_for(call, side.other, offer)
        if me.dialog is not None and request.headers.get("Contact"):
            me.dialog.update_target(request)
        me.pending_reinvite = other.pending_reinvite = True

        def done(response: Response | None) -> None:
            if response is not None and response.status < 200:
                return
            me.pending_reinvite = other.pending_reinvite = False
            status = 408 if response is None else response.status
            if response is None or status >= 300:
                self._reply(request, 500 if status == 408 else status)
                return
            if other.dialog is not None:
                other.dialog.update_target(response)  # a 2xx may move the peer (§12.2.1.2)
            self._send_ack(other, response.cseq.seq)
            answer_body = b""
            if response.body:
                try:
                    answer = sdplib.parse_sdp(response.body)
                    _set_remote(call, side.other, answer)
                    answer_body = self._sdp_for(call, side, answer)
                except sdplib.SdpError:
                    pass
            to_tag = call.to_tag if side is Side.CALLER else me.dialog.local_tag  # type: ignore[union-attr]
            ok = make_response(
                request,
                200,
                to_tag=to_tag,
                body=answer_body,
                extra=[
                    ("Contact", self._me.contact(me.peer.transport)),
                    *([("Content-Type", "application/sdp")] if answer_body else []),
                ],
            )
            self._tx.send_response(ok, self._clock())

        self._send_in_dialog(other, "INVITE", body=body, on_response=done)

    def _handle_info(self, call: Call, side: Side, request: Request) -> None:
        """SIP INFO DTMF (application/dtmf-relay), the fallback for phones without RFC 4733."""
        self._reply(request, 200)
        if request.content_type not in ("application/dtmf-relay", "application/dtmf"):
            return
        digit = _info_digit(request.body)
        if digit is not None:
            self._dtmf(call, side, digit, "info")

    def _hangup(
        self, call: Call, side: HangupSide, cause: int | None, skip: Side | None = None
    ) -> list[object]:
        """BYE both legs (but ``skip``) and end the call; returns the BYEs' client keys."""
        if call.state is CallState.ENDED:
            return []
        sent = []
        for leg_side in (Side.CALLER, Side.CALLEE):
            leg = call.leg(leg_side)
            if leg_side is not skip and leg is not None and leg.dialog is not None:
                sent.append(self._send_in_dialog(leg, "BYE"))
        self._finish(call, side, cause)
        return sent

    # ----------------------------------------------------------------- the end

    def _finish(self, call: Call, side: HangupSide, cause: int | None) -> None:
        if call.state is CallState.ENDED:
            return
        call.state = CallState.ENDED
        if call.ring_timer is not None:
            call.ring_timer.cancel()
        if call.app is not None:
            # Agent legs still ringing are cancelled, prompts cut, the engine told (before
            # the media session below closes under the player).
            self.app.finished(call, by_caller=side is HangupSide.CALLER)
        if call.outbound is not None:
            self.originator.finished(call, side)  # likewise, and it may set caller_cancelled
        self.transfers.finished(call)  # a transfer target still ringing stops
        self.app.recordings.finished(call)  # a message being recorded ends (and is kept)
        for watcher in list(call.watchers):
            _watch(watcher.call_ending, call)
        recording = None
        if call.media is not None:
            if call.recording is not None:
                if call.media.recording:  # not if the engine stopped it already
                    call.media.stop_recording()
                recording = str(call.recording)
            call.media.close()
        self._calls.pop(call.key, None)
        if call.forks:
            # A 2xx may still cross our CANCEL; the continuations stay for 64*T1 so such a
            # late answer is ACKed and hung up instead of left ringing on. They become the
            # leg's alone: the call's closure (messages, SDP, media) would stay alive with
            # them, thousands of ended calls under load.
            keys = [fork.invite_key for fork in call.forks]
            for fork in call.forks:
                if fork.invite_key in self._pending:
                    self._pending[fork.invite_key] = functools.partial(self._late_answer, fork)
            asyncio.get_running_loop().call_later(32.0, self._forget_forks, keys)
        for leg in (call.caller, *call.forks):
            if leg.dialog is not None:
                self._dialogs.pop((leg.dialog.call_id, leg.dialog.local_tag), None)
        self._dialogs.pop((call.call_id, call.to_tag), None)
        end = datetime.now(UTC)
        if call.answered is not None:
            disposition = Disposition.ANSWERED
        elif call.caller_cancelled:
            disposition = Disposition.CANCELLED
        else:
            disposition = Disposition.from_final_status(cause or 500)
        record = CallRecord(
            tenant=call.tenant.name,
            call_id=call.call_id,
            from_user=call.from_user,
            to_user=call.to_user,
            start=call.started,
            end=max(end, call.started),
            answer=call.answered,
            disposition=disposition,
            hangup_side=side,
            from_display=call.from_display,
            sip_cause=cause,
            recording_path=recording,
        )
        self._bus.publish(CallEnded(tenant=call.tenant.name, record=record))

    # ----------------------------------------------------------------- helpers

    def _start_recording(self, call: Call, *, force: bool = False) -> bool:
        """Record the call if the tenant records every call (or ``force``: a queue's
        policy, :mod:`~minicc.switch.callrec`); True when a recording started."""
        if self._recordings_dir is None or call.media is None:
            return False
        if not force and not self._should_record(call.tenant):
            return False
        codec = sdplib.negotiate(call.offer).first_codec or "PCMU"
        day = call.started.strftime("%Y-%m-%d")
        # Named by minicc's own call key: Call-IDs come from phones and may repeat.
        rel = Path(call.tenant.name) / day / f"{_safe(call.key)}.wav"
        path = self._recordings_dir / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            call.media.start_recording(path, codec)
        except (OSError, MediaError) as exc:
            log.warning("%s: recording not started: %s", call.call_id, exc)
            return False
        call.recording = Path("recordings") / rel
        return True

    def _sdp_for(self, call: Call, side: Side, sdp: sdplib.SessionDescription) -> bytes:
        """SDP to send to ``side``: the other party's description, pointed at our relay port."""
        leg = call.leg(side)
        assert leg is not None
        if call.media is None:
            return sdp.to_bytes()
        endpoint = call.media.a if side is Side.CALLER else call.media.b
        rewritten = sdplib.rewrite_for_relay(sdp, self._me.host, endpoint.local_port)
        return leg.origin.stamp(rewritten).to_bytes()

    def _send(
        self, request: Request, peer: Peer, on_response: Callable[[Response | None], None]
    ) -> object:
        key = self._tx.send_request(request, peer, self._clock())
        self._pending[key] = on_response
        return key

    def _send_in_dialog(
        self,
        leg: Leg,
        method: str,
        *,
        body: bytes = b"",
        on_response: Callable[[Response | None], None] | None = None,
    ) -> object:
        assert leg.dialog is not None
        extra = [("Contact", self._me.contact(leg.peer.transport))] if method == "INVITE" else []
        request = leg.dialog.create_request(
            method,
            body=body,
            content_type="application/sdp" if body else None,
            extra_headers=[("Max-Forwards", "70"), ("User-Agent", self._me.user_agent), *extra],
        )
        request.headers.remove("Via")
        request.headers.prepend("Via", self._via(leg.peer))
        return self._send(request, leg.peer, on_response or (lambda _r: None))

    def _send_ack(self, leg: Leg, cseq: int) -> None:
        assert leg.dialog is not None
        ack = leg.dialog.create_request("ACK", cseq=cseq, extra_headers=[("Max-Forwards", "70")])
        ack.headers.remove("Via")
        ack.headers.prepend("Via", self._via(leg.peer))
        self._tx.send_ack_for_2xx(ack, leg.peer, self._clock())

    def _via(self, peer: Peer) -> str:
        port = self._me.ports.get(peer.transport) or self._me.ports[Transport.UDP]
        return (
            f"SIP/2.0/{peer.transport.value} {self._me.host}:{port}"
            f";branch={self._tx.new_branch()};rport"
        )

    def _reply(
        self,
        request: Request,
        status: int,
        *,
        to_tag: str | None = None,
        body: bytes = b"",
        extra: list[tuple[str, str]] | None = None,
        reason: str | None = None,
    ) -> None:
        response = make_response(
            request, status, reason, to_tag=to_tag or self._new_tag(), body=body, extra=extra
        )
        try:
            self._tx.send_response(response, self._clock())
        except SipError as exc:  # the transaction already ended (e.g. a race with CANCEL)
            log.debug("response %d not sent: %s", status, exc)

    def _new_tag(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    @staticmethod
    def _tag_of(response: Response) -> str:
        return response.to.tag or ""


def _set_remote(call: Call, side: Side, sdp: sdplib.SessionDescription) -> None:
    if call.media is None:
        return
    endpoint = call.media.a if side is Side.CALLER else call.media.b
    endpoint.set_remote(sdplib.media_address(sdp))
    endpoint.set_telephone_event_pt(sdplib.telephone_event_pt(sdp))


def _watch(hook: Callable[..., bool | None], call: Call, *args: object) -> bool:
    """Call a :class:`CallWatcher` hook; a failure is logged and counts as False."""
    try:
        return bool(hook(call, *args))
    except Exception:
        log.exception("%s: call watcher %s failed", call.key, getattr(hook, "__name__", hook))
        return False


def _warning(code: int, text: str) -> tuple[str, str]:
    """A Warning header (RFC 3261 §20.43); the text is quoted, whatever it holds."""
    return ("Warning", f"{code} minicc {quote(text)}")


def _request_user(request: Request) -> str:
    uri = parse_uri(request.uri)
    return uri.user_unescaped or ""


def _best_final(statuses: list[int]) -> int:
    """Pick the response for the caller when every fork failed (after RFC 3261 §16.7.6)."""
    if any(600 <= s < 700 for s in statuses):
        return next(s for s in statuses if 600 <= s < 700)
    for preferred in (486, 603, 480, 408):
        if preferred in statuses:
            return preferred
    return min(statuses, key=lambda s: (s // 100 != 4, s))


_DIGITS = set("0123456789*#ABCD")


def _info_digit(body: bytes) -> str | None:
    text = body.decode("utf-8", "replace").strip()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().lower() == "signal" and value.strip().upper() in _DIGITS:
            return value.strip().upper()
    if text.upper() in _DIGITS:  # application/dtmf: the body is the digit alone
        return text.upper()
    return None


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in text)[:80]
