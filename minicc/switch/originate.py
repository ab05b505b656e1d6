"""Calls minicc places itself, agent first: :meth:`CallControl.originate` (callbacks).

A callback joins an agent and a customer who asked to be called back. The agent's phones
ring first; only once the agent answered does minicc dial the number, so the customer never
picks up into silence or into a queue. The call is an ordinary two-party call of the B2BUA
once both answered (re-INVITE and INFO relayed, BYE from either side ends both), but both of
its legs are INVITEs minicc sent:

- the **caller** leg is the agent's phone: it shows ``caller_id`` (the customer's number)
  with the display name :data:`CALLBACK_DISPLAY`, and is offered the relay's endpoint ``a``
  (PCMU and PCMA, RFC 4733 events);
- the **callee** leg is the number. For now that must be an extension of the tenant (an
  outside number needs the tenant's trunk, which does not exist yet); its phones see the
  tenant's callback identity and are offered endpoint ``b`` in the codec the agent chose
  (the relay does not transcode). While it rings the agent hears a ringing tone.

The agent's and the number's phones are rung with the machinery of application calls
(:meth:`AppCalls.dial <minicc.switch.appcalls.AppCalls.dial>`: a leg per registered device,
first answer wins, a timeout, cancellation); this module only decides what an answer and
an end mean, as a small state machine (:data:`TRANSITIONS`)::

    SETUP --ring agent--> AGENT --agent answered--> CALLEE --callee answered--> BRIDGED
    (every stage) --end--> ENDED

What the engine hears (:class:`~minicc.switch.control.CallObserver`), each on a later turn
of the loop, never from inside a CallControl call: ``originate_result(key, AGENT, r)`` once
the agent's phones stop ringing, ``originate_result(key, CALLEE, r)`` once the number's do
(exactly one AGENT result per call, and one CALLEE result exactly when the agent
answered; a leg withdrawn because the call ended says CANCELLED), and
``call_ended(key, by_caller)`` last. ``by_caller`` is True when the dialled
party ended the call (refused it, or hung up after the bridge), as the call record's
``hangup_side`` CALLEE is; False when the agent, a timeout or :meth:`hangup` ended it.

The call record: ``from_user`` is the agent, ``to_user`` the number, ``from_display``
:data:`CALLBACK_DISPLAY` and ``call_id`` starts with :data:`CALL_ID_PREFIX` (there is no
inbound Call-ID), which is how reports tell a callback. ANSWERED once the number answered;
the number's own failure gives its disposition (busy, no answer, failed); a call that never
got as far as dialling the number, or was withdrawn while it rang, is CANCELLED, with the
agent's status (or 487) as ``sip_cause``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote as percent_quote

from minicc.events import CallAnswered, CallStarted
from minicc.switch import sdp as sdplib
from minicc.switch.b2bua import Call, CallState, Leg, Side, _best_final, _set_remote
from minicc.switch.control import OriginateLeg, RingResult
from minicc.switch.media.g711 import ULAW_SILENCE, ulaw_encode
from minicc.switch.media.player import Clip
from minicc.switch.media.relay import MediaError
from minicc.switch.sip.headers import Headers
from minicc.switch.sip.message import Request, Response
from minicc.switch.sip.peer import Peer, Transport
from minicc.switch.sip.uri import quote
from minicc.tenants.directory import TenantEntry
from minicc.tenants.models import HangupSide, TenantStatus

if TYPE_CHECKING:
    from minicc.switch.appcalls import AppCalls, Attempt
    from minicc.switch.b2bua import B2BUA

__all__ = [
    "CALLBACK_DISPLAY",
    "CALL_ID_PREFIX",
    "TRANSITIONS",
    "OriginateStateError",
    "Originator",
    "Outbound",
    "Stage",
    "Step",
    "ringback_clip",
]

log = logging.getLogger(__name__)

CALLBACK_DISPLAY = "Callback"
"""Display name of the agent leg's From (the agent sees a callback coming) and the call
record's ``from_display``."""
CALL_ID_PREFIX = "callback-"
"""How an originated call's own Call-ID (the call record's ``call_id``) starts."""

Codec = Literal["PCMU", "PCMA"]

# RFC 3261 §25.1: user = 1*( unreserved / escaped / user-unreserved ). The conservative part
# of it is kept as is (a number's "+" included); anything else is %-escaped.
_USER_SAFE = "-_.!~*'()+"

# Ringing tone: 425 Hz, 1 s on and 4 s off, the cadence most of Europe uses (ITU-T E.180
# Supplement 2 lists every country's), about -20 dBFS.
_RING_HZ = 425
_RING_ON_S, _RING_OFF_S = 1, 4
_RING_LEVEL = 3300
_RATE = 8000


class OriginateStateError(RuntimeError):
    """A step the originated call's stage does not allow (a bug, never a peer's doing)."""


class Stage(Enum):
    SETUP = "setup"
    """Media ports being bound; nothing sent yet."""
    AGENT = "agent"
    """The agent's phones ring."""
    CALLEE = "callee"
    """The agent answered; the number rings (the agent hears the ringing tone)."""
    BRIDGED = "bridged"
    """Both answered: media relayed both ways."""
    ENDED = "ended"


class Step(Enum):
    RING_AGENT = "ring agent"
    AGENT_ANSWERED = "agent answered"
    CALLEE_ANSWERED = "callee answered"
    END = "end"


TRANSITIONS: dict[tuple[Stage, Step], Stage] = {
    (Stage.SETUP, Step.RING_AGENT): Stage.AGENT,
    (Stage.AGENT, Step.AGENT_ANSWERED): Stage.CALLEE,
    (Stage.CALLEE, Step.CALLEE_ANSWERED): Stage.BRIDGED,
    **{(stage, Step.END): Stage.ENDED for stage in Stage if stage is not Stage.ENDED},
}
"""Every stage change of an originated call; any other pair is an
:class:`OriginateStateError`."""


@dataclass(slots=True, eq=False)
class Outbound:
    """What an originated call adds to a :class:`~minicc.switch.b2bua.Call`."""

    agent: str
    """The extension rung first."""
    number: str
    """What is dialled once the agent answered."""
    shown: str
    """The From user part the agent's phones see (``caller_id``, escaped)."""
    timeout: float
    """Seconds the agent's phones ring."""
    dial_timeout: float
    """Seconds the number rings."""
    stage: Stage = Stage.SETUP
    attempt: Attempt | None = None
    """The leg ringing now (the agent's phones, then the number's)."""
    codec: Codec = "PCMU"
    """The codec the agent answered with: the number is offered only it."""
    telephone_event: int | None = None
    """The agent's RFC 4733 payload type, offered to the number with the same number."""
    callee_failed: bool = False
    """The number itself refused or did not answer (its outcome is the call's disposition)."""
    agent_result: RingResult | None = None
    """What the engine was told about the agent's leg (told exactly once)."""

    def move(self, step: Step) -> Stage:
        """Apply one step.

        Raises:
            OriginateStateError: the pair is not in :data:`TRANSITIONS`.
        """
        new = TRANSITIONS.get((self.stage, step))
        if new is None:
            raise OriginateStateError(f"originate: {step.value} in stage {self.stage.value}")
        self.stage = new
        return new


class Originator:
    """The switch side of :meth:`CallControl.originate` (module doc)."""

    def __init__(self, b2bua: B2BUA, app: AppCalls) -> None:
        self._b2bua = b2bua
        self._app = app

    # ----------------------------------------------------------------- CallControl

    def originate(
        self,
        tenant_name: str,
        tenant: TenantEntry | None,
        agent: str,
        number: str,
        *,
        timeout: float,
        dial_timeout: float,
        caller_id: str | None = None,
    ) -> str:
        """Place an agent-first call and return its key at once (module doc).

        Args:
            tenant_name: the tenant the engine named.
            tenant: its directory entry; None when there is no such tenant.
            agent: the extension to ring first.
            number: what to dial once the agent answered.
            timeout: seconds the agent's phones ring.
            dial_timeout: seconds the number rings.
            caller_id: what the agent's phones show; the number by default.

        Returns:
            The call's key: what every observer call about it carries.

        Raises:
            ValueError: an empty agent or number, or a timeout not above 0.
        """
        if not agent or not number:
            raise ValueError("originate needs an agent extension and a number")
        if not (timeout > 0 and dial_timeout > 0):
            raise ValueError(f"originate timeouts must be above 0, got {timeout}, {dial_timeout}")
        b2bua = self._b2bua
        call_id = f"{CALL_ID_PREFIX}{b2bua._new_tag()}@minicc"
        key = f"{next(b2bua._ids)}/{call_id}"
        if tenant is None or tenant.tenant.status is not TenantStatus.ACTIVE:
            log.error("%s: originate for %r: no such active tenant", key, tenant_name)
            self._tell_soon(key, "originate_result", OriginateLeg.AGENT, RingResult.FAILED)
            self._tell_soon(key, "call_ended", False)
            return key
        out = Outbound(
            agent=agent,
            number=number,
            shown=_user_part(caller_id or number),
            timeout=timeout,
            dial_timeout=dial_timeout,
        )
        call = self._new_call(key, call_id, tenant, out)
        b2bua._calls[key] = call
        b2bua._bus.publish(
            CallStarted(
                tenant=tenant.name,
                call_id=call_id,
                caller=agent,
                caller_name=CALLBACK_DISPLAY,
                callee=number,
            )
        )
        log.info("%s: callback: ringing agent %s first, then %s", key, agent, number)
        if agent not in tenant.extensions:
            log.warning("%s: originate: %s is no extension of %s", key, agent, tenant.name)
        targets = b2bua._contacts.targets(tenant.name, agent)
        if not targets:
            # Reported on later turns of the loop, never from inside originate() itself.
            self._agent_failed(call, RingResult.UNAVAILABLE, HangupSide.SYSTEM, 480)
        elif b2bua._media is None:
            log.error("%s: originate refused: the media relay is off", key)
            self._agent_failed(call, RingResult.FAILED, HangupSide.SYSTEM, 503)
        else:
            asyncio.get_running_loop().create_task(self._setup(call, targets))
        return key

    def hangup(self, call: Call, *, status: int = 200) -> None:
        """Withdraw the call at any stage: CANCEL what rings, BYE what answered. The record
        says the system ended it (CANCELLED with 487, or ``status`` of 300 and above, when
        the number had not answered)."""
        if call.answered is None:
            cause: int | None = status if status >= 300 else 487
        else:
            cause = status if status >= 300 else None
        self._b2bua._hangup(call, HangupSide.SYSTEM, cause=cause)

    # ----------------------------------------------------------------- from the B2BUA

    def finished(self, call: Call, side: HangupSide) -> None:
        """The call ended (any side, any stage; once): withdraw the leg still ringing, stop
        the ringing tone, settle the record's disposition, tell the engine."""
        out = call.outbound
        assert out is not None
        out.move(Step.END)
        if call.media is not None:
            self._app.player.stop(call.media, "a", reason="call ended")
        if out.attempt is not None:
            self._app._end_attempt(call, out.attempt, RingResult.CANCELLED)
        if out.agent_result is None:  # ended while the ports were being bound
            self._report(call, OriginateLeg.AGENT, RingResult.CANCELLED)
        # Not answered and not the number's own doing: never dialled, or withdrawn.
        call.caller_cancelled = call.answered is None and not out.callee_failed
        self._tell_soon(call.key, "call_ended", side is HangupSide.CALLEE)

    # ----------------------------------------------------------------- the agent

    async def _setup(self, call: Call, targets: list[tuple[str, Peer]]) -> None:
        try:
            await self._ring_agent(call, targets)
        finally:
            self._b2bua._flush()

    async def _ring_agent(self, call: Call, targets: list[tuple[str, Peer]]) -> None:
        b2bua, out = self._b2bua, call.outbound
        assert out is not None and b2bua._media is not None
        if call.state is CallState.ENDED:  # hung up before this task ran
            return
        try:
            media = await b2bua._media.create_session(call.key)
        except MediaError as exc:
            log.warning("%s: no media port: %s", call.key, exc)
            if call.state is not CallState.ENDED:
                self._agent_failed(call, RingResult.FAILED, HangupSide.SYSTEM, 503)
            return
        if call.state is CallState.ENDED:  # hung up while the ports were being bound
            media.close()
            return
        call.media = media
        # Nothing crosses until both answered: no early audio of either phone reaches the
        # other (and the agent hears the ringing tone meanwhile).
        media.a.forward_from_peer = False
        media.b.forward_from_peer = False
        offer = sdplib.build_offer(b2bua._me.host, media.a.local_port, origin=sdplib.OriginState())
        call.offer = offer
        out.move(Step.RING_AGENT)
        call.state = CallState.RINGING
        out.attempt = self._app.dial(
            call,
            out.agent,
            targets,
            offer,
            timeout=out.timeout,
            answered=self._agent_answered,
            ended=self._agent_ended,
            caller=(out.shown, CALLBACK_DISPLAY),
        )

    def _agent_answered(
        self,
        call: Call,
        attempt: Attempt,
        leg: Leg,
        response: Response,
        answer: sdplib.SessionDescription,
    ) -> None:
        b2bua, out = self._b2bua, call.outbound
        assert out is not None
        b2bua._confirm_leg(call, leg, response, Side.CALLER)
        assert leg.dialog is not None
        # The agent's leg is the call's caller now: a re-INVITE from it is answered with
        # our tag of its dialog.
        call.to_tag = leg.dialog.local_tag
        call.offer = answer  # what the relay carries (and a recording is written in)
        _set_remote(call, Side.CALLER, answer)
        agreed = sdplib.negotiate(answer)
        if agreed.first_codec not in ("PCMU", "PCMA"):
            log.warning("%s: agent answered without PCMU or PCMA; assuming PCMU", call.key)
        out.codec = "PCMA" if agreed.first_codec == "PCMA" else "PCMU"
        te = agreed.telephone_event
        out.telephone_event = te.payload_type if te is not None else None
        out.move(Step.AGENT_ANSWERED)
        self._app._end_attempt(call, attempt, RingResult.ANSWERED)  # the other phones stop
        log.info("%s: agent %s answered at %s", call.key, out.agent, leg.contact_uri)
        self._dial(call)

    def _agent_ended(self, call: Call, attempt: Attempt, result: RingResult) -> None:
        self._report(call, OriginateLeg.AGENT, result)
        out = call.outbound
        assert out is not None
        if result is RingResult.ANSWERED or out.stage is Stage.ENDED:
            return
        log.info("%s: agent %s: %s; callback not made", call.key, out.agent, result.value)
        side = HangupSide.SYSTEM if result is RingResult.NO_ANSWER else HangupSide.CALLER
        self._b2bua._finish(call, side, _cause(result, attempt))

    def _agent_failed(self, call: Call, result: RingResult, side: HangupSide, cause: int) -> None:
        """The agent cannot be rung at all (no phone, no media): report and end."""
        self._report(call, OriginateLeg.AGENT, result)
        self._b2bua._finish(call, side, cause)

    # ----------------------------------------------------------------- the number

    def _dial(self, call: Call) -> None:
        b2bua, out, media = self._b2bua, call.outbound, call.media
        assert out is not None and media is not None
        tenant = call.tenant
        targets = b2bua._contacts.targets(tenant.name, out.number, outside=True)
        if not targets and out.number not in tenant.extensions:
            log.warning(
                "%s: cannot dial %s: not an extension of %s, and no trunk or dial rule lets it out",
                call.key,
                out.number,
                tenant.name,
            )
            self._callee_failed(call, RingResult.FAILED, HangupSide.SYSTEM, 404)
            return
        if not targets:
            log.info("%s: %s has no registered phone", call.key, out.number)
            self._callee_failed(call, RingResult.UNAVAILABLE, HangupSide.SYSTEM, 480)
            return
        offer = sdplib.build_offer(
            b2bua._me.host,
            media.b.local_port,
            origin=sdplib.OriginState(),
            codecs=(out.codec,),
            telephone_event_pt=out.telephone_event,
        )
        out.attempt = self._app.dial(
            call,
            out.number,
            targets,
            offer,
            timeout=out.dial_timeout,
            answered=self._callee_answered,
            ended=self._callee_ended,
            caller=_callback_identity(call, out),
        )
        try:
            self._app.player.play(media, "a", [ringback_clip()], codec=out.codec, loop=True)
        except ValueError as exc:  # the session closed under us: the call is ending anyway
            log.debug("%s: no ringing tone: %s", call.key, exc)

    def _callee_answered(
        self,
        call: Call,
        attempt: Attempt,
        leg: Leg,
        response: Response,
        answer: sdplib.SessionDescription,
    ) -> None:
        b2bua, out, media = self._b2bua, call.outbound, call.media
        assert out is not None and media is not None
        b2bua._confirm_callee(call, leg, response)
        # The ringing tone stops before the first packet of the number is relayed.
        self._app.player.stop(media, "a", reason="answered")
        _set_remote(call, Side.CALLEE, answer)
        media.a.forward_from_peer = True
        media.b.forward_from_peer = True
        out.move(Step.CALLEE_ANSWERED)
        call.state = CallState.ANSWERED
        call.answered = datetime.now(UTC)
        b2bua._bus.publish(
            CallAnswered(tenant=call.tenant.name, call_id=call.call_id, answered_by=leg.contact_uri)
        )
        b2bua._start_recording(call)
        self._app._end_attempt(call, attempt, RingResult.ANSWERED)
        log.info("%s: %s answered: bridged to agent %s", call.key, out.number, out.agent)

    def _callee_ended(self, call: Call, attempt: Attempt, result: RingResult) -> None:
        self._report(call, OriginateLeg.CALLEE, result)
        out = call.outbound
        assert out is not None
        if result is RingResult.ANSWERED or out.stage is Stage.ENDED:
            return
        log.info("%s: %s: %s; hanging up agent %s", call.key, out.number, result.value, out.agent)
        # As for a plain call: the number's phones refusing is the callee's doing, a ring
        # timeout the system's.
        side = HangupSide.SYSTEM if result is RingResult.NO_ANSWER else HangupSide.CALLEE
        out.callee_failed = True
        self._b2bua._hangup(call, side, cause=_cause(result, attempt))

    def _callee_failed(self, call: Call, result: RingResult, side: HangupSide, cause: int) -> None:
        """The number cannot be rung at all: report, BYE the agent, end."""
        out = call.outbound
        assert out is not None
        out.attempt = None
        out.callee_failed = True
        self._report(call, OriginateLeg.CALLEE, result)
        self._b2bua._hangup(call, side, cause=cause)

    # ----------------------------------------------------------------- helpers

    def _new_call(self, key: str, call_id: str, tenant: TenantEntry, out: Outbound) -> Call:
        b2bua = self._b2bua
        domain = tenant.realm
        tag = b2bua._new_tag()
        # The request the call is placed as. It is never sent: each agent phone gets its
        # own INVITE built from the call (B2BUA._fork); the call needs it as its origin.
        headers = Headers()
        headers.add("From", f"{quote(CALLBACK_DISPLAY)} <sip:{out.shown}@{domain}>;tag={tag}")
        headers.add("To", f"<sip:{_user_part(out.agent)}@{domain}>")
        headers.add("Call-ID", call_id)
        headers.add("CSeq", "1 INVITE")
        headers.add("Max-Forwards", "70")
        origin = Request(
            headers=headers, method="INVITE", uri=f"sip:{_user_part(out.agent)}@{domain}"
        )
        # Until one of the agent's phones answers, the caller leg has no dialog and no
        # address of its own; minicc's stands in (nothing is ever sent on a leg without a
        # dialog), and the answering phone's leg replaces it.
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
            from_user=out.agent,
            from_display=CALLBACK_DISPLAY,
            to_user=out.number,
            started=datetime.now(UTC),
            offer=sdplib.SessionDescription(),  # none yet: the agent's offer once ports are bound
            target=out.agent,
            outbound=out,
        )

    def _report(self, call: Call, leg: OriginateLeg, result: RingResult) -> None:
        out = call.outbound
        assert out is not None
        if leg is OriginateLeg.AGENT:
            out.agent_result = result
        self._tell_soon(call.key, "originate_result", leg, result)

    def _tell_soon(self, key: str, method: str, *args: object) -> None:
        self._app._tell_soon(key, method, *args)


def _callback_identity(call: Call, out: Outbound) -> tuple[str, str | None]:
    """What the dialled number's phone shows: the tenant's main number once the directory
    knows one; until then the agent's extension, with the agent's name."""
    extension = call.tenant.extensions.get(out.agent)
    return _user_part(out.agent), extension.name if extension is not None else None


def _cause(result: RingResult, attempt: Attempt) -> int:
    """The SIP status that ended an attempt, for the call record's ``sip_cause``."""
    fixed = {
        RingResult.NO_ANSWER: 408,  # RFC 3261 §21.4.9, what a ring timeout is
        RingResult.UNAVAILABLE: 480,  # §21.4.18
        RingResult.CANCELLED: 487,  # §21.4.26
    }.get(result)
    if fixed is not None:
        return fixed
    return _best_final([leg.final_status or 500 for leg in attempt.legs])


def _user_part(text: str) -> str:
    """``text`` as a SIP URI user part (RFC 3261 §25.1), %-escaped where needed."""
    return percent_quote(text, safe=_USER_SAFE)


@functools.cache
def ringback_clip() -> Clip:
    """One cadence of the ringing tone the agent hears while the number rings (looped).

    Built on first use, then shared by every call.
    """
    on = array(
        "h",
        (
            round(_RING_LEVEL * math.sin(2 * math.pi * _RING_HZ * n / _RATE))
            for n in range(_RING_ON_S * _RATE)
        ),
    )
    off = bytes([ULAW_SILENCE]) * (_RING_OFF_S * _RATE)
    return Clip(name="ringback", ulaw=ulaw_encode(on) + off)
