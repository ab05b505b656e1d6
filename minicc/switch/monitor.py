"""A third phone on a live call: supervisor listen / whisper / barge, and three-way conferences.

Both put a third party on an answered two-party call (a queue call, a plain extension call
or a callback) through the :class:`~minicc.switch.media.mixer.MixBridge`. The third party
is a call of its own in the B2BUA (its *party call*), with its own media session whose
endpoint ``a`` faces its phone; the call it joins is the *target*. The target keeps its
relay: the mixer taps what each party sends and sends a mix only to the listeners whose
routing is not the plain peer (module doc of :mod:`~minicc.switch.media.mixer`), so in
listen and whisper modes the caller still hears the agent straight through the relay.

How a party call comes to be:

- :meth:`Monitors.monitor` and :meth:`Monitors.conference`: minicc rings every registered
  device of an extension (:meth:`AppCalls.dial <minicc.switch.appcalls.AppCalls.dial>`,
  first answer wins) offering PCMU and PCMA; on answer the phone joins.
- :meth:`Monitors.attach_monitor`: the supervisor called minicc (a feature code such as
  ``*82<ext>``, routed to APPLICATION by the engine and answered); that call joins.

The mixer decodes and encodes per leg, so the third phone may use another G.711 law than
the call (a PCMA supervisor on a PCMU call works).

Each join is a small state machine (:data:`TRANSITIONS`)::

    RINGING --answered--> JOINED --end--> ENDED
    RINGING --end--> ENDED

It ends, once, when any of these happens: the party call ends (the supervisor hangs up:
the target goes on, its legs back on the plain relay exactly as before), the target call
ends (the party is hung up), :meth:`Monitors.stop_monitor`, or the party's phones do not
answer. In a conference the caller or the agent may leave too: the other two go on
talking (still through the mixer: the leg that left is gone, so there is no relay pair
left to fall back to); when the third party leaves first, the caller and agent are back on
the plain relay.

The supervisor's keys switch the mode live: 1 listen, 2 whisper, 3 barge.

Reports, each on a later turn of the loop (never from inside a CallControl call), to
observers that have the method: ``monitor_started``, ``monitor_mode_changed`` and exactly
one ``monitor_ended`` per monitor; exactly one ``conference_result`` per
:meth:`Monitors.conference`, and after an ANSWERED one exactly one ``conference_ended``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Literal

from minicc.events import CallAnswered, CallStarted
from minicc.switch import sdp as sdplib
from minicc.switch.b2bua import Call, CallState, Leg, Side, _set_remote
from minicc.switch.control import MonitorEnd, MonitorMode, RingResult
from minicc.switch.media.mixer import (
    AGENT,
    CALLER,
    SUPERVISOR,
    MixBridge,
    MixLeg,
    MixMode,
    conference_routing,
    supervisor_routing,
)
from minicc.switch.media.relay import MediaError
from minicc.switch.originate import _user_part
from minicc.switch.sip.headers import Headers
from minicc.switch.sip.message import Request, Response
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.sip.uri import quote
from minicc.tenants.models import HangupSide

if TYPE_CHECKING:
    from minicc.switch.appcalls import AppCalls, Attempt
    from minicc.switch.b2bua import B2BUA

__all__ = [
    "MODE_KEYS",
    "THIRD",
    "TRANSITIONS",
    "Join",
    "JoinKind",
    "JoinStateError",
    "Monitors",
    "Stage",
    "Step",
    "mode_for_key",
]

log = logging.getLogger(__name__)

Codec = Literal["PCMU", "PCMA"]

THIRD = "third"
"""The mixer's name for a conference's third party."""

MODE_KEYS: dict[str, MonitorMode] = {
    "1": MonitorMode.LISTEN,
    "2": MonitorMode.WHISPER,
    "3": MonitorMode.BARGE,
}
"""The supervisor's keys during a monitor."""


def mode_for_key(digit: str) -> MonitorMode | None:
    """The mode a supervisor's key selects; None for any other key."""
    return MODE_KEYS.get(digit)


class JoinStateError(RuntimeError):
    """A step the join's stage does not allow (a bug, never a peer's doing)."""


class JoinKind(Enum):
    MONITOR = "monitor"
    CONFERENCE = "conference"


class Stage(Enum):
    RINGING = "ringing"
    """The party's phones ring (or its own call is being attached)."""
    JOINED = "joined"
    """The mixer runs."""
    ENDED = "ended"


class Step(Enum):
    ANSWERED = "answered"
    END = "end"


TRANSITIONS: dict[tuple[Stage, Step], Stage] = {
    (Stage.RINGING, Step.ANSWERED): Stage.JOINED,
    (Stage.RINGING, Step.END): Stage.ENDED,
    (Stage.JOINED, Step.END): Stage.ENDED,
}
"""Every stage change of a join; any other pair is a :class:`JoinStateError`."""


@dataclass(slots=True, eq=False)
class Join:
    """A third party on a call."""

    id: str
    """The party call's key: the monitor's id."""
    kind: JoinKind
    target: Call
    """The call joined."""
    party: Call
    """The third party's own call (its caller leg is the third phone)."""
    mode: MonitorMode
    """For a monitor; a conference is always everybody-hears-everybody."""
    attempt_id: int = 0
    """What :meth:`Monitors.conference` returned (conference reports carry it)."""
    stage: Stage = Stage.RINGING
    attempt: Attempt | None = None
    """The party's phones ringing, when minicc rings them."""
    codec: Codec = "PCMU"
    """The codec of the third phone."""
    bridge: MixBridge | None = None
    gone: frozenset[str] = frozenset()
    """Parties of the target that left a conference (CALLER, AGENT)."""

    def move(self, step: Step) -> Stage:
        """Apply one step.

        Raises:
            JoinStateError: the pair is not in :data:`TRANSITIONS`.
        """
        new = TRANSITIONS.get((self.stage, step))
        if new is None:
            raise JoinStateError(f"{self.kind.value}: {step.value} in stage {self.stage.value}")
        self.stage = new
        return new


class Monitors:
    """The switch side of the monitor and conference :class:`CallControl` methods.

    It is the :class:`~minicc.switch.b2bua.CallWatcher` of every target and party call.
    """

    def __init__(self, b2bua: B2BUA, app: AppCalls) -> None:
        self._b2bua = b2bua
        self._app = app
        self._by_party: dict[str, Join] = {}
        """Party call key -> its join (the monitor id is the party call key)."""
        self._by_target: dict[str, Join] = {}
        """Target call key -> the one join on it."""

    # ----------------------------------------------------------------- queries

    def joins(self) -> list[Join]:
        """Joins ringing or running."""
        return list(self._by_party.values())

    def join(self, monitor: str) -> Join | None:
        return self._by_party.get(monitor)

    def find_call(self, tenant: str, extension: str) -> str | None:
        """:meth:`CallControl.find_call <minicc.switch.control.CallControl.find_call>`."""
        for call in self._b2bua.calls():
            if call.tenant.name != tenant or call.state is not CallState.ANSWERED:
                continue
            if call.callee is None or call.key in self._by_party:
                continue
            if extension in _parties(call):
                return call.key
        return None

    # ----------------------------------------------------------------- CallControl

    def monitor(self, key: str, supervisor: str, mode: MonitorMode, *, timeout: float) -> str:
        """Ring ``supervisor``'s phones; on answer they monitor call ``key`` in ``mode``.

        Returns:
            The monitor id; ``monitor_ended`` REFUSED follows at once when the call cannot
            be monitored, NOT_ANSWERED when no phone answers.

        Raises:
            ValueError: an empty extension or a timeout not above 0.
        """
        if not supervisor or not timeout > 0:
            raise ValueError(f"monitor needs an extension and a timeout above 0, got {timeout}")
        target = self._b2bua.call(key)
        problem = self._unjoinable(target)
        if problem is not None or target is None:
            monitor = f"refused-{self._b2bua._new_tag()}"
            log.warning("%s: monitor by %s refused: %s", key, supervisor, problem)
            self._tell_soon("monitor_ended", monitor, MonitorEnd.REFUSED)
            return monitor
        shown = (_user_part(_agent_of(target)), f"Monitor {_agent_of(target)}")
        join = self._place(JoinKind.MONITOR, target, supervisor, mode, shown, timeout, 0)
        return join.id

    def attach_monitor(self, monitor: str, key: str, mode: MonitorMode) -> None:
        """Join the supervisor's own answered call ``monitor`` to call ``key`` in ``mode``;
        refused (``monitor_ended`` REFUSED, the supervisor hung up) when either is gone."""
        if monitor in self._by_party:
            log.warning("%s: attach_monitor again for a joined monitor; ignored", monitor)
            return
        party, target = self._b2bua.call(monitor), self._b2bua.call(key)
        problem = self._unjoinable(target)
        if party is None or party.state is not CallState.ANSWERED or party.media is None:
            problem = "the supervisor's call is not answered"
        elif monitor == key:
            problem = "a call cannot monitor itself"
        if problem is not None or party is None or target is None:
            log.warning("%s: monitor of %s refused: %s", monitor, key, problem)
            self._tell_soon("monitor_ended", monitor, MonitorEnd.REFUSED)
            if party is not None:
                self._hang_up(party)
            return
        codec: Codec = party.app.codec if party.app is not None else "PCMU"
        join = Join(id=monitor, kind=JoinKind.MONITOR, target=target, party=party, mode=mode)
        join.codec = codec
        self._register(join)
        self._joined(join)
        self._b2bua._flush()

    def set_monitor_mode(self, monitor: str, mode: MonitorMode) -> None:
        """Change what the supervisor does, effective with the next packet."""
        join = self._by_party.get(monitor)
        if join is None or join.kind is not JoinKind.MONITOR:
            log.debug("%s: set_monitor_mode for no monitor", monitor)
            return
        if join.mode is mode:
            return
        join.mode = mode
        if join.bridge is not None:
            join.bridge.set_routing(supervisor_routing(MixMode(mode.value)))
        log.info("%s: monitor of %s now %s", monitor, join.target.key, mode.value)
        if join.stage is Stage.JOINED:
            self._tell_soon("monitor_mode_changed", monitor, mode)

    def stop_monitor(self, monitor: str) -> None:
        """Hang up the supervisor (or stop ringing them); the call goes on untouched."""
        join = self._by_party.get(monitor)
        if join is None or join.kind is not JoinKind.MONITOR:
            log.debug("%s: stop_monitor for no monitor", monitor)
            return
        self._end(join, MonitorEnd.STOPPED, RingResult.CANCELLED)
        self._b2bua._flush()

    def conference(self, key: str, extension: str, *, timeout: float) -> int:
        """Ring ``extension``; on answer it joins call ``key`` and all three talk.

        Returns:
            The attempt id ``conference_result`` (and later ``conference_ended``) carry.

        Raises:
            ValueError: an empty extension or a timeout not above 0.
        """
        if not extension or not timeout > 0:
            raise ValueError(f"conference needs an extension and a timeout above 0, got {timeout}")
        attempt_id = next(self._app._ids)
        target = self._b2bua.call(key)
        problem = self._unjoinable(target)
        if problem is not None or target is None:
            log.warning("%s: conference with %s refused: %s", key, extension, problem)
            self._tell_soon("conference_result", key, attempt_id, RingResult.FAILED)
            return attempt_id
        shown = (_user_part(target.from_user), target.from_display)
        self._place(
            JoinKind.CONFERENCE, target, extension, MonitorMode.BARGE, shown, timeout, attempt_id
        )
        return attempt_id

    # ----------------------------------------------------------------- CallWatcher

    def leg_left(self, call: Call, side: Side) -> bool:
        """A conference goes on when the caller or agent leaves and two parties remain."""
        join = self._by_target.get(call.key)
        if join is None or join.kind is not JoinKind.CONFERENCE or join.stage is not Stage.JOINED:
            return False
        name = CALLER if side is Side.CALLER else AGENT
        if join.gone or join.bridge is None or call.media is None:
            return False  # the last of the call's own parties: the conference is over
        leg = call.leg(side)
        b2bua = self._b2bua
        if leg is not None and leg.dialog is not None:
            b2bua._dialogs.pop((leg.dialog.call_id, leg.dialog.local_tag), None)
            leg.dialog = None
        if side is Side.CALLER:
            b2bua._dialogs.pop((call.call_id, call.to_tag), None)
        endpoint = call.media.a if side is Side.CALLER else call.media.b
        endpoint.tap = None
        endpoint.set_remote(None)  # the phone that left gets nothing more
        join.gone = frozenset({name})
        other = AGENT if name == CALLER else CALLER
        join.bridge.set_routing({other: {THIRD}, THIRD: {other}})
        log.info("%s: %s left the conference; the other two go on", call.key, name)
        return True

    def call_dtmf(self, call: Call, side: Side, digit: str) -> None:
        """The supervisor's keys switch the mode."""
        join = self._by_party.get(call.key)
        mode = mode_for_key(digit)
        if join is not None and join.kind is JoinKind.MONITOR and mode is not None:
            self.set_monitor_mode(join.id, mode)

    def call_ending(self, call: Call) -> None:
        """A target or party call ends: so does its join."""
        join = self._by_target.get(call.key)
        if join is not None:
            self._end(join, MonitorEnd.CALL_ENDED, RingResult.CANCELLED)
            return
        join = self._by_party.get(call.key)
        if join is not None:
            joined = join.stage is Stage.JOINED
            why = MonitorEnd.SUPERVISOR_HUNG_UP if joined else MonitorEnd.NOT_ANSWERED
            self._end(join, why, RingResult.CANCELLED)

    # ----------------------------------------------------------------- placing the party

    def _unjoinable(self, target: Call | None) -> str | None:
        if target is None:
            return "no such call"
        if target.state is not CallState.ANSWERED or target.callee is None:
            return "the call is not answered"
        if target.key in self._by_target or target.key in self._by_party:
            return "the call already has a third party"
        return self._unjoinable_media(target)

    @staticmethod
    def _unjoinable_media(target: Call) -> str | None:
        if target.media is None:
            return "the call's media is not relayed"
        if target.media.a.tap is not None or target.media.b.tap is not None:
            return "the call's audio is already tapped"
        if not (target.media.a.forward_from_peer and target.media.b.forward_from_peer):
            # Music on hold or a prompt plays to a party; the mixer would take the legs
            # back to the relay as it found them, i.e. silenced, when it leaves.
            return "a prompt or music plays on the call"
        return None

    def _place(
        self,
        kind: JoinKind,
        target: Call,
        extension: str,
        mode: MonitorMode,
        shown: tuple[str, str | None],
        timeout: float,
        attempt_id: int,
    ) -> Join:
        b2bua = self._b2bua
        party = self._new_party_call(kind, target, extension)
        b2bua._calls[party.key] = party
        b2bua._bus.publish(
            CallStarted(
                tenant=target.tenant.name,
                call_id=party.call_id,
                caller=party.from_user,
                caller_name=party.from_display,
                callee=extension,
            )
        )
        join = Join(
            id=party.key, kind=kind, target=target, party=party, mode=mode, attempt_id=attempt_id
        )
        self._register(join)
        log.info("%s: %s: ringing %s for call %s", party.key, kind.value, extension, target.key)
        targets = b2bua._contacts.targets(target.tenant.name, extension)
        if not targets:
            self._end(join, MonitorEnd.NOT_ANSWERED, RingResult.UNAVAILABLE)
        elif b2bua._media is None:
            self._end(join, MonitorEnd.REFUSED, RingResult.FAILED)
        else:
            asyncio.get_running_loop().create_task(self._ring(join, targets, shown, timeout))
        return join

    async def _ring(
        self,
        join: Join,
        targets: list[tuple[str, Peer]],
        shown: tuple[str, str | None],
        timeout: float,
    ) -> None:
        try:
            await self._ring_party(join, targets, shown, timeout)
        finally:
            self._b2bua._flush()

    async def _ring_party(
        self,
        join: Join,
        targets: list[tuple[str, Peer]],
        shown: tuple[str, str | None],
        timeout: float,
    ) -> None:
        b2bua, party = self._b2bua, join.party
        assert b2bua._media is not None
        if join.stage is Stage.ENDED:
            return
        try:
            media = await b2bua._media.create_session(party.key)
        except MediaError as exc:
            log.warning("%s: no media port: %s", party.key, exc)
            self._end(join, MonitorEnd.REFUSED, RingResult.FAILED)
            return
        if join.stage is Stage.ENDED:
            media.close()
            return
        party.media = media
        media.a.forward_from_peer = False  # endpoint b faces nobody
        offer = sdplib.build_offer(b2bua._me.host, media.a.local_port, origin=sdplib.OriginState())
        party.offer = offer
        party.state = CallState.RINGING
        join.attempt = self._app.dial(
            party,
            party.target,
            targets,
            offer,
            timeout=timeout,
            answered=self._party_answered,
            ended=self._party_ring_ended,
            caller=shown,
        )

    def _party_answered(
        self,
        call: Call,
        attempt: Attempt,
        leg: Leg,
        response: Response,
        answer: sdplib.SessionDescription,
    ) -> None:
        join = self._by_party.get(call.key)
        b2bua = self._b2bua
        b2bua._confirm_leg(call, leg, response, Side.CALLER)
        assert leg.dialog is not None
        call.to_tag = leg.dialog.local_tag
        call.offer = answer
        _set_remote(call, Side.CALLER, answer)
        call.state = CallState.ANSWERED
        call.answered = datetime.now(UTC)
        b2bua._bus.publish(
            CallAnswered(tenant=call.tenant.name, call_id=call.call_id, answered_by=leg.contact_uri)
        )
        self._app._end_attempt(call, attempt, RingResult.ANSWERED)  # the other phones stop
        if join is None or join.stage is not Stage.RINGING:
            b2bua._hangup(call, HangupSide.SYSTEM, cause=None)
            return
        join.attempt = None
        join.codec = "PCMA" if sdplib.negotiate(answer).first_codec == "PCMA" else "PCMU"
        self._joined(join)

    def _party_ring_ended(self, call: Call, attempt: Attempt, result: RingResult) -> None:
        join = self._by_party.get(call.key)
        if result is RingResult.ANSWERED or join is None or join.stage is not Stage.RINGING:
            return
        join.attempt = None
        log.info("%s: %s: %s did not answer (%s)", call.key, join.kind.value, call.target, result)
        self._end(join, MonitorEnd.NOT_ANSWERED, result)

    # ----------------------------------------------------------------- the mix

    def _joined(self, join: Join) -> None:
        """The party answered: start the mixer, or refuse if the target is no longer fit."""
        target, party = join.target, join.party
        problem = None
        if target.state is not CallState.ANSWERED or target.media is None:
            problem = "the call ended"
        elif party.media is None:
            problem = "the party has no media"
        else:
            problem = self._unjoinable_media(target)
        if problem is not None or target.media is None or party.media is None:
            log.warning("%s: %s not joined: %s", join.id, join.kind.value, problem)
            self._end(join, MonitorEnd.REFUSED, RingResult.FAILED)
            return
        join.move(Step.ANSWERED)
        caller_codec, agent_codec = _call_codecs(target)
        name = SUPERVISOR if join.kind is JoinKind.MONITOR else THIRD
        legs = {
            CALLER: MixLeg(endpoint=target.media.a, codec=caller_codec, direct=AGENT),
            AGENT: MixLeg(endpoint=target.media.b, codec=agent_codec, direct=CALLER),
            name: MixLeg(endpoint=party.media.a, codec=join.codec),
        }
        if join.kind is JoinKind.MONITOR:
            routing = supervisor_routing(MixMode(join.mode.value))
        else:
            routing = conference_routing((CALLER, AGENT, THIRD))
        bridge = MixBridge(target.key, legs, routing)
        join.bridge = bridge
        for party_name, leg in legs.items():
            leg.endpoint.tap = _feeder(bridge, party_name)
        bridge.start()
        log.info(
            "%s: %s joined call %s (%s, third party in %s, call in %s/%s)",
            join.id,
            join.kind.value,
            target.key,
            join.mode.value,
            join.codec,
            caller_codec,
            agent_codec,
        )
        if join.kind is JoinKind.MONITOR:
            self._tell_soon("monitor_started", join.id, target.key, join.mode)
        else:
            self._tell_soon("conference_result", target.key, join.attempt_id, RingResult.ANSWERED)

    def _end(self, join: Join, why: MonitorEnd, result: RingResult) -> None:
        """The one end of a join: mixer off, legs back on the relay, party hung up,
        reported. Idempotent."""
        if join.stage is Stage.ENDED:
            return
        join.move(Step.END)
        joined = join.bridge is not None
        self._by_party.pop(join.id, None)
        if self._by_target.get(join.target.key) is join:
            del self._by_target[join.target.key]
        for call in (join.target, join.party):
            if self in call.watchers:
                call.watchers.remove(self)
        if join.bridge is not None:
            join.bridge.close()
            for media in (join.target.media, join.party.media):
                if media is not None:
                    media.a.tap = None
                    media.b.tap = None
        if join.attempt is not None:
            attempt, join.attempt = join.attempt, None
            self._app._end_attempt(join.party, attempt, RingResult.CANCELLED)
        self._hang_up(join.party)
        target = join.target
        if join.gone and target.state is not CallState.ENDED:
            # A conference whose caller or agent had left: one party remains, alone.
            self._b2bua._hangup(target, HangupSide.SYSTEM, cause=None)
        log.info("%s: %s of %s ended (%s)", join.id, join.kind.value, target.key, why.value)
        if join.kind is JoinKind.MONITOR:
            self._tell_soon("monitor_ended", join.id, why)
        elif joined:
            self._tell_soon("conference_ended", target.key, join.attempt_id)
        else:
            self._tell_soon("conference_result", target.key, join.attempt_id, result)

    # ----------------------------------------------------------------- helpers

    def _register(self, join: Join) -> None:
        self._by_party[join.id] = join
        self._by_target[join.target.key] = join
        for call in (join.target, join.party):
            if self not in call.watchers:
                call.watchers.append(self)

    def _hang_up(self, call: Call) -> None:
        """End a party call at whatever stage it is (BYE, or its ringing legs cancelled)."""
        b2bua = self._b2bua
        if call.state is CallState.ENDED:
            return
        if call.app is not None:
            self._app.hangup(call.key)
            return
        if call.caller.dialog is not None:
            b2bua._hangup(call, HangupSide.SYSTEM, cause=None)
        else:
            b2bua._cancel_forks(call)
            b2bua._finish(call, HangupSide.SYSTEM, 487)

    def _new_party_call(self, kind: JoinKind, target: Call, extension: str) -> Call:
        """A call minicc places to the third phone (as originate does: the request is the
        call's origin, never sent; each phone gets its own INVITE)."""
        b2bua = self._b2bua
        tenant = target.tenant
        call_id = f"{kind.value}-{b2bua._new_tag()}@minicc"
        key = f"{next(b2bua._ids)}/{call_id}"
        tag = b2bua._new_tag()
        user = _user_part(extension)
        display = "Monitor" if kind is JoinKind.MONITOR else "Conference"
        headers = Headers()
        headers.add("From", f"{quote(display)} <sip:{user}@{tenant.realm}>;tag={tag}")
        headers.add("To", f"<sip:{user}@{tenant.realm}>")
        headers.add("Call-ID", call_id)
        headers.add("CSeq", "1 INVITE")
        headers.add("Max-Forwards", "70")
        origin = Request(headers=headers, method="INVITE", uri=f"sip:{user}@{tenant.realm}")
        me = b2bua._me
        placeholder = Peer(Transport.UDP, me.host, me.ports[Transport.UDP])
        return Call(
            key=key,
            call_id=call_id,
            tenant=tenant,
            caller_invite=origin,
            caller_key=object(),  # matches no server transaction: nobody can CANCEL it
            caller=Leg(side=Side.CALLER, peer=placeholder, origin=sdplib.OriginState()),
            to_tag=tag,
            from_user=extension,
            from_display=display,
            to_user=_agent_of(target) if kind is JoinKind.MONITOR else target.to_user,
            started=datetime.now(UTC),
            offer=sdplib.SessionDescription(),
            target=extension,
        )

    def _tell_soon(self, method: str, *args: object) -> None:
        asyncio.get_running_loop().call_soon(self._tell, method, args)

    def _tell(self, method: str, args: tuple[object, ...]) -> None:
        observer = self._app.observer
        report = getattr(observer, method, None) if observer is not None else None
        if report is None:
            return
        try:
            report(*args)
        except Exception:
            log.exception("%s: observer.%s failed", args[0] if args else "", method)


def _feeder(bridge: MixBridge, party: str) -> Callable[[int, bytes], None]:
    """The relay tap that feeds ``party``'s packets to the mixer."""

    def tap(payload_type: int, payload: bytes) -> None:
        bridge.feed(party, payload_type, payload)

    return tap


def _callee_extension(call: Call) -> str | None:
    leg = call.callee
    if leg is None or leg.invite is None:
        return None
    return leg.invite.to.uri.user_unescaped


def _parties(call: Call) -> set[str]:
    """The extensions (or numbers) on a two-party call."""
    found = {call.from_user}
    callee = _callee_extension(call)
    if callee:
        found.add(callee)
    return found


def _agent_of(call: Call) -> str:
    """Who a monitor watches: the answering leg's extension (the agent of a queue call)."""
    return _callee_extension(call) or call.target or call.to_user


def _call_codecs(call: Call) -> tuple[Codec, Codec]:
    """The codecs the call's two phones use (the relay does not transcode: one for both)."""
    if call.app is not None:
        codec: Codec = call.app.codec
    elif call.outbound is not None:
        codec = call.outbound.codec
    else:
        first = sdplib.negotiate(call.offer).first_codec
        codec = "PCMA" if first == "PCMA" else "PCMU"
    return codec, codec
