#!/usr/bin/env python3
"""Generate minicc's shipped voice prompts and tones into ``minicc/prompts/``.

Run once; the output is committed, so installing minicc never needs espeak-ng or sox::

    python scripts/make_prompts.py                  # every language, plus the common sounds
    python scripts/make_prompts.py --lang de        # one language only

Speech comes from espeak-ng (a GPL-3 program; the audio it synthesises is our output, not
a copy of anyone's recordings), tones and music on hold are synthesised with sox. No
third-party recording is used anywhere (Debian's Asterisk sound files are CC-BY-SA and must
not be shipped).

Every file is 8 kHz mono 8-bit mu-law WAV (format tag 7): the same bytes an RTP PCMU payload
carries, half the size of 16-bit PCM, and converted to A-law with a 256-byte table when a
call negotiated PCMA. sox does the resampling, trimming and level; the mu-law encoding and
the WAV header are minicc's own (``minicc.switch.media.g711`` and ``wav``), so the files have
exactly the layout the player expects. Dither is off (``-D``) so a re-run gives identical
files with the same tool versions.

Layout: ``<out>/<lang>/<name>.wav`` for speech, ``<out>/common/<name>.wav`` for sounds that
have no language (``beep``, ``agent_whisper_tone``, ``moh``). The catalogue
(``minicc.queue.prompts``) looks in the language folder first, then in ``common``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from array import array
from pathlib import Path

from minicc.switch.media.g711 import ulaw_encode
from minicc.switch.media.wav import WAVE_FORMAT_MULAW, WavFormat, wav_header

log = logging.getLogger("make_prompts")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "minicc" / "prompts"
RATE = 8000
COMMON = "common"


def _words(text: str) -> list[str]:
    return text.split()


# espeak-ng voice per language, and words per minute (slightly slower than the default 175
# so numbers stay intelligible through G.711 and a phone's small speaker).
VOICES = {"en": ("en-us", 150), "de": ("de", 145)}

_EN_ORDINALS = _words(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
)
_DE_ORDINALS = _words(
    "ersten zweiten dritten vierten fünften sechsten siebten achten neunten zehnten elften "
    "zwölften dreizehnten vierzehnten fünfzehnten sechzehnten siebzehnten achtzehnten "
    "neunzehnten"
)
_EN_MONTHS = _words(
    "January February March April May June July August September October November December"
)
_DE_MONTHS = "Januar Februar März April Mai Juni Juli August September Oktober November Dezember"
_EN_WEEKDAYS = _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
_DE_WEEKDAYS = _words("Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag")


def _english() -> dict[str, str]:
    ones = _words(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen"
    )
    tens = _words("twenty thirty forty fifty sixty seventy eighty ninety")
    texts = {str(n): word for n, word in enumerate(ones)}
    texts.update({str(20 + 10 * i): word for i, word in enumerate(tens)})
    texts["hundred"] = "hundred"
    texts.update({f"ordinal_{n + 1}": word for n, word in enumerate(_EN_ORDINALS)})
    texts["ordinal_20"] = "twentieth"
    texts["ordinal_30"] = "thirtieth"
    texts.update({f"month_{n + 1}": word for n, word in enumerate(_EN_MONTHS)})
    texts.update({f"weekday_{n}": word for n, word in enumerate(_EN_WEEKDAYS)})
    texts.update(
        {
            "star": "star",
            "pound": "pound",
            "welcome": "Thank you for calling.",
            "thank_you": "Thank you.",
            "you_are_caller_number": "You are caller number",
            "your_estimated_wait_is": "Your estimated wait is",
            "minutes": "minutes",
            "minute": "minute",
            "less_than_one_minute": "less than one minute.",
            "please_hold": "Please hold.",
            "press_1_to_be_called_back": "To be called back without losing your place, press 1.",
            "callback_confirmed": (
                "Thank you. We will call you back. You keep your place in the queue."
            ),
            "press_1_for_sales": "For sales, press 1.",
            "press_2_for_support": "For support, press 2.",
            "invalid_option": "Sorry, that is not a valid option.",
            "no_input": "Sorry, we did not receive your choice.",
            "please_try_again": "Please try again.",
            "goodbye": "Goodbye.",
            "closed": "Our office is closed. Please leave a message after the tone.",
            "leave_message": "Please leave a message after the tone.",
            "transferring": "Please hold while we transfer your call.",
            "all_agents_busy": "All our agents are busy at the moment. Please stay on the line.",
            "enter_order_number": "Please enter your order number, followed by the pound key.",
            "order_status_is": "The status of your order is",
            "shipped": "shipped.",
            "in_transit": "in transit.",
            "delivered": "delivered.",
            "expected_delivery": "Expected delivery is on",
            "not_found": "Sorry, we could not find that order.",
        }
    )
    return texts


def _german() -> dict[str, str]:
    ones = _words(
        "null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn "
        "vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn"
    )
    tens = _words("zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig")
    texts = {str(n): word for n, word in enumerate(ones)}
    texts.update({str(20 + 10 * i): word for i, word in enumerate(tens)})
    # German composes 21 as "ein-und-zwanzig" and says "eine Minute": two extra forms of one.
    texts.update({"hundred": "hundert", "and": "und", "1_compound": "ein", "1_feminine": "eine"})
    texts.update({f"ordinal_{n + 1}": word for n, word in enumerate(_DE_ORDINALS)})
    texts["ordinal_20"] = "zwanzigsten"
    texts["ordinal_30"] = "dreißigsten"
    texts.update({f"month_{n + 1}": word for n, word in enumerate(_words(_DE_MONTHS))})
    texts.update({f"weekday_{n}": word for n, word in enumerate(_DE_WEEKDAYS)})
    texts.update(
        {
            "star": "Stern",
            "pound": "Raute",
            "welcome": "Vielen Dank für Ihren Anruf.",
            "thank_you": "Vielen Dank.",
            "you_are_caller_number": "Sie sind Anrufer Nummer",
            "your_estimated_wait_is": "Ihre voraussichtliche Wartezeit beträgt",
            "minutes": "Minuten.",
            "minute": "Minute.",
            "less_than_one_minute": "weniger als eine Minute.",
            "please_hold": "Bitte bleiben Sie in der Leitung.",
            "press_1_to_be_called_back": (
                "Wenn Sie zurückgerufen werden möchten, ohne Ihren Platz zu verlieren, "
                "drücken Sie die 1."
            ),
            "callback_confirmed": (
                "Vielen Dank. Wir rufen Sie zurück. Ihr Platz in der Warteschlange bleibt erhalten."
            ),
            "press_1_for_sales": "Für den Vertrieb drücken Sie die 1.",
            "press_2_for_support": "Für den Kundendienst drücken Sie die 2.",
            "invalid_option": "Diese Auswahl ist leider ungültig.",
            "no_input": "Leider haben wir Ihre Auswahl nicht erhalten.",
            "please_try_again": "Bitte versuchen Sie es noch einmal.",
            "goodbye": "Auf Wiederhören.",
            "closed": (
                "Unser Büro ist geschlossen. Bitte hinterlassen Sie eine Nachricht "
                "nach dem Signalton."
            ),
            "leave_message": "Bitte hinterlassen Sie eine Nachricht nach dem Signalton.",
            "transferring": "Einen Moment bitte, wir verbinden Sie.",
            "all_agents_busy": (
                "Zurzeit sind alle Mitarbeiter im Gespräch. Bitte bleiben Sie in der Leitung."
            ),
            "enter_order_number": (
                "Bitte geben Sie Ihre Bestellnummer ein, gefolgt von der Rautetaste."
            ),
            "order_status_is": "Der Status Ihrer Bestellung:",
            "shipped": "versandt.",
            "in_transit": "unterwegs.",
            "delivered": "zugestellt.",
            "expected_delivery": "Die voraussichtliche Zustellung ist am",
            "not_found": "Diese Bestellung konnten wir leider nicht finden.",
        }
    )
    return texts


LANGUAGES = {"en": _english, "de": _german}
# The language menu is spoken in each language in turn, so it is the same file in every
# language folder: a caller who has not chosen yet hears their own language.
LANGUAGE_MENU = (("en", "For English, press 1."), ("de", "Für Deutsch, drücken Sie die 2."))


def run(*args: str | float | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def write_ulaw_wav(raw_pcm16: bytes, path: Path) -> float:
    """Encode raw little-endian 16-bit mono PCM to a mu-law WAV; return its length in s."""
    samples = array("h")
    samples.frombytes(raw_pcm16)
    if sys.byteorder == "big":
        samples.byteswap()
    data = ulaw_encode(samples)
    fmt = WavFormat(format_tag=WAVE_FORMAT_MULAW, channels=1, sample_rate=RATE, bits_per_sample=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_header(fmt, len(data)) + data + b"\0" * (len(data) & 1))
    return len(data) / RATE


def to_raw(src: Path, *effects: str | float) -> bytes:
    """sox: any input to 8 kHz mono 16-bit raw PCM, with effects, no dither."""
    out = src.with_suffix(".raw")
    run("sox", "-D", src, "-t", "raw", "-r", RATE, "-c", 1, "-b", 16, "-e", "signed", out,
        *effects)  # fmt: skip
    return out.read_bytes()


def speak(lang: str, text: str, tmp: Path) -> bytes:
    """Synthesise one phrase: trimmed, small pads so composed sentences flow, -3 dBFS peak."""
    voice, speed = VOICES[lang]
    wav = tmp / "speech.wav"
    run("espeak-ng", "-v", voice, "-s", speed, "-w", wav, text)
    # Trim leading and trailing silence (reverse trick), resample, then pad: 30 ms before,
    # 120 ms after, so "forty" "two" sounds like one number and sentences keep a breath.
    return to_raw(
        wav,
        "silence", 1, 0.02, "0.5%", "reverse", "silence", 1, 0.02, "0.5%", "reverse",
        "rate", "-v", RATE, "norm", -3, "pad", 0.03, 0.12,
    )  # fmt: skip


def make_speech(lang: str, out: Path, tmp: Path) -> float:
    total = 0.0
    for name, text in LANGUAGES[lang]().items():
        total += write_ulaw_wav(speak(lang, text, tmp), out / lang / f"{name}.wav")
    parts = b"".join(speak(code, text, tmp) for code, text in LANGUAGE_MENU)
    total += write_ulaw_wav(parts, out / lang / "language_menu.wav")
    log.info("%s: %d prompts, %.1f s", lang, len(LANGUAGES[lang]()) + 1, total)
    return total


def _hz(note: str) -> float:
    """Equal temperament frequency of a note name like ``C5`` or ``F#4`` (A4 = 440 Hz)."""
    steps = {"C": -9, "D": -7, "E": -5, "F": -4, "G": -2, "A": 0, "B": 2}[note[0]]
    sharp = 1 if note[1] == "#" else 0
    octave = int(note[1 + sharp :])
    return 440.0 * 2 ** ((steps + sharp + 12 * (octave - 4)) / 12)


# Music on hold: eight bars of 3.75 s (30 s, a seamless loop because the last chord, G,
# leads back to the first, C). Soft sine pads under a plucked five-note melody per bar.
_CHORDS = (
    ("C4", "E4", "G4"), ("A3", "C4", "E4"), ("F3", "A3", "C4"), ("G3", "B3", "D4"),
    ("C4", "E4", "G4"), ("A3", "C4", "E4"), ("D4", "F4", "A4"), ("G3", "B3", "D4"),
)  # fmt: skip
_MELODY = (
    "C5 E5 G5 E5 D5", "C5 E5 A5 G5 E5", "F5 A5 C6 A5 G5", "G5 B4 D5 G5 F5",
    "E5 G5 C6 B5 G5", "A5 E5 C5 E5 A5", "F5 A5 D5 F5 E5", "D5 B4 G4 B4 D5",
)  # fmt: skip
BAR = 3.75
NOTE = BAR / 5


def make_moh(path: Path, tmp: Path) -> float:
    pads: list[Path] = []
    notes: list[Path] = []
    for i, chord in enumerate(_CHORDS):
        tones = []
        for k, note in enumerate(chord):
            tone = tmp / f"tone{i}_{k}.wav"
            run("sox", "-D", "-n", "-r", RATE, "-c", 1, "-b", 16, tone,
                "synth", BAR, "sine", f"{_hz(note):.2f}")  # fmt: skip
            tones.append(tone)
        pad = tmp / f"pad{i}.wav"
        # The three tones at equal level (-m sums with 1/3 each); slow fades so chords breathe.
        run("sox", "-D", "-m", *tones, pad, "fade", "t", 0.6, BAR, 0.8, "vol", 0.6)
        pads.append(pad)
        for j, note in enumerate(_MELODY[i].split()):
            wav = tmp / f"note{i}_{j}.wav"
            run("sox", "-D", "-n", "-r", RATE, "-c", 1, "-b", 16, wav, "synth", NOTE,
                "pluck", f"{_hz(note):.2f}", "fade", "q", 0.01, NOTE, 0.35,
                "vol", 0.35)  # fmt: skip
            notes.append(wav)
    run("sox", *pads, tmp / "pads.wav")
    run("sox", *notes, tmp / "melody.wav")
    run("sox", "-D", "-m", tmp / "pads.wav", tmp / "melody.wav", tmp / "mix.wav")
    raw = to_raw(tmp / "mix.wav", "lowpass", 3000, "norm", -6, "trim", 0, 8 * BAR)
    return write_ulaw_wav(raw, path)


def make_tones(out: Path, tmp: Path) -> None:
    # The voicemail beep: 1 kHz for 0.4 s, 5 ms ramps so it does not click.
    beep = tmp / "beep.wav"
    run("sox", "-D", "-n", "-r", RATE, "-c", 1, "-b", 16, beep,
        "synth", 0.4, "sine", 1000, "fade", "h", 0.005, 0.4, 0.005, "vol", -6, "dB")  # fmt: skip
    write_ulaw_wav(to_raw(beep), out / COMMON / "beep.wav")
    # Whisper announcement to the agent: two short rising tones, quieter than speech.
    parts = []
    for i, freq in enumerate((880, 1320)):
        part = tmp / f"whisper{i}.wav"
        run("sox", "-D", "-n", "-r", RATE, "-c", 1, "-b", 16, part,
            "synth", 0.15, "sine", freq, "fade", "h", 0.01, 0.15, 0.01, "vol", -10, "dB",
            "pad", 0, 0.05)  # fmt: skip
        parts.append(part)
    run("sox", *parts, tmp / "whisper.wav")
    write_ulaw_wav(to_raw(tmp / "whisper.wav"), out / COMMON / "agent_whisper_tone.wav")
    make_ringback(out, tmp)
    seconds = make_moh(out / COMMON / "moh.wav", tmp)
    log.info("common: beep, agent_whisper_tone, ringback, moh (%.2f s)", seconds)


def make_ringback(out: Path, tmp: Path) -> None:
    """Ringing tone, one cadence (looped by the player): 425 Hz, 1 s on, 4 s off (ETSI
    TR 101 041 / ITU-T E.180), what a caller hears while an extension rings for voicemail."""
    tone = tmp / "ringback.wav"
    run("sox", "-D", "-n", "-r", RATE, "-c", 1, "-b", 16, tone,
        "synth", 1.0, "sine", 425, "fade", "h", 0.01, 1.0, 0.01, "vol", -13, "dB",
        "pad", 0, 4.0)  # fmt: skip
    write_ulaw_wav(to_raw(tone), out / COMMON / "ringback.wav")


def tool_version(*cmd: str) -> str:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[0]


def write_readme(out: Path) -> None:
    # "eSpeak NG text-to-speech: 1.51  Data at: ..." and "sox:      SoX v14.4.2"
    espeak = tool_version("espeak-ng", "--version").split(" Data at")[0].split(":")[-1].strip()
    sox = tool_version("sox", "--version").split()[-1]
    sizes = sum(p.stat().st_size for p in out.glob("*/*.wav"))
    (out / "README.md").write_text(
        "# Shipped prompts\n\n"
        "Generated by `scripts/make_prompts.py`; do not edit by hand, re-run the script.\n\n"
        f"- Speech: espeak-ng {espeak} (voices: "
        + ", ".join(f"`{lang}` = `{voice}`" for lang, (voice, _) in VOICES.items())
        + ").\n"
        f"- Tones and music on hold: sox {sox}, synthesised (sine chords and a plucked "
        "melody; no samples).\n"
        "- No third-party recordings are used: all audio is generated, so it is ours to "
        "ship under the project's licence.\n"
        f"- Format: 8 kHz mono 8-bit mu-law WAV (format tag 7). Total {sizes / 1e6:.2f} MB.\n\n"
        "Layout: `<lang>/<name>.wav` (speech), `common/<name>.wav` (beep, agent_whisper_tone, "
        "ringback, moh). Tenants override any prompt by uploading the same name; see "
        "`minicc/queue/prompts.py`.\n",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--lang", action="append", choices=sorted(LANGUAGES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            log.error("%s is not installed (Debian package %s)", tool, tool)
            return 1
    langs = args.lang or sorted(LANGUAGES)
    with tempfile.TemporaryDirectory(prefix="minicc-prompts-") as tmp_name:
        tmp = Path(tmp_name)
        for lang in langs:
            folder = args.out / lang
            if folder.exists():
                for old in folder.glob("*.wav"):
                    old.unlink()  # names that were dropped must not linger
            make_speech(lang, args.out, tmp)
        if not args.lang:
            make_tones(args.out, tmp)
    write_readme(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
