"""Errors of the SIP core, each saying who was at fault (the h11 pattern)."""

from __future__ import annotations


class SipError(Exception):
    """Base class of every error raised under ``minicc.switch.sip``."""


class SipParseError(SipError):
    """Bytes from a peer are not a SIP message we can act on.

    ``status_hint`` is the response to send when a reply can still be formed (400 for
    a malformed request, 505 for an unknown SIP version, 413 for an oversized message).
    """

    def __init__(self, reason: str, *, status_hint: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint


class RemoteProtocolError(SipError):
    """A well-formed message from a peer broke the protocol (wrong state, bad header)."""

    def __init__(self, reason: str, *, status_hint: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint


class LocalProtocolError(SipError):
    """Our own code asked the SIP core to do something the protocol forbids."""
