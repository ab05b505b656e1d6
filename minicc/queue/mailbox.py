"""Voicemail for direct calls to an extension: who has it, and how long a phone rings first.

A plain call to an extension (1001 dials 1002, or a trunk call to a number mapped to
``ext:1002``) is a B2BUA call: the switch forks it to the registered phones and the caller
gets the phones' final status. When the tenant turned voicemail on for that extension
(``minicc user set --voicemail on``), the engine takes the call instead (an APPLICATION
call, :mod:`minicc.queue.engine_direct`): the caller hears the ringing tone while the
extension rings for :meth:`VoicemailPlan.ring_time` seconds; an answer is bridged as before,
and no answer, busy, decline or no phone registered leads to the extension's mailbox.

The plan is a tenant default plus per-extension overrides, read by the store
(:mod:`minicc.store.mailboxes`) into :class:`~minicc.queue.setup.CallCenterSetup`.
Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "DEFAULT_RING_SECONDS",
    "MAX_RING_SECONDS",
    "MIN_RING_SECONDS",
    "MailboxRule",
    "VoicemailPlan",
    "check_ring_seconds",
]

DEFAULT_RING_SECONDS = 20.0
"""How long the phones ring before voicemail when no ring time is set (about four rings)."""
MIN_RING_SECONDS = 5.0
MAX_RING_SECONDS = 120.0


def check_ring_seconds(value: float) -> float:
    """A ring time before voicemail, checked.

    Raises:
        ValueError: outside 5..120 seconds; the message names the range.
    """
    if not MIN_RING_SECONDS <= value <= MAX_RING_SECONDS:
        raise ValueError(
            f"ring time {value:g} s: give {MIN_RING_SECONDS:g} to {MAX_RING_SECONDS:g} seconds"
        )
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxRule:
    """Voicemail on no answer / busy / unavailable, for one extension or the tenant."""

    enabled: bool
    """Whether unanswered direct calls go to the mailbox."""
    ring_seconds: float | None = None
    """Ring time before voicemail; None: the tenant default's, else
    :data:`DEFAULT_RING_SECONDS`."""

    def __post_init__(self) -> None:
        if self.ring_seconds is not None:
            check_ring_seconds(self.ring_seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailPlan:
    """A tenant's voicemail rules for direct calls to its extensions."""

    default: MailboxRule = MailboxRule(enabled=False)
    """What extensions without a rule of their own get."""
    extensions: Mapping[str, MailboxRule] = field(default_factory=lambda: MappingProxyType({}))
    """Extension -> its own rule (wins over the default)."""
    known: frozenset[str] = frozenset()
    """The tenant's extensions: only these ever get voicemail. Numbers that are no extension
    (an outside number a phone dials through the trunk) always stay plain calls, also under
    a tenant-wide default."""

    def rule(self, extension: str) -> MailboxRule:
        """The rule that applies to ``extension``."""
        return self.extensions.get(extension, self.default)

    def ring_time(self, extension: str) -> float | None:
        """Seconds to ring ``extension`` before its mailbox takes the call, or None when
        calls to it stay plain calls (no voicemail)."""
        rule = self.rule(extension)
        if not rule.enabled or extension not in self.known:
            return None
        if rule.ring_seconds is not None:
            return rule.ring_seconds
        if self.default.ring_seconds is not None:
            return self.default.ring_seconds
        return DEFAULT_RING_SECONDS
