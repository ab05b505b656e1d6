"""What the IVR interpreter takes in (events) and asks for (actions). Pure data.

The engine turns switch and plugin happenings into these events for
:class:`minicc.queue.ivr.FlowRun`, and performs the actions it returns. Ids on :class:`Play`
and :class:`Lookup` let a late answer to something already abandoned be recognised and
ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from minicc.queue.ivr_schema import DTMF_KEYS, PromptRef, SayKind


def _frozen() -> Mapping[Any, Any]:
    return MappingProxyType({})


# -- events the engine feeds in ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitPressed:
    """The caller pressed a key."""

    digit: str
    """One of 0-9, *, #, A-D."""

    def __post_init__(self) -> None:
        if len(self.digit) != 1 or self.digit not in DTMF_KEYS:
            raise ValueError(f"not a DTMF key: {self.digit!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptsFinished:
    """A :class:`Play` ran to its end (not sent for one stopped by :class:`StopPlayback`)."""

    play_id: int
    """The ``play_id`` of the finished :class:`Play`; stale ids are ignored."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupResult:
    """A plugin lookup's answer (or its failure)."""

    request_id: int
    """The ``request_id`` of the :class:`Lookup` it answers; stale ids are ignored."""
    result: str | None = None
    """The value the node branches on, e.g. ``"shipped"``."""
    data: Mapping[str, str] = field(default_factory=_frozen)
    """Extra fields, stored as variables ``<into>.<key>`` for prompts and later nodes."""
    error: str | None = None
    """Why the hook failed; the run then takes the node's fallback."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerHungUp:
    """The caller left; the run ends without further actions (except cancelling a lookup)."""


IvrEvent = DigitPressed | PromptsFinished | LookupResult | CallerHungUp

# -- actions the engine performs --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Say:
    """A value to speak with the number prompts."""

    kind: SayKind
    value: str
    """A whole number (digits) for ``number`` and ``minutes``; 0-9, ``*`` and ``#`` for
    ``digits``; ``YYYY-MM-DD`` for ``date``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    """Play these prompts in order; answer with :class:`PromptsFinished` when done."""

    play_id: int
    items: tuple[PromptRef | Say, ...]
    language: str
    """Language to resolve the prompt names in."""
    interruptible: bool
    """Whether a key stops it (the run sends :class:`StopPlayback` itself)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPlayback:
    """Stop the :class:`Play` with this id at once (the caller barged in)."""

    play_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetLanguage:
    """The caller's language changed (for queue announcements and the agent's screen)."""

    language: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Lookup:
    """Call the plugin lookup hook; answer with :class:`LookupResult`."""

    request_id: int
    hook: str
    input: str
    timeout: float
    """Seconds the run waits before taking the fallback by itself."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelLookup:
    """The run no longer wants that lookup's answer (timed out or the caller left)."""

    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCallback:
    """Register a callback request; the flow goes on (usually to a goodbye)."""

    queue: str | None
    number: str
    variables: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteToQueue:
    """Hand the call to an ACD queue. Ends the run."""

    queue: str
    priority: int
    skills: Mapping[str, int]
    """Required skill -> minimum level."""
    variables: Mapping[str, str]
    language: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteToExtension:
    """Ring an extension. Ends the run."""

    number: str
    variables: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Voicemail:
    """Take a voicemail for this box. Ends the run."""

    box: str
    language: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HangUp:
    """End the call. Ends the run."""

    reason: str
    """The hangup node's reason, or ``"loop"``, ``"flow unavailable"``, ``"no destination"``."""


Action = (
    Play
    | StopPlayback
    | SetLanguage
    | Lookup
    | CancelLookup
    | RequestCallback
    | RouteToQueue
    | RouteToExtension
    | Voicemail
    | HangUp
)
TERMINAL_ACTIONS = (RouteToQueue, RouteToExtension, Voicemail, HangUp)
