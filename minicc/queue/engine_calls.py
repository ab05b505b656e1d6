"""Per-call state of the queue engine: live calls and virtual (callback) calls. Pure.

A :class:`LiveCall` is a caller on the line whose call minicc answered (an APPLICATION call);
a :class:`CallbackJob` is a caller who hung up to be called back and keeps their place in a
queue. Both move only through their transition tables (STYLE rule 3): a (state, input) pair
missing from a table is a bug in the engine and raises :class:`CallStateError`.

What the caller hears in each live phase (the engine keeps this true, and
:meth:`LiveCall.silent` checks it):

========================  ==========================================================
ANSWERING                 nothing yet: the switch has not reported the answer
IVR                       the flow's prompts, or the flow waits on a timer
QUEUED                    music on hold, or an announcement
CALLBACK_OFFER            "press 1 to be called back", then music until the window ends
RINGING_EXTENSION         "transferring", then music while the extension rings
CONNECTED                 the agent or the extension (bridged by the switch)
CLOSING                   a last prompt (goodbye, callback confirmed), then a hang-up
ENDED                     -
========================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from minicc.queue.ivr import FlowRun
from minicc.queue.setup import Target

__all__ = [
    "CALLBACK_TRANSITIONS",
    "CALL_TRANSITIONS",
    "CallInput",
    "CallPhase",
    "CallStateError",
    "CallbackInput",
    "CallbackJob",
    "CallbackState",
    "LiveCall",
    "PlayKind",
]


class CallStateError(RuntimeError):
    """The engine tried a move its tables do not allow (a local bug, never the caller's)."""


class CallPhase(Enum):
    ANSWERING = "answering"
    IVR = "ivr"
    QUEUED = "queued"
    CALLBACK_OFFER = "callback offer"
    RINGING_EXTENSION = "ringing extension"
    CONNECTED = "connected"
    CLOSING = "closing"
    ENDED = "ended"


class CallInput(Enum):
    START_IVR = "start ivr"
    JOIN = "join"
    """Joined a queue (again, on overflow to another queue)."""
    OFFER_CALLBACK = "offer callback"
    RING_EXTENSION = "ring extension"
    BRIDGE = "bridge"
    """An agent or the extension answered."""
    CLOSE = "close"
    """A last prompt plays; a hang-up follows."""
    END = "end"
    """The switch reported the call over."""


_P = CallPhase
_C = CallInput

CALL_TRANSITIONS: dict[tuple[CallPhase, CallInput], CallPhase] = {
    (_P.ANSWERING, _C.START_IVR): _P.IVR,
    (_P.ANSWERING, _C.JOIN): _P.QUEUED,
    (_P.ANSWERING, _C.OFFER_CALLBACK): _P.CALLBACK_OFFER,
    (_P.ANSWERING, _C.CLOSE): _P.CLOSING,
    (_P.ANSWERING, _C.END): _P.ENDED,
    (_P.IVR, _C.JOIN): _P.QUEUED,
    (_P.IVR, _C.OFFER_CALLBACK): _P.CALLBACK_OFFER,
    (_P.IVR, _C.RING_EXTENSION): _P.RINGING_EXTENSION,
    (_P.IVR, _C.CLOSE): _P.CLOSING,
    (_P.IVR, _C.END): _P.ENDED,
    (_P.QUEUED, _C.JOIN): _P.QUEUED,  # overflow into another queue
    (_P.QUEUED, _C.BRIDGE): _P.CONNECTED,
    (_P.QUEUED, _C.OFFER_CALLBACK): _P.CALLBACK_OFFER,
    (_P.QUEUED, _C.CLOSE): _P.CLOSING,
    (_P.QUEUED, _C.END): _P.ENDED,
    (_P.CALLBACK_OFFER, _C.CLOSE): _P.CLOSING,
    (_P.CALLBACK_OFFER, _C.END): _P.ENDED,
    (_P.RINGING_EXTENSION, _C.BRIDGE): _P.CONNECTED,
    (_P.RINGING_EXTENSION, _C.CLOSE): _P.CLOSING,
    (_P.RINGING_EXTENSION, _C.END): _P.ENDED,
    (_P.CONNECTED, _C.END): _P.ENDED,
    # Blind transfers (minicc.queue.engine_transfer): the agent sends the caller on.
    (_P.CONNECTED, _C.JOIN): _P.QUEUED,
    (_P.CONNECTED, _C.RING_EXTENSION): _P.RINGING_EXTENSION,
    (_P.CONNECTED, _C.START_IVR): _P.IVR,
    (_P.RINGING_EXTENSION, _C.JOIN): _P.QUEUED,  # a transfer nobody answered: back in line
    (_P.CLOSING, _C.END): _P.ENDED,
}


class PlayKind(Enum):
    """What the caller's current playback is, which decides what follows its end."""

    IVR = "ivr"
    MOH = "moh"
    ANNOUNCEMENT = "announcement"
    """Position / wait / callback offer; music resumes after it."""
    LEAD_IN = "lead-in"
    """"transferring" or "all agents busy, press 1": music follows."""
    FINAL = "final"
    """The last words before the engine hangs up."""


@dataclass(slots=True, kw_only=True)
class LiveCall:
    """A caller on the line, from the switch's answer to the end of the call."""

    key: str
    """The switch's key for the call (what every control call takes)."""
    tenant: str
    number: str
    """The number dialled."""
    caller: str
    caller_name: str | None
    sip_call_id: str
    target: Target
    """Where the dialled number leads."""
    phase: CallPhase = CallPhase.ANSWERING
    language: str = "en"
    variables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    run: FlowRun | None = None
    """The IVR run while in the IVR."""
    playback: int | None = None
    """The switch's id of what plays now (None: nothing, or the bridge)."""
    play_kind: PlayKind | None = None
    ivr_play: int | None = None
    """The FlowRun's ``play_id`` the playback carries, for IVR prompts."""
    queue: str | None = None
    """The queue the caller waits in (QUEUED), or was answered from (CONNECTED)."""
    attempts: dict[int, str] = field(default_factory=dict)
    """Ring attempts in progress: attempt id -> agent (or the extension)."""
    withdrawn: dict[int, str] = field(default_factory=dict)
    """Attempts the engine cancelled: an answer already on its way may still arrive."""
    agent: str | None = None
    """The agent who answered."""
    answered_at: float | None = None
    next_announce: float | None = None
    callback_offer_open: bool = False
    """The last announcement said "press 1 to be called back"; a 1 now takes it."""
    window_until: float | None = None
    """CALLBACK_OFFER: when the offer lapses (timer)."""
    close_by: float | None = None
    """CLOSING: hang up at this time even if the prompt's end is never reported."""
    hangup_sent: bool = False
    """The engine asked the switch to end the call; call_ended follows."""
    overflow_hops: int = 0
    """Queue-to-queue overflows so far (bounded, so two queues cannot bounce a caller)."""
    max_wait_offered: bool = False
    """A max-wait callback offer was made; the caller keeps waiting after it."""
    refused_queue: str | None = None
    """CALLBACK_OFFER: the queue whose callback line a 1 joins."""
    priority: int = 0
    skills: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    transferred_by: str | None = None
    """The agent who last blind-transferred the call: it was answered and handled already,
    so a queue it joins again does not count it as offered, answered or abandoned again."""

    def move(self, event: CallInput) -> CallPhase:
        """Apply one input to the phase.

        Raises:
            CallStateError: the pair is not in :data:`CALL_TRANSITIONS`.
        """
        new = CALL_TRANSITIONS.get((self.phase, event))
        if new is None:
            raise CallStateError(f"call {self.key}: {event.value} in phase {self.phase.value}")
        self.phase = new
        return new

    def silent(self) -> bool:
        """True when the caller hears nothing and nothing is pending to change that.

        Never true for a live call the engine handles correctly (the module doc's table).
        """
        phase = self.phase
        if self.hangup_sent:
            return False
        if phase in (CallPhase.ANSWERING, CallPhase.ENDED, CallPhase.CONNECTED):
            return False
        if phase is CallPhase.IVR:
            return self.run is None or self.run.is_silent()
        if phase is CallPhase.CLOSING:
            return self.playback is None and self.close_by is None
        # With a ring out, the switch cuts the music the moment it bridges and reports the
        # answer right after: the gap is the bridge being made.
        return self.playback is None and not self.attempts


class CallbackState(Enum):
    WAITING = "waiting"
    """In the queue, off the line; offered when it reaches the front and is ready."""
    AGENT_RINGING = "agent ringing"
    DIALLING = "dialling"
    """The agent answered; the caller's number rings."""
    CONNECTED = "connected"
    DONE = "done"


class CallbackInput(Enum):
    OFFER = "offer"
    AGENT_ANSWERED = "agent answered"
    AGENT_FAILED = "agent failed"
    CALLEE_ANSWERED = "callee answered"
    CALLEE_FAILED = "callee failed"
    """The caller did not answer: another attempt later, or give up."""
    GIVE_UP = "give up"
    ENDED = "ended"


_S = CallbackState
_I = CallbackInput

CALLBACK_TRANSITIONS: dict[tuple[CallbackState, CallbackInput], CallbackState] = {
    (_S.WAITING, _I.OFFER): _S.AGENT_RINGING,
    (_S.WAITING, _I.GIVE_UP): _S.DONE,
    (_S.AGENT_RINGING, _I.AGENT_ANSWERED): _S.DIALLING,
    (_S.AGENT_RINGING, _I.AGENT_FAILED): _S.WAITING,
    (_S.DIALLING, _I.CALLEE_ANSWERED): _S.CONNECTED,
    (_S.DIALLING, _I.CALLEE_FAILED): _S.WAITING,
    (_S.CONNECTED, _I.ENDED): _S.DONE,
}


@dataclass(slots=True, kw_only=True)
class CallbackJob:
    """A callback waiting in a queue's virtual line, or being made."""

    call_id: str
    """Its queue entry's id (the original call's key, or ``callback-N`` when restored)."""
    queue: str
    number: str
    name: str | None
    callback_id: str
    """The stored callback's id (the engine makes it: storing is never waited for)."""
    joined_wall: float
    """Unix time of the original join: the place kept, as stored."""
    attempts: int = 0
    state: CallbackState = CallbackState.WAITING
    ready_at: float = 0.0
    """Not offered before this engine time (caller still on the line, or retry spacing)."""
    hold_for: str | None = None
    """Not offered while this live call (the caller, still hearing the confirmation or the
    rest of the IVR) is on the line."""
    origin: str | None = None
    """The switch's key of the current originate."""
    agent: str | None = None
    """The agent rung or talking."""
    ring_deadline: float | None = None
    """Safety: treat the agent leg as missed if the switch never reports by then."""

    def move(self, event: CallbackInput) -> CallbackState:
        """Apply one input.

        Raises:
            CallStateError: the pair is not in :data:`CALLBACK_TRANSITIONS`.
        """
        new = CALLBACK_TRANSITIONS.get((self.state, event))
        if new is None:
            raise CallStateError(
                f"callback {self.call_id}: {event.value} in state {self.state.value}"
            )
        self.state = new
        return new

    def offerable(self, now: float) -> bool:
        return (
            self.state is CallbackState.WAITING and self.hold_for is None and self.ready_at <= now
        )
