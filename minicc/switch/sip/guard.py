"""The flood and fraud guard: sources that guess passwords or flood get blocked for a while.

Like fail2ban, but inside the switch, so a block takes effect on the next packet and needs
no log parsing. Three rules, per source IP address:

* **password guessing**: more than ``auth_failures`` failed authentications within
  ``window`` seconds;
* **request flood**: more than ``max_rate`` requests per second, averaged over ``window``;
* **scanners**: a request whose User-Agent is a known SIP scanner's is an offence at once
  and is never answered (an answer tells the scanner a switch lives here).

An offence blocks the address for ``first_block`` seconds, doubling with every further
offence up to ``max_block``; offences are forgotten after a day without one. Blocked
addresses get no answer at all. Addresses in ``allow`` (trunks, the provider's own
networks) are never blocked. Pure: the clock is passed in, nothing here does IO.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Block", "FloodGuard", "GuardSettings", "Offence", "is_scanner"]

SCANNER_AGENTS = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "vaxsipuseragent",
    "vaxipuseragent",
    "iwar",
    "pplsip",
    "sundayddr",
)
FORGET_AFTER = 86400.0


class Offence(Enum):
    AUTH_FAILURES = "auth-failures"
    FLOOD = "flood"
    SCANNER = "scanner"


def is_scanner(user_agent: str | None) -> bool:
    """True for the User-Agents SIP scanners send (SIPVicious and its kin)."""
    if not user_agent:
        return False
    agent = user_agent.lower()
    return any(name in agent for name in SCANNER_AGENTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardSettings:
    auth_failures: int = 20
    """Failed authentications tolerated per window."""
    window: float = 10.0
    max_rate: float = 5000.0
    """Requests per second tolerated (averaged over the window): far above any phone, and
    above what a busy trunk sends; a flood is what is left."""
    first_block: float = 60.0
    max_block: float = 3600.0
    allow: tuple[str, ...] = ()
    """Addresses or networks (CIDR) never blocked."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    address: str
    offence: Offence
    since: float
    until: float
    offences: int
    """How many times this address offended (the block doubles with each)."""


@dataclass(slots=True)
class _Source:
    window_start: float
    requests: int = 0
    failures: int = 0
    offences: int = 0
    last_offence: float = 0.0
    blocked_until: float = 0.0
    blocked_since: float = 0.0
    offence: Offence | None = None
    dropped: int = 0


@dataclass(slots=True)
class FloodGuard:
    settings: GuardSettings = field(default_factory=GuardSettings)
    _sources: dict[str, _Source] = field(default_factory=dict)
    _allow: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    dropped: int = 0
    """Requests not answered because their source was blocked."""

    def __post_init__(self) -> None:
        self._allow = [ipaddress.ip_network(a, strict=False) for a in self.settings.allow]

    def allow(self, addresses: Iterable[str]) -> None:
        """Never block these (besides the configured allow-list): the trunks' carriers."""
        configured = [ipaddress.ip_network(a, strict=False) for a in self.settings.allow]
        extra = [ipaddress.ip_network(a, strict=False) for a in addresses]
        self._allow = configured + extra
        self.unblock(addresses)

    def allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._allow)

    def admit(self, address: str, now: float, *, user_agent: str | None = None) -> bool:
        """Count one request from ``address``; False: drop it unanswered."""
        source = self._sources.get(address)
        if source is not None and now < source.blocked_until:
            source.dropped += 1
            self.dropped += 1
            return False
        if is_scanner(user_agent) and not self.allowed(address):
            self._offend(address, Offence.SCANNER, now)
            self.dropped += 1
            return False
        source = self._window(address, now)
        source.requests += 1
        if source.requests > self.settings.max_rate * self.settings.window:
            if self.allowed(address):
                return True
            self._offend(address, Offence.FLOOD, now)
            return False
        return True

    def auth_failed(self, address: str, now: float) -> None:
        """A request from ``address`` failed authentication (a wrong password)."""
        source = self._window(address, now)
        source.failures += 1
        if source.failures > self.settings.auth_failures:
            self._offend(address, Offence.AUTH_FAILURES, now)

    def blocks(self, now: float) -> list[Block]:
        """Addresses blocked now, longest-blocked first."""
        found = [
            Block(
                address=address,
                offence=s.offence or Offence.FLOOD,
                since=s.blocked_since,
                until=s.blocked_until,
                offences=s.offences,
            )
            for address, s in self._sources.items()
            if now < s.blocked_until
        ]
        return sorted(found, key=lambda b: b.since)

    def unblock(self, addresses: Iterable[str]) -> None:
        for address in addresses:
            self._sources.pop(address, None)

    # ------------------------------------------------------------------------- inside

    def _window(self, address: str, now: float) -> _Source:
        source = self._sources.get(address)
        if source is None:
            if len(self._sources) > 100_000:
                self._forget(now)
            source = self._sources[address] = _Source(window_start=now)
        elif now - source.window_start >= self.settings.window:
            source.window_start, source.requests, source.failures = now, 0, 0
        return source

    def _offend(self, address: str, offence: Offence, now: float) -> None:
        if self.allowed(address):
            return
        source = self._window(address, now)
        if now - source.last_offence > FORGET_AFTER:
            source.offences = 0
        source.offences += 1
        source.last_offence = now
        duration = min(
            self.settings.max_block, self.settings.first_block * 2 ** (source.offences - 1)
        )
        source.blocked_since, source.blocked_until = now, now + duration
        source.offence = offence
        source.requests = source.failures = 0

    def _forget(self, now: float) -> None:
        stale = [
            a
            for a, s in self._sources.items()
            if now >= s.blocked_until and now - max(s.window_start, s.last_offence) > 600
        ]
        for address in stale:
            del self._sources[address]
