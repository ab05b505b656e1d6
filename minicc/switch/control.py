"""The contract between the switch and whoever decides what a call does (the queue engine).

The switch owns SIP and media; the engine owns decisions. An inbound call to a number the
engine claims is answered by minicc itself (IVR, queue), after which the engine drives it
through :class:`CallControl` (play prompts, ring an agent, bridge, hang up) and hears back
through :class:`CallObserver`. Both run on the switch's event loop; observer methods must not
block (they are called from inside SIP and RTP handling).

Delivery (as the switch implements it, :mod:`minicc.switch.appcalls`): ``route`` is called
while the INVITE is handled and must answer at once. Every other observer method is called
on a later turn of the loop, in the order things happened, never from inside a
:class:`CallControl` call, so the engine may call CallControl from any of them. Each ``play``
ends in exactly one ``playback_done`` and each ``ring`` in exactly one ``ring_result``, also
for a call already gone (ABORTED, CANCELLED) or a file that cannot be played (ABORTED).
Each ``record`` ends in exactly one ``record_done`` likewise.

Recording (:mod:`minicc.switch.callrec`): ``record_call`` starts or stops the two-channel
recording of a call, ``pause_recording`` / ``resume_recording`` leave a span out (written as
silence); ``record`` takes a message from the caller (voicemail). Digits the agent's phone
sends (``agent_dtmf``) are reported apart from the caller's (``dtmf``), so a caller's key
press is never taken for an agent's feature code.

Transfers (:mod:`minicc.switch.transfer`): like ``route``, ``transfer_route`` is asked while
the agent's REFER is handled and must answer at once. Each REFER accepted on an APPLICATION
call (202) and each :meth:`CallControl.transfer` ends in exactly one ``call_transferred``
(a REFER refused outright, 400 or 403, changes nothing and reports nothing).

Hold (:mod:`minicc.switch.hold`): once an agent is bridged, a hold from the agent's phone
(a re-INVITE with sendonly, inactive or ``c=0.0.0.0``) or from :meth:`CallControl.hold` is
answered by minicc itself and reported as ``call_held``; the engine plays music on hold to
the caller. A resume (or an answered :meth:`CallControl.ring_back`) cuts that music itself
and is reported as ``call_resumed``. Each ``call_held`` is followed by at most one
``call_resumed`` (none when the call ends while held).

Supervisor monitors and three-way conferences (:mod:`minicc.switch.monitor`): each monitor
(``monitor`` or ``attach_monitor``) ends in exactly one ``monitor_ended``, each
``conference`` in exactly one ``conference_result``, and an ANSWERED one in exactly one
``conference_ended`` later. Observers without these methods are simply not told.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol


class RouteKind(Enum):
    EXTENSION = "extension"
    """Ring a registered extension, as a plain B2BUA call."""
    APPLICATION = "application"
    """minicc answers the call itself and hands it to the engine."""
    REJECT = "reject"
    """Refuse the call with ``status``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    kind: RouteKind
    """What to do with the call."""
    extension: str | None = None
    """For EXTENSION: which one."""
    status: int = 404
    """For REJECT: the SIP status to answer with."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingCall:
    """A new, authenticated inbound call, before anything was answered."""

    key: str
    """minicc's id for the call (stable for its whole life)."""
    tenant: str
    """Tenant the call belongs to."""
    number: str
    """The dialled number (Request-URI user part)."""
    caller: str
    """The caller's extension or number."""
    caller_name: str | None
    """Display name the caller sent."""
    call_id: str
    """SIP Call-ID of the caller's leg (what CDRs carry)."""


class RingResult(Enum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"
    """The extension has no registered device."""
    FAILED = "failed"
    CANCELLED = "cancelled"
    """The engine (or the caller hanging up) withdrew the attempt."""


class OriginateLeg(Enum):
    """The two legs of an :meth:`CallControl.originate` call, rung one after the other."""

    AGENT = "agent"
    """The agent's phone(s), rung first."""
    CALLEE = "callee"
    """The number dialled once the agent answered."""


class HoldBy(Enum):
    """Who put a bridged application call on hold."""

    PHONE = "phone"
    """The agent's phone (a hold re-INVITE); it resumes with a sendrecv re-INVITE."""
    API = "api"
    """:meth:`CallControl.hold` (the agent's screen); resumed by :meth:`CallControl.resume`."""


class PlaybackOutcome(Enum):
    FINISHED = "finished"
    CANCELLED = "cancelled"
    ABORTED = "aborted"


class TransferKind(Enum):
    BLIND = "blind"
    """The caller is sent to a number; the transferor is released at once."""
    ATTENDED = "attended"
    """The transferor joins the caller with the party of a consultation call (Replaces)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferReport:
    """A transfer that ended, successfully or not (:meth:`CallObserver.call_transferred`)."""

    key: str
    """The call that goes on: the caller (transferee) is on it."""
    kind: TransferKind
    """Blind or attended."""
    by: str | None
    """The transferor's extension (the agent); None when unknown."""
    target: str
    """The number asked for (Refer-To user part, or :meth:`CallControl.transfer`'s)."""
    status: int
    """The outcome as a SIP status (what the phone's NOTIFY said): 200 done, 403 refused
    (e.g. an outside number: no trunk), 480 nobody registered, 4xx/5xx the join failed."""
    route: Route | None = None
    """For an accepted blind transfer: where the caller goes (EXTENSION: the engine rings
    it with :meth:`CallControl.ring`; APPLICATION: the engine takes the caller back to its
    queue or IVR for ``target``)."""
    replaced: str | None = None
    """Attended: the key of the consultation call that was merged into ``key`` (it ends
    without a separate ``call_ended`` meaning a hang-up of the new party)."""
    party: str | None = None
    """Attended: the extension now talking to the caller."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class RecordOutcome(Enum):
    """How a :meth:`CallControl.record` ended."""

    STOP_DIGIT = "stop-digit"
    """The caller pressed one of the stop digits (``#``)."""
    SILENCE = "silence"
    """Nothing but silence for ``silence_timeout`` seconds."""
    MAX_LENGTH = "max-length"
    """``max_seconds`` reached."""
    HANGUP = "hangup"
    """The call ended while recording (what was said is kept)."""
    FAILED = "failed"
    """Nothing could be recorded (no such call, no media, the file could not be written)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordResult:
    """What :meth:`CallObserver.record_done` reports."""

    outcome: RecordOutcome
    """Why it ended."""
    path: str | None
    """The WAV written, relative to the data folder (like a call record's recording path);
    None when no audio was heard (nothing is kept) or writing failed."""
    duration: float
    """Seconds of audio in the file."""
    digit: str | None = None
    """The stop digit pressed, for STOP_DIGIT."""


class MonitorMode(Enum):
    """What a supervisor does on a call (see :class:`minicc.switch.media.mixer.MixMode`)."""

    LISTEN = "listen"
    """The supervisor hears both parties; nobody hears the supervisor."""
    WHISPER = "whisper"
    """The agent hears the supervisor, the caller does not."""
    BARGE = "barge"
    """Everybody hears everybody."""


class MonitorEnd(Enum):
    """Why a monitor ended (:meth:`CallObserver.monitor_ended`)."""

    SUPERVISOR_HUNG_UP = "supervisor-hung-up"
    CALL_ENDED = "call-ended"
    """The monitored call ended; the supervisor was hung up."""
    STOPPED = "stopped"
    """:meth:`CallControl.stop_monitor`."""
    NOT_ANSWERED = "not-answered"
    """The supervisor's phone did not answer (busy, no answer, no phone registered)."""
    REFUSED = "refused"
    """The call cannot be monitored: gone, not answered yet, or already mixed."""


class CallObserver(Protocol):
    """What the switch tells the engine. Every method is called on the event loop."""

    def route(self, call: IncomingCall) -> Route:
        """Decide what an inbound call to ``call.number`` becomes. Must answer at once."""
        ...

    def call_answered(self, key: str) -> None:
        """minicc answered an APPLICATION call: media is up, prompts can play."""
        ...

    def dtmf(self, key: str, digit: str) -> None:
        """The caller pressed a key (RFC 4733 or SIP INFO)."""
        ...

    def playback_done(self, key: str, playback: int, outcome: PlaybackOutcome) -> None:
        """A :meth:`CallControl.play` ended."""
        ...

    def ring_result(self, key: str, attempt: int, result: RingResult) -> None:
        """An agent attempt from :meth:`CallControl.ring` ended. On ANSWERED the agent is
        already bridged to the caller (any playback to the caller was cut first)."""
        ...

    def call_ended(self, key: str, by_caller: bool) -> None:
        """The call is over (caller hung up, agent hung up, or :meth:`CallControl.hangup`)."""
        ...

    def call_held(self, key: str, by: HoldBy) -> None:
        """The bridged call is on hold: the agent hears silence, the caller hears nothing
        until the engine plays music (:meth:`CallControl.play`, looped)."""
        ...

    def call_resumed(self, key: str) -> None:
        """The hold ended (the phone resumed, :meth:`CallControl.resume`, or a ring-back was
        answered): the switch already cut the caller's playback; both hear each other."""
        ...

    def originate_result(self, key: str, leg: OriginateLeg, result: RingResult) -> None:
        """A leg of an :meth:`CallControl.originate` call stopped ringing.

        AGENT + ANSWERED: the agent picked up; the switch now dials the number (the agent
        hears it ring). CALLEE + ANSWERED: the two are bridged. Any other result ends the
        call: :meth:`call_ended` follows (``by_caller`` is True when the dialled party hung
        up, False when the agent or :meth:`CallControl.hangup` ended it).
        """
        ...

    def agent_dtmf(self, key: str, digit: str) -> None:
        """The agent's phone sent a digit (RFC 4733 or SIP INFO) on a bridged call: the
        callee of an APPLICATION call, the agent leg of an originated one. Feature codes
        such as ``*2`` (pause recording) come this way; the caller's digits never do."""
        ...

    def record_done(self, key: str, record: int, result: RecordResult) -> None:
        """A :meth:`CallControl.record` ended (exactly once per record id), possibly after
        :meth:`call_ended` when the caller hung up while speaking."""
        ...

    def monitor_started(self, monitor: str, key: str, mode: MonitorMode) -> None:
        """The supervisor answered and hears call ``key``."""
        ...

    def monitor_mode_changed(self, monitor: str, mode: MonitorMode) -> None:
        """The monitor's mode changed (the supervisor's DTMF or set_monitor_mode)."""
        ...

    def monitor_ended(self, monitor: str, reason: MonitorEnd) -> None:
        """A monitor is over (exactly once per monitor, started or not)."""
        ...

    def conference_result(self, key: str, attempt: int, result: RingResult) -> None:
        """A :meth:`CallControl.conference` attempt stopped ringing (ANSWERED: joined)."""
        ...

    def conference_ended(self, key: str, attempt: int) -> None:
        """The third party of an answered conference left (or the call ended). When the
        caller or agent leaves instead, the other two go on and this comes when the
        conversation ends."""
        ...


class CallControl(Protocol):
    """What the engine may ask of the switch for a call it owns (APPLICATION calls)."""

    def play(self, key: str, files: Sequence[Path], *, loop: bool = False) -> int:
        """Play WAV prompts to the caller (replacing what plays); returns a playback id."""
        ...

    def stop_playback(self, key: str) -> None:
        """Cut the current playback at once (e.g. the caller pressed a key)."""
        ...

    def ring(self, key: str, extension: str, *, timeout: float) -> int:
        """Ring every registered device of ``extension`` for up to ``timeout`` seconds;
        the first to answer is bridged to the caller. Returns an attempt id."""
        ...

    def cancel_ring(self, key: str, attempt: int) -> None:
        """Withdraw a ringing attempt (ring-all: another agent answered first)."""
        ...

    def hangup(self, key: str, *, status: int = 200) -> None:
        """End the call (BYE if answered, else a final ``status``)."""
        ...

    def transfer(self, key: str, target: str) -> None:
        """Blind-transfer the call's caller to ``target`` (an extension or a number of the
        tenant), as if the agent's phone had sent REFER: the agent's leg is released and the
        outcome comes through :meth:`CallObserver.call_transferred` (``by`` is the agent).
        Decided on a later turn of the loop through :meth:`CallObserver.transfer_route`."""
        ...

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
        """Place an agent-first outbound call (a callback): ring every device of extension
        ``agent`` for up to ``timeout`` seconds; once one answers, dial ``number`` (an
        extension of the tenant or an outside number through its trunk) for up to
        ``dial_timeout`` seconds and bridge the two. ``caller_id`` is what the agent's phone
        shows (the customer's number). Returns the new call's key at once; progress comes
        through :meth:`CallObserver.originate_result`, the end through
        :meth:`CallObserver.call_ended`. :meth:`hangup` withdraws it at any stage."""
        ...

    def record_call(self, key: str, on: bool) -> bool:
        """Start (``on``) or stop recording both parties of a bridged call into a
        two-channel WAV (channel 1 the caller, 2 the agent); the path goes into the call
        record. A call has at most one recording: once stopped it is not started again
        (pause and resume leave parts out instead). Returns True when the call is now
        recording (``on``) or not recording any more (not ``on``); False when that cannot
        be (no such call, no media, a recording already finished, the file cannot be
        created)."""
        ...

    def pause_recording(self, key: str) -> bool:
        """Write silence instead of the parties until :meth:`resume_recording` (e.g. while a
        caller reads out a card number); the span is kept in the recording's metadata.
        Returns False when the call is not recording or is paused already."""
        ...

    def resume_recording(self, key: str) -> bool:
        """Record the parties again; False when the recording is not paused."""
        ...

    def record(
        self,
        key: str,
        box: str,
        *,
        max_seconds: float,
        stop_digits: str = "#",
        silence_timeout: float | None = None,
    ) -> int:
        """Record what the caller says (a voicemail for ``box``) into a mono WAV under the
        tenant's recordings, until a stop digit, ``max_seconds``, ``silence_timeout``
        seconds of silence or the caller hanging up. Returns a record id; the end comes
        through :meth:`CallObserver.record_done`, exactly once. A stop digit is not also
        reported through :meth:`CallObserver.dtmf`."""
        ...

    def hold(self, key: str) -> bool:
        """Put a bridged call on hold without SIP toward the agent's phone: the agent's leg
        gets silence and ``call_held(key, HoldBy.API)`` follows. False (nothing reported)
        when the call is not bridged or already on hold."""
        ...

    def resume(self, key: str) -> bool:
        """End a hold made by :meth:`hold`: the caller's music stops, ``call_resumed``
        follows. False when the call is not on hold, or the phone holds it (a phone's hold
        is resumed on the phone)."""
        ...

    def ring_back(self, key: str, extension: str, *, timeout: float) -> int:
        """Ring ``extension``'s devices again for a held call (the hold timeout), showing the
        held caller as "On hold: <name>". The first to answer replaces the held leg (which
        gets BYE) and the call resumes; a resume on the held leg cancels it. Ends in exactly
        one ``ring_result``; returns its attempt id."""

    def find_call(self, tenant: str, extension: str) -> str | None:
        """The key of the answered two-party call ``extension`` is on (as caller, callee or
        bridged agent), None when it is on none. A query: nothing is reported."""
        ...

    def monitor(self, key: str, supervisor: str, mode: MonitorMode, *, timeout: float) -> str:
        """Ring every device of extension ``supervisor`` for up to ``timeout`` seconds; on
        answer the supervisor joins call ``key`` in ``mode``. Returns the monitor's id."""
        ...

    def attach_monitor(self, monitor: str, key: str, mode: MonitorMode) -> None:
        """Join the answered call ``monitor`` (a supervisor's own call, e.g. a feature code
        routed to APPLICATION) to call ``key`` in ``mode``; ``monitor`` is the id."""
        ...

    def set_monitor_mode(self, monitor: str, mode: MonitorMode) -> None:
        """Switch a monitor to ``mode`` (the supervisor's DTMF 1/2/3 does the same)."""
        ...

    def stop_monitor(self, monitor: str) -> None:
        """Hang up the supervisor; the call goes on as before."""
        ...

    def conference(self, key: str, extension: str, *, timeout: float) -> int:
        """Ring every device of ``extension`` for up to ``timeout`` seconds; on answer it
        joins call ``key`` and all three hear each other. Returns an attempt id."""
        ...
