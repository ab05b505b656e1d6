"""Domain events: the vocabulary the switch, the queue engine, the store and the API share.

Events are immutable facts about something that already happened. They go out on the
:class:`minicc.bus.EventBus`; nothing that publishes them waits for a subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass

from minicc.tenants.models import CallRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    tenant: str
    """Name of the tenant the event belongs to (events never cross tenants)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(Event):
    call_id: str
    """minicc's id for the call (the Call-ID of the caller's leg)."""
    caller: str
    """Caller's extension or number."""
    caller_name: str | None
    """Display name the caller's phone sent, if any."""
    callee: str
    """The dialled number."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRinging(Event):
    call_id: str
    """minicc's id for the call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(Event):
    call_id: str
    """minicc's id for the call."""
    answered_by: str
    """Contact URI of the device that answered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(Event):
    record: CallRecord
    """The finished call-detail record, as the store will persist it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(Event):
    call_id: str
    """minicc's id for the call."""
    side: str
    """``"caller"`` or ``"callee"``: which party pressed the key."""
    digit: str
    """One of 0-9, *, #, A-D."""
    method: str
    """``"rfc4733"`` (RTP telephone-event) or ``"info"`` (SIP INFO)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered(Event):
    extension: str
    """The extension whose binding was added or refreshed."""
    contact: str
    """The Contact URI registered."""
    expires_at: float
    """Unix time at which the binding lapses."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Unregistered(Event):
    extension: str
    """The extension whose binding went away (un-REGISTER or expiry)."""
    contact: str
    """The Contact URI removed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailed(Event):
    source_ip: str
    """Address the failing request came from (what the flood guard will count)."""
    username: str | None
    """The user name the request claimed, if any."""
    method: str
    """SIP method of the request (REGISTER, INVITE, ...)."""


# -- call-center (queue engine) events --------------------------------------------------------
# States, reasons and outcomes are plain strings (the enums' values) so that the API can
# stream these events as JSON without importing the queue package.


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQueued(Event):
    call_id: str
    """minicc's id for the call (the switch's call key; ``callback-N`` for a restored callback)."""
    queue: str
    """The queue joined."""
    caller: str
    """The caller's number or extension."""
    priority: int
    """Queue priority (higher is served first; VIPs are above every IVR priority)."""
    position: int
    """1-based place in the queue at joining."""
    callback: bool = False
    """True when the call joins as a callback (web request, IVR request, or restored)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOffered(Event):
    call_id: str
    """minicc's id for the call."""
    queue: str
    """The queue the call waits in."""
    agent: str
    """The agent whose phone(s) now ring."""
    callback: bool = False
    """True when this is the agent-first leg of a callback."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnsweredByAgent(Event):
    call_id: str
    """minicc's id for the call."""
    queue: str
    """The queue the call came from."""
    agent: str
    """The agent now talking to the caller."""
    waited: float
    """Seconds from joining the queue to this answer."""
    callback: bool = False
    """True when the caller was dialled back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAbandoned(Event):
    call_id: str
    """minicc's id for the call."""
    queue: str
    """The queue the caller hung up in."""
    waited: float
    """Seconds the caller waited before hanging up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallLeftQueue(Event):
    call_id: str
    """minicc's id for the call."""
    queue: str
    """The queue left."""
    reason: str
    """``max wait``, ``empty``, ``full``, ``callback failed`` or ``other``."""
    destination: str
    """Where the call went: ``queue:NAME``, ``voicemail``, ``callback-offer`` or ``none``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(Event):
    call_id: str
    """minicc's id for the call (the caller's, which goes on)."""
    sip_call_id: str
    """The SIP Call-ID of the caller's leg: what the call's record carries."""
    kind: str
    """``blind`` or ``attended``."""
    by: str | None
    """The agent (extension) who transferred the call."""
    target: str
    """The number asked for."""
    status: int
    """The outcome as a SIP status: 200 done; 403 refused (an outside number: no trunks
    yet), 480 nobody there, other 4xx/5xx the transfer failed and the call stayed as it was."""
    queue: str | None
    """The queue the call was answered from, if any."""
    destination: str
    """Where the caller went: ``queue:NAME``, ``ivr:FLOW`` or ``ext:EXTENSION``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged(Event):
    agent: str
    """The agent (their extension)."""
    state: str
    """New state: ``logged out``, ``available``, ``reserved``, ``on call``, ``wrap-up``,
    ``paused``."""
    reason: str | None
    """Pause reason when ``state`` is ``paused``."""
    previous: str
    """State left."""
    call_id: str | None
    """The call the change concerns, if any."""
    queue: str | None
    """That call's queue."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallHeld(Event):
    call_id: str
    """minicc's id for the call."""
    queue: str | None
    """The queue the call was answered from (None for a transfer to an extension)."""
    agent: str | None
    """The agent holding the caller."""
    by: str
    """``phone`` (the agent's phone sent a hold) or ``api`` (the agent's screen)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallResumed(Event):
    call_id: str
    """minicc's id for the call."""
    queue: str | None
    """The queue the call was answered from."""
    agent: str | None
    """The agent back on the call."""
    held: float
    """Seconds the caller was on hold."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldRingBack(Event):
    call_id: str
    """The held call."""
    queue: str | None
    """The queue the call was answered from."""
    agent: str
    """The agent being rung back."""
    attempt: int
    """1 for the first ring-back of this hold, then 2, 3 ..."""
    result: str | None = None
    """None when the ring starts; then ``answered``, ``no-answer``, ``cancelled`` ..."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRequested(Event):
    call_id: str
    """The queue entry that keeps the place (the caller's original call id)."""
    queue: str
    """The queue whose virtual line the callback waits in."""
    number: str
    """Where the caller will be called back."""
    callback_id: str
    """The stored callback's id."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackResult(Event):
    call_id: str
    """The callback's queue entry."""
    queue: str
    """Its queue."""
    number: str
    """The number dialled."""
    callback_id: str
    """The stored callback's id."""
    outcome: str
    """``connected``, ``retry`` (this attempt failed, another follows) or ``failed``."""
    attempts: int
    """Dial-back attempts made so far."""
    agent: str | None
    """The agent who made the attempt."""
    detail: str | None = None
    """Why an attempt failed (``busy``, ``no-answer``, ...)."""


# -- recording, voicemail and wrap-up (minicc/queue/engine_features.py) -----------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailLeft(Event):
    """A caller left a message; the store's subscriber keeps it as a voicemail row."""

    call_id: str
    """The caller leg's SIP Call-ID (what the call record carries)."""
    call_key: str
    """minicc's id for the call."""
    box: str
    """The voicemail box: a queue's name, an extension, or an IVR node's box."""
    caller: str
    """The caller's number or extension."""
    caller_name: str | None
    """The display name the caller sent."""
    path: str
    """The WAV, relative to the data folder."""
    duration: float
    """Seconds of audio."""
    left_at: float
    """Unix time the message ended."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DispositionSet(Event):
    """An agent set the wrap-up disposition of a call (a later one replaces it)."""

    call_id: str | None
    """The caller leg's SIP Call-ID (what the call record carries); None for a callback."""
    call_key: str
    """minicc's id for the call (the queue entry's)."""
    agent: str
    """The agent's extension."""
    queue: str
    """The queue the call came from."""
    code: str
    """One of the tenant's disposition codes."""
    note: str | None
    """The agent's note."""
    set_at: float
    """Unix time it was set."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorStarted(Event):
    monitor: str
    """The monitor's id (the supervisor's own call)."""
    call_id: str
    """minicc's key of the monitored call."""
    supervisor: str
    """The supervisor's extension."""
    agent: str
    """The extension monitored."""
    mode: str
    """``listen``, ``whisper`` or ``barge``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorModeChanged(Event):
    monitor: str
    """The monitor's id."""
    mode: str
    """The new mode: ``listen``, ``whisper`` or ``barge``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorEnded(Event):
    monitor: str
    """The monitor's id."""
    reason: str
    """``supervisor-hung-up``, ``call-ended``, ``stopped``, ``not-answered`` or ``refused``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceChanged(Event):
    call_id: str
    """minicc's key of the call."""
    extension: str
    """The third party."""
    state: str
    """``joined``, ``left``, or why it never joined (``no-answer``, ``busy``, ...)."""
