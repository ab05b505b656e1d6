"""Two-channel G.711 WAV recording: header, alignment, channel separation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from minicc.switch.media import g711
from minicc.switch.media.recorder import TwoChannelRecorder
from minicc.switch.media.wav import (
    WAVE_FORMAT_MULAW,
    WAVE_FORMAT_PCM,
    WavError,
    WavFormat,
    parse_wav,
    wav_header,
)

RATE = 8000


def tone(freq: float, samples: int, *, start: int = 0, amplitude: int = 12_000) -> list[int]:
    return [
        round(amplitude * math.sin(2 * math.pi * freq * (start + n) / RATE)) for n in range(samples)
    ]


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(np.argmax(spectrum))])


def read_channels(path: Path) -> tuple[WavFormat, bytes, bytes]:
    """Our own reader: the stdlib ``wave`` module refuses format tag 7."""
    raw = path.read_bytes()
    # header checked by hand, independent of parse_wav
    assert raw[0:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert int.from_bytes(raw[4:8], "little") == len(raw) - 8
    fmt, data = parse_wav(raw)
    return fmt, data[0::2], data[1::2]


def test_header_layout_for_mulaw() -> None:
    fmt = WavFormat(format_tag=WAVE_FORMAT_MULAW, channels=2, sample_rate=8000, bits_per_sample=8)
    header = wav_header(fmt, 16_000)
    assert len(header) == 58
    assert header[20:22] == (7).to_bytes(2, "little")  # format tag
    assert header[16:20] == (18).to_bytes(4, "little")  # fmt chunk with cbSize
    assert header[28:32] == (16_000).to_bytes(4, "little")  # byte rate
    assert header[38:42] == b"fact" and header[46:50] == (8000).to_bytes(4, "little")
    assert header[50:54] == b"data" and header[54:58] == (16_000).to_bytes(4, "little")
    pcm = WavFormat(format_tag=WAVE_FORMAT_PCM, channels=1, sample_rate=8000, bits_per_sample=16)
    assert len(wav_header(pcm, 0)) == 44  # the canonical PCM header


def test_parse_wav_errors() -> None:
    with pytest.raises(WavError, match="not a RIFF/WAVE"):
        parse_wav(b"hello")
    fmt = WavFormat(format_tag=6, channels=1, sample_rate=8000, bits_per_sample=8)
    with pytest.raises(WavError, match="truncated"):
        parse_wav(wav_header(fmt, 100) + b"\xd5" * 10)


def _feed(
    recorder: TwoChannelRecorder,
    channel: int,
    samples: list[int],
    *,
    t0: float,
    ssrc: int,
    ts0: int,
    pt: int = 0,
    skip: set[int] | None = None,
) -> None:
    encode = g711.ulaw_encode if pt == 0 else g711.alaw_encode
    for i in range(len(samples) // 160):
        if skip and i in skip:
            continue
        payload = encode(samples[i * 160 : (i + 1) * 160])
        recorder.add(channel, pt, ssrc, ts0 + i * 160, payload, t0 + i * 0.02)


def test_channels_carry_each_party(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    recorder = TwoChannelRecorder(path, "PCMU", now=100.0)
    # Interleave like a live call: each 20 ms, one packet from each party.
    a = tone(440, 3 * RATE)
    b = tone(1000, 3 * RATE)
    for i in range(len(a) // 160):
        now = 100.0 + i * 0.02
        recorder.add(0, 0, 1, 5000 + i * 160, g711.ulaw_encode(a[i * 160 : (i + 1) * 160]), now)
        # party B sends A-law: converted with the translate table, not transcoded via PCM
        chunk = g711.alaw_encode(b[i * 160 : (i + 1) * 160])
        recorder.add(1, 8, 2, 90_000 + i * 160, chunk, now + 0.005)
        recorder.add(1, 101, 2, 90_000 + i * 160, b"\x01\x0a\x00\xa0", now)  # DTMF: ignored
    info = recorder.close(103.0)
    final = recorder.finished.result(timeout=10)  # type: ignore[union-attr]
    assert final.error is None and final.frames == info.frames
    assert 3 * RATE <= info.frames <= 3 * RATE + 40  # B's last packet ends 5 ms later
    fmt, left, right = read_channels(path)
    assert (fmt.format_tag, fmt.channels, fmt.sample_rate, fmt.bits_per_sample) == (7, 2, 8000, 8)
    left_pcm = np.array(g711.ulaw_decode(left), dtype=float)
    right_pcm = np.array(g711.ulaw_decode(right), dtype=float)
    assert dominant_frequency(left_pcm) == pytest.approx(440, abs=5)
    assert dominant_frequency(right_pcm) == pytest.approx(1000, abs=5)


def test_alignment_gaps_and_ssrc_change(tmp_path: Path) -> None:
    path = tmp_path / "hold.wav"
    recorder = TwoChannelRecorder(path, "PCMA", now=0.0)
    loud = tone(1000, RATE)
    # A talks for 1 s from t=0; B starts 0.5 s later (answered late): placed at 0.5 s.
    _feed(recorder, 0, loud, t0=0.0, ssrc=1, ts0=123, pt=8)
    _feed(recorder, 1, loud[: RATE // 2], t0=0.5, ssrc=2, ts0=777, pt=8)
    # A on hold for 1 s, then resumes with a new SSRC and unrelated timestamps at t=2 s,
    # one packet lost in the middle.
    _feed(recorder, 0, loud, t0=2.0, ssrc=3, ts0=4_000_000_000, pt=8, skip={10})
    recorder.close(3.0)
    assert recorder.finished is not None and recorder.finished.result(timeout=10).error is None
    fmt, left, right = read_channels(path)
    assert fmt.format_tag == 6
    silence = g711.ALAW_SILENCE
    assert len(left) == 3 * RATE
    assert left[:RATE] == g711.alaw_encode(loud)
    assert set(left[RATE : 2 * RATE]) == {silence}  # hold: silence, not a shifted stream
    lost = 2 * RATE + 10 * 160
    assert left[2 * RATE : lost] == g711.alaw_encode(loud[: 10 * 160])
    assert set(left[lost : lost + 160]) == {silence}
    assert set(right[: RATE // 2]) == {silence}
    assert right[RATE // 2 : RATE] == g711.alaw_encode(loud[: RATE // 2])


def test_late_packet_is_dropped_not_misplaced(tmp_path: Path) -> None:
    recorder = TwoChannelRecorder(tmp_path / "late.wav", "PCMU", now=0.0)
    loud = g711.ulaw_encode(tone(500, 160))
    recorder.add(1, 0, 2, 0, loud, 0.0)  # B's first packet, on time
    for i in range(150):  # 3 s of A, so the first 2 s are written out
        recorder.add(0, 0, 1, i * 160, loud, i * 0.02)
    recorder.add(1, 0, 2, 160, loud, 3.0)  # B's second one arrives 3 s late: dropped
    info = recorder.close(3.0)
    assert info.late_packets == 1
    _fmt, _left, right = read_channels_after(recorder, tmp_path / "late.wav")
    assert right[:160] == loud and set(right[160:]) == {g711.ULAW_SILENCE}


def test_timestamp_jump_without_new_ssrc_rebases(tmp_path: Path) -> None:
    path = tmp_path / "jump.wav"
    recorder = TwoChannelRecorder(path, "PCMU", now=0.0)
    loud = tone(700, RATE // 2)
    _feed(recorder, 0, loud, t0=0.0, ssrc=1, ts0=0)
    # same SSRC resumes at t=1 s but its clock stood still: timestamps continue from 0.5 s
    _feed(recorder, 0, loud, t0=1.0, ssrc=1, ts0=RATE // 2)
    info = recorder.close(1.5)
    assert info.late_packets == 2  # two packets dropped before the re-base
    _fmt, left, _right = read_channels_after(recorder, path)
    encoded = g711.ulaw_encode(loud)
    assert left[: RATE // 2] == encoded
    assert set(left[RATE // 2 : RATE]) == {g711.ULAW_SILENCE}
    assert left[RATE + 320 : RATE + RATE // 2] == encoded[320:]


def read_channels_after(recorder: TwoChannelRecorder, path: Path) -> tuple[WavFormat, bytes, bytes]:
    assert recorder.finished is not None
    recorder.finished.result(timeout=10)
    return read_channels(path)


def test_rejects_unknown_codec(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot record codec 'G722'"):
        TwoChannelRecorder(tmp_path / "x.wav", "G722", now=0.0)  # type: ignore[arg-type]
