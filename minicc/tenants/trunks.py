"""Trunks to carriers and the dial rules that guard them (pure: no IO).

A trunk connects one tenant to a carrier over an IP-authorised SIP peering: calls *from*
the trunk's address need no password (the carrier cannot answer a digest challenge for
its customers' callers) and belong to the trunk's tenant; calls *to* numbers that are not
the tenant's extensions go out through it, if the tenant's dial rules allow the number.

Dial rules are the toll-fraud guard: international numbers are off unless switched on,
only the allowed prefixes may be dialled, and emergency numbers always get through, rules
or not. Numbers are compared after removing spaces, dashes, dots and brackets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "EMERGENCY_NUMBERS",
    "DialRules",
    "Trunk",
    "TrunkTable",
    "clean_number",
]

EMERGENCY_NUMBERS = frozenset(
    {"112", "911", "999", "000", "110", "100", "101", "102", "15", "17", "18"}
)
"""Dialled through any trunk whatever the rules say: nobody may be kept from help."""
_PUNCTUATION = str.maketrans("", "", " -.()/")


def clean_number(text: str) -> str:
    return text.translate(_PUNCTUATION)


@dataclass(frozen=True, slots=True, kw_only=True)
class DialRules:
    """Which outside numbers a tenant may call."""

    allowed_prefixes: tuple[str, ...] = ()
    """Numbers must start with one of these (empty: any national number)."""
    international: bool = False
    """Numbers starting with ``+`` or ``00`` (off by default: toll fraud calls abroad)."""

    def refusal(self, number: str) -> str | None:
        """Why ``number`` may not be dialled, or None when it may."""
        digits = clean_number(number)
        if digits in EMERGENCY_NUMBERS:
            return None
        if not digits or not (digits.lstrip("+").isdigit()):
            return f"{number!r} is not a phone number"
        if (digits.startswith("+") or digits.startswith("00")) and not self.international:
            return f"{number} is international and the tenant's dial rules do not allow it"
        if self.allowed_prefixes and not any(digits.startswith(p) for p in self.allowed_prefixes):
            shown = ", ".join(self.allowed_prefixes)
            return f"{number} does not start with an allowed prefix ({shown})"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Trunk:
    tenant: str
    name: str
    host: str
    """The carrier's address: inbound calls must come from it, outbound go to it."""
    port: int = 5060
    inbound: bool = True
    outbound: bool = True
    caller_id: str | None = None
    """The number shown to the people the tenant calls (else the extension's own)."""


@dataclass(slots=True)
class TrunkTable:
    """Every tenant's trunks and dial rules, swapped whole when the database changes."""

    _by_address: dict[str, Trunk] = field(default_factory=dict)
    _outbound: dict[str, Trunk] = field(default_factory=dict)
    _rules: dict[str, DialRules] = field(default_factory=dict)

    def replace(self, trunks: Iterable[Trunk], rules: dict[str, DialRules]) -> None:
        by_address: dict[str, Trunk] = {}
        outbound: dict[str, Trunk] = {}
        for trunk in trunks:
            if trunk.inbound:
                by_address[_normal(trunk.host)] = trunk
            if trunk.outbound:
                outbound.setdefault(trunk.tenant, trunk)
        self._by_address, self._outbound, self._rules = by_address, outbound, dict(rules)

    def inbound(self, address: str) -> Trunk | None:
        """The trunk a request from ``address`` comes through, if any.

        Asked for every INVITE: ``address`` is the transport's own (already canonical) text,
        so this is one dict lookup; the table's keys were made canonical when loaded.
        """
        return self._by_address.get(address)

    def outbound(self, tenant: str) -> Trunk | None:
        return self._outbound.get(tenant)

    def rules(self, tenant: str) -> DialRules:
        return self._rules.get(tenant, DialRules())

    def addresses(self) -> tuple[str, ...]:
        """Every inbound trunk address (for the flood guard's allow-list)."""
        return tuple(self._by_address)


def _normal(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address.strip("[]")))
    except ValueError:
        return address.lower()
