"""Recording on the switch's side of :class:`~minicc.switch.control.CallControl`.

Two kinds of recording, both written in the call's G.711 law without transcoding:

- **Call recordings** (``record_call``, ``pause_recording``, ``resume_recording``): the
  relay's two-channel recorder (:mod:`minicc.switch.media.recorder`) on a bridged call,
  started when the engine's queue policy says so (at the agent's answer, or on demand
  mid-call), in the same file the tenant-wide recording would use, so the call record
  carries its path. Pausing writes silence on both channels; the spans end up in the
  recording's metadata file.
- **Messages** (``record``, voicemail): the caller's audio after the beep, taken from a tap
  on the relay's caller endpoint into a :class:`~minicc.switch.media.message.
  MessageRecorder`, until a stop digit, silence, a length limit or the hang-up, then written
  to ``recordings/<tenant>/voicemail/<box>/<day>/<time>-<call>.wav`` off the event loop.
  ``record_done`` follows the write, exactly once per record. A message in which no voice
  was ever heard is not kept (``path`` None).

Digits: the caller's go to the engine as ``dtmf`` (a message's stop digit ends the message
instead); the agent's phone's go as ``agent_dtmf`` (:meth:`CallRecordings.agent_dtmf`), so
a caller can never trigger an agent's feature code. Telephone-event packets are relayed as
they are: the caller may hear the agent's feature-code tones (the recorder writes them as
silence).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from minicc.switch import sdp as sdplib
from minicc.switch.control import RecordOutcome, RecordResult
from minicc.switch.media.message import MessageRecorder

if TYPE_CHECKING:
    from collections.abc import Callable

    from minicc.switch.b2bua import B2BUA, Call, Side
    from minicc.switch.media.recorder import TwoChannelRecorder

__all__ = ["CallRecordings"]

log = logging.getLogger(__name__)

RECORDINGS = "recordings"
"""Folder of the data dir the switch records into (what stored paths start with)."""
CHECK_EVERY = 0.25
"""How often a message's silence timer looks again (seconds)."""


@dataclass(slots=True, eq=False)
class _Message:
    id: int
    call: Call
    box: str
    recorder: MessageRecorder
    stop_digits: str
    silence_timeout: float | None
    deadline: float
    timer: asyncio.TimerHandle | None = None
    done: bool = False


class CallRecordings:
    """The switch's recording requests (module doc).

    Args:
        b2bua: the calls.
        tell_soon: ``tell_soon(key, observer_method, *args)``: report to the engine on a
            later turn of the loop.
        recordings_dir: where recordings go (the data dir's ``recordings``); None: nothing
            is recorded.
    """

    def __init__(
        self,
        b2bua: B2BUA,
        tell_soon: Callable[..., None],
        recordings_dir: Path | None,
    ) -> None:
        self._b2bua = b2bua
        self._tell_soon = tell_soon
        self._dir = recordings_dir
        self._ids = itertools.count(1)
        self._messages: dict[str, _Message] = {}
        """Call key -> the message being recorded."""
        self._stopped: set[str] = set()
        """Keys of calls whose recording was stopped for good."""
        self._writes: set[asyncio.Task[None]] = set()

    # -- call recordings --------------------------------------------------------------------

    def record_call(self, key: str, on: bool) -> bool:
        """:meth:`CallControl.record_call <minicc.switch.control.CallControl.record_call>`."""
        call = self._b2bua.call(key)
        if call is None or call.media is None or call.media.closed:
            log.info("%s: record_call(%s): no such call with media", key, on)
            return False
        media = call.media
        if not on:
            if media.recording:
                media.stop_recording()
                self._stopped.add(key)
                log.info("%s: recording stopped", key)
            return True
        if media.recording:
            return True
        if key in self._stopped or call.recording is not None:
            log.info("%s: recording was stopped; a call has one recording", key)
            return False
        return self._b2bua._start_recording(call, force=True)

    def pause_recording(self, key: str) -> bool:
        """:meth:`CallControl.pause_recording <minicc.switch.control.CallControl.
        pause_recording>`."""
        recorder = self._recorder(key)
        if recorder is None or not recorder.pause(asyncio.get_running_loop().time()):
            return False
        log.info("%s: recording paused", key)
        return True

    def resume_recording(self, key: str) -> bool:
        """:meth:`CallControl.resume_recording <minicc.switch.control.CallControl.
        resume_recording>`."""
        recorder = self._recorder(key)
        if recorder is None or not recorder.resume(asyncio.get_running_loop().time()):
            return False
        log.info("%s: recording resumed", key)
        return True

    def _recorder(self, key: str) -> TwoChannelRecorder | None:
        call = self._b2bua.call(key)
        if call is None or call.media is None:
            return None
        return call.media.recorder

    # -- messages ---------------------------------------------------------------------------

    def record(
        self,
        key: str,
        box: str,
        *,
        max_seconds: float,
        stop_digits: str = "#",
        silence_timeout: float | None = None,
    ) -> int:
        """:meth:`CallControl.record <minicc.switch.control.CallControl.record>`."""
        record_id = next(self._ids)
        call = self._b2bua.call(key)
        failed = RecordResult(outcome=RecordOutcome.FAILED, path=None, duration=0.0)
        if call is None or call.media is None or self._dir is None or key in self._messages:
            log.warning("%s: cannot record a message (no call, media or folder, or busy)", key)
            self._tell_soon(key, "record_done", record_id, failed)
            return record_id
        loop = asyncio.get_running_loop()
        now = loop.time()
        codec: Literal["PCMU", "PCMA"] = "PCMA" if _codec(call) == "PCMA" else "PCMU"
        message = _Message(
            id=record_id,
            call=call,
            box=box,
            recorder=MessageRecorder(codec, now),
            stop_digits=stop_digits,
            silence_timeout=silence_timeout,
            deadline=now + max(max_seconds, 0.0),
        )
        self._messages[key] = message

        def tap(payload_type: int, payload: bytes) -> None:
            message.recorder.feed(payload_type, payload, loop.time())

        call.media.a.tap = tap
        message.timer = loop.call_later(CHECK_EVERY, self._check, key)
        log.info("%s: recording a message for box %s", key, box)
        return record_id

    def dtmf(self, call: Call, digit: str) -> bool:
        """A caller's digit: True when it ended a message (so the engine is not told)."""
        message = self._messages.get(call.key)
        if message is None or digit not in message.stop_digits:
            return False
        self._end(message, RecordOutcome.STOP_DIGIT, digit)
        return True

    def finished(self, call: Call) -> None:
        """The call ended: a message being recorded ends HANGUP (and is kept)."""
        self._stopped.discard(call.key)
        message = self._messages.get(call.key)
        if message is not None:
            self._end(message, RecordOutcome.HANGUP)

    def agent_dtmf(self, call: Call, side: Side, digit: str) -> None:
        """A digit from a side that is not an application call's caller: reported as
        ``agent_dtmf`` when it comes from the agent's phone of a bridged call."""
        from minicc.switch.b2bua import Side

        agent_side = Side.CALLER if call.outbound is not None else Side.CALLEE
        if side is agent_side and (call.app is not None or call.outbound is not None):
            self._tell_soon(call.key, "agent_dtmf", digit)

    def _check(self, key: str) -> None:
        message = self._messages.get(key)
        if message is None or message.done:
            return
        now = asyncio.get_running_loop().time()
        if now >= message.deadline:
            self._end(message, RecordOutcome.MAX_LENGTH)
            return
        quiet = message.silence_timeout
        if quiet is not None and now - message.recorder.last_voice >= quiet:
            self._end(message, RecordOutcome.SILENCE)
            return
        message.timer = asyncio.get_running_loop().call_later(CHECK_EVERY, self._check, key)

    def _end(self, message: _Message, outcome: RecordOutcome, digit: str | None = None) -> None:
        if message.done:
            return
        message.done = True
        call = message.call
        self._messages.pop(call.key, None)
        if message.timer is not None:
            message.timer.cancel()
        if call.media is not None:
            call.media.a.tap = None
        recorder = message.recorder
        duration = recorder.duration
        if not recorder.voiced or self._dir is None:
            log.info("%s: message for %s: nothing said (%s)", call.key, message.box, outcome.value)
            result = RecordResult(outcome=outcome, path=None, duration=0.0, digit=digit)
            self._tell_soon(call.key, "record_done", message.id, result)
            return
        stamp = datetime.now(UTC)
        rel = (
            Path(_safe(call.tenant.name))
            / "voicemail"
            / _safe(message.box)
            / stamp.strftime("%Y-%m-%d")
            / f"{stamp.strftime('%H%M%S')}-{_safe(call.key)}.wav"
        )
        path = self._dir / rel
        data = recorder.wav()
        loop = asyncio.get_running_loop()

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        async def write_then_tell() -> None:
            try:
                await loop.run_in_executor(None, write)
            except OSError as exc:
                log.error("%s: message for %s not written: %s", call.key, message.box, exc)
                result = RecordResult(outcome=RecordOutcome.FAILED, path=None, duration=0.0)
            else:
                result = RecordResult(
                    outcome=outcome,
                    path=str(Path(RECORDINGS) / rel),
                    duration=duration,
                    digit=digit,
                )
                log.info(
                    "%s: message for %s: %.1f s (%s)",
                    call.key,
                    message.box,
                    duration,
                    outcome.value,
                )
            self._tell_soon(call.key, "record_done", message.id, result)

        task = loop.create_task(write_then_tell())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)


def _codec(call: Call) -> str:
    if call.app is not None:
        return call.app.codec
    return sdplib.negotiate(call.offer).first_codec or "PCMU"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in text)[:80]
