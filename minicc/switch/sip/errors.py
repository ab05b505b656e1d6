"""Errors of the SIP core, each saying who was at fault (the h11 pattern)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minicc.switch.sip.message import Request


class SipError(Exception):
    """Base class of every error raised under ``minicc.switch.sip``."""


class SipParseError(SipError):
    """Bytes from a peer are not a SIP message we can act on.

    ``status_hint`` is the response to send when a reply can still be formed (400 for
    a malformed request, 505 for an unknown SIP version, 513 for an oversized message).

    ``partial`` is the request as far as it could be read, when enough of it was readable
    to address a response (see :func:`minicc.switch.sip.parser.can_respond`); the transport
    answers it with ``status_hint`` instead of dropping the message silently. It is None for
    responses and for bytes that never looked like a request.
    """

    def __init__(
        self, reason: str, *, status_hint: int = 400, partial: Request | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint
        self.partial = partial


class SipKeepAlive(SipParseError):
    """Not a fault: the bytes were only a CRLF keep-alive (RFC 5626 §3.5.1, §4.4.1).

    :func:`~minicc.switch.sip.parser.parse_message` raises it for a datagram holding nothing
    but CR and LF, so that a transport that only catches :class:`SipParseError` still drops
    it; a transport that wants to tell pings from garbage catches this class first.
    """

    def __init__(self) -> None:
        super().__init__("keep-alive", status_hint=0)


class RemoteProtocolError(SipError):
    """A well-formed message from a peer broke the protocol (wrong state, bad header)."""

    def __init__(self, reason: str, *, status_hint: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_hint = status_hint


class LocalProtocolError(SipError):
    """Our own code asked the SIP core to do something the protocol forbids."""
