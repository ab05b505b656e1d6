"""Hold and resume on application calls, and the hold timeout's ring-back to the agent.

An application call (:mod:`minicc.switch.appcalls`) with an agent bridged is a caller leg
(relay endpoint ``a``) and the agent's leg (endpoint ``b``). A plain B2BUA relays a hold
re-INVITE from one party to the other, so the caller's phone would be told "you are on hold"
and hear silence. In a call center the caller must hear music instead, so minicc keeps the
hold to itself:

- **The agent's phone holds** (a re-INVITE whose offer is sendonly, inactive or the RFC 2543
  ``c=0.0.0.0``; RFC 3264 §8.4, RFC 6337 §5.3): minicc answers it (recvonly / inactive, as
  RFC 3264 §6.1 pairs them), sends nothing toward the caller's phone, stops forwarding in
  both directions and reports ``call_held(key, HoldBy.PHONE)``; the engine then plays music
  on hold to the caller (side ``a``, looped). A later offer from the phone that is not a
  hold (sendrecv) resumes: the music is cut here, forwarding restored, ``call_resumed``
  reported. A re-INVITE from the phone while it holds (a session refresh, RFC 4028) is
  answered again and changes nothing. A re-INVITE without a hold while not held (a refresh
  or codec change) is relayed to the caller as before.
- **The API holds** (:meth:`Holds.hold`, for the agent's screen): no SIP toward the phone at
  all; the relay stops forwarding both ways (the agent hears silence), ``call_held(key,
  HoldBy.API)`` follows. :meth:`Holds.resume` ends it. If the phone then holds as well, the
  hold becomes the phone's (its resume ends it).
- **The caller's phone re-INVITEs.** While not held: relayed to the agent as any B2BUA does
  (the caller putting the agent on hold is the agent's business; the agent's phone answers
  it). While held by the agent: minicc answers it itself
  (:meth:`AppCalls.answer_reinvite`), since minicc, playing the music, is the caller's far
  end then; nothing reaches the held agent's phone.
- **Ring-back** (:meth:`Holds.ring_back`, the engine's hold timeout): a NEW INVITE to every
  device of the agent, From the held caller with the display name "On hold: <name>",
  offering endpoint ``b``. The caller keeps hearing music. The first device to answer
  replaces the held leg (which gets BYE) and the call resumes on it; a resume on the held
  leg cancels the ring-back; otherwise it ends NO_ANSWER after its timeout. Exactly one
  ``ring_result`` either way.

Forwarding while held: the player holds the agent's audio back from the caller while music
plays (``hold_peer``) and restores what the endpoint was like when it started; endpoint
``a`` is also set not to forward before the music starts (the engine starts it a loop turn
later), so a resume sets both endpoints forwarding again explicitly after cutting the music.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from minicc.switch import sdp as sdplib
from minicc.switch.b2bua import B2BUA, Call, Leg, Side, _set_remote, _warning
from minicc.switch.control import HoldBy, RingResult
from minicc.switch.sip.message import Request, Response, make_response

if TYPE_CHECKING:
    from minicc.switch.appcalls import AppCalls, Attempt

__all__ = ["ON_HOLD_DISPLAY", "Holds"]

log = logging.getLogger(__name__)

ON_HOLD_DISPLAY = "On hold: {name}"
"""What a ring-back shows on the agent's phone (``name``: the caller's name or number)."""


class Holds:
    """Hold state of application calls; owned by :class:`~minicc.switch.appcalls.AppCalls`."""

    def __init__(self, b2bua: B2BUA, app: AppCalls) -> None:
        self._b2bua = b2bua
        self._app = app

    # ----------------------------------------------------------------- from the B2BUA

    def on_reinvite(self, call: Call, side: Side, request: Request) -> bool:
        """A re-INVITE on a bridged application call; True when handled here (module doc),
        False to let the B2BUA relay it."""
        app, media, agent = call.app, call.media, call.callee
        if app is None or media is None or agent is None or agent.dialog is None:
            return False
        if side is Side.CALLER:
            if app.held is None:
                return False
            self._app.answer_reinvite(call, request)
            return True
        offer: sdplib.SessionDescription | None = None
        if request.body:
            try:
                offer = sdplib.parse_sdp(request.body)
            except sdplib.SdpError as exc:
                self._b2bua._reply(request, 400, extra=[_warning(399, f"bad SDP: {exc}")])
                return True
        holding = offer is not None and offer.is_hold
        if app.held is None and not holding:
            return False  # a refresh or a codec change: the caller's phone answers it
        if agent.pending_reinvite or call.caller.pending_reinvite:
            self._b2bua._reply(request, 491)  # RFC 3261 §14.2: one offer at a time
            return True
        if app.held is None and call.watchers:
            # A supervisor or third party is mixed in: hold music would garble the mix.
            self._b2bua._reply(
                request, 488, extra=[_warning(399, "no hold during a conference or monitor")]
            )
            return True
        if not self._answer_agent(call, agent, request, offer):
            return True
        if app.held is None:
            self._start(call, HoldBy.PHONE)
        elif holding:
            app.held = HoldBy.PHONE  # the phone holds too: its resume ends the hold
        elif offer is not None and app.held is HoldBy.PHONE:
            self._end(call, "phone resumed")
        self._b2bua._flush()
        return True

    # ----------------------------------------------------------------- CallControl

    def hold(self, key: str) -> bool:
        """Hold a bridged call without SIP (module doc); False when not possible."""
        call = self._b2bua.call(key)
        if call is None or call.app is None or call.media is None:
            log.info("%s: hold refused: no such application call", key)
            return False
        if call.callee is None or call.callee.dialog is None:
            log.info("%s: hold refused: no agent bridged", key)
            return False
        if call.app.held is not None:
            return False
        if call.watchers:
            log.info("%s: hold refused: a conference or supervisor monitor is on", key)
            return False
        self._start(call, HoldBy.API)
        return True

    def resume(self, key: str) -> bool:
        """End an API hold (module doc); False when not held, or held by the phone."""
        call = self._b2bua.call(key)
        if call is None or call.app is None or call.app.held is not HoldBy.API:
            return False
        self._end(call, "resumed")
        self._b2bua._flush()
        return True

    def ring_back(self, key: str, extension: str, *, timeout: float) -> int:
        """Ring the agent's devices again for a held call (module doc); an attempt id."""
        app_calls, b2bua = self._app, self._b2bua
        call = b2bua.call(key)
        held = call.callee if call is not None else None
        if call is None or call.app is None or call.media is None or call.app.held is None:
            attempt_id = next(app_calls._ids)
            log.info("%s: ring-back refused: the call is not on hold", key)
            app_calls._tell_soon(key, "ring_result", attempt_id, RingResult.FAILED)
            return attempt_id
        targets = b2bua._contacts.targets(call.tenant.name, extension)
        if not targets:
            attempt_id = next(app_calls._ids)
            app_calls._tell_soon(key, "ring_result", attempt_id, RingResult.UNAVAILABLE)
            return attempt_id
        app = call.app
        offer = sdplib.build_offer(
            b2bua._me.host,
            call.media.b.local_port,
            origin=sdplib.OriginState(),
            codecs=(app.codec,),
            telephone_event_pt=app.telephone_event,
        )
        name = call.from_display or call.from_user
        attempt = app_calls.dial(
            call,
            extension,
            targets,
            offer,
            timeout=timeout,
            answered=self._ring_back_answered,
            ended=app_calls._report_ring,
            caller=(call.from_user, ON_HOLD_DISPLAY.format(name=name)),
        )
        attempt.replaces = held
        app.attempts[attempt.id] = attempt
        log.info("%s: ringing %s back (held %s)", key, extension, "by " + app.held.value)
        b2bua._flush()
        return attempt.id

    # ----------------------------------------------------------------- internals

    def _answer_agent(
        self, call: Call, agent: Leg, request: Request, offer: sdplib.SessionDescription | None
    ) -> bool:
        """200 OK to the agent's re-INVITE from minicc itself, on endpoint ``b`` in the
        call's codec; False (and an error sent) when the offer cannot be answered."""
        b2bua, app, media = self._b2bua, call.app, call.media
        assert app is not None and media is not None and agent.dialog is not None
        ip, port = b2bua._me.host, media.b.local_port
        if offer is not None:
            negotiation = sdplib.negotiate(offer, (app.codec, "telephone-event"))
            if not negotiation.usable:
                b2bua._reply(request, 488)
                return False
            # RFC 2543 hold (c=0.0.0.0) clears the address: nothing is sent to the phone.
            _set_remote(call, Side.CALLEE, offer)
            sdp = sdplib.build_answer(offer, negotiation, ip, port, origin=agent.origin)
        else:
            # RFC 3261 §14.2: our offer goes in the 2xx and the answer in the ACK; we offer
            # the codec in use, so nothing the ACK says changes the media or the hold.
            sdp = sdplib.build_offer(
                ip, port, origin=agent.origin, codecs=(app.codec,),
                telephone_event_pt=app.telephone_event,
            )  # fmt: skip
        if request.headers.get("Contact"):
            agent.dialog.update_target(request)
        ok = make_response(
            request,
            200,
            to_tag=agent.dialog.local_tag,
            body=sdp.to_bytes(),
            extra=[
                ("Contact", b2bua._me.contact(agent.peer.transport)),
                ("Content-Type", "application/sdp"),
            ],
        )
        b2bua._tx.send_response(ok, b2bua._clock())
        return True

    def _start(self, call: Call, by: HoldBy) -> None:
        app, media = call.app, call.media
        assert app is not None and media is not None
        app.held = by
        media.a.forward_from_peer = False  # the caller stops hearing the agent
        media.b.forward_from_peer = False  # the agent hears silence
        log.info("%s: on hold (%s)", call.key, by.value)
        self._app._tell_soon(call.key, "call_held", by)

    def _end(self, call: Call, reason: str) -> None:
        """The hold is over: cut the music, forward both ways, cancel any ring-back."""
        app, media = call.app, call.media
        assert app is not None and media is not None
        app.held = None
        self._app.player.stop(media, "a", reason=reason)
        media.a.forward_from_peer = True
        media.b.forward_from_peer = True
        media.a.stream.resync()  # the agent's audio is a new source toward the caller
        for attempt in list(app.attempts.values()):
            if attempt.replaces is not None:
                self._app._end_attempt(call, attempt, RingResult.CANCELLED)
        log.info("%s: resumed (%s)", call.key, reason)
        self._app._tell_soon(call.key, "call_resumed")

    def _ring_back_answered(
        self,
        call: Call,
        attempt: Attempt,
        leg: Leg,
        response: Response,
        answer: sdplib.SessionDescription,
    ) -> None:
        """The agent answered the ring-back: the new leg replaces the held one."""
        b2bua = self._b2bua
        old = call.callee
        b2bua._confirm_callee(call, leg, response)
        if old is not None and old is not leg and old.dialog is not None:
            b2bua._dialogs.pop((old.dialog.call_id, old.dialog.local_tag), None)
            b2bua._send_in_dialog(old, "BYE")
        _set_remote(call, Side.CALLEE, answer)
        self._app._end_attempt(call, attempt, RingResult.ANSWERED)  # reported first
        if call.app is not None and call.app.held is not None:
            self._end(call, "ring-back answered")
        log.info(
            "%s: %s answered the ring-back at %s", call.key, attempt.extension, leg.contact_uri
        )
