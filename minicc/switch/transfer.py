"""Call transfer: REFER on a leg of an answered call, blind or attended (RFC 3515, RFC 3891).

The phone that sends REFER is the *transferor* (normally the agent); the party at the other
end of its call is the *transferee* (the caller), who stays on minicc throughout: minicc is a
B2BUA, so it never asks the caller's phone to place a new call. It moves legs and media
itself and reports to the transferor with the RFC 3515 NOTIFYs (``100 Trying``, then the
final status as ``message/sipfrag``).

Blind (Refer-To without Replaces):

- APPLICATION call (the queue engine's): the engine decides
  (:meth:`~minicc.switch.control.CallObserver.transfer_route`). Accepted: the agent's leg is
  released (NOTIFY 200, the phone BYEs; minicc BYEs it after :data:`RELEASE_GRACE` seconds
  if it does not), the caller is back on minicc's media endpoint with nothing bridged, and the
  engine hears :meth:`~minicc.switch.control.CallObserver.call_transferred` and rings the
  extension or queues the caller. Refused (an outside number: no trunks yet): NOTIFY 403 and
  the agent keeps the caller (RFC 3515 §2.4.4: a failed transfer leaves the call as it was).
- Plain extension call: only the called party can transfer (the caller side's leg would have
  to become a leg minicc INVITEs; not supported yet, 403). The target must be an extension of
  the tenant with a registered phone (else NOTIFY 404/480, call unchanged). The transferor is
  released at once, the target rung for the switch's ring timeout; if nobody answers, the
  transferor is rung back once, and if that fails too the caller is hung up.

Attended (Refer-To carries ``Replaces`` naming the transferor's dialog of a second call
through minicc): the call where the transferor is the *called* party survives (the caller's
call; with an APPLICATION call that is the agent's leg of call 1). Its new far end is the
remote party of the other call: minicc re-INVITEs that party's phone to point its media at the
surviving call's relay endpoint (same codec as the caller's), moves its leg into the
surviving call, BYEs the replaced dialog, releases the transferor's leg and ends the
consultation call. The re-INVITE was chosen over cross-connecting two relay sessions: the
result is an ordinary two-party call (hold, BYE, records all work unchanged) and a phone that
refuses (488, 491) makes the transfer fail cleanly with nothing moved. REFER on either call
works (phones differ on which one they send it on). Transfers where the transferor called
both parties are refused (403).

Most phones hold the caller before they transfer. On an APPLICATION call minicc keeps the
agent's hold to itself (:mod:`minicc.switch.hold`): the transfer ends it (music cut, ring-back
cancelled, ``call_resumed`` reported before ``call_transferred``). On a plain call the hold
was relayed to the caller's phone (:attr:`~minicc.switch.b2bua.Leg.held`): minicc re-INVITEs
it with ``sendrecv`` once the target answers; a caller never held is left alone.

A REFER that cannot be parsed gets 400 with a Warning naming the problem; the call is not
touched.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minicc.switch import sdp as sdplib
from minicc.switch.b2bua import Call, CallState, Leg, Side, _set_remote, _warning
from minicc.switch.control import (
    RingResult,
    Route,
    RouteKind,
    TransferKind,
    TransferReport,
)
from minicc.switch.sip.message import Request, Response
from minicc.switch.sip.refer import ReferError, ReferRequest, notify_headers, parse_refer, sipfrag
from minicc.tenants.models import HangupSide

if TYPE_CHECKING:
    from minicc.switch.appcalls import Attempt
    from minicc.switch.b2bua import B2BUA

__all__ = ["RELEASE_GRACE", "Transfers"]

log = logging.getLogger(__name__)

RELEASE_GRACE = 4.0
"""Seconds a released transferor's phone has to BYE after the final NOTIFY; then minicc BYEs."""


@dataclass(slots=True, eq=False)
class _Released:
    """A transferor's leg taken out of its call: it only waits for the phone's BYE."""

    leg: Leg
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True, eq=False)
class _Subscription:
    """The implicit ``refer`` subscription of one REFER: where its NOTIFYs go."""

    leg: Leg
    done: bool = False


class Transfers:
    """REFER handling and :meth:`CallControl.transfer` for the B2BUA (module docstring)."""

    def __init__(self, b2bua: B2BUA) -> None:
        self._b2bua = b2bua
        self._released: dict[tuple[str, str], _Released] = {}
        self._busy: set[str] = set()
        """Calls with a transfer under way: a second REFER gets 491."""
        self._ringing: dict[str, Attempt] = {}
        """Plain calls whose transfer target rings, by call key."""

    # ----------------------------------------------------------------- entry points

    def handle_released(self, request: Request) -> bool:
        """An in-dialog request on a leg a transfer released; True when it was one."""
        found = self._released.get((request.call_id, request.to.tag or ""))
        if found is None:
            return False
        b2bua = self._b2bua
        if request.method == "BYE":
            b2bua._reply(request, 200)
            self._forget(found)
        elif request.method in ("INVITE", "REFER", "UPDATE"):
            # The dialog is no longer part of a call (a transferor resuming its hold, or
            # transferring again): RFC 3261 §12.2.2's answer for a dialog that does not exist.
            b2bua._reply(request, 481)
        else:  # OPTIONS, INFO, NOTIFY: harmless, acknowledged
            b2bua._reply(request, 200)
        return True

    def handle_refer(self, call: Call, side: Side, request: Request) -> None:
        """REFER on ``side``'s leg of ``call`` (the leg's dialog already checked the CSeq)."""
        b2bua = self._b2bua
        leg = call.leg(side)
        assert leg is not None and leg.dialog is not None
        to_tag = leg.dialog.local_tag
        try:
            refer = parse_refer(request.headers)
        except ReferError as exc:
            log.info("%s: bad REFER: %s", call.key, exc.warning)
            b2bua._reply(request, exc.status, to_tag=to_tag, extra=[_warning(399, exc.warning)])
            return
        problem = self._refusal(call, side, refer)
        if problem is not None:
            b2bua._reply(request, 403, to_tag=to_tag, extra=[_warning(399, problem)])
            return
        if call.key in self._busy:
            b2bua._reply(request, 491, to_tag=to_tag)
            return
        b2bua._reply(request, 202, to_tag=to_tag)
        sub = _Subscription(leg=leg)
        self._notify(sub, 100)
        if refer.replaces is not None:
            self._attended(call, side, refer, sub)
        else:
            self._blind(call, side, refer.number, sub)
        b2bua._flush()

    def transfer(self, key: str, target: str) -> None:
        """:meth:`CallControl.transfer`: a blind transfer of the agent's caller, decided on
        the next turn of the loop; the result is reported like a REFER's."""
        asyncio.get_running_loop().call_soon(self._api_transfer, key, target)

    def _api_transfer(self, key: str, target: str) -> None:
        b2bua = self._b2bua
        call = b2bua.call(key)
        if call is None or call.app is None:
            log.warning("%s: transfer to %s: no such application call", key, target)
            self._report(key, TransferKind.BLIND, None, target, 481)
            return
        if call.callee is None or call.callee.dialog is None or key in self._busy:
            self._report(key, TransferKind.BLIND, _leg_user(call.callee), target, 491)
            return
        if call.state is not CallState.ANSWERED or call.media is None or _mixed(call):
            self._report(key, TransferKind.BLIND, _leg_user(call.callee), target, 403)
            return
        self._blind(call, Side.CALLEE, target, None)
        b2bua._flush()

    def finished(self, call: Call) -> None:
        """The call ended: a transfer target still ringing for it is cancelled."""
        self._busy.discard(call.key)
        attempt = self._ringing.pop(call.key, None)
        if attempt is not None:
            self._b2bua.app._end_attempt(call, attempt, RingResult.CANCELLED)

    # ----------------------------------------------------------------- checks

    def _refusal(self, call: Call, side: Side, refer: ReferRequest) -> str | None:
        if call.state is not CallState.ANSWERED or call.media is None:
            return "only an answered call can be transferred"
        if call.outbound is not None:
            return "a callback call cannot be transferred yet"
        if _mixed(call):
            return "a supervisor or a third party is on the call: end that first"
        if refer.replaces is None and side is Side.CALLER:
            if call.app is not None:
                return "only the agent can transfer this call"
            return "only the called party can blind-transfer a call for now"
        if refer.replaces is None and not refer.number:
            return "Refer-To has no user part: name the extension or number"
        return None

    # ----------------------------------------------------------------- blind

    def _blind(self, call: Call, side: Side, number: str, sub: _Subscription | None) -> None:
        """Transfer the caller of ``call`` (``side`` is the transferor's, CALLEE) to ``number``."""
        transferor = call.leg(side)
        assert transferor is not None
        by = _leg_user(transferor)
        if call.app is not None:
            route = self._ask_engine(call, number)
            if route.kind is RouteKind.REJECT:
                self._finish_sub(sub, route.status)
                self._report(call.key, TransferKind.BLIND, by, number, route.status)
                return
            self._finish_sub(sub, 200)
            self._end_hold(call)
            self._release(call, side, bye_now=sub is None)
            self._refresh(call, Side.CALLER)
            log.info("%s: %s blind-transferred the caller to %s", call.key, by, number)
            self._report(call.key, TransferKind.BLIND, by, number, 200, route=route)
            return
        # A plain call: the switch rings the extension itself.
        b2bua = self._b2bua
        if number not in call.tenant.extensions:
            self._finish_sub(sub, 403)  # outside numbers need a trunk: none yet
            return
        targets = b2bua._contacts.targets(call.tenant.name, number)
        if not targets:
            self._finish_sub(sub, 480)
            return
        self._finish_sub(sub, 200)
        self._release(call, side, bye_now=sub is None)
        log.info("%s: %s blind-transferred %s to %s", call.key, by, call.from_user, number)
        self._ring_for(call, number, ring_back=by)

    def _ask_engine(self, call: Call, number: str) -> Route:
        observer = self._b2bua.app.observer
        decide = getattr(observer, "transfer_route", None)
        if decide is None:  # an engine that knows nothing of transfers: extensions only
            if number in call.tenant.extensions:
                return Route(kind=RouteKind.EXTENSION, extension=number)
            return Route(kind=RouteKind.REJECT, status=403)
        try:
            route = decide(call.key, number)
        except Exception:
            log.exception("%s: observer.transfer_route failed; refusing with 500", call.key)
            return Route(kind=RouteKind.REJECT, status=500)
        if not isinstance(route, Route) or (
            route.kind is RouteKind.REJECT and not 300 <= route.status <= 699
        ):
            log.error("%s: observer.transfer_route returned %r; refusing", call.key, route)
            return Route(kind=RouteKind.REJECT, status=500)
        return route

    def _ring_for(self, call: Call, number: str, *, ring_back: str | None) -> None:
        """Ring ``number`` for the caller of a plain call; on no answer ring ``ring_back``
        (the transferor) once, then give up and hang up."""
        b2bua, media = self._b2bua, call.media
        assert media is not None
        targets = b2bua._contacts.targets(call.tenant.name, number)
        if not targets:
            self._give_up(call, 480)
            return
        negotiation = sdplib.negotiate(call.offer)
        te = negotiation.telephone_event
        offer = sdplib.build_offer(
            b2bua._me.host,
            media.b.local_port,
            origin=sdplib.OriginState(),
            codecs=(negotiation.first_codec or "PCMU",),
            telephone_event_pt=te.payload_type if te is not None else None,
        )

        def answered(
            owner: Call,
            attempt: Attempt,
            leg: Leg,
            response: Response,
            answer: sdplib.SessionDescription,
        ) -> None:
            self._ringing.pop(owner.key, None)
            b2bua._confirm_callee(owner, leg, response)
            _set_remote(owner, Side.CALLEE, answer)
            media.a.forward_from_peer = media.b.forward_from_peer = True
            b2bua.app._end_attempt(owner, attempt, RingResult.ANSWERED)
            call.target = number
            self._busy.discard(owner.key)
            self._refresh(owner, Side.CALLER)
            log.info("%s: transfer target %s answered", owner.key, number)

        def ended(owner: Call, attempt: Attempt, result: RingResult) -> None:
            if self._ringing.get(owner.key) is attempt:
                del self._ringing[owner.key]
            if result is RingResult.ANSWERED or owner.state is CallState.ENDED:
                return
            log.info("%s: transfer target %s: %s", owner.key, number, result.value)
            if ring_back is not None and ring_back != number:
                self._ring_for(owner, ring_back, ring_back=None)
            else:
                self._give_up(owner, 480)
            b2bua._flush()

        self._busy.add(call.key)
        self._ringing[call.key] = b2bua.app.dial(
            call,
            number,
            targets,
            offer,
            timeout=b2bua._ring_timeout,
            answered=answered,
            ended=ended,
        )

    def _give_up(self, call: Call, cause: int) -> None:
        self._busy.discard(call.key)
        self._b2bua._hangup(call, HangupSide.SYSTEM, cause=cause)

    # ----------------------------------------------------------------- attended

    def _attended(self, call: Call, side: Side, refer: ReferRequest, sub: _Subscription) -> None:
        b2bua = self._b2bua
        replaces = refer.replaces
        assert replaces is not None

        def fail(status: int) -> None:
            self._finish_sub(sub, status)
            self._report(call.key, TransferKind.ATTENDED, _leg_user(sub.leg), refer.number, status)

        found = b2bua._dialogs.get((replaces.call_id, replaces.to_tag)) or b2bua._dialogs.get(
            (replaces.call_id, replaces.from_tag)
        )
        if found is None:
            fail(481)  # RFC 3891 §3: no dialog to replace
            return
        other, other_side = found
        mine, theirs = call.leg(side), other.leg(other_side)
        if (
            other is call
            or theirs is None
            or theirs.dialog is None
            or mine is None
            or other.tenant.name != call.tenant.name
            or theirs.peer != mine.peer
            or other.state is not CallState.ANSWERED
            or other.media is None
            or other.outbound is not None
            or other.key in self._busy
            or _mixed(other)
        ):
            # Not this phone's other call (or not one that can be joined): refused.
            fail(403)
            return
        # The call where the transferor was called survives (the caller's call); the
        # other one gives up its far end.
        if side is Side.CALLEE:
            keep, consult, consult_side = call, other, other_side
        elif other_side is Side.CALLEE:
            keep, consult, consult_side = other, call, side
        else:
            fail(403)  # the transferor called both: not supported
            return
        party_leg = consult.leg(consult_side.other)
        if party_leg is None or party_leg.dialog is None or keep.media is None:
            fail(481)
            return
        self._busy.update((keep.key, consult.key))
        self._join(keep, consult, consult_side, party_leg, sub, refer.number)

    def _join(
        self,
        keep: Call,
        consult: Call,
        consult_side: Side,
        party: Leg,
        sub: _Subscription,
        number: str,
    ) -> None:
        """Re-INVITE ``party`` (the consultation call's far end) onto ``keep``'s callee
        endpoint; on its 2xx move the leg into ``keep`` and release the transferor."""
        b2bua, media = self._b2bua, keep.media
        assert media is not None
        if keep.app is not None:
            codec: str = keep.app.codec
            te = keep.app.telephone_event
        else:
            negotiation = sdplib.negotiate(keep.offer)
            codec = negotiation.first_codec or "PCMU"
            te = negotiation.telephone_event.payload_type if negotiation.telephone_event else None
        offer = sdplib.build_offer(
            b2bua._me.host,
            media.b.local_port,
            origin=party.origin,
            codecs=(codec,),
            telephone_event_pt=te,
        )
        party.pending_reinvite = True

        def done(response: Response | None) -> None:
            if response is not None and response.status < 200:
                return
            party.pending_reinvite = False
            self._busy.difference_update((keep.key, consult.key))
            status = 408 if response is None else response.status
            answer = None
            if response is not None and response.is_success:
                b2bua._send_ack(party, response.cseq.seq)
                try:
                    answer = sdplib.parse_sdp(response.body) if response.body else None
                except sdplib.SdpError:
                    answer = None
                if answer is None:
                    status = 488
            if answer is None or keep.state is CallState.ENDED or consult.state is CallState.ENDED:
                log.info("%s: attended transfer failed (%d)", keep.key, status)
                self._finish_sub(sub, status if status >= 300 else 500)
                self._report(keep.key, TransferKind.ATTENDED, _leg_user(sub.leg), number, status)
                b2bua._flush()
                return
            if party.dialog is not None and response is not None:
                party.dialog.update_target(response)
            self._move_party(keep, consult, consult_side, party, answer, sub, number)
            b2bua._flush()

        b2bua._send_in_dialog(party, "INVITE", body=offer.to_bytes(), on_response=done)

    def _move_party(
        self,
        keep: Call,
        consult: Call,
        consult_side: Side,
        party: Leg,
        answer: sdplib.SessionDescription,
        sub: _Subscription,
        number: str,
    ) -> None:
        b2bua, media = self._b2bua, keep.media
        assert media is not None and party.dialog is not None
        transferor = _leg_user(keep.callee)
        if party.side is Side.CALLEE:
            party_user = _leg_user(party) or consult.target
        else:
            party_user = consult.from_user
        refer_on_keep = sub.leg is keep.callee
        # 1. The phone hears the outcome first, then its legs are released: the one the
        # REFER came on has RELEASE_GRACE to BYE, the other is BYEd at once (for the
        # replaced dialog that is RFC 3891 §3: the target ends it).
        self._finish_sub(sub, 200)
        self._release(keep, Side.CALLEE, bye_now=not refer_on_keep)
        replaced = consult.leg(consult_side)
        if replaced is not None and replaced.dialog is not None:
            b2bua._dialogs.pop((replaced.dialog.call_id, replaced.dialog.local_tag), None)
            self._schedule_bye(replaced, now=refer_on_keep)
        # 2. The party's leg leaves the consultation call and becomes keep's callee.
        if consult.callee is party or consult_side is Side.CALLEE:
            consult.callee = None
        if party in consult.forks:
            consult.forks.remove(party)
        party.side = Side.CALLEE
        party.final_status = party.final_status or 200  # answered (it may have been a caller)
        keep.callee = party
        keep.forks.append(party)
        if keep.app is not None:
            self._end_hold(keep)
            b2bua.app.player.stop(media, "a", reason="transferred")
        _set_remote(keep, Side.CALLEE, answer)
        media.a.forward_from_peer = media.b.forward_from_peer = True
        keep.target = party_user
        self._refresh(keep, Side.CALLER)
        log.info("%s: %s joined the caller with %s (attended)", keep.key, transferor, party_user)
        # 3. The engine hears of the transfer before the consultation call's end (so an
        # agent answering it is moved over, not wrapped up), then that call ends: its
        # record is an answered call like any other.
        self._report(
            keep.key,
            TransferKind.ATTENDED,
            transferor,
            number,
            200,
            replaced=consult.key,
            party=party_user,
        )
        b2bua._finish(consult, HangupSide.CALLER, cause=None)
        b2bua._dialogs[(party.dialog.call_id, party.dialog.local_tag)] = (keep, Side.CALLEE)

    # ----------------------------------------------------------------- legs and NOTIFY

    def _end_hold(self, call: Call) -> None:
        """A transfer ends the agent's hold of the call (:mod:`minicc.switch.hold`): the
        music is cut, a ring-back cancelled, and the engine hears ``call_resumed`` before
        ``call_transferred`` (so its hold time and the agent's hold timer end first)."""
        if call.app is not None and call.app.held is not None and call.media is not None:
            self._b2bua.app.holds._end(call, "transferred")

    def _release(self, call: Call, side: Side, *, bye_now: bool) -> None:
        """Take the transferor's leg out of ``call``; the caller stays on minicc's endpoint
        with nothing bridged (the engine or the next answer decides what it hears). The
        phone is expected to BYE (after its final NOTIFY); minicc BYEs it after
        :data:`RELEASE_GRACE` seconds, or at once with ``bye_now``."""
        b2bua, leg, media = self._b2bua, call.leg(side), call.media
        assert leg is not None and leg.dialog is not None
        key = (leg.dialog.call_id, leg.dialog.local_tag)
        if b2bua._dialogs.get(key, (None,))[0] is call:
            del b2bua._dialogs[key]
        if side is Side.CALLEE:
            call.callee = None
        if media is not None:
            media.a.forward_from_peer = False
            media.b.forward_from_peer = False
            media.b.set_remote(None)
        self._schedule_bye(leg, now=bye_now)

    def _schedule_bye(self, leg: Leg, *, now: bool = False) -> None:
        """BYE a released leg whose phone did not (at once for a transfer from the API)."""
        assert leg.dialog is not None
        key = (leg.dialog.call_id, leg.dialog.local_tag)
        released = self._released.setdefault(key, _Released(leg=leg))
        if now:
            self._bye(released)
            return
        if released.timer is None:
            loop = asyncio.get_running_loop()
            released.timer = loop.call_later(RELEASE_GRACE, self._bye, released)

    def _bye(self, released: _Released) -> None:
        if released.leg.dialog is None:
            return
        key = (released.leg.dialog.call_id, released.leg.dialog.local_tag)
        if self._released.get(key) is not released:
            return
        log.info("released leg %s did not hang up; sending BYE", key[0])
        self._b2bua._send_in_dialog(released.leg, "BYE")
        self._forget(released)
        self._b2bua._flush()

    def _forget(self, released: _Released) -> None:
        if released.timer is not None:
            released.timer.cancel()
        for key, value in list(self._released.items()):
            if value is released:
                del self._released[key]

    def _refresh(self, call: Call, side: Side) -> None:
        """Take the transferee off hold: when the transferor had put it on hold (a relayed
        re-INVITE, :attr:`Leg.held`), re-INVITE it with a fresh sendrecv offer now that it
        talks to someone again. A phone minicc never held is left alone."""
        b2bua, leg, media = self._b2bua, call.leg(side), call.media
        if leg is None or leg.dialog is None or media is None or leg.pending_reinvite:
            return
        if not leg.held:
            return
        if call.app is not None:
            codec: str = call.app.codec
            te = call.app.telephone_event
        else:
            negotiation = sdplib.negotiate(call.offer)
            codec = negotiation.first_codec or "PCMU"
            te = negotiation.telephone_event.payload_type if negotiation.telephone_event else None
        endpoint = media.a if side is Side.CALLER else media.b
        offer = sdplib.build_offer(
            b2bua._me.host,
            endpoint.local_port,
            origin=leg.origin,
            codecs=(codec,),
            telephone_event_pt=te,
        )
        leg.held = False
        leg.pending_reinvite = True

        def done(response: Response | None) -> None:
            if response is not None and response.status < 200:
                return
            leg.pending_reinvite = False
            if response is None or not response.is_success:
                return
            b2bua._send_ack(leg, response.cseq.seq)
            try:
                answer = sdplib.parse_sdp(response.body) if response.body else None
            except sdplib.SdpError:
                answer = None
            if answer is not None:
                _set_remote(call, side, answer)
            b2bua._flush()

        b2bua._send_in_dialog(leg, "INVITE", body=offer.to_bytes(), on_response=done)

    def _notify(self, sub: _Subscription, status: int) -> None:
        """A refer NOTIFY on the transferor's dialog (RFC 3515 §2.4.4)."""
        b2bua, leg = self._b2bua, sub.leg
        if sub.done or leg.dialog is None:
            return
        sub.done = status >= 200
        request = leg.dialog.create_request(
            "NOTIFY",
            body=sipfrag(status),
            extra_headers=[
                ("Max-Forwards", "70"),
                ("User-Agent", b2bua._me.user_agent),
                ("Contact", b2bua._me.contact(leg.peer.transport)),
                *notify_headers(status),
            ],
        )
        request.headers.remove("Via")
        request.headers.prepend("Via", b2bua._via(leg.peer))
        b2bua._send(request, leg.peer, lambda _r: None)

    def _finish_sub(self, sub: _Subscription | None, status: int) -> None:
        if sub is not None:
            self._notify(sub, status)

    def _report(
        self,
        key: str,
        kind: TransferKind,
        by: str | None,
        target: str,
        status: int,
        *,
        route: Route | None = None,
        replaced: str | None = None,
        party: str | None = None,
    ) -> None:
        call = self._b2bua.call(key)
        if call is not None and call.app is None:
            return  # plain calls have no engine to tell
        report = TransferReport(
            key=key,
            kind=kind,
            by=by,
            target=target,
            status=status,
            route=route,
            replaced=replaced,
            party=party,
        )
        self._b2bua.app._tell_soon(key, "call_transferred", report)


def _mixed(call: Call) -> bool:
    """A supervisor monitor or a conference is on the call (:mod:`minicc.switch.monitor`):
    its mixer owns the media, so the call is not transferred under it."""
    media = call.media
    tapped = media is not None and (media.a.tap is not None or media.b.tap is not None)
    return bool(call.watchers) or tapped


def _leg_user(leg: Leg | None) -> str | None:
    """The extension behind a leg: the To user of minicc's INVITE to it."""
    if leg is None:
        return None
    if leg.invite is not None:
        return leg.invite.to.uri.user_unescaped
    return None
