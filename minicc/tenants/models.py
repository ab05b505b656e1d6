"""Plain records shared by the store, the switch and the CLI.

Nothing here imports sqlite3 or does IO: the switch builds these (a ``CallRecord`` when a call
ends, a ``Binding`` when a REGISTER succeeds) and hands them to ``minicc.store`` to persist.
All timestamps are timezone-aware ``datetime`` in UTC, or unix wall-clock seconds where the
field name says ``_unix``/``expires_at``; monotonic clocks never reach storage because they
mean nothing after a restart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for the annotation: keep this module free of protocol imports
    from minicc.switch.sip.auth import DigestAlgorithm


class Disposition(Enum):
    """How a call ended, as billing and reports see it."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @classmethod
    def from_final_status(cls, status: int) -> Disposition:
        """Map the final SIP response status of the call's INVITE to a disposition.

        Args:
            status: the final status code (2xx-6xx) the caller saw.

        Returns:
            ANSWERED for 2xx; BUSY for 486, 600 and 603 (RFC 3261 §21.4.24, §21.6.1,
            §21.6.2: the callee was there and would not take the call);
            NO_ANSWER for 408 and 480 (§21.4.9, §21.4.18, what a ring timeout produces);
            CANCELLED for 487 (§21.4.26, the caller sent CANCEL); FAILED otherwise.
        """
        if 200 <= status < 300:
            return cls.ANSWERED
        if status in (486, 600, 603):
            return cls.BUSY
        if status in (408, 480):
            return cls.NO_ANSWER
        if status == 487:
            return cls.CANCELLED
        return cls.FAILED


class HangupSide(Enum):
    """Which party ended the call."""

    CALLER = "caller"
    CALLEE = "callee"
    SYSTEM = "system"


class TenantStatus(Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


def _require_utc_aware(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Quotas:
    """What one tenant may use at most; None: no limit. Set by the provider."""

    max_calls: int | None = None
    """Calls in progress at once; the next INVITE gets 503 with a Reason."""

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in (("max_calls", self.max_calls),) if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Quotas:
        value = data.get("max_calls")
        return cls(max_calls=value if isinstance(value, int) and value >= 0 else None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    """One company served by this switch; owns its own database file."""

    id: int
    """Row id in the control database."""
    name: str
    """Slug (``demo``); also the tenant database file name."""
    domain: str
    """Primary SIP domain; the digest realm of its extensions."""
    created_at: datetime
    """When the tenant was added (UTC)."""
    status: TenantStatus = TenantStatus.ACTIVE
    """Suspended tenants are kept but refused service."""
    aliases: tuple[str, ...] = ()
    """Other SIP domains that resolve to this tenant."""
    record_calls: bool = False
    """Record every answered call to a two-channel WAV under the data dir's recordings/."""
    quotas: Quotas = Quotas()
    """Limits the provider set for this tenant."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Extension:
    """A SIP login of one tenant. The password itself is never stored."""

    extension: str
    """The user part (digits), e.g. ``1001``."""
    realm: str
    """Digest realm the HA1 values were computed for (the tenant's SIP domain)."""
    ha1_md5: str
    """H(user:realm:password) with MD5 (RFC 2617/7616)."""
    ha1_sha256: str
    """H(user:realm:password) with SHA-256 (RFC 7616, RFC 8760)."""
    name: str | None = None
    """Display name, e.g. ``Agent One``."""
    created_at: datetime | None = None
    """When the extension was added (UTC)."""

    def ha1(self, algorithm: DigestAlgorithm) -> str:
        """Return the stored HA1 for ``algorithm``."""
        return self.ha1_md5 if algorithm.value == "MD5" else self.ha1_sha256


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """A registrar binding (RFC 3261 §10.3) as persisted across restarts."""

    extension: str
    """Address-of-record user part."""
    contact_uri: str
    """The Contact URI the phone registered."""
    expires_at: float
    """Unix wall-clock time (seconds) when the binding lapses."""
    call_id: str
    """Call-ID of the REGISTER; with ``cseq`` it orders refreshes (§10.3 step 7)."""
    cseq: int
    """CSeq number of the REGISTER that created or refreshed the binding."""
    transport: str
    """``udp``, ``tcp``, ``tls`` or ``ws``: how the REGISTER arrived."""
    source_host: str
    """Source address the REGISTER came from (where to send requests behind NAT)."""
    source_port: int
    """Source port the REGISTER came from."""
    user_agent: str | None = None
    """User-Agent header, for display only."""

    def __post_init__(self) -> None:
        if not 0 <= self.source_port <= 65535:
            raise ValueError(f"source_port out of range: {self.source_port}")
        if self.cseq < 0:
            raise ValueError(f"cseq must not be negative: {self.cseq}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """A call-detail record: one per call, written when the call ends.

    ``duration`` and ``billable_seconds`` are derived from the timestamps so they can never
    disagree with them.
    """

    tenant: str
    """Tenant name (slug) the call belongs to."""
    call_id: str
    """SIP Call-ID of the inbound (caller's) leg."""
    from_user: str
    """User part of the caller's From URI."""
    to_user: str
    """User part of the dialled Request-URI/To (extension, queue or DID)."""
    start: datetime
    """When the INVITE arrived (UTC, aware)."""
    end: datetime
    """When the call was torn down (UTC, aware)."""
    disposition: Disposition
    """How the call ended."""
    hangup_side: HangupSide
    """Which party ended it."""
    answer: datetime | None = None
    """When it was answered; set if and only if ``disposition`` is ANSWERED."""
    from_display: str | None = None
    """Display name of the caller's From header."""
    sip_cause: int | None = None
    """Final SIP status for unanswered calls (e.g. 486), or the status in a Reason header."""
    recording_path: str | None = None
    """Recording file, relative to the data dir, when the call was recorded."""
    id: int | None = field(default=None, compare=False)
    """Row id once stored; None for a record not yet written."""

    def __post_init__(self) -> None:
        for name in ("start", "end", "answer"):
            _require_utc_aware(name, getattr(self, name))
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.disposition is Disposition.ANSWERED:
            if self.answer is None:
                raise ValueError("an answered call needs an answer time")
        elif self.answer is not None:
            raise ValueError(f"a {self.disposition.value} call cannot have an answer time")
        if self.answer is not None and not self.start <= self.answer <= self.end:
            raise ValueError(f"answer {self.answer} is outside {self.start}..{self.end}")
        if self.sip_cause is not None and not 100 <= self.sip_cause <= 699:
            raise ValueError(f"sip_cause must be a SIP status 100-699, got {self.sip_cause}")

    @property
    def duration(self) -> float:
        """Seconds from arrival to tear-down (ringing included)."""
        return (self.end - self.start) / timedelta(seconds=1)

    @property
    def billable_seconds(self) -> int:
        """Whole seconds from answer to tear-down, rounded up; 0 when not answered."""
        if self.answer is None:
            return 0
        # Rounded to the microsecond first so float noise never bills an extra second.
        return math.ceil(round((self.end - self.answer) / timedelta(seconds=1), 6))
