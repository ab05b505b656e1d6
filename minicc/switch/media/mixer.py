"""Audio mixing for supervisor listen/whisper/barge and small conferences.

The relay forwards payloads untouched; only a call with a third party listening or talking
needs decoded audio. This module has two layers:

* Pure functions on frames: :func:`decode` and :func:`encode` (G.711 through the lookup
  tables of :mod:`~minicc.switch.media.g711`), :func:`mix_linear` (sum with saturation, so
  two loud parties clip at full scale instead of wrapping into noise), :func:`mix_g711`,
  and the routing: :func:`supervisor_routing` says who hears whom for each :class:`MixMode`,
  :func:`mix_for_listeners` applies a routing to one frame per party. Each listener hears
  the sum of its sources and never itself (N-1 mixing).

* :class:`MixBridge`, the asyncio part. It is fed each party's RTP payloads (a tap on the
  endpoint where that party's packets arrive), keeps a short FIFO of decoded samples per
  party, and every packet interval sends each listener its own mix through
  :meth:`MediaEndpoint.send_rtp`, so the listener's stream rewriter keeps one continuous
  stream. A leg whose routing is exactly the party the relay already forwards to it
  (the caller hearing the agent in listen and whisper modes) is left to the relay, with no
  added delay or transcoding; a leg that gets a mix has ``forward_from_peer`` turned off
  so it does not hear the peer twice.

Whisper, the case the issue checks: the agent hears caller + supervisor, the caller hears
the agent only (straight through the relay), the supervisor hears caller + agent.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import struct
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest

from minicc.switch.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from minicc.switch.media.player import PAYLOAD_TYPES, PTIME, RATE, Codec, Pacer
from minicc.switch.media.relay import MediaEndpoint, MediaSession

__all__ = [
    "AGENT",
    "CALLER",
    "SUPERVISOR",
    "MixBridge",
    "MixLeg",
    "MixMode",
    "conference_routing",
    "decode",
    "encode",
    "mix_for_listeners",
    "mix_g711",
    "mix_linear",
    "supervisor_legs",
    "supervisor_routing",
]

log = logging.getLogger(__name__)

CALLER = "caller"
AGENT = "agent"
SUPERVISOR = "supervisor"

_MAX = 32767
_MIN = -32768
_HEADER = struct.Struct("!BBHII")  # RTP fixed header (RFC 3550 §5.1)
_CODEC_BY_PT = {pt: codec for codec, pt in PAYLOAD_TYPES.items()}
Routing = Mapping[str, Iterable[str]]


def decode(payload: bytes | bytearray | memoryview, codec: Codec) -> array[int]:
    """G.711 bytes to signed 16-bit samples."""
    return ulaw_decode(payload) if codec == "PCMU" else alaw_decode(payload)


def encode(samples: Iterable[int], codec: Codec) -> bytes:
    """Signed 16-bit samples (already within range) to G.711 bytes."""
    return ulaw_encode(samples) if codec == "PCMU" else alaw_encode(samples)


def mix_linear(frames: Sequence[Sequence[int]]) -> array[int]:
    """Sum frames sample by sample, saturating at the 16-bit limits.

    Frames of different lengths are allowed: the result is as long as the longest, and a
    shorter frame counts as silence after its end. No frames gives an empty array.
    """
    if not frames:
        return array("h")
    if len(frames) == 1:
        return array("h", frames[0])
    sums = map(sum, zip_longest(*frames, fillvalue=0))
    # Saturate: a wrapped 16-bit sum would turn a loud peak into a full-scale click.
    return array("h", [_MAX if s > _MAX else _MIN if s < _MIN else s for s in sums])


def mix_g711(payloads: Sequence[tuple[bytes, Codec]], out: Codec) -> bytes:
    """Mix G.711 payloads (each in its own law) into one payload in ``out``."""
    return encode(mix_linear([decode(data, codec) for data, codec in payloads]), out)


class MixMode(enum.Enum):
    """What a supervisor does on an agent's call."""

    LISTEN = "listen"
    """Supervisor hears both; nobody hears the supervisor."""
    WHISPER = "whisper"
    """Supervisor hears both; the agent hears the supervisor, the caller does not."""
    BARGE = "barge"
    """Everybody hears everybody: a three-way conference."""


def supervisor_routing(mode: MixMode) -> dict[str, frozenset[str]]:
    """Who hears whom on a supervised call: listener -> sources."""
    both = frozenset({CALLER, AGENT})
    if mode is MixMode.LISTEN:
        return {CALLER: frozenset({AGENT}), AGENT: frozenset({CALLER}), SUPERVISOR: both}
    if mode is MixMode.WHISPER:
        return {
            CALLER: frozenset({AGENT}),
            AGENT: frozenset({CALLER, SUPERVISOR}),
            SUPERVISOR: both,
        }
    return conference_routing((CALLER, AGENT, SUPERVISOR))


def conference_routing(parties: Iterable[str]) -> dict[str, frozenset[str]]:
    """Everyone hears all the others."""
    names = frozenset(parties)
    return {name: names - {name} for name in names}


def mix_for_listeners(
    frames: Mapping[str, Sequence[int] | None], routing: Routing
) -> dict[str, array[int]]:
    """Mix one frame per party for every listener of ``routing``.

    Args:
        frames: each party's decoded frame this interval; None or a missing key means the
            party sent nothing (silence).
        routing: listener -> the parties it hears. A listener never hears itself even if
            listed.

    Returns:
        listener -> mixed samples (empty when none of its sources had audio).
    """
    out: dict[str, array[int]] = {}
    for listener, sources in routing.items():
        heard = [
            frame
            for source in sources
            if source != listener and (frame := frames.get(source)) is not None
        ]
        out[listener] = mix_linear(heard)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class MixLeg:
    """Where one party hears the bridge's output."""

    endpoint: MediaEndpoint
    """The relay endpoint whose phone is this party."""
    codec: Codec
    """The codec negotiated with that phone."""
    direct: str | None = None
    """The party the relay forwards to this endpoint when ``forward_from_peer`` is on (the
    caller's leg hears the agent directly); None when the endpoint has no such peer."""


def supervisor_legs(
    call: MediaSession,
    supervisor: MediaEndpoint,
    *,
    caller_codec: Codec = "PCMU",
    agent_codec: Codec = "PCMU",
    supervisor_codec: Codec = "PCMU",
) -> dict[str, MixLeg]:
    """Legs of a supervised call: ``call.a`` is the caller, ``call.b`` the agent, and
    ``supervisor`` the supervisor phone's endpoint (of its own session)."""
    return {
        CALLER: MixLeg(endpoint=call.a, codec=caller_codec, direct=AGENT),
        AGENT: MixLeg(endpoint=call.b, codec=agent_codec, direct=CALLER),
        SUPERVISOR: MixLeg(endpoint=supervisor, codec=supervisor_codec),
    }


class _Output:
    """One listener's outgoing RTP numbering (the rewriter maps it onto the phone's stream)."""

    __slots__ = ("forward_before", "marker", "seq", "ssrc", "ts")

    def __init__(self, rng: random.Random, forward_before: bool) -> None:
        self.ssrc = rng.getrandbits(32)
        self.seq = rng.getrandbits(16)
        self.ts = rng.getrandbits(32)
        self.marker = True
        self.forward_before = forward_before


class MixBridge:
    """Mixes the parties of one call for each listener, every packet interval (module doc).

    Feed it with :meth:`feed` from a tap where each party's packets arrive; it starts
    sending with :meth:`start` and gives the legs back to the relay with :meth:`close`.
    """

    def __init__(
        self,
        call_id: str,
        legs: Mapping[str, MixLeg],
        routing: Routing,
        *,
        ptime: float = PTIME,
        max_buffer_ms: int = 100,
        rng: random.Random | None = None,
    ) -> None:
        """Args:
        call_id: for logs.
        legs: party -> where it hears the mix. Parties without a leg may still be fed.
        routing: listener -> sources (e.g. :func:`supervisor_routing`).
        ptime: packet interval of the output streams.
        max_buffer_ms: per-party FIFO bound; older samples are dropped beyond it, which
            bounds the delay a sender's clock drift or a burst can add.
        rng: SSRCs and initial sequence numbers and timestamps of the output streams.

        Raises:
            ValueError: the routing names a listener without a leg.
        """
        self.call_id = call_id
        self._legs = dict(legs)
        self._frame = round(ptime * RATE)
        self._ptime = ptime
        self._max_buffer = max(self._frame, max_buffer_ms * RATE // 1000)
        rng = rng or random.Random()
        self._outputs = {
            party: _Output(rng, leg.endpoint.forward_from_peer) for party, leg in legs.items()
        }
        self._fifo: dict[str, array[int]] = {}
        self._routing: dict[str, frozenset[str]] = {}
        self._pacer: Pacer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.dropped = 0
        """Samples dropped because a party's FIFO was full."""
        self.frames_sent = 0
        """Mixed packets sent, all listeners together."""
        self.set_routing(routing)

    @property
    def routing(self) -> dict[str, frozenset[str]]:
        """The routing in force."""
        return dict(self._routing)

    def set_routing(self, routing: Routing) -> None:
        """Change who hears whom (e.g. listen -> whisper -> barge), effective next packet."""
        new = {listener: frozenset(sources) - {listener} for listener, sources in routing.items()}
        unknown = sorted(set(new) - set(self._legs))
        if unknown:
            raise ValueError(f"routing names listeners without a leg: {', '.join(unknown)}")
        self._routing = new
        if not self._closed:
            for party in self._legs:
                self._apply_forwarding(party)
        log.debug("[%s] mix routing %s", self.call_id, new)

    def feed(self, party: str, payload_type: int, payload: bytes | bytearray | memoryview) -> None:
        """Take one RTP payload a party sent. Non-G.711 payloads (DTMF, comfort noise) are
        ignored. Cheap enough for the packet path: one table decode."""
        codec = _CODEC_BY_PT.get(payload_type)
        if codec is None or self._closed:
            return
        fifo = self._fifo.get(party)
        if fifo is None:
            fifo = self._fifo[party] = array("h")
        fifo.extend(decode(payload, codec))
        excess = len(fifo) - self._max_buffer
        if excess > 0:
            del fifo[:excess]
            self.dropped += excess

    def start(self) -> None:
        """Start sending mixes, one packet interval from now. Needs a running loop."""
        if self._closed:
            raise ValueError("mix bridge is closed")
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._pacer = Pacer(loop.time() + self._ptime, self._ptime)
        self._timer = loop.call_at(self._pacer.next_deadline, self._tick)
        log.info("[%s] mix bridge started: %s", self.call_id, self._routing)

    def close(self) -> None:
        """Stop, and give every leg back to the relay as it was before. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for party, leg in self._legs.items():
            output = self._outputs[party]
            if leg.endpoint.forward_from_peer != output.forward_before:
                leg.endpoint.forward_from_peer = output.forward_before
                leg.endpoint.stream.resync()
        self._fifo.clear()
        log.info("[%s] mix bridge closed", self.call_id)

    # -- internals ----------------------------------------------------------------------
    def _mixed(self, party: str) -> bool:
        """True when ``party`` hears the bridge, False when the relay serves it."""
        sources = self._routing.get(party)
        if sources is None:
            return False
        direct = self._legs[party].direct
        return not (direct is not None and sources == {direct})

    def _apply_forwarding(self, party: str) -> None:
        endpoint = self._legs[party].endpoint
        forward = not self._mixed(party) and self._outputs[party].forward_before
        if endpoint.forward_from_peer != forward:
            endpoint.forward_from_peer = forward
            endpoint.stream.resync()
            self._outputs[party].marker = True

    def _take(self, party: str) -> array[int] | None:
        fifo = self._fifo.get(party)
        if not fifo:
            return None
        frame = fifo[: self._frame]
        del fifo[: self._frame]
        return frame

    def _tick(self) -> None:
        self._timer = None
        pacer, loop = self._pacer, self._loop
        if self._closed or pacer is None or loop is None:
            return
        count, skipped = pacer.due(loop.time())
        for _ in range(count):
            frames = {party: self._take(party) for party in list(self._fifo)}
            listeners = {p: s for p, s in self._routing.items() if self._mixed(p)}
            for listener, samples in mix_for_listeners(frames, listeners).items():
                self._send(listener, samples, skipped)
            skipped = 0
        self._timer = loop.call_at(pacer.next_deadline, self._tick)

    def _send(self, listener: str, samples: array[int], skipped: int) -> None:
        leg, out = self._legs[listener], self._outputs[listener]
        frame = self._frame
        if len(samples) < frame:  # nobody spoke, or a short packet: pad with silence
            samples.extend([0] * (frame - len(samples)))
        if skipped:
            out.ts = (out.ts + skipped * frame) & 0xFFFFFFFF
            out.marker = True
        pt = PAYLOAD_TYPES[leg.codec]
        header = _HEADER.pack(0x80, pt | (0x80 if out.marker else 0), out.seq, out.ts, out.ssrc)
        leg.endpoint.send_rtp(header + encode(samples[:frame], leg.codec))
        out.marker = False
        out.seq = (out.seq + 1) & 0xFFFF
        out.ts = (out.ts + frame) & 0xFFFFFFFF
        self.frames_sent += 1
