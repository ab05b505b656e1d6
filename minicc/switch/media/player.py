"""Prompt player and music on hold: WAV clips into one leg of a media session as paced RTP.

A :class:`MediaPlayer` turns a sequence of :class:`Clip` objects (8 kHz mu-law audio, loaded
from WAV by :func:`load_clip`) into 20 ms RTP packets in the leg's codec and hands each one
to :meth:`MediaEndpoint.send_rtp`, which runs it through the leg's stream rewriter: the phone
keeps seeing one SSRC with continuous sequence numbers when a prompt starts, when it ends and
bridged audio resumes, and when music on hold replaces an announcement. While a playback has
``hold_peer`` set, the other party's audio is held back (``forward_from_peer`` off), so the
caller hears the prompt, not both.

Pacing. One clock per player drives every active playback (1,000 callers on hold cost one
timer per 20 ms, not 1,000). Tick *k* is due at ``anchor + k * ptime`` on the loop's clock
and is scheduled with ``call_at`` at that absolute time, so lateness of one tick never adds
up into drift. A late tick sends the packets that fell due (up to :data:`MAX_CATCH_UP`); a
longer stall (a blocked loop) is not replayed as a burst that would overflow a phone's
jitter buffer: the clock re-anchors to now, the RTP timestamp jumps by the time skipped and
the marker bit is set, as after a silence (RFC 3551 §4.1), and the audio resumes where it
was. See :class:`Pacer`.

Stopping. :meth:`Playback.cancel` (or a new playback on the same leg) takes effect at once:
the playback leaves the active set before the call returns, so no further packet of it is
ever sent ("an announcement is cut the instant an agent answers"). Every playback ends with
one :class:`PlaybackDone` (finished, cancelled, or aborted because the session closed),
delivered to :meth:`Playback.wait` and to the player's ``on_done`` callback.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import math
import random
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from minicc.switch.media.g711 import (
    ALAW_TO_ULAW_TABLE,
    ULAW_SILENCE,
    ULAW_TO_ALAW_TABLE,
    ulaw_decode,
    ulaw_encode,
)
from minicc.switch.media.relay import MediaEndpoint, MediaSession
from minicc.switch.media.wav import (
    WAVE_FORMAT_ALAW,
    WAVE_FORMAT_MULAW,
    WAVE_FORMAT_PCM,
    WavError,
    parse_wav,
)

__all__ = [
    "MAX_CATCH_UP",
    "PAYLOAD_TYPES",
    "PTIME",
    "Clip",
    "Codec",
    "MediaPlayer",
    "Pacer",
    "Playback",
    "PlaybackDone",
    "PlaybackOutcome",
    "clip_from_wav",
    "load_clip",
]

log = logging.getLogger(__name__)

Codec = Literal["PCMU", "PCMA"]
#: Static payload types of G.711 (RFC 3551 §6, table 4).
PAYLOAD_TYPES: dict[Codec, int] = {"PCMU": 0, "PCMA": 8}
RATE = 8000
#: Packet interval in seconds: 20 ms, the RFC 3551 §4.5 default for G.711 (160 samples).
PTIME = 0.020
#: Ticks a late clock may still send back to back before it re-anchors instead.
MAX_CATCH_UP = 3

_HEADER = struct.Struct("!BBHII")
_SOX_HINT = "convert it with: sox in.wav -r 8000 -c 1 -e u-law out.wav"


@dataclass(frozen=True, slots=True, kw_only=True)
class Clip:
    """A piece of audio ready to play: 8 kHz mono mu-law samples, one byte each."""

    name: str
    """What it is called in logs and in :class:`PlaybackDone` (a prompt name, a file)."""
    ulaw: bytes
    """G.711 mu-law samples at 8000 Hz."""

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.ulaw) / RATE


def clip_from_wav(data: bytes | bytearray | memoryview, name: str) -> Clip:
    """Decode a WAV file held in memory to a :class:`Clip`.

    Accepts 8000 Hz mu-law (tag 7), A-law (tag 6) or PCM (tag 1, 8 or 16 bits), mono or
    stereo (averaged to mono). Other rates are refused rather than resampled badly.

    Raises:
        WavError: not a WAV file, or a format minicc does not play; the message names
            ``name`` and says how to convert the file.
    """
    try:
        fmt, audio = parse_wav(data)
    except WavError as exc:
        raise WavError(f"{name}: {exc}") from None
    if fmt.sample_rate != RATE:
        raise WavError(f"{name}: sample rate is {fmt.sample_rate} Hz, not 8000; {_SOX_HINT}")
    if fmt.channels not in (1, 2):
        raise WavError(f"{name}: {fmt.channels} channels, expected mono; {_SOX_HINT}")
    tag, bits = fmt.format_tag, fmt.bits_per_sample
    audio = audio[: len(audio) - len(audio) % fmt.block_align] if fmt.block_align else b""
    if tag in (WAVE_FORMAT_MULAW, WAVE_FORMAT_ALAW) and bits == 8:
        ulaw = audio if tag == WAVE_FORMAT_MULAW else audio.translate(ALAW_TO_ULAW_TABLE)
        if fmt.channels == 2:
            ulaw = ulaw_encode(_downmix(ulaw_decode(ulaw)))
    elif tag == WAVE_FORMAT_PCM and bits == 16:
        samples = array("h")
        samples.frombytes(audio)
        if sys.byteorder == "big":  # WAV is little-endian
            samples.byteswap()
        ulaw = ulaw_encode(_downmix(samples) if fmt.channels == 2 else samples)
    elif tag == WAVE_FORMAT_PCM and bits == 8:  # unsigned, 128 = zero
        samples = array("h", [(b - 128) << 8 for b in audio])
        ulaw = ulaw_encode(_downmix(samples) if fmt.channels == 2 else samples)
    else:
        raise WavError(
            f"{name}: WAV format tag {tag} with {bits} bits is not supported; {_SOX_HINT}"
        )
    return Clip(name=name, ulaw=bytes(ulaw))


def load_clip(path: Path | str, name: str | None = None) -> Clip:
    """Read a WAV file into a :class:`Clip` (see :func:`clip_from_wav`).

    Raises:
        OSError: the file cannot be read.
        WavError: the file is not playable; the message names the file.
    """
    path = Path(path)
    return clip_from_wav(path.read_bytes(), name or str(path))


def _downmix(samples: array[int]) -> array[int]:
    return array(
        "h", [(left + right) >> 1 for left, right in zip(samples[::2], samples[1::2], strict=False)]
    )


class Pacer:
    """A drift-free fixed-interval clock; pure, the caller passes ``now``.

    Tick *k* is due at ``anchor + k * interval``. :meth:`due` says how many ticks fell due
    since the last call. More than ``max_catch_up`` overdue ticks are not sent as a burst:
    the clock re-anchors to ``now`` and reports how many ticks it skipped.
    """

    __slots__ = ("_anchor", "_interval", "_max_catch_up", "_next")

    def __init__(self, start: float, interval: float, max_catch_up: int = MAX_CATCH_UP) -> None:
        """Args:
        start: time of the first tick.
        interval: seconds between ticks.
        max_catch_up: most ticks sent back to back after a late wake-up (at least 1).
        """
        if interval <= 0 or max_catch_up < 1:
            raise ValueError("interval must be positive and max_catch_up at least 1")
        self._anchor = start
        self._interval = interval
        self._max_catch_up = max_catch_up
        self._next = 0  # index of the next tick not yet reported

    @property
    def next_deadline(self) -> float:
        """When the next tick is due."""
        return self._anchor + self._next * self._interval

    def due(self, now: float) -> tuple[int, int]:
        """Ticks due at ``now``.

        Returns:
            ``(send, skipped)``: how many ticks to act on now (0 if called early), and how
            many were dropped because the clock fell more than ``max_catch_up`` behind.
        """
        # A small epsilon: call_at may wake a hair before the deadline it was given.
        overdue = math.floor((now - self._anchor) / self._interval + 1e-6) - self._next + 1
        if overdue <= 0:
            return 0, 0
        if overdue <= self._max_catch_up:
            self._next += overdue
            return overdue, 0
        # Re-anchor: this tick is sent now, the next one is a full interval later.
        self._anchor = now
        self._next = 1
        return 1, overdue - 1


class PlaybackOutcome(enum.Enum):
    """How a playback ended."""

    FINISHED = "finished"
    """All the audio was sent."""
    CANCELLED = "cancelled"
    """Stopped by :meth:`Playback.cancel`, :meth:`MediaPlayer.stop` or a newer playback."""
    ABORTED = "aborted"
    """The media session closed under it (the call ended)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackDone:
    """A playback ended; exactly one per playback."""

    call_id: str
    """The media session's call id."""
    side: str
    """``a`` or ``b``: the leg that heard it."""
    playback_id: int
    """Unique per player, from :attr:`Playback.id`."""
    outcome: PlaybackOutcome
    reason: str
    """Free text for logs: ``finished``, ``replaced``, the caller's cancel reason..."""
    clips: tuple[str, ...]
    """Names of the clips that were queued."""
    packets: int
    """RTP packets sent (including those dropped because the phone's address was unknown)."""
    position_ms: int
    """Where in the queued audio it stopped (for a loop, within one round): resume there
    with ``start_ms``."""
    played_ms: int
    """Audio time sent, loops included."""


class Playback:
    """One queued sequence of clips playing to one leg. Made by :meth:`MediaPlayer.play`."""

    __slots__ = (
        "_audio",
        "_done",
        "_length",
        "_marker",
        "_player",
        "_restore_forward",
        "_result",
        "_seq",
        "_ssrc",
        "_ts",
        "clips",
        "codec",
        "endpoint",
        "hold_peer",
        "id",
        "loop",
        "packets",
        "position",
        "session",
    )

    def __init__(
        self,
        player: MediaPlayer,
        playback_id: int,
        session: MediaSession,
        endpoint: MediaEndpoint,
        clips: Sequence[Clip],
        *,
        codec: Codec,
        loop: bool,
        hold_peer: bool,
        start: int,
        rng: random.Random,
        done: asyncio.Future[PlaybackDone],
    ) -> None:
        self._player = player
        self.id = playback_id
        self.session = session
        self.endpoint = endpoint
        self.clips = tuple(clip.name for clip in clips)
        self.codec: Codec = codec
        self.loop = loop
        self.hold_peer = hold_peer
        self._restore_forward = endpoint.forward_from_peer
        frame = _frame_samples(player.ptime)
        ulaw = b"".join(clip.ulaw for clip in clips)
        self._length = len(ulaw)
        if loop:
            if not ulaw:
                raise ValueError("cannot loop empty audio")
            # Tile short audio to a whole frame, then append the first frame again so every
            # packet is one slice, also across the wrap-around point.
            ulaw *= -(-frame // len(ulaw))
            self._length = len(ulaw)
            ulaw += ulaw[:frame]
        else:
            ulaw += bytes([ULAW_SILENCE]) * (-len(ulaw) % frame)  # pad the last packet
        self._audio = ulaw.translate(ULAW_TO_ALAW_TABLE) if codec == "PCMA" else ulaw
        self.position = start % self._length if loop else min(start, self._length)
        """Sample offset of the next packet in the queued audio."""
        self.packets = 0
        """Packets sent so far."""
        self._ssrc = rng.getrandbits(32)
        self._seq = rng.getrandbits(16)
        self._ts = rng.getrandbits(32)
        self._marker = True  # first packet of a talkspurt (RFC 3551 §4.1)
        self._done = done
        self._result: PlaybackDone | None = None

    @property
    def done(self) -> bool:
        """True once the playback has ended."""
        return self._result is not None

    @property
    def result(self) -> PlaybackDone | None:
        """How it ended, None while it plays."""
        return self._result

    def cancel(self, reason: str = "cancelled") -> PlaybackDone:
        """Stop now: no packet of this playback is sent after this call. Idempotent.

        Returns:
            The :class:`PlaybackDone` (the earlier one if it had already ended).
        """
        return self._player._end(self, PlaybackOutcome.CANCELLED, reason)

    async def wait(self) -> PlaybackDone:
        """Wait until the playback ends, however it ends."""
        return await asyncio.shield(self._done)

    def _step(self, count: int, skipped: int) -> bool:
        """Send ``count`` packets; returns True when the audio is exhausted."""
        frame = _frame_samples(self._player.ptime)
        if skipped:
            # The clock re-anchored after a stall: move the timestamp over the gap so the
            # phone's playout clock stays aligned, and mark the new talkspurt.
            self._ts = (self._ts + skipped * frame) & 0xFFFFFFFF
            self._marker = True
        pt = PAYLOAD_TYPES[self.codec]
        audio = self._audio
        for _ in range(count):
            pos = self.position
            if not self.loop and pos >= self._length:
                return True
            header = _HEADER.pack(
                0x80, pt | (0x80 if self._marker else 0), self._seq, self._ts, self._ssrc
            )
            self.endpoint.send_rtp(header + audio[pos : pos + frame])
            self._marker = False
            self._seq = (self._seq + 1) & 0xFFFF
            self._ts = (self._ts + frame) & 0xFFFFFFFF
            self.packets += 1
            pos += frame
            self.position = pos % self._length if self.loop else pos
        return not self.loop and self.position >= self._length


def _frame_samples(ptime: float) -> int:
    return round(ptime * RATE)


class MediaPlayer:
    """Plays clips and music on hold into session legs; one per media engine (module doc)."""

    def __init__(
        self,
        *,
        ptime: float = PTIME,
        on_done: Callable[[PlaybackDone], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Args:
        ptime: packet interval in seconds (0.020; 0.010 to 0.060 in steps of 10 ms are
            valid G.711 packetisations).
        on_done: called (soon, on the loop) with each :class:`PlaybackDone`; exceptions are
            logged.
        rng: source of SSRCs and initial sequence numbers and timestamps (RFC 3550 §5.1).
        """
        if not 0.005 <= ptime <= 0.2:
            raise ValueError(f"ptime {ptime} s is out of range 0.005-0.2")
        self.ptime = ptime
        self._on_done = on_done
        self._rng = rng or random.Random()
        self._ids = itertools.count(1)
        self._active: dict[MediaEndpoint, Playback] = {}
        self._pacer: Pacer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def play(
        self,
        session: MediaSession,
        side: Literal["a", "b"],
        clips: Sequence[Clip],
        *,
        codec: Codec = "PCMU",
        loop: bool = False,
        hold_peer: bool = True,
        start_ms: int = 0,
    ) -> Playback:
        """Start playing ``clips`` back to back to the phone of ``session.<side>``.

        A playback already running on that leg is cancelled (reason ``replaced``); the new
        one starts at the next tick of the player's clock, at most one packet interval away.

        Args:
            session: an open media session.
            side: the leg whose phone hears it.
            clips: audio in order; empty and not looping finishes at the first tick.
            codec: the codec negotiated on that leg.
            loop: repeat until cancelled (music on hold).
            hold_peer: hold back the other party's audio while it plays.
            start_ms: start this far into the audio (e.g. resume music on hold).

        Raises:
            ValueError: the session is closed, the codec unknown, or the audio to loop empty.
        """
        if session.closed:
            raise ValueError(f"media session {session.call_id} is closed")
        if codec not in PAYLOAD_TYPES:
            raise ValueError(f"codec {codec!r} is not PCMU or PCMA")
        loop_ = asyncio.get_running_loop()
        self._loop = loop_
        endpoint = session.endpoint(side)
        playback = Playback(
            self,
            next(self._ids),
            session,
            endpoint,
            clips,
            codec=codec,
            loop=loop,
            hold_peer=hold_peer,
            start=max(0, start_ms) * RATE // 1000,
            rng=self._rng,
            done=loop_.create_future(),
        )
        previous = self._active.get(endpoint)
        if previous is not None:
            # The new playback inherits what the leg was like before any playback started.
            playback._restore_forward = previous._restore_forward
            # Keep the peer held across the switch only if the new playback holds it too.
            self._end(previous, PlaybackOutcome.CANCELLED, "replaced", restore=not hold_peer)
        if hold_peer:
            endpoint.forward_from_peer = False
        self._active[endpoint] = playback
        log.debug(
            "[%s] side %s: playback %d of %s (%s%s)",
            session.call_id,
            side,
            playback.id,
            ", ".join(playback.clips) or "nothing",
            codec,
            ", loop" if loop else "",
        )
        if self._timer is None:
            # Start the clock one interval from now so a fresh playback and one joining a
            # running clock both begin within one packet interval.
            self._pacer = Pacer(loop_.time() + self.ptime, self.ptime)
            self._timer = loop_.call_at(self._pacer.next_deadline, self._tick)
        return playback

    def music_on_hold(
        self,
        session: MediaSession,
        side: Literal["a", "b"],
        clip: Clip,
        *,
        codec: Codec = "PCMU",
        start_ms: int = 0,
    ) -> Playback:
        """Loop ``clip`` to a leg until cancelled, the other party held back."""
        return self.play(session, side, [clip], codec=codec, loop=True, start_ms=start_ms)

    def playing(self, session: MediaSession, side: Literal["a", "b"]) -> Playback | None:
        """The playback running on a leg, if any."""
        return self._active.get(session.endpoint(side))

    def stop(
        self, session: MediaSession, side: Literal["a", "b"], reason: str = "stopped"
    ) -> PlaybackDone | None:
        """Cancel whatever plays on a leg; None if nothing did."""
        playback = self._active.get(session.endpoint(side))
        return None if playback is None else playback.cancel(reason)

    def close(self) -> None:
        """Cancel every playback and stop the clock."""
        for playback in list(self._active.values()):
            playback.cancel("player closed")
        self._stop_clock()

    @property
    def active(self) -> int:
        """Number of running playbacks."""
        return len(self._active)

    # -- internals ----------------------------------------------------------------------
    def _tick(self) -> None:
        self._timer = None
        pacer, loop_ = self._pacer, self._loop
        if pacer is None or loop_ is None:
            return
        count, skipped = pacer.due(loop_.time())
        if skipped:
            log.warning("player clock %d ticks late; re-anchored", skipped + 1)
        if count:
            for playback in list(self._active.values()):
                if self._active.get(playback.endpoint) is not playback:
                    continue  # ended by a callback during this tick
                if playback.session.closed:
                    self._end(playback, PlaybackOutcome.ABORTED, "session closed")
                    continue
                try:
                    finished = playback._step(count, skipped)
                except Exception:
                    log.exception("[%s] playback %d failed", playback.session.call_id, playback.id)
                    self._end(playback, PlaybackOutcome.ABORTED, "error")
                    continue
                if finished:
                    self._end(playback, PlaybackOutcome.FINISHED, "finished")
        if self._active:
            self._timer = loop_.call_at(pacer.next_deadline, self._tick)
        else:
            self._stop_clock()

    def _stop_clock(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pacer = None

    def _end(
        self,
        playback: Playback,
        outcome: PlaybackOutcome,
        reason: str,
        *,
        restore: bool = True,
    ) -> PlaybackDone:
        if playback._result is not None:
            return playback._result
        endpoint = playback.endpoint
        if self._active.get(endpoint) is playback:
            del self._active[endpoint]
        if restore and playback.hold_peer:
            endpoint.forward_from_peer = playback._restore_forward
            # Bridged audio resumes as a new source toward the phone (marker bit set).
            endpoint.stream.resync()
        result = PlaybackDone(
            call_id=playback.session.call_id,
            side=endpoint.side,
            playback_id=playback.id,
            outcome=outcome,
            reason=reason,
            clips=playback.clips,
            packets=playback.packets,
            position_ms=1000 * playback.position // RATE,
            played_ms=round(playback.packets * self.ptime * 1000),
        )
        playback._result = result
        if not playback._done.done():
            playback._done.set_result(result)
        log.debug(
            "[%s] side %s: playback %d %s (%s) after %d packets",
            result.call_id,
            result.side,
            result.playback_id,
            outcome.value,
            reason,
            result.packets,
        )
        if self._on_done is not None and self._loop is not None:
            self._loop.call_soon(self._notify, result)
        return result

    def _notify(self, result: PlaybackDone) -> None:
        callback = self._on_done
        if callback is None:
            return
        try:
            callback(result)
        except Exception:
            log.exception("on_done callback failed for playback %d", result.playback_id)
