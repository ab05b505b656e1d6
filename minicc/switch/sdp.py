"""SDP (RFC 4566) and the offer/answer rules minicc needs (RFC 3264). Pure, no IO.

A :class:`SessionDescription` keeps every line it was parsed from, in order, as ``(type,
value)`` pairs: session-level lines in ``lines`` and one :class:`MediaDescription` per ``m=``
section. Accessors parse on demand, and edits touch only the lines they concern, so attributes
minicc does not understand survive a round trip through the B2BUA unchanged.

What the switch calls:

- :meth:`SessionDescription.parse` / :meth:`~SessionDescription.serialize`;
- :func:`negotiate` on an offer, to learn whether it holds a usable codec (else answer 488)
  and the telephone-event payload type;
- :func:`rewrite_for_relay` to anchor the audio in the relay before passing an offer or answer
  to the other leg, with an :class:`OriginState` per leg for the ``o=`` line;
- :func:`restrict_codecs`, :func:`build_offer`, :func:`build_answer` when minicc itself is an
  endpoint (IVR, prompts, outbound calls).
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum

from minicc.switch.sip.tokens import BufferedSystemRandom

__all__ = [
    "DEFAULT_CODECS",
    "Codec",
    "Connection",
    "Direction",
    "MediaDescription",
    "Negotiation",
    "Origin",
    "OriginState",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "build_answer",
    "build_offer",
    "media_address",
    "negotiate",
    "parse_sdp",
    "restrict_codecs",
    "rewrite_for_relay",
    "telephone_event_pt",
]

#: Codec names minicc can relay and record, in order of preference when it must choose.
DEFAULT_CODECS: tuple[str, ...] = ("PCMU", "PCMA", "telephone-event")

# RFC 3551 §6 static payload types of interest (audio, 8 kHz mono unless noted).
_STATIC_PT: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    13: ("CN", 8000),
    18: ("G729", 8000),
}
_STATIC_OF_NAME = {name.upper(): pt for pt, (name, _rate) in _STATIC_PT.items()}

# Plain RTP profiles the relay can rewrite. SRTP (RTP/SAVP, .../SAVPF) authenticates the
# header, so rewriting SSRC/sequence/timestamp in the relay would break it; WebRTC goes
# through the webcall gateway instead.
_RTP_PROFILES = frozenset({"RTP/AVP", "RTP/AVPF"})

# Attributes that describe transport addresses other than the c=/m= pair, so would route
# media around the relay (RFC 8839 ICE, RFC 3605 rtcp, RFC 5761 rtcp-mux, RFC 8858).
_BYPASS_ATTRIBUTES = frozenset(
    {
        "candidate",
        "remote-candidates",
        "end-of-candidates",
        "ice-ufrag",
        "ice-pwd",
        "ice-options",
        "ice-lite",
        "ice-mismatch",
        "ice-pacing",
        "rtcp",
        "rtcp-mux",
        "rtcp-mux-only",
    }
)

_LINE = re.compile(r"\r?\n")


class SdpError(ValueError):
    """The body is not SDP minicc can parse; the message names the offending line."""


class Direction(Enum):
    """Media direction attributes (RFC 4566 §6, RFC 3264 §5.1), from the describer's view."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    def answer(self) -> Direction:
        """Direction an answerer uses for this offered direction (RFC 3264 §6.1)."""
        return _ANSWER_DIRECTION[self]


_ANSWER_DIRECTION = {
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}
_DIRECTIONS = {d.value: d for d in Direction}


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (§5.2)."""

    username: str
    """Login of the originator, ``-`` when none."""
    session_id: str
    """Numeric string, unique per originator; kept as text so any length round-trips."""
    session_version: int
    """Incremented whenever the description changes (RFC 3264 §8)."""
    address: str
    """Address of the originating host."""
    net_type: str = "IN"
    addr_type: str = "IP4"

    @classmethod
    def parse(cls, value: str) -> Origin:
        """Parse the value of an ``o=`` line.

        Raises:
            SdpError: not six fields or a non-numeric session version.
        """
        parts = value.split()
        if len(parts) != 6 or not parts[2].isdigit():
            raise SdpError(f"malformed origin line o={value}")
        username, session_id, version, net_type, addr_type, address = parts
        return cls(
            username=username,
            session_id=session_id,
            session_version=int(version),
            net_type=net_type,
            addr_type=addr_type,
            address=address,
        )

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.net_type} {self.addr_type} {self.address}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (§5.7)."""

    address: str
    """Unicast address (multicast ``/ttl`` suffixes are kept in ``suffix``)."""
    net_type: str = "IN"
    addr_type: str = "IP4"
    suffix: str = ""
    """Multicast TTL/number-of-addresses part including its leading slash, if any."""

    @classmethod
    def parse(cls, value: str) -> Connection:
        """Parse the value of a ``c=`` line.

        Raises:
            SdpError: not three fields.
        """
        parts = value.split()
        if len(parts) != 3:
            raise SdpError(f"malformed connection line c={value}")
        address, slash, rest = parts[2].partition("/")
        return cls(
            net_type=parts[0],
            addr_type=parts[1],
            address=address,
            suffix=slash + rest,
        )

    @classmethod
    def for_address(cls, address: str) -> Connection:
        """Build ``IN IP4 <address>`` or ``IN IP6 <address>`` from a literal address."""
        return cls(address=address, addr_type="IP6" if ":" in address else "IP4")

    @property
    def is_null(self) -> bool:
        """True for ``0.0.0.0``: the RFC 2543 way of putting a call on hold (RFC 3264 §8.4)."""
        return self.address == "0.0.0.0"

    def __str__(self) -> str:
        return f"{self.net_type} {self.addr_type} {self.address}{self.suffix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpMap:
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`` (§6)."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        """Parse the value after ``rtpmap:``.

        Raises:
            SdpError: malformed payload type, encoding or rate.
        """
        pt, _, spec = value.strip().partition(" ")
        parts = spec.strip().split("/")
        try:
            channels = int(parts[2]) if len(parts) > 2 else None
            return cls(
                payload_type=int(pt),
                encoding=parts[0],
                clock_rate=int(parts[1]),
                channels=channels,
            )
        except (ValueError, IndexError):
            raise SdpError(f"malformed rtpmap attribute a=rtpmap:{value}") from None

    def __str__(self) -> str:
        text = f"{self.payload_type} {self.encoding}/{self.clock_rate}"
        return text if self.channels is None else f"{text}/{self.channels}"


@dataclass(slots=True, kw_only=True)
class MediaDescription:
    """One ``m=<media> <port>[/<count>] <proto> <fmt> ...`` section and the lines below it."""

    media: str
    """``audio``, ``video``, ``application``..."""
    port: int
    """Transport port; 0 means the stream is rejected or disabled (RFC 3264 §5.1, §6)."""
    proto: str
    """``RTP/AVP``, ``RTP/SAVPF``, ``UDP/TLS/RTP/SAVPF``..."""
    formats: list[str]
    """Payload types (as text) in preference order."""
    port_count: int | None = None
    """The ``/<number of ports>`` suffix, rarely used."""
    lines: list[tuple[str, str]] = field(default_factory=list)
    """Every line after ``m=`` (c=, b=, a=...) in order, as ``(type, value)``."""

    @classmethod
    def parse_m_line(cls, value: str) -> MediaDescription:
        """Parse the value of an ``m=`` line (without the lines below it).

        Raises:
            SdpError: fewer than three fields or a non-numeric port.
        """
        parts = value.split()
        if len(parts) < 3:
            raise SdpError(f"malformed media line m={value}")
        port_text, _, count_text = parts[1].partition("/")
        if not port_text.isdigit() or (count_text and not count_text.isdigit()):
            raise SdpError(f"malformed port in media line m={value}")
        port = int(port_text)
        if port > 0xFFFF:
            raise SdpError(f"port out of range in media line m={value}")
        return cls(
            media=parts[0],
            port=port,
            port_count=int(count_text) if count_text else None,
            proto=parts[2],
            formats=parts[3:],
        )

    @property
    def m_line(self) -> str:
        """The value of the ``m=`` line."""
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        return " ".join([self.media, port, self.proto, *self.formats])

    # -- attributes ---------------------------------------------------------------------
    def attributes(self) -> Iterator[tuple[str, str | None]]:
        """Yield ``(name, value)`` per ``a=`` line; value is None for flags like sendonly."""
        return _attributes(self.lines)

    def get_attribute(self, name: str) -> str | None:
        """Value of the first ``a=<name>:<value>`` line, ``""`` for a flag, None if absent."""
        return _get_attribute(self.lines, name)

    def get_attributes(self, name: str) -> list[str]:
        """Values of every ``a=<name>:...`` line, in order."""
        return [v or "" for n, v in self.attributes() if n == name]

    def remove_attributes(self, names: Collection[str]) -> None:
        """Drop every ``a=`` line whose name is in ``names``."""
        self.lines = _without_attributes(self.lines, names)

    @property
    def payload_types(self) -> list[int]:
        """Numeric formats in preference order (non-numeric ones, as in ``m=application``,
        are skipped)."""
        return [int(f) for f in self.formats if f.isdigit()]

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """Explicit ``a=rtpmap`` entries by payload type."""
        maps: dict[int, RtpMap] = {}
        for value in self.get_attributes("rtpmap"):
            try:
                rtpmap = RtpMap.parse(value)
            except SdpError:
                continue  # one garbled rtpmap should not sink the codecs that are fine
            maps.setdefault(rtpmap.payload_type, rtpmap)
        return maps

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        """The rtpmap for a payload type, falling back to the RFC 3551 static table."""
        explicit = self.rtpmaps.get(payload_type)
        if explicit is not None:
            return explicit
        static = _STATIC_PT.get(payload_type)
        if static is None:
            return None
        return RtpMap(payload_type=payload_type, encoding=static[0], clock_rate=static[1])

    def fmtp(self, payload_type: int) -> str | None:
        """Format parameters of ``a=fmtp:<pt> <params>``, None if absent."""
        prefix = f"{payload_type} "
        for value in self.get_attributes("fmtp"):
            if value.startswith(prefix):
                return value[len(prefix) :].strip()
            if value.strip() == str(payload_type):
                return ""
        return None

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in milliseconds, None if absent or malformed."""
        value = self.get_attribute("ptime")
        try:
            return int(float(value)) if value else None
        except ValueError:
            return None

    @property
    def direction(self) -> Direction | None:
        """The media-level direction attribute, None when the media section has none."""
        return _direction(self.lines)

    @direction.setter
    def direction(self, direction: Direction) -> None:
        self.lines = _set_direction(self.lines, direction)

    @property
    def connection(self) -> Connection | None:
        """The media-level ``c=`` line, None when the session-level one applies."""
        for kind, value in self.lines:
            if kind == "c":
                return Connection.parse(value)
        return None

    @connection.setter
    def connection(self, connection: Connection | None) -> None:
        self.lines = _set_line(self.lines, "c", None if connection is None else str(connection))


@dataclass(slots=True, kw_only=True)
class SessionDescription:
    """A parsed SDP body: session-level lines plus media sections, order preserved."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    """Session-level lines from ``v=`` up to the first ``m=``, as ``(type, value)``."""
    media: list[MediaDescription] = field(default_factory=list)
    """Media sections in order."""

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body (CRLF or bare LF line ends; blank lines ignored).

        Raises:
            SdpError: not ``v=0`` first, a line not of the form ``<letter>=<value>``, or a
                malformed ``o=``, ``c=`` or ``m=`` line.
        """
        text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
        sdp = cls()
        target = sdp.lines
        for number, raw in enumerate(_LINE.split(text), start=1):
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise SdpError(f"SDP line {number} is not <type>=<value>: {line[:60]!r}")
            kind, value = line[0], line[2:]
            if not sdp.lines:
                if kind != "v" or value.strip() != "0":
                    raise SdpError("SDP must start with v=0")
            elif kind == "v":
                raise SdpError(f"SDP line {number}: v= may appear only once")
            if kind == "m":
                section = MediaDescription.parse_m_line(value)
                sdp.media.append(section)
                target = section.lines
                continue
            if kind == "o":
                Origin.parse(value)
            elif kind == "c":
                Connection.parse(value)
            target.append((kind, value))
        if not sdp.lines:
            raise SdpError("SDP body is empty")
        return sdp

    def serialize(self) -> bytes:
        """Return the body with CRLF line ends (RFC 4566 §5)."""
        out: list[str] = [f"{k}={v}\r\n" for k, v in self.lines]
        for section in self.media:
            out.append(f"m={section.m_line}\r\n")
            out.extend(f"{k}={v}\r\n" for k, v in section.lines)
        return "".join(out).encode("utf-8", "surrogateescape")

    def __bytes__(self) -> bytes:
        return self.serialize()

    to_bytes = serialize

    def copy(self) -> SessionDescription:
        """A copy that can be edited independently (lines are tuples of strings, so copying
        the lists is enough; far cheaper than ``copy.deepcopy`` on the call path)."""
        return SessionDescription(
            lines=list(self.lines),
            media=[
                replace(section, formats=list(section.formats), lines=list(section.lines))
                for section in self.media
            ],
        )

    # -- session level ------------------------------------------------------------------
    @property
    def origin(self) -> Origin | None:
        """The ``o=`` line, None when absent."""
        for kind, value in self.lines:
            if kind == "o":
                return Origin.parse(value)
        return None

    @origin.setter
    def origin(self, origin: Origin) -> None:
        self.lines = _set_line(self.lines, "o", str(origin))

    @property
    def connection(self) -> Connection | None:
        """The session-level ``c=`` line, None when absent."""
        for kind, value in self.lines:
            if kind == "c":
                return Connection.parse(value)
        return None

    @connection.setter
    def connection(self, connection: Connection | None) -> None:
        self.lines = _set_line(self.lines, "c", None if connection is None else str(connection))

    def get_attribute(self, name: str) -> str | None:
        """Value of a session-level attribute (see :meth:`MediaDescription.get_attribute`)."""
        return _get_attribute(self.lines, name)

    # -- the audio stream ---------------------------------------------------------------
    @property
    def audio(self) -> MediaDescription | None:
        """The first enabled (port != 0) audio section, else the first audio section."""
        audio = [m for m in self.media if m.media == "audio"]
        for section in audio:
            if section.port:
                return section
        return audio[0] if audio else None

    def connection_for(self, section: MediaDescription) -> Connection | None:
        """The ``c=`` that applies to a section: its own, else the session's (§5.7)."""
        return section.connection or self.connection

    def direction_for(self, section: MediaDescription) -> Direction:
        """Direction attribute in force: media level, else session level, else sendrecv."""
        return section.direction or _direction(self.lines) or Direction.SENDRECV

    @property
    def audio_address(self) -> tuple[str, int] | None:
        """Where the describer wants audio sent, None when there is nowhere to send.

        None for no audio, port 0, no ``c=`` or the ``0.0.0.0`` hold address.
        """
        section = self.audio
        if section is None or section.port == 0:
            return None
        conn = self.connection_for(section)
        if conn is None or conn.is_null:
            return None
        return (conn.address, section.port)

    @property
    def audio_direction(self) -> Direction:
        """Effective audio direction, folding in the legacy ``c=0.0.0.0`` hold.

        RFC 3264 §8.4: a null address means the describer will not receive, so sendrecv
        reads as sendonly and recvonly as inactive.
        """
        section = self.audio
        if section is None or section.port == 0:
            return Direction.INACTIVE
        direction = self.direction_for(section)
        conn = self.connection_for(section)
        # With ICE, 0.0.0.0 (port 9) is only a placeholder for candidates (RFC 8839 §4.2.1),
        # not a hold.
        uses_ice = (
            section.get_attribute("ice-ufrag") is not None
            or self.get_attribute("ice-ufrag") is not None
        )
        if conn is not None and conn.is_null and not uses_ice:
            if direction is Direction.SENDRECV:
                return Direction.SENDONLY
            if direction is Direction.RECVONLY:
                return Direction.INACTIVE
        return direction

    @property
    def is_hold(self) -> bool:
        """True when this offer puts the other party on hold (sendonly, inactive, 0.0.0.0)."""
        return self.audio_direction in (Direction.SENDONLY, Direction.INACTIVE)


# -- line helpers (module level so both levels share them) -----------------------------


def _attributes(lines: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str | None]]:
    for kind, value in lines:
        if kind == "a":
            name, colon, rest = value.partition(":")
            yield name, rest if colon else None


def _get_attribute(lines: Iterable[tuple[str, str]], name: str) -> str | None:
    for attr, value in _attributes(lines):
        if attr == name:
            return "" if value is None else value
    return None


def _without_attributes(
    lines: list[tuple[str, str]], names: Collection[str]
) -> list[tuple[str, str]]:
    return [(k, v) for k, v in lines if not (k == "a" and v.partition(":")[0] in names)]


def _direction(lines: Iterable[tuple[str, str]]) -> Direction | None:
    for kind, value in lines:
        if kind == "a" and value in _DIRECTIONS:
            return _DIRECTIONS[value]
    return None


def _set_direction(lines: list[tuple[str, str]], direction: Direction) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    placed = False
    for kind, value in lines:
        if kind == "a" and value in _DIRECTIONS:
            if not placed:
                out.append(("a", direction.value))
                placed = True
            continue
        out.append((kind, value))
    if not placed:
        out.append(("a", direction.value))
    return out


# RFC 4566 §5 order of session-level lines; a new line goes before the first line of a later
# type so the serialized body stays in the mandated order.
# Session ids from kernel randomness, read 4 KiB at a time (one per leg, so per call).
_SESSION_IDS = BufferedSystemRandom()

_SESSION_ORDER = "vosiuepcbtrzka"
_MEDIA_ORDER = "icbka"


def _set_line(lines: list[tuple[str, str]], kind: str, value: str | None) -> list[tuple[str, str]]:
    """Replace the first ``kind`` line (dropping repeats), insert it in order, or remove it."""
    out: list[tuple[str, str]] = []
    placed = False
    for k, v in lines:
        if k == kind:
            if not placed and value is not None:
                out.append((kind, value))
            placed = True
            continue
        out.append((k, v))
    if placed or value is None:
        return out
    order = _SESSION_ORDER if lines and lines[0][0] == "v" else _MEDIA_ORDER
    rank = order.index(kind) if kind in order else len(order)
    for index, (k, _v) in enumerate(out):
        if k in order and order.index(k) > rank:
            out.insert(index, (kind, value))
            return out
    out.append((kind, value))
    return out


# -- shortcuts for the B2BUA -------------------------------------------------------------


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Same as :meth:`SessionDescription.parse`."""
    return SessionDescription.parse(data)


def media_address(sdp: SessionDescription) -> tuple[str, int] | None:
    """Where the describer wants audio sent (:attr:`SessionDescription.audio_address`)."""
    return sdp.audio_address


def telephone_event_pt(sdp: SessionDescription) -> int | None:
    """Payload type of telephone-event/8000 in the audio stream, None if not offered.

    This is the number the describer expects to receive; phones send with the same number
    in practice, since the B2BUA passes the description through unchanged.
    """
    audio = sdp.audio
    if audio is None:
        return None
    for pt in audio.payload_types:
        rtpmap = audio.rtpmap(pt)
        if (
            rtpmap is not None
            and rtpmap.encoding.lower() == "telephone-event"
            and rtpmap.clock_rate == 8000
        ):
            return pt
    return None


# -- offer/answer ---------------------------------------------------------------------


class OriginState:
    """The ``o=`` line minicc presents on one call leg (RFC 3264 §5, §8).

    Each leg of the B2BUA is its own SDP session toward its phone, so it keeps its own
    session id and a version that increments whenever the body it sends changes and stays the
    same when it does not (a session refresh re-INVITE must not look like a change).
    """

    __slots__ = ("_last_body", "address", "session_id", "username", "version")

    def __init__(
        self,
        *,
        address: str | None = None,
        session_id: int | None = None,
        username: str = "minicc",
        version: int = 1,
        rng: random.Random | None = None,
    ) -> None:
        """Args:
        address: address shown in ``o=``; by default the session ``c=`` address of each
            stamped description (the relay address after :func:`rewrite_for_relay`).
        session_id: unique per leg; by default 62 random bits from ``rng``.
        username: the ``o=`` username.
        version: first session version to use.
        rng: randomness for the session id (inject for reproducible tests); the system
            source by default.
        """
        if session_id is None:
            session_id = (rng or _SESSION_IDS).getrandbits(62)
        self.address = address
        self.session_id = session_id
        self.username = username
        self.version = version
        self._last_body: bytes | None = None

    def stamp(self, sdp: SessionDescription) -> SessionDescription:
        """Set ``sdp``'s ``o=`` line to this leg's origin, bumping the version on change.

        Returns:
            ``sdp`` itself (modified in place) for chaining.
        """
        body = SessionDescription(
            lines=[(k, v) for k, v in sdp.lines if k != "o"], media=sdp.media
        ).serialize()
        if self._last_body is not None and body != self._last_body:
            self.version += 1
        self._last_body = body
        address = self.address
        if address is None:
            conn = sdp.connection or (sdp.audio.connection if sdp.audio else None)
            address = conn.address if conn is not None else "0.0.0.0"
        sdp.origin = Origin(
            username=self.username,
            session_id=str(self.session_id),
            session_version=self.version,
            addr_type="IP6" if ":" in address else "IP4",
            address=address,
        )
        return sdp


def rewrite_for_relay(
    sdp: SessionDescription, ip: str, port: int, *, origin: OriginState | None = None
) -> SessionDescription:
    """Point the audio stream at the relay, for passing a description to the other leg.

    The audio ``c=`` (session and media level) and port become ``ip``/``port``; codecs,
    fmtp, ptime and direction stay as they were (a legacy ``c=0.0.0.0`` hold becomes the
    equivalent direction attribute, since the address itself is replaced). ICE candidates
    and rtcp/rtcp-mux attributes are dropped because they name addresses around the relay.
    Other enabled media sections (video...) are disabled with port 0, as the relay anchors
    audio only.

    Args:
        sdp: the description received from one leg (not modified).
        ip: relay address the other phone must send to.
        port: relay RTP port on the other leg's side.
        origin: this leg's origin state; when given, ``o=`` is replaced by it.

    Returns:
        A new description.

    Raises:
        SdpError: the description has no audio stream.
    """
    out = sdp.copy()
    audio = out.audio
    if audio is None:
        raise SdpError("SDP has no audio stream to relay")
    audio_conn = out.connection_for(audio)
    if audio_conn is not None and audio_conn.is_null and audio.port:
        # RFC 2543 hold (RFC 3264 §8.4): the null address is about to be replaced by the
        # relay's, so say the same thing with a direction attribute instead.
        audio.direction = out.audio_direction
    relay = Connection.for_address(ip)
    out.connection = relay
    out.lines = _without_attributes(out.lines, _BYPASS_ATTRIBUTES)
    for section in out.media:
        if section is audio:
            if section.port:
                section.port = port
                section.port_count = None
            if section.connection is not None:
                section.connection = relay
            section.remove_attributes(_BYPASS_ATTRIBUTES)
        else:
            # Disable what the relay does not carry; drop its c= so the phone's own address
            # is not leaked to the other side.
            section.port = 0
            section.port_count = None
            section.connection = None
            section.remove_attributes(_BYPASS_ATTRIBUTES)
    if origin is not None:
        origin.stamp(out)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec:
    """A payload format accepted from an offer."""

    payload_type: int
    name: str
    """Encoding name as offered (``PCMU``, ``telephone-event``...)."""
    clock_rate: int = 8000
    fmtp: str | None = None
    """Format parameters as offered (``0-16`` for telephone-event), None if none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Negotiation:
    """What survives of an offer's audio stream against what minicc supports."""

    codecs: tuple[Codec, ...] = ()
    """Supported audio codecs in the offerer's preference order (telephone-event excluded)."""
    telephone_event: Codec | None = None
    """The offered RFC 4733 telephone-event/8000 format, if any."""
    reason: str | None = None
    """Why the offer is unusable, None when usable."""

    @property
    def usable(self) -> bool:
        """True when at least one audio codec is common; otherwise answer 488."""
        return bool(self.codecs)

    @property
    def first_codec(self) -> str | None:
        """Upper-case name of the offerer's preferred common codec (``PCMU``...), or None."""
        return self.codecs[0].name.upper() if self.codecs else None

    @property
    def payload_types(self) -> list[int]:
        """Accepted payload types, codecs first then telephone-event."""
        pts = [c.payload_type for c in self.codecs]
        if self.telephone_event is not None:
            pts.append(self.telephone_event.payload_type)
        return pts


def negotiate(
    offer: SessionDescription, supported: Collection[str] = DEFAULT_CODECS
) -> Negotiation:
    """Match an offer's audio stream against supported codec names (RFC 3264 §6.1).

    Args:
        offer: the received offer.
        supported: encoding names (case-insensitive) at 8000 Hz; ``telephone-event`` enables
            RFC 4733 DTMF.

    Returns:
        The common codecs; ``usable`` is False (with a ``reason``) when there is no audio
        stream, the transport is not plain RTP, or no codec is common.
    """
    wanted = {name.upper() for name in supported}
    audio = offer.audio
    if audio is None or audio.port == 0:
        return Negotiation(reason="no audio stream offered")
    if audio.proto.upper() not in _RTP_PROFILES:
        return Negotiation(reason=f"unsupported media transport {audio.proto}")
    codecs: list[Codec] = []
    event: Codec | None = None
    for pt in audio.payload_types:
        rtpmap = audio.rtpmap(pt)
        if rtpmap is None or rtpmap.clock_rate != 8000 or rtpmap.channels not in (None, 1):
            continue
        name = rtpmap.encoding.upper()
        if name not in wanted:
            continue
        codec = Codec(payload_type=pt, name=rtpmap.encoding, clock_rate=8000, fmtp=audio.fmtp(pt))
        if name == "TELEPHONE-EVENT":
            event = event or codec
        else:
            codecs.append(codec)
    if not codecs:
        return Negotiation(telephone_event=event, reason="no common audio codec")
    return Negotiation(codecs=tuple(codecs), telephone_event=event)


def restrict_codecs(sdp: SessionDescription, negotiation: Negotiation) -> SessionDescription:
    """Copy of ``sdp`` whose audio stream offers only the negotiated payload types.

    The rtpmap, fmtp and rtcp-fb lines of dropped formats go too, so that the far end cannot
    pick a codec the relay's recorder and player do not handle.
    """
    out = sdp.copy()
    audio = out.audio
    if audio is None:
        return out
    keep = {str(pt) for pt in negotiation.payload_types}
    audio.formats = [f for f in audio.formats if f in keep]
    per_format = {"rtpmap", "fmtp", "rtcp-fb"}
    lines: list[tuple[str, str]] = []
    for kind, value in audio.lines:
        if kind == "a":
            name, _, rest = value.partition(":")
            if name in per_format and rest.split(" ", 1)[0] not in keep:
                continue
        lines.append((kind, value))
    audio.lines = lines
    return out


def _codec_lines(codecs: Iterable[Codec]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for codec in codecs:
        lines.append(("a", f"rtpmap:{codec.payload_type} {codec.name}/{codec.clock_rate}"))
        if codec.fmtp is not None:
            lines.append(("a", f"fmtp:{codec.payload_type} {codec.fmtp}"))
    return lines


def _session(ip: str) -> SessionDescription:
    # o= is added by OriginState.stamp(), which places it after v= (RFC 4566 §5 order).
    return SessionDescription(
        lines=[("v", "0"), ("s", "minicc"), ("c", str(Connection.for_address(ip))), ("t", "0 0")]
    )


def build_offer(
    ip: str,
    port: int,
    *,
    origin: OriginState,
    codecs: Iterable[str] = ("PCMU", "PCMA"),
    telephone_event_pt: int | None = 101,
    ptime: int = 20,
    direction: Direction = Direction.SENDRECV,
) -> SessionDescription:
    """An offer for a call minicc originates (RFC 3264 §5).

    Args:
        ip: relay address the phone should send to.
        port: relay RTP port.
        origin: the leg's origin state.
        codecs: static-payload G.711 names in preference order.
        telephone_event_pt: dynamic payload type for RFC 4733 DTMF, None to omit.
        ptime: packetization in ms.
        direction: offered direction.

    Raises:
        SdpError: a codec without an RFC 3551 static payload type.
    """
    offered: list[Codec] = []
    for name in codecs:
        pt = _STATIC_OF_NAME.get(name.upper())
        if pt is None:
            raise SdpError(f"codec {name} has no static payload type")
        offered.append(Codec(payload_type=pt, name=_STATIC_PT[pt][0]))
    if telephone_event_pt is not None:
        offered.append(Codec(payload_type=telephone_event_pt, name="telephone-event", fmtp="0-16"))
    sdp = _session(ip)
    section = MediaDescription(
        media="audio",
        port=port,
        proto="RTP/AVP",
        formats=[str(c.payload_type) for c in offered],
    )
    section.lines = [*_codec_lines(offered), ("a", f"ptime:{ptime}"), ("a", direction.value)]
    sdp.media.append(section)
    return origin.stamp(sdp)


def build_answer(
    offer: SessionDescription,
    negotiation: Negotiation,
    ip: str,
    port: int,
    *,
    origin: OriginState,
    direction: Direction | None = None,
) -> SessionDescription:
    """An answer for a call minicc terminates itself (RFC 3264 §6.1).

    Accepts the offerer's first common codec plus telephone-event, keeps one ``m=`` line per
    offered one (others rejected with port 0, §6), and answers the offered direction.

    Args:
        offer: the offer being answered.
        negotiation: :func:`negotiate`'s result; must be usable.
        ip: relay address the phone should send to.
        port: relay RTP port.
        origin: the leg's origin state.
        direction: our direction; by default the one RFC 3264 §6.1 pairs with the offer's.

    Raises:
        SdpError: the negotiation is not usable.
    """
    if not negotiation.usable:
        raise SdpError(f"cannot answer: {negotiation.reason}")
    audio = offer.audio
    assert audio is not None  # a usable negotiation implies an audio stream
    chosen = [negotiation.codecs[0]]
    if negotiation.telephone_event is not None:
        chosen.append(negotiation.telephone_event)
    answer_direction = direction or offer.audio_direction.answer()
    sdp = _session(ip)
    for section in offer.media:
        if section is audio:
            answered = MediaDescription(
                media="audio",
                port=port,
                proto=section.proto,
                formats=[str(c.payload_type) for c in chosen],
            )
            answered.lines = _codec_lines(chosen)
            if section.ptime is not None:
                answered.lines.append(("a", f"ptime:{section.ptime}"))
            answered.lines.append(("a", answer_direction.value))
        else:
            answered = MediaDescription(
                media=section.media, port=0, proto=section.proto, formats=section.formats[:1]
            )
        sdp.media.append(answered)
    return origin.stamp(sdp)
