"""Application calls: calls minicc answers itself and hands to the engine (IVR, queues).

When the :class:`~minicc.switch.control.CallObserver` routes a new call to APPLICATION, the
switch is the caller's far end: it allocates a media session, answers with the relay's
endpoint ``a`` in the caller's own codec (RFC 3264 §6.1) and tells the engine
(``call_answered``). From then on the engine drives the call through the
:class:`~minicc.switch.control.CallControl` methods of :class:`AppCalls`:

- ``play``: WAV prompts to the caller through the :class:`MediaPlayer` (side ``a``), a new
  one replacing the old; the caller hears no agent audio while a prompt plays.
- ``ring``: an *attempt* at an agent extension. Each registered contact gets its own callee
  leg (the B2BUA's forking code), its INVITE offering the call's codec on endpoint ``b``.
  Several attempts may ring at once (ring-all); the first 2xx wins: playback is cut, the leg
  becomes the call's callee and the relay carries both ways. From there the call is a plain
  two-party call of the B2BUA (re-INVITE, INFO, BYE from either side).
- ``hangup``: BYE (or a final status before the answer).

The ringing itself (:meth:`AppCalls.dial`: one leg per contact, first usable 2xx wins, a
timeout, exactly one end) is shared with the calls minicc places agent first
(:mod:`minicc.switch.originate`), which only decide differently what an answer and an end
mean.

Every ``play`` ends in exactly one ``playback_done`` and every ``ring`` in exactly one
``ring_result``. Observer calls other than ``route`` are delivered with ``loop.call_soon``
in the order they happened, so the engine is never re-entered from inside one of its own
requests; an exception in the engine is logged with the call key and never reaches the
transaction layer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from minicc.switch import sdp as sdplib
from minicc.switch.b2bua import (
    B2BUA,
    Call,
    CallState,
    Leg,
    Side,
    _best_final,
    _request_user,
    _set_remote,
    _warning,
)
from minicc.switch.callrec import CallRecordings
from minicc.switch.control import (
    CallObserver,
    HoldBy,
    IncomingCall,
    PlaybackOutcome,
    RingResult,
    Route,
    RouteKind,
)
from minicc.switch.hold import Holds
from minicc.switch.media.player import Clip, MediaPlayer, Playback, PlaybackDone, load_clip
from minicc.switch.media.wav import WavError
from minicc.switch.sip.message import Request, Response, make_response
from minicc.switch.sip.peer import Peer
from minicc.tenants.directory import TenantEntry
from minicc.tenants.models import HangupSide

__all__ = ["AppCall", "AppCalls", "Attempt"]

log = logging.getLogger(__name__)

Codec = Literal["PCMU", "PCMA"]

# Decoded prompt files kept in memory: a prompt set is a few hundred short clips.
_CLIP_CACHE_ENTRIES = 512


AttemptAnswered = Callable[[Call, "Attempt", Leg, Response, sdplib.SessionDescription], None]
"""``(call, attempt, leg, 2xx, its SDP)``: the first phone of an attempt answered with an
address to send media to. The attempt is still open: the callee ends it (ANSWERED)."""
AttemptEnded = Callable[[Call, "Attempt", RingResult], None]
"""``(call, attempt, result)``: the attempt is over; called exactly once."""


@dataclass(slots=True, eq=False)
class Attempt:
    """One :meth:`AppCalls.dial`: a callee leg per registered contact of ``extension``."""

    id: int
    extension: str
    answered: AttemptAnswered
    ended: AttemptEnded
    legs: list[Leg] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    done: bool = False
    replaces: Leg | None = None
    """A ring-back's held leg: its answer may replace the call's callee (hold.py)."""


@dataclass(slots=True, eq=False)
class AppCall:
    """What an application call adds to a :class:`~minicc.switch.b2bua.Call`."""

    codec: Codec
    """The codec minicc answered the caller with: prompts and agent legs use it."""
    telephone_event: int | None
    """The caller's RFC 4733 payload type, offered to agents with the same number."""
    attempts: dict[int, Attempt] = field(default_factory=dict)
    """Attempts still ringing, by id."""
    playbacks: dict[int, Playback] = field(default_factory=dict)
    """Playbacks not reported yet, by the id :meth:`AppCalls.play` returned."""
    held: HoldBy | None = None
    """Who holds the bridged call, None when not on hold (:mod:`minicc.switch.hold`)."""


class _Clips:
    """Prompt files decoded once; least recently used out first, a changed file read again."""

    def __init__(self, max_entries: int = _CLIP_CACHE_ENTRIES) -> None:
        self._max = max_entries
        self._items: OrderedDict[Path, tuple[int, int, Clip]] = OrderedDict()

    def load(self, path: Path) -> Clip:
        """Raises: OSError, WavError."""
        stat = path.stat()
        entry = self._items.get(path)
        if entry is not None and entry[:2] == (stat.st_mtime_ns, stat.st_size):
            self._items.move_to_end(path)
            return entry[2]
        clip = load_clip(path, path.stem)
        self._items[path] = (stat.st_mtime_ns, stat.st_size, clip)
        self._items.move_to_end(path)
        while len(self._items) > self._max:
            self._items.popitem(last=False)
        return clip


class AppCalls:
    """The switch side of :class:`~minicc.switch.control.CallControl` (module doc)."""

    def __init__(self, b2bua: B2BUA, observer: CallObserver | None) -> None:
        self._b2bua = b2bua
        self.observer = observer
        self.player = MediaPlayer(on_done=self._on_playback_done)
        self._clips = _Clips()
        self._ids = itertools.count(1)  # playback and attempt ids, unique per switch
        # The player's own playback id -> (call, the id play() returned).
        self._by_player: dict[int, tuple[Call, int]] = {}
        self.recordings = CallRecordings(b2bua, self._tell_soon, b2bua._recordings_dir)
        """Call recordings and messages (record_call, pause/resume, record)."""
        self.holds = Holds(b2bua, self)

    # ----------------------------------------------------------------- from the B2BUA

    def route(self, key: str, tenant: TenantEntry, request: Request, caller: str) -> Route:
        """Ask the observer what a new call becomes; a failing or nonsensical answer is a
        500 for the caller, never an exception into the transaction layer."""
        assert self.observer is not None
        incoming = IncomingCall(
            key=key,
            tenant=tenant.name,
            number=_request_user(request),
            caller=caller,
            caller_name=request.from_.display,
            call_id=request.call_id,
        )
        try:
            route = self.observer.route(incoming)
        except Exception:
            log.exception("%s: observer.route failed; refusing the call with 500", key)
            return Route(kind=RouteKind.REJECT, status=500)
        problem = _route_problem(route)
        if problem is not None:
            log.error("%s: observer.route returned %r (%s); refusing with 500", key, route, problem)
            return Route(kind=RouteKind.REJECT, status=500)
        return route

    def start(self, call: Call, negotiation: sdplib.Negotiation) -> None:
        """Answer a call routed to APPLICATION (once its media ports are bound)."""
        te = negotiation.telephone_event
        call.app = AppCall(
            codec="PCMA" if negotiation.first_codec == "PCMA" else "PCMU",
            telephone_event=te.payload_type if te is not None else None,
        )
        asyncio.get_running_loop().create_task(self._answer(call, negotiation))

    def dtmf(self, call: Call, digit: str) -> None:
        """A digit from the caller (RFC 4733 on the relay, or SIP INFO)."""
        if not self.recordings.dtmf(call, digit):  # a message's stop digit ends it instead
            self._tell_soon(call.key, "dtmf", digit)

    def answer_reinvite(self, call: Call, request: Request) -> None:
        """A re-INVITE from the caller while no agent is bridged: minicc answers it itself
        (hold, resume, session refresh), keeping the codec prompts are played in."""
        b2bua, app, media = self._b2bua, call.app, call.media
        assert app is not None and call.caller.dialog is not None
        if media is None:
            b2bua._reply(request, 491)
            return
        ip, port = b2bua._me.host, media.a.local_port
        if request.body:
            try:
                offer = sdplib.parse_sdp(request.body)
            except sdplib.SdpError as exc:
                b2bua._reply(request, 400, extra=[_warning(399, f"bad SDP: {exc}")])
                return
            negotiation = sdplib.negotiate(offer, (app.codec, "telephone-event"))
            if not negotiation.usable:
                b2bua._reply(request, 488)
                return
            media.a.set_remote(sdplib.media_address(offer))
            media.a.set_telephone_event_pt(sdplib.telephone_event_pt(offer))
            sdp = sdplib.build_answer(offer, negotiation, ip, port, origin=call.caller.origin)
        else:
            # RFC 3261 §14.2: an offer in our 2xx; the answer comes in the ACK, and since
            # we offer the one codec already in use, nothing it says changes the media.
            te = app.telephone_event
            sdp = sdplib.build_offer(
                ip, port, origin=call.caller.origin, codecs=(app.codec,), telephone_event_pt=te
            )
        if request.headers.get("Contact"):
            call.caller.dialog.update_target(request)
        ok = make_response(
            request,
            200,
            to_tag=call.to_tag,
            body=sdp.to_bytes(),
            extra=[
                ("Contact", b2bua._me.contact(call.caller.peer.transport, call.to_user)),
                ("Content-Type", "application/sdp"),
            ],
        )
        b2bua._tx.send_response(ok, b2bua._clock())

    def finished(self, call: Call, *, by_caller: bool) -> None:
        """The call ended (any side): cancel what still rings, end prompts, tell the engine."""
        app = call.app
        assert app is not None
        for attempt in list(app.attempts.values()):
            self._end_attempt(call, attempt, RingResult.CANCELLED)
        for pid, playback in app.playbacks.items():
            self._by_player.pop(playback.id, None)
            ended = playback.result
            outcome = ended.outcome.value if ended is not None else PlaybackOutcome.ABORTED.value
            playback.cancel("call ended")  # its own report is dropped: popped above
            self._tell_soon(call.key, "playback_done", pid, PlaybackOutcome(outcome))
        app.playbacks.clear()
        self._tell_soon(call.key, "call_ended", by_caller)

    # ----------------------------------------------------------------- CallControl

    def play(self, key: str, files: Sequence[Path], *, loop: bool = False) -> int:
        """Play WAV files back to back to the caller, replacing what plays (reported
        CANCELLED). Returns the id ``playback_done`` will carry; a file that cannot be read
        or played, or a call that is gone, gives ABORTED."""
        pid = next(self._ids)
        call = self._live(key, "play")
        if call is None or call.app is None or call.media is None:
            self._tell_soon(key, "playback_done", pid, PlaybackOutcome.ABORTED)
            return pid
        try:
            clips = [self._clips.load(Path(f)) for f in files]
            playback = self.player.play(call.media, "a", clips, codec=call.app.codec, loop=loop)
        except (OSError, WavError, ValueError) as exc:
            log.warning("%s: cannot play %s: %s", key, [str(f) for f in files], exc)
            self._tell_soon(key, "playback_done", pid, PlaybackOutcome.ABORTED)
            return pid
        call.app.playbacks[pid] = playback
        self._by_player[playback.id] = (call, pid)
        return pid

    def stop_playback(self, key: str) -> None:
        """Cut the caller's playback now (its ``playback_done`` says CANCELLED)."""
        call = self._live(key, "stop_playback")
        if call is not None and call.media is not None:
            self.player.stop(call.media, "a", reason="stopped")

    def ring(self, key: str, extension: str, *, timeout: float) -> int:
        """Ring every registered contact of ``extension`` for ``timeout`` seconds; the first
        to answer is bridged to the caller. Returns the id ``ring_result`` will carry."""
        attempt_id = next(self._ids)
        b2bua = self._b2bua
        call = self._live(key, "ring")
        if call is None or call.app is None:
            self._tell_soon(key, "ring_result", attempt_id, RingResult.CANCELLED)
            return attempt_id
        app, media = call.app, call.media
        if media is None or call.callee is not None:
            log.warning("%s: ring %s refused: not answered yet or already bridged", key, extension)
            self._tell_soon(key, "ring_result", attempt_id, RingResult.FAILED)
            return attempt_id
        # A number that is no extension (an agent's transfer to an outside number) goes out
        # through the tenant's trunk, within its dial rules, or not at all.
        outside = extension not in call.tenant.extensions
        targets = b2bua._contacts.targets(call.tenant.name, extension, outside=outside)
        if not targets:
            # Always reported on a later turn of the loop, never from inside ring() itself.
            self._tell_soon(key, "ring_result", attempt_id, RingResult.UNAVAILABLE)
            return attempt_id
        offer = sdplib.build_offer(
            b2bua._me.host,
            media.b.local_port,
            origin=sdplib.OriginState(),
            codecs=(app.codec,),  # the relay does not transcode: the agent must match
            telephone_event_pt=app.telephone_event,
        )
        attempt = self.dial(
            call,
            extension,
            targets,
            offer,
            timeout=timeout,
            answered=self._bridge,
            ended=self._report_ring,
            attempt_id=attempt_id,
        )
        app.attempts[attempt_id] = attempt
        b2bua._flush()
        return attempt_id

    def dial(
        self,
        call: Call,
        extension: str,
        targets: Sequence[tuple[str, Peer]],
        offer: sdplib.SessionDescription,
        *,
        timeout: float,
        answered: AttemptAnswered,
        ended: AttemptEnded,
        caller: tuple[str, str | None] | None = None,
        attempt_id: int | None = None,
    ) -> Attempt:
        """Ring ``targets`` (the registered contacts of ``extension``) as one attempt.

        Each contact gets its own callee leg INVITEd with ``offer`` (RFC 3261 §16.7
        semantics: the first 2xx wins, the others are cancelled). The messages are queued,
        not flushed: the caller flushes once it is done.

        Args:
            call: the call the legs belong to.
            extension: who is rung (the To of every leg).
            targets: (Contact URI, Peer) per device; at least one.
            offer: the SDP every leg is offered (stamped with each leg's own origin).
            timeout: seconds before the attempt ends NO_ANSWER and its legs are cancelled.
            answered: the first answer with usable SDP (see :data:`AttemptAnswered`).
            ended: the attempt's one end (see :data:`AttemptEnded`).
            caller: the From user (escaped) and display name the phones see; by default
                the call's caller.
            attempt_id: the id to use, when the caller allocated one already.

        Returns:
            The attempt, ringing.
        """
        attempt = Attempt(
            id=next(self._ids) if attempt_id is None else attempt_id,
            extension=extension,
            answered=answered,
            ended=ended,
        )

        def on_response(owner: Call, leg: Leg, response: Response | None) -> None:
            self._on_agent_response(owner, attempt, leg, response)

        b2bua = self._b2bua
        for uri, peer in targets:
            leg = b2bua._fork(
                call, uri, peer, offer, to_user=extension, on_response=on_response, caller=caller
            )
            attempt.legs.append(leg)
        loop = asyncio.get_running_loop()
        attempt.timer = loop.call_later(timeout, self._ring_timeout, call, attempt, timeout)
        return attempt

    def cancel_ring(self, key: str, attempt: int) -> None:
        """Withdraw an attempt still ringing (CANCELLED); a finished one is left alone."""
        call = self._live(key, "cancel_ring")
        if call is None or call.app is None:
            return
        ringing = call.app.attempts.get(attempt)
        if ringing is not None:
            self._end_attempt(call, ringing, RingResult.CANCELLED)
            self._b2bua._flush()

    def hangup(self, key: str, *, status: int = 200) -> None:
        """End the call: BYE to the caller and the agent (a final ``status``, at least 300,
        to a caller not answered yet). The call record says the system hung up. An
        originated call is withdrawn at whatever stage it is
        (:meth:`Originator.hangup <minicc.switch.originate.Originator.hangup>`)."""
        call = self._live(key, "hangup")
        if call is None:
            return
        b2bua = self._b2bua
        if call.outbound is not None:
            b2bua.originator.hangup(call, status=status)
            b2bua._flush()
            return
        cause = None if status < 300 else status
        # Answered: BYE to every leg still there (a conference's caller may have left).
        if call.caller.dialog is not None or call.state is CallState.ANSWERED:
            b2bua._hangup(call, HangupSide.SYSTEM, cause=cause)
        else:
            final = status if status >= 300 else 480
            b2bua._reply(call.caller_invite, final, to_tag=call.to_tag)
            b2bua._cancel_forks(call)
            b2bua._finish(call, HangupSide.SYSTEM, final)
        b2bua._flush()

    def hold(self, key: str) -> bool:
        """See :meth:`CallControl.hold <minicc.switch.control.CallControl.hold>`."""
        return self.holds.hold(key)

    def resume(self, key: str) -> bool:
        """See :meth:`CallControl.resume <minicc.switch.control.CallControl.resume>`."""
        return self.holds.resume(key)

    def ring_back(self, key: str, extension: str, *, timeout: float) -> int:
        """See :meth:`CallControl.ring_back <minicc.switch.control.CallControl.ring_back>`."""
        return self.holds.ring_back(key, extension, timeout=timeout)

    # ----------------------------------------------------------------- answering

    async def _answer(self, call: Call, negotiation: sdplib.Negotiation) -> None:
        try:
            await self._answer_with_media(call, negotiation)
        finally:
            self._b2bua._flush()

    async def _answer_with_media(self, call: Call, negotiation: sdplib.Negotiation) -> None:
        b2bua = self._b2bua
        if call.state is CallState.ENDED:  # cancelled before this task ran
            return
        if b2bua._media is None:
            log.error("%s: application call refused: the media relay is off", call.key)
            b2bua._reply(call.caller_invite, 503, to_tag=call.to_tag)
            b2bua._finish(call, HangupSide.SYSTEM, 503)
            return
        media = await b2bua._bind_media(call)
        if media is None:
            return
        # Nothing from endpoint b reaches the caller until an agent is bridged (an agent
        # phone's early media, say); the player keeps this while prompts play.
        media.a.forward_from_peer = False
        answer = sdplib.build_answer(
            call.offer, negotiation, b2bua._me.host, media.a.local_port, origin=call.caller.origin
        )
        b2bua._answer_caller(call, answer.to_bytes(), answered_by="minicc")
        self._tell_soon(call.key, "call_answered")

    # ----------------------------------------------------------------- agent legs

    def _on_agent_response(
        self, call: Call, attempt: Attempt, leg: Leg, response: Response | None
    ) -> None:
        status = 408 if response is None else response.status
        if status < 200:
            return
        if response is not None and response.is_success:
            taken = call.callee is not None and call.callee is not attempt.replaces
            if call.state is CallState.ENDED or attempt.done or taken:
                self._b2bua._ack_and_bye(leg, response)  # lost the race, or too late
            else:
                self._first_answer(call, attempt, leg, response)
            return
        leg.final_status = status
        if attempt.done or call.state is CallState.ENDED:
            return
        if 600 <= status < 700:
            # A global failure ends the attempt at once, like a forking proxy (§16.7 step 5).
            self._end_attempt(call, attempt, _ring_result(status))
        elif all(other.final_status for other in attempt.legs):
            statuses = [other.final_status or 500 for other in attempt.legs]
            self._end_attempt(call, attempt, _ring_result(_best_final(statuses)))

    def _first_answer(self, call: Call, attempt: Attempt, leg: Leg, response: Response) -> None:
        """A 2xx from a leg of an open attempt: the attempt's winner if its SDP says where
        to send media, else that phone failed and the attempt's others ring on."""
        try:
            answer = sdplib.parse_sdp(response.body) if response.body else None
        except sdplib.SdpError as exc:
            log.warning("%s: %s sent bad SDP: %s", call.key, attempt.extension, exc)
            answer = None
        if answer is None or sdplib.media_address(answer) is None:
            self._b2bua._ack_and_bye(leg, response)
            leg.final_status = 502
            if all(other.final_status for other in attempt.legs):
                self._end_attempt(call, attempt, RingResult.FAILED)
            return
        attempt.answered(call, attempt, leg, response, answer)

    def _bridge(
        self,
        call: Call,
        attempt: Attempt,
        leg: Leg,
        response: Response,
        answer: sdplib.SessionDescription,
    ) -> None:
        """A ring() attempt's winner: it becomes the application call's callee."""
        b2bua, app, media = self._b2bua, call.app, call.media
        assert app is not None and media is not None
        b2bua._confirm_callee(call, leg, response)
        # The announcement is cut before the agent is heard (its playback_done first).
        self.player.stop(media, "a", reason="agent answered")
        media.a.forward_from_peer = True
        media.b.forward_from_peer = True
        _set_remote(call, Side.CALLEE, answer)
        self._end_attempt(call, attempt, RingResult.ANSWERED)
        for other in list(app.attempts.values()):
            self._end_attempt(call, other, RingResult.CANCELLED)
        log.info("%s: agent %s at %s bridged", call.key, attempt.extension, leg.contact_uri)

    def _ring_timeout(self, call: Call, attempt: Attempt, timeout: float) -> None:
        if attempt.done:
            return
        log.info("%s: %s: no answer after %.1f s", call.key, attempt.extension, timeout)
        self._end_attempt(call, attempt, RingResult.NO_ANSWER)
        self._b2bua._flush()

    def _end_attempt(self, call: Call, attempt: Attempt, result: RingResult) -> None:
        """Close an attempt once: cancel its legs still ringing and hand ``result`` to the
        attempt's ``ended``."""
        if attempt.done:
            return
        attempt.done = True
        if attempt.timer is not None:
            attempt.timer.cancel()
        self._b2bua._cancel_legs(attempt.legs)
        if call.app is not None:
            call.app.attempts.pop(attempt.id, None)
        attempt.ended(call, attempt, result)

    def _report_ring(self, call: Call, attempt: Attempt, result: RingResult) -> None:
        """A ring() attempt's end: what the engine hears as ``ring_result``."""
        self._tell_soon(call.key, "ring_result", attempt.id, result)

    # ----------------------------------------------------------------- the observer

    def _on_playback_done(self, done: PlaybackDone) -> None:
        # Called by the player on a turn of its own (call_soon), so the engine hears it
        # directly: ahead of what was queued after the cut (an agent's ANSWERED).
        entry = self._by_player.pop(done.playback_id, None)
        if entry is None:
            return  # already reported (the call ended)
        call, pid = entry
        if call.app is not None:
            call.app.playbacks.pop(pid, None)
        self._tell(call.key, "playback_done", pid, PlaybackOutcome(done.outcome.value))

    def _live(self, key: str, what: str) -> Call | None:
        call = self._b2bua.call(key)
        if call is None:
            log.debug("%s: %s for a call that is gone", key, what)
        return call

    def _tell_soon(self, key: str, method: str, *args: object) -> None:
        asyncio.get_running_loop().call_soon(self._tell, key, method, *args)

    def _tell(self, key: str, method: str, *args: object) -> None:
        observer = self.observer
        if observer is None:
            return
        try:
            getattr(observer, method)(key, *args)
        except Exception:
            log.exception("%s: observer.%s failed", key, method)


def _route_problem(route: object) -> str | None:
    if not isinstance(route, Route):
        return "not a Route"
    if route.kind is RouteKind.EXTENSION and not route.extension:
        return "EXTENSION without an extension"
    if route.kind is RouteKind.REJECT and not 300 <= route.status <= 699:
        return "REJECT needs a status from 300 to 699"
    return None


def _ring_result(status: int) -> RingResult:
    """What an agent leg's final failure means to the engine."""
    if status == 603:  # Decline: the agent pressed "reject" (RFC 3261 §21.6.2)
        return RingResult.REJECTED
    if status in (486, 600):  # Busy Here / Busy Everywhere (§21.4.24, §21.6.1)
        return RingResult.BUSY
    return RingResult.FAILED
