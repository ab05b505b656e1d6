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
