"""A tenant's call-center provisioning as the engine consumes it.

The store builds one :class:`CallCenterSetup` per tenant from its database (numbers, queues,
members, IVR flows, agent states, pending callbacks); the engine is rebuilt from a fresh one
when the database changes. Nothing here does IO.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from minicc.queue.models import Member, QueueConfig


class TargetKind(Enum):
    QUEUE = "queue"
    IVR = "ivr"
    EXTENSION = "ext"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where a number leads: ``queue:NAME``, ``ivr:FLOW`` or ``ext:EXTENSION``."""

    kind: TargetKind
    """Queue, IVR flow or extension."""
    name: str
    """The queue name, flow name or extension number."""

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse ``queue:sales``, ``ivr:main`` or ``ext:1001``.

        Raises:
            ValueError: the text is not one of those forms; the message shows them.
        """
        kind, sep, name = text.partition(":")
        kinds = {k.value: k for k in TargetKind}
        if not sep or kind not in kinds or not name.strip():
            raise ValueError(f"target {text!r} must be queue:NAME, ivr:FLOW or ext:EXTENSION")
        return cls(kind=kinds[kind], name=name.strip())

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowSource:
    """An IVR flow as stored: its TOML text and the name it was loaded under."""

    name: str
    """Flow name (what ``ivr:NAME`` targets refer to)."""
    text: str
    """The TOML document, validated when it was loaded."""
    origin: str
    """File name it was loaded from, for error messages."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSetting:
    """An agent's persisted state: survives restarts so nobody is silently logged out."""

    extension: str
    """The agent's extension (the agent id)."""
    state: str
    """``available``, ``paused`` or ``logged-out`` as last set."""
    reason: str | None = None
    """Pause reason, when paused."""


def new_callback_id(wall: float, rng: random.Random) -> str:
    """A fresh callback id: the unix time in milliseconds and 40 random bits, in hex (22
    digits), so ids sort by when they were made (as row ids did) and never clash in practice.

    Args:
        wall: unix time now.
        rng: the random source (injected: tests get the same ids every run).
    """
    return f"{int(wall * 1000):012x}{rng.getrandbits(40):010x}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingCallback:
    """A caller who asked to be called back and keeps their place in the queue."""

    id: str
    """Its id, made by whoever created it (:func:`new_callback_id`), so storing it never has
    to be waited for."""
    queue: str
    """Queue whose virtual line the callback waits in."""
    number: str
    """Where to call the caller back."""
    name: str | None
    """Caller's name if known (web form, CRM)."""
    joined_at: float
    """Unix time the caller first joined the queue: the place they keep."""
    priority: int = 0
    """Queue priority (VIP > normal)."""
    attempts: int = 0
    """Dial-back attempts so far."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallCenterSetup:
    """Everything one tenant's queue engine needs, read from its database."""

    tenant: str
    """Tenant name."""
    timezone: str = "UTC"
    """IANA time zone for business hours."""
    numbers: Mapping[str, Target] = field(default_factory=dict)
    """Dialled number -> where it leads."""
    queues: Mapping[str, QueueConfig] = field(default_factory=dict)
    """Queue name -> its configuration."""
    members: Mapping[str, tuple[Member, ...]] = field(default_factory=dict)
    """Queue name -> its agents with their skills."""
    flows: Mapping[str, FlowSource] = field(default_factory=dict)
    """Flow name -> the active (last valid) flow."""
    agents: Mapping[str, AgentSetting] = field(default_factory=dict)
    """Extension -> persisted agent state."""
    vip_numbers: frozenset[str] = frozenset()
    """Caller numbers served ahead of normal callers."""
    callbacks: tuple[PendingCallback, ...] = ()
    """Callbacks still to be made, oldest first."""
    dispositions: tuple[str, ...] = ()
    """Wrap-up disposition codes agents pick from."""
    end_wrap_up_on_disposition: bool = False
    """Whether setting a disposition during wrap-up ends the wrap-up (the agent is ready)."""
