"""Where a message came from or goes to: transport plus address."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Transport(Enum):
    __hash__ = object.__hash__  # members are singletons: hash by identity, in C

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"

    @property
    def reliable(self) -> bool:
        """RFC 3261 §17: timers A, E and G are not used over reliable transports."""
        return self is not _UDP


# A module global is read faster than an Enum member through its class (Python 3.11).
_UDP = Transport.UDP


@dataclass(frozen=True, slots=True)
class Peer:
    """A remote SIP endpoint as seen by the transport (after NAT: the packet's source)."""

    transport: Transport
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport is not _UDP

    def __str__(self) -> str:
        return f"{self.transport.value.lower()}:{self.host}:{self.port}"
