"""Audio for the interop tests: make test tones, read WAV files, measure what was heard.

Tones are made with sox (8 kHz mono). Reading covers what the tools under test write: 16-bit
PCM (baresip's sndfile dumps) and 8-bit G.711 u-law/A-law WAV (format tags 7 and 6; minicc
records G.711 payloads straight into WAV). The stdlib ``wave`` module reads neither G.711 nor a
file whose header was never finalised, so the RIFF chunks are walked here.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_ALAW = 6
WAVE_FORMAT_MULAW = 7
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# Below this a signal is taken as silence (G.711 idle noise sits far lower).
SILENCE_DBFS = -50.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Wav:
    """Decoded audio: mono float samples in [-1, 1]."""

    samples: Samples
    """Samples of the first channel, as float64 in [-1.0, 1.0]."""
    rate: int
    """Sample rate in Hz."""
    channels: int
    """Channel count in the file (only the first is kept in ``samples``)."""
    format_tag: int
    """WAVE format tag: 1 PCM, 6 A-law, 7 u-law."""

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.rate if self.rate else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioSummary:
    """What a stretch of audio sounds like, for assertions."""

    duration_s: float
    """Length analysed, in seconds."""
    rms_dbfs: float
    """RMS level in dB relative to full scale (a full-scale sine is about -3 dBFS)."""
    dominant_hz: float
    """Frequency of the strongest FFT bin, in Hz (0.0 for silence)."""

    @property
    def silent(self) -> bool:
        """True if the level is below :data:`SILENCE_DBFS`."""
        return self.rms_dbfs < SILENCE_DBFS


# --- G.711 decoding (ITU-T G.711, the classic table-free expansions) --------------------------


def _ulaw_table() -> Samples:
    codes = np.arange(256, dtype=np.int32)
    u = ~codes & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    linear = np.where(sign != 0, -magnitude, magnitude)
    return linear.astype(np.float64) / 32768.0


def _alaw_table() -> Samples:
    codes = np.arange(256, dtype=np.int32)
    a = codes ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    # In A-law a set sign bit means positive.
    linear = np.where(sign != 0, magnitude, -magnitude)
    return linear.astype(np.float64) / 32768.0


ULAW_TO_FLOAT = _ulaw_table()
ALAW_TO_FLOAT = _alaw_table()


def decode_g711(payload: bytes, law: Literal["ulaw", "alaw"]) -> Samples:
    """Decode G.711 bytes (PCMU: ``"ulaw"``, PCMA: ``"alaw"``) to float samples."""
    table = ULAW_TO_FLOAT if law == "ulaw" else ALAW_TO_FLOAT
    return table[np.frombuffer(payload, dtype=np.uint8)]


# --- WAV reading -----------------------------------------------------------------------------


def read_wav(path: Path) -> Wav:
    """Read a PCM (8/16/32-bit), u-law or A-law WAV file.

    A ``data`` chunk whose size is 0 or past the end of the file (a writer that was still
    running, or was killed) is read up to the end of the file.

    Raises:
        ValueError: not a RIFF/WAVE file, or an encoding this reader does not know.
    """
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack_from("<HHI", data, body)
            (bits,) = struct.unpack_from("<H", data, body + 14)
            if tag == WAVE_FORMAT_EXTENSIBLE and size >= 26:
                # The real format tag is the first two bytes of the SubFormat GUID.
                (tag,) = struct.unpack_from("<H", data, body + 24)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError(f"{path}: data chunk before fmt chunk")
            end = len(data) if size in (0, 0xFFFFFFFF) else min(body + size, len(data))
            return _decode(path, data[body:end], *fmt)
        pos = body + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


def _decode(path: Path, raw: bytes, tag: int, channels: int, rate: int, bits: int) -> Wav:
    if channels < 1:
        raise ValueError(f"{path}: {channels} channels")
    if tag == WAVE_FORMAT_PCM and bits == 16:
        usable = len(raw) - len(raw) % (2 * channels)
        samples = np.frombuffer(raw[:usable], dtype="<i2").astype(np.float64) / 32768.0
    elif tag == WAVE_FORMAT_PCM and bits == 8:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif tag == WAVE_FORMAT_PCM and bits == 32:
        usable = len(raw) - len(raw) % (4 * channels)
        samples = np.frombuffer(raw[:usable], dtype="<i4").astype(np.float64) / 2147483648.0
    elif tag == WAVE_FORMAT_MULAW and bits == 8:
        samples = decode_g711(raw, "ulaw")
    elif tag == WAVE_FORMAT_ALAW and bits == 8:
        samples = decode_g711(raw, "alaw")
    else:
        raise ValueError(f"{path}: unsupported WAV encoding (tag {tag}, {bits} bits)")
    usable_frames = len(samples) // channels
    first_channel = samples[: usable_frames * channels].reshape(usable_frames, channels)[:, 0]
    return Wav(
        samples=np.ascontiguousarray(first_channel), rate=rate, channels=channels, format_tag=tag
    )


# --- Measurements ----------------------------------------------------------------------------


def _samples_and_rate(audio: Samples | Wav, rate: int | None) -> tuple[Samples, int | None]:
    if isinstance(audio, Wav):
        return audio.samples, audio.rate
    return audio, rate


def rms_dbfs(audio: Samples | Wav) -> float:
    """RMS level in dBFS of samples or a :class:`Wav`; -200.0 for empty or all-zero input."""
    samples, _ = _samples_and_rate(audio, None)
    if len(samples) == 0:
        return -200.0
    rms = float(np.sqrt(np.mean(np.square(samples))))
    return 20.0 * float(np.log10(rms)) if rms > 1e-10 else -200.0


def dominant_frequency(
    audio: Samples | Wav,
    rate: int | None = None,
    *,
    min_hz: float = 50.0,
    max_hz: float | None = None,
) -> float:
    """Frequency (Hz) of the strongest FFT bin between ``min_hz`` and ``max_hz``.

    Args:
        audio: samples (then ``rate`` is required) or a :class:`Wav` (its own rate is used).
        rate: sample rate of bare samples.
        min_hz: ignore bins below this (DC, hum).
        max_hz: ignore bins above this (default: Nyquist).

    A Hann window keeps a tone that does not fill a whole number of periods from smearing.
    Returns 0.0 for fewer than two samples.

    Raises:
        TypeError: bare samples without a rate.
    """
    samples, sample_rate = _samples_and_rate(audio, rate)
    if sample_rate is None:
        raise TypeError("dominant_frequency() needs the sample rate for bare samples")
    if len(samples) < 2:
        return 0.0
    windowed = (samples - np.mean(samples)) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(windowed))
    freqs = np.fft.rfftfreq(len(samples), d=1.0 / sample_rate)
    upper = max_hz if max_hz is not None else sample_rate / 2.0
    band = (freqs >= min_hz) & (freqs <= upper)
    if not np.any(band):
        return 0.0
    return float(freqs[band][int(np.argmax(spectrum[band]))])


def summarize(samples: Samples, rate: int, *, skip_s: float = 0.0) -> AudioSummary:
    """Level and dominant frequency of ``samples``, ignoring the first ``skip_s`` seconds.

    Skipping the start keeps jitter-buffer fill and call set-up silence out of the level.
    """
    start = min(len(samples), int(skip_s * rate))
    part = samples[start:]
    silent = rms_dbfs(part) < SILENCE_DBFS
    return AudioSummary(
        duration_s=len(part) / rate if rate else 0.0,
        rms_dbfs=rms_dbfs(part),
        dominant_hz=0.0 if silent else dominant_frequency(part, rate),
    )


def analyze_wav(path: Path, *, skip_s: float = 0.0) -> AudioSummary:
    """:func:`summarize` a WAV file (first channel)."""
    wav = read_wav(path)
    return summarize(wav.samples, wav.rate, skip_s=skip_s)


# --- Making test audio -----------------------------------------------------------------------


def make_tone_wav(
    path: Path,
    frequency_hz: float,
    *,
    seconds: float = 60.0,
    rate: int = 8000,
    encoding: Literal["pcm16", "ulaw", "alaw"] = "pcm16",
    volume: float = 0.5,
) -> Path:
    """Write a mono sine tone with sox.

    Args:
        path: output file.
        frequency_hz: tone frequency.
        seconds: length; baresip ends the call when its ``aufile`` source runs out, so make it
            longer than the call.
        rate: sample rate.
        encoding: ``pcm16`` (baresip's aufile), ``ulaw`` (sipp's rtp_stream) or ``alaw``.
        volume: linear amplitude, 0..1.

    Returns:
        ``path``.

    Raises:
        FileNotFoundError: sox is not installed.
        subprocess.CalledProcessError: sox failed.
    """
    sox = shutil.which("sox")
    if sox is None:
        raise FileNotFoundError("sox is not installed (Debian package sox)")
    fmt = {
        "pcm16": ["-e", "signed-integer", "-b", "16"],
        "ulaw": ["-e", "u-law", "-b", "8"],
        "alaw": ["-e", "a-law", "-b", "8"],
    }[encoding]
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sox,
        "-n",
        "-r",
        str(rate),
        "-c",
        "1",
        *fmt,
        str(path),
        "synth",
        f"{seconds:g}",
        "sine",
        f"{frequency_hz:g}",
        "vol",
        f"{volume:g}",
    ]
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return path
