"""Queue configuration, queue members and waiting calls: the data the ACD decides on. Pure.

Everything here is an immutable value checked in ``__post_init__``; a bad value raises
:class:`ValueError` naming the class and the field, so a config loader can pass the message
straight to the user. Time is never read here: ``joined_at`` and friends are numbers on the
engine's monotonic clock.

Skills are ``name -> level`` with levels 1-10 on both sides: a member *has* a level, a call
*requires* a minimum level. A skill the member lacks counts as level 0, so it never matches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType

__all__ = [
    "MAX_SKILL_LEVEL",
    "MIN_SKILL_LEVEL",
    "EmptyRule",
    "Member",
    "OverflowKind",
    "OverflowTarget",
    "QueueConfig",
    "QueuedCall",
    "RecordingPolicy",
    "Strategy",
]

MIN_SKILL_LEVEL = 1
MAX_SKILL_LEVEL = 10


class Strategy(Enum):
    """How the ACD chooses among the idle agents that can take a call."""

    RING_ALL = "ring-all"
    LONGEST_IDLE = "longest-idle"
    ROUND_ROBIN = "round-robin"
    FEWEST_CALLS = "fewest-calls"
    SKILLS = "skills"


class OverflowKind(Enum):
    """Where a call goes when it waited too long or the queue is full."""

    QUEUE = "queue"
    VOICEMAIL = "voicemail"
    CALLBACK_OFFER = "callback-offer"
    NONE = "none"
    """No destination: the call leaves the queue (the engine says goodbye and hangs up)."""


class EmptyRule(Enum):
    """When a queue counts as empty for :attr:`QueueConfig.join_empty` / ``leave_when_empty``.

    "Empty" is judged per call: only members whose skills could serve the call (at the
    lowest level widening would ever accept) count.
    """

    IGNORE = "ignore"
    """Never empty: callers always join and never leave for lack of agents."""
    NO_LOGGED_IN = "no-logged-in"
    """Empty when no such member is logged in (paused members still count)."""
    NO_STAFFED = "no-staffed"
    """Empty when no such member is logged in and unpaused."""


class RecordingPolicy(Enum):
    """Whether calls answered from this queue are recorded."""

    ALWAYS = "always"
    NEVER = "never"
    ON_DEMAND = "on-demand"


def _fail(owner: str, name: str, message: str) -> ValueError:
    return ValueError(f"{owner}.{name}: {message}")


def _check_seconds(owner: str, name: str, value: float | None, *, allow_zero: bool) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(owner, name, f"must be a finite number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise _fail(owner, name, f"must be {bound} seconds, got {value!r}")


def _frozen_skills(owner: str, name: str, skills: Mapping[str, int]) -> Mapping[str, int]:
    """Check a skills mapping and return a read-only copy of it."""
    if not isinstance(skills, Mapping):
        raise _fail(owner, name, f"must be a mapping of skill name to level, got {skills!r}")
    for skill, level in skills.items():
        if not isinstance(skill, str) or not skill.strip():
            raise _fail(owner, name, f"skill names must be non-empty strings, got {skill!r}")
        if (
            isinstance(level, bool)
            or not isinstance(level, int)
            or not MIN_SKILL_LEVEL <= level <= MAX_SKILL_LEVEL
        ):
            raise _fail(
                owner,
                name,
                f"level of {skill!r} must be an integer {MIN_SKILL_LEVEL}-{MAX_SKILL_LEVEL}, "
                f"got {level!r}",
            )
    return MappingProxyType(dict(skills))


@dataclass(frozen=True, slots=True, kw_only=True)
class OverflowTarget:
    """A destination for calls that leave a queue by max wait or max length."""

    kind: OverflowKind
    """Queue, voicemail, a callback offer, or nowhere."""
    queue: str | None = None
    """The target queue's name when ``kind`` is QUEUE; None otherwise."""

    def __post_init__(self) -> None:
        if self.kind is OverflowKind.QUEUE:
            if not self.queue:
                raise _fail("OverflowTarget", "queue", "a queue overflow needs a queue name")
        elif self.queue is not None:
            raise _fail(
                "OverflowTarget",
                "queue",
                f"only a queue overflow names a queue, not {self.kind.value}",
            )

    @classmethod
    def parse(cls, text: str) -> OverflowTarget:
        """Read ``queue:NAME``, ``voicemail``, ``callback-offer`` or ``none``.

        Raises:
            ValueError: anything else, with the accepted forms in the message.
        """
        value = text.strip()
        if value.startswith("queue:"):
            return cls(kind=OverflowKind.QUEUE, queue=value.removeprefix("queue:").strip())
        for kind in (OverflowKind.VOICEMAIL, OverflowKind.CALLBACK_OFFER, OverflowKind.NONE):
            if value == kind.value:
                return cls(kind=kind)
        raise ValueError(
            f"overflow target {text!r}: expected queue:NAME, voicemail, callback-offer or none"
        )

    def __str__(self) -> str:
        return f"queue:{self.queue}" if self.kind is OverflowKind.QUEUE else self.kind.value


NO_OVERFLOW = OverflowTarget(kind=OverflowKind.NONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """One queue's settings. Durations are seconds; None switches a limit off."""

    name: str
    """The queue's name, unique within its tenant."""
    strategy: Strategy = Strategy.LONGEST_IDLE
    """How an idle agent is chosen (see :mod:`minicc.queue.acd`)."""
    ring_timeout: float = 15.0
    """How long one offer rings an agent before it counts as missed."""
    wrap_up: float = 10.0
    """After-call work time before the agent is offered calls again."""
    max_wait: float | None = None
    """A caller who has waited this long leaves by :attr:`overflow`; None waits forever."""
    max_length: int | None = None
    """Callers waiting (callbacks included) beyond which new callers overflow; None: no cap."""
    overflow: OverflowTarget = NO_OVERFLOW
    """Where callers go on max wait, max length or a refused join."""
    join_empty: EmptyRule = EmptyRule.IGNORE
    """A caller is refused (overflows) when the queue is empty by this rule."""
    leave_when_empty: EmptyRule = EmptyRule.IGNORE
    """A waiting caller leaves (overflows) when the queue becomes empty by this rule."""
    announce_interval: float | None = 60.0
    """Seconds between position/wait announcements; None announces nothing."""
    announce_position: bool = True
    """Whether announcements say "you are caller number N"."""
    announce_ewt: bool = True
    """Whether announcements say the estimated wait (when there is an honest estimate)."""
    callback_threshold: float | None = None
    """Offer "press 1 to be called back" when the estimated wait exceeds this; None: never."""
    service_level_threshold: float = 20.0
    """A call answered within this many seconds of joining meets the service level."""
    service_level_target: float = 80.0
    """Target share (percent) of calls meeting the service level, for the wallboard."""
    required_skills: Mapping[str, int] = field(default_factory=dict)
    """Skills every call of this queue needs (a call's own requirements are added on top)."""
    widen_after: float | None = None
    """Each time a call has waited this long without an agent, its required levels drop by
    one, down to :attr:`widen_floor`; None never widens."""
    widen_floor: int = MIN_SKILL_LEVEL
    """The lowest level widening may accept."""
    recording: RecordingPolicy = RecordingPolicy.NEVER
    """Whether answered calls are recorded."""
    max_misses: int | None = 3
    """Consecutive rejected or missed offers after which an agent is auto-paused; None: never."""
    hold_timeout: float | None = 120.0
    """Seconds a caller may stay on hold before minicc rings the agent back (and again every
    as long, a few times); 0 or None: never (docs/hold.md)."""

    def __post_init__(self) -> None:
        owner = "QueueConfig"
        if not isinstance(self.name, str) or not self.name.strip():
            raise _fail(owner, "name", f"must be a non-empty string, got {self.name!r}")
        if not isinstance(self.strategy, Strategy):
            raise _fail(owner, "strategy", f"must be a Strategy, got {self.strategy!r}")
        _check_seconds(owner, "ring_timeout", self.ring_timeout, allow_zero=False)
        _check_seconds(owner, "wrap_up", self.wrap_up, allow_zero=True)
        _check_seconds(owner, "max_wait", self.max_wait, allow_zero=False)
        _check_seconds(owner, "announce_interval", self.announce_interval, allow_zero=False)
        _check_seconds(owner, "callback_threshold", self.callback_threshold, allow_zero=True)
        _check_seconds(
            owner, "service_level_threshold", self.service_level_threshold, allow_zero=True
        )
        _check_seconds(owner, "widen_after", self.widen_after, allow_zero=False)
        _check_seconds(owner, "hold_timeout", self.hold_timeout, allow_zero=True)
        if self.max_length is not None and (
            isinstance(self.max_length, bool)
            or not isinstance(self.max_length, int)
            or self.max_length < 1
        ):
            raise _fail(owner, "max_length", f"must be a positive integer, got {self.max_length!r}")
        if self.max_misses is not None and (
            isinstance(self.max_misses, bool)
            or not isinstance(self.max_misses, int)
            or self.max_misses < 1
        ):
            raise _fail(owner, "max_misses", f"must be a positive integer, got {self.max_misses!r}")
        target = self.service_level_target
        if (
            isinstance(target, bool)
            or not isinstance(target, int | float)
            or not 0 <= target <= 100
        ):
            raise _fail(
                owner, "service_level_target", f"must be a percentage 0-100, got {target!r}"
            )
        if not isinstance(self.overflow, OverflowTarget):
            raise _fail(owner, "overflow", f"must be an OverflowTarget, got {self.overflow!r}")
        if self.overflow.kind is OverflowKind.QUEUE and self.overflow.queue == self.name:
            raise _fail(owner, "overflow", f"queue {self.name!r} cannot overflow to itself")
        for rule_name in ("join_empty", "leave_when_empty"):
            if not isinstance(getattr(self, rule_name), EmptyRule):
                raise _fail(
                    owner, rule_name, f"must be an EmptyRule, got {getattr(self, rule_name)!r}"
                )
        if not isinstance(self.recording, RecordingPolicy):
            raise _fail(owner, "recording", f"must be a RecordingPolicy, got {self.recording!r}")
        floor = self.widen_floor
        if (
            isinstance(floor, bool)
            or not isinstance(floor, int)
            or not (MIN_SKILL_LEVEL <= floor <= MAX_SKILL_LEVEL)
        ):
            raise _fail(
                owner,
                "widen_floor",
                f"must be an integer {MIN_SKILL_LEVEL}-{MAX_SKILL_LEVEL}, got {floor!r}",
            )
        skills = _frozen_skills(owner, "required_skills", self.required_skills)
        object.__setattr__(self, "required_skills", skills)


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """An agent's membership of one queue."""

    agent_id: str
    """The agent's id (their extension)."""
    skills: Mapping[str, int] = field(default_factory=dict)
    """What the agent can do, skill name -> level 1-10."""
    penalty: int = 0
    """Lower goes first: members with a higher penalty are offered calls only when no
    lower-penalty member who can take the call is idle (Asterisk's meaning)."""

    def __post_init__(self) -> None:
        if not isinstance(self.agent_id, str) or not self.agent_id.strip():
            raise _fail("Member", "agent_id", f"must be a non-empty string, got {self.agent_id!r}")
        if isinstance(self.penalty, bool) or not isinstance(self.penalty, int) or self.penalty < 0:
            raise _fail("Member", "penalty", f"must be an integer >= 0, got {self.penalty!r}")
        object.__setattr__(self, "skills", _frozen_skills("Member", "skills", self.skills))


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedCall:
    """A caller waiting in one queue, live or as a callback that keeps the place.

    The ACD orders calls by ``priority`` (higher first) and then by ``sequence`` (lower
    first), so a VIP goes ahead of normal callers and each priority is first come, first
    served. Changes (an agent declined, the caller chose a callback) make a new value with
    :meth:`exclude` or :meth:`as_callback`; the sequence, and so the place, is kept.
    """

    call_id: str
    """minicc's id for the call."""
    tenant: str
    """The tenant the call belongs to."""
    caller: str
    """The caller's number or extension (what a callback dials)."""
    joined_at: float
    """Engine-clock time the call joined this queue; wait and widening count from here."""
    sequence: int
    """Monotonic number handed out at join: the first-come-first-served key in a priority."""
    priority: int = 0
    """Higher is served first; VIPs get a higher number than the default 0."""
    required_skills: Mapping[str, int] = field(default_factory=dict)
    """Skills this call needs, name -> minimum level, on top of the queue's own."""
    callback: bool = False
    """True once the caller hung up to be called back: the call is virtual but keeps its place."""
    excluded: frozenset[str] = frozenset()
    """Agents who rejected or missed this call; they are never offered it again."""

    def __post_init__(self) -> None:
        owner = "QueuedCall"
        for name in ("call_id", "tenant"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise _fail(owner, name, f"must be a non-empty string, got {value!r}")
        if not isinstance(self.caller, str):
            raise _fail(owner, "caller", f"must be a string, got {self.caller!r}")
        _check_number(owner, "joined_at", self.joined_at)
        for name in ("sequence", "priority"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise _fail(owner, name, f"must be an integer, got {value!r}")
        if not isinstance(self.excluded, frozenset):
            raise _fail(
                owner, "excluded", f"must be a frozenset of agent ids, got {self.excluded!r}"
            )
        skills = _frozen_skills(owner, "required_skills", self.required_skills)
        object.__setattr__(self, "required_skills", skills)

    @property
    def order_key(self) -> tuple[int, int]:
        """Sort key of the queue order: priority descending, then sequence ascending."""
        return (-self.priority, self.sequence)

    def exclude(self, agent_id: str) -> QueuedCall:
        """This call with ``agent_id`` added to the agents never to be offered it again."""
        return replace(self, excluded=self.excluded | {agent_id})

    def as_callback(self) -> QueuedCall:
        """This call turned into a callback: same place, the caller is no longer on the line."""
        return replace(self, callback=True)


def _check_number(owner: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(owner, name, f"must be a finite number, got {value!r}")
