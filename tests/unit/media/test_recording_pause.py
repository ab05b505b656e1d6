"""Pausing a two-channel recording (card numbers) and recording a caller's message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from minicc.switch.media import g711
from minicc.switch.media.message import MessageRecorder
from minicc.switch.media.recorder import TwoChannelRecorder, metadata_path
from minicc.switch.media.wav import parse_wav
from tests.unit.media.test_recorder import RATE, dominant_frequency, read_channels, tone


def _call(recorder: TwoChannelRecorder, seconds: float, *, pause: float, resume: float) -> None:
    """Both parties talk for ``seconds`` (A at 440 Hz, B at 1000 Hz); paused in between."""
    a = tone(440, int(seconds * RATE))
    b = tone(1000, int(seconds * RATE))
    for i in range(len(a) // 160):
        now = i * 0.02
        if now == pause:
            assert recorder.pause(now) and not recorder.pause(now)  # a second pause: no-op
        if now == resume:
            assert recorder.resume(now) and not recorder.resume(now)
        recorder.add(0, 0, 1, i * 160, g711.ulaw_encode(a[i * 160 : (i + 1) * 160]), now)
        recorder.add(1, 0, 2, 7 + i * 160, g711.ulaw_encode(b[i * 160 : (i + 1) * 160]), now)


def test_paused_span_is_silence_on_both_channels_and_in_the_metadata(tmp_path: Path) -> None:
    path = tmp_path / "card.wav"
    recorder = TwoChannelRecorder(path, "PCMU", now=0.0)
    _call(recorder, 4.0, pause=1.0, resume=2.5)
    assert recorder.paused is False
    info = recorder.close(4.0)
    final = recorder.finished.result(timeout=10)  # type: ignore[union-attr]
    assert final.error is None and final.pauses == info.pauses == ((1000, 2500),)
    _, left, right = read_channels(path)
    assert len(left) == len(right) == 4 * RATE  # the pause keeps the length: aligned
    for channel, freq in ((left, 440), (right, 1000)):
        assert set(channel[RATE : int(2.5 * RATE)]) == {g711.ULAW_SILENCE}
        before = np.array(g711.ulaw_decode(channel[: RATE - 160]), dtype=float)
        after = np.array(g711.ulaw_decode(channel[int(2.5 * RATE) + 160 :]), dtype=float)
        assert dominant_frequency(before) == pytest.approx(freq, abs=5)
        assert dominant_frequency(after) == pytest.approx(freq, abs=5)
    meta = json.loads(metadata_path(path).read_text())
    assert meta["pauses"] == [{"start_ms": 1000, "end_ms": 2500}]
    assert (meta["duration_ms"], meta["codec"]) == (4000, "PCMU")


def test_a_late_packet_for_a_paused_span_is_silenced_too(tmp_path: Path) -> None:
    recorder = TwoChannelRecorder(tmp_path / "late.wav", "PCMU", now=0.0)
    loud = tone(700, 160)
    for i in range(50):  # 1 s of A
        recorder.add(0, 0, 1, i * 160, g711.ulaw_encode(loud), i * 0.02)
    recorder.pause(1.0)
    recorder.resume(1.2)
    # A packet with a timestamp inside the pause arrives after the resume (jitter).
    recorder.add(0, 0, 1, 55 * 160, g711.ulaw_encode(loud), 1.25)
    recorder.close(1.5)
    assert recorder.finished is not None and recorder.finished.result(timeout=10).error is None
    _, left, _ = read_channels(tmp_path / "late.wav")
    assert set(left[RATE : int(1.2 * RATE)]) == {g711.ULAW_SILENCE}


def test_a_pause_open_at_the_end_runs_to_the_end(tmp_path: Path) -> None:
    recorder = TwoChannelRecorder(tmp_path / "open.wav", "PCMA", now=0.0)
    _call(recorder, 2.0, pause=1.0, resume=-1.0)
    info = recorder.close(2.0)
    assert info.pauses == ((1000, 2000),)
    assert not recorder.pause(2.1)  # closed


def test_message_keeps_the_voice_and_tells_voice_from_silence() -> None:
    message = MessageRecorder("PCMU", now=10.0)
    quiet = g711.ulaw_encode([0] * 160)
    for i in range(25):  # half a second of silence first
        message.feed(0, quiet, 10.0 + i * 0.02)
    assert not message.voiced and message.last_voice == 10.0
    voice = tone(800, RATE)
    for i in range(50):  # a second of 800 Hz, as A-law: converted to the file's law
        message.feed(8, g711.alaw_encode(voice[i * 160 : (i + 1) * 160]), 10.5 + i * 0.02)
    message.feed(101, b"\x0b\x0a\x00\xa0", 11.5)  # a telephone-event (#): not audio
    assert message.voiced and message.last_voice == pytest.approx(11.48)
    assert message.duration == pytest.approx(1.5)
    fmt, audio = parse_wav(message.wav())
    assert (fmt.format_tag, fmt.channels, fmt.sample_rate) == (7, 1, 8000)
    pcm = np.array(g711.ulaw_decode(audio[RATE // 2 :]), dtype=float)
    assert dominant_frequency(pcm) == pytest.approx(800, abs=5)


def test_message_refuses_other_codecs() -> None:
    with pytest.raises(ValueError, match="PCMU or PCMA"):
        MessageRecorder("G722", now=0.0)  # type: ignore[arg-type]
