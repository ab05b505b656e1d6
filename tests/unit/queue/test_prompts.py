"""The prompt catalogue: shipped prompts, tenant overrides, and composed sentences."""

from __future__ import annotations

import os
import tomllib
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from minicc.queue.prompts import (
    COMMON,
    SHIPPED_PROMPTS,
    ClipCache,
    PromptCatalogue,
    PromptError,
    PromptFormatError,
    PromptNotFound,
    say,
    say_caller_number,
    say_date,
    say_digits,
    say_estimated_wait,
    say_minutes,
    say_number,
    say_ordinal,
    sentence_names,
)
from minicc.switch.media import g711
from minicc.switch.media.wav import (
    WAVE_FORMAT_MULAW,
    WAVE_FORMAT_PCM,
    WavFormat,
    parse_wav,
    wav_header,
)

# Every prompt the issue and the demo IVR flow name (docs and minicc/queue/flows).
ISSUE_PROMPTS = (
    *(str(n) for n in range(20)),
    *(str(n) for n in range(20, 100, 10)),
    "hundred",
    "welcome",
    "you_are_caller_number",
    "your_estimated_wait_is",
    "minutes",
    "minute",
    "less_than_one_minute",
    "please_hold",
    "press_1_to_be_called_back",
    "callback_confirmed",
    "press_1_for_sales",
    "press_2_for_support",
    "invalid_option",
    "no_input",
    "goodbye",
    "closed",
    "leave_message",
    "beep",
    "transferring",
    "all_agents_busy",
    "enter_order_number",
    "order_status_is",
    "shipped",
    "in_transit",
    "delivered",
    "expected_delivery",
    "not_found",
    "agent_whisper_tone",
    "ringback",
    "moh",
)
FLOWS = Path(__file__).resolve().parents[3] / "minicc" / "queue" / "flows"


def pcm_wav(samples: np.ndarray, rate: int = 8000) -> bytes:
    fmt = WavFormat(format_tag=WAVE_FORMAT_PCM, channels=1, sample_rate=rate, bits_per_sample=16)
    body = samples.astype("<i2").tobytes()
    return wav_header(fmt, len(body)) + body


def test_every_referenced_prompt_is_shipped() -> None:
    catalogue = PromptCatalogue()
    assert catalogue.languages() >= {"en", "de"}
    for language in ("en", "de"):
        assert catalogue.missing(language, ISSUE_PROMPTS) == [], language
        assert catalogue.missing(language, sorted(sentence_names(language))) == [], language
    # Prompts named by the shipped IVR flows (a string list item of prompts= or *_prompt=).
    for flow in FLOWS.glob("*.toml"):
        data = tomllib.loads(flow.read_text(encoding="utf-8"))
        language = data["flow"].get("language", "en")
        for node in data["nodes"].values():
            names = [p for p in node.get("prompts", []) if isinstance(p, str)]
            names += [node[k] for k in ("invalid_prompt", "timeout_prompt") if k in node]
            assert catalogue.missing(language, names) == [], (flow.name, node)


def test_shipped_files_are_small_8khz_mulaw() -> None:
    files = sorted(SHIPPED_PROMPTS.glob("*/*.wav"))
    assert len(files) > 150
    total = 0
    for path in files:
        data = path.read_bytes()
        total += len(data)
        fmt, audio = parse_wav(data)
        assert (fmt.format_tag, fmt.channels, fmt.sample_rate, fmt.bits_per_sample) == (
            WAVE_FORMAT_MULAW,
            1,
            8000,
            8,
        ), path.name
        assert len(audio) >= 800, path.name  # at least 0.1 s
        pcm = np.array(g711.ulaw_decode(audio), dtype=float)
        assert np.abs(pcm).max() > 5000, f"{path.name} is silent"
    assert total < 3_000_000
    assert (SHIPPED_PROMPTS / COMMON / "moh.wav").is_file()


@pytest.mark.parametrize(
    ("n", "english", "german"),
    [
        (0, ["0"], ["0"]),
        (7, ["7"], ["7"]),
        (13, ["13"], ["13"]),
        (20, ["20"], ["20"]),
        (21, ["20", "1"], ["1_compound", "and", "20"]),
        (42, ["40", "2"], ["2", "and", "40"]),
        (99, ["90", "9"], ["9", "and", "90"]),
        (100, ["1", "hundred"], ["1_compound", "hundred"]),
        (101, ["1", "hundred", "1"], ["1_compound", "hundred", "1"]),
        (342, ["3", "hundred", "40", "2"], ["3", "hundred", "2", "and", "40"]),
        (1205, ["1", "2", "0", "5"], ["1", "2", "0", "5"]),
    ],
)
def test_say_number(n: int, english: list[str], german: list[str]) -> None:
    assert say_number(n, "en") == english
    assert say_number(n, "en-GB") == english
    assert say_number(n, "de") == german


def test_sentences() -> None:
    assert say_caller_number(5, "en") == ["you_are_caller_number", "5"]
    assert say_estimated_wait(0, "en") == ["your_estimated_wait_is", "less_than_one_minute"]
    assert say_estimated_wait(59.9, "en") == ["your_estimated_wait_is", "less_than_one_minute"]
    assert say_estimated_wait(60, "en") == ["your_estimated_wait_is", "1", "minute"]
    assert say_estimated_wait(89, "en") == ["your_estimated_wait_is", "1", "minute"]
    assert say_estimated_wait(90, "en") == ["your_estimated_wait_is", "2", "minutes"]
    assert say_estimated_wait(25 * 60, "en") == ["your_estimated_wait_is", "20", "5", "minutes"]
    assert say_estimated_wait(70, "de") == ["your_estimated_wait_is", "1_feminine", "minute"]
    assert say_minutes(3, "de") == ["3", "minutes"]
    assert say_digits("40#", "en") == ["4", "0", "pound"]
    assert say_digits("*7", "de") == ["star", "7"]
    # 2026-03-24 is a Tuesday.
    assert say_date(date(2026, 3, 24), "en") == ["weekday_1", "month_3", "20", "ordinal_4"]
    assert say_date(date(2026, 3, 21), "de") == [
        "weekday_5",
        "1_compound",
        "and",
        "ordinal_20",
        "month_3",
    ]
    assert say_date(date(2026, 12, 30), "en", weekday=False) == ["month_12", "ordinal_30"]
    assert say_ordinal(31, "en") == ["30", "ordinal_1"]
    assert say("number", "42", "en") == ["40", "2"]
    assert say("digits", "42", "en") == ["4", "2"]
    assert say("minutes", "1", "en") == ["1", "minute"]


def test_sentence_errors() -> None:
    with pytest.raises(ValueError, match='no sentence rules for language "fr"'):
        say_number(3, "fr")
    with pytest.raises(ValueError, match="negative"):
        say_number(-1, "en")
    with pytest.raises(ValueError, match="not 'A'"):
        say_digits("12A", "en")
    with pytest.raises(ValueError, match="1-31"):
        say_ordinal(0, "en")
    with pytest.raises(ValueError, match="whole number"):
        say("number", "4.5", "en")
    with pytest.raises(ValueError, match="unknown say kind"):
        say("weekday", "2026-01-01", "en")


def test_tenant_upload_overrides_shipped(tmp_path: Path) -> None:
    catalogue = PromptCatalogue(tmp_path / "acme")
    shipped = catalogue.find("en", "welcome")
    assert shipped.source == "shipped" and shipped.path.parent.name == "en"
    assert catalogue.clip("en", "welcome").ulaw == parse_wav(shipped.path.read_bytes())[1]

    tone = np.round(9000 * np.sin(2 * np.pi * 600 * np.arange(4000) / 8000))
    path = catalogue.upload("en", "welcome", pcm_wav(tone))
    assert path == tmp_path / "acme" / "en" / "welcome.wav"
    found = catalogue.find("en", "welcome")
    assert (found.source, found.path) == ("tenant", path)
    clip = catalogue.clip("en", "welcome")
    assert clip.ulaw == g711.ulaw_encode(int(x) for x in tone)
    assert catalogue.clips("en", ["welcome", "5"])[1].name == "5"
    # Other languages and other tenants are untouched.
    assert catalogue.find("de", "welcome").source == "shipped"
    assert PromptCatalogue(tmp_path / "other").find("en", "welcome").source == "shipped"
    # A region asks for its base language's prompts.
    assert catalogue.find("en-GB", "welcome").path == path

    # A file dropped into the folder by hand counts too; the cache notices a new version.
    cache = ClipCache()
    manual = PromptCatalogue(tmp_path / "acme", cache=cache)
    target = tmp_path / "acme" / "en" / "goodbye.wav"
    target.write_bytes(pcm_wav(tone[:800]))
    assert len(manual.clip("en", "goodbye").ulaw) == 800
    target.write_bytes(pcm_wav(tone[:1600]))
    os.utime(target, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    assert len(manual.clip("en", "goodbye").ulaw) == 1600
    assert len(cache) == 1  # the new version replaced the old one

    # Language-neutral sounds: the tenant's own music on hold wins in every language.
    assert catalogue.find("de", "moh").language == COMMON
    catalogue.upload(COMMON, "moh", pcm_wav(tone))
    assert catalogue.find("de", "moh").source == "tenant"

    assert catalogue.remove_upload("en", "welcome")
    assert not catalogue.remove_upload("en", "welcome")
    assert catalogue.find("en", "welcome").source == "shipped"


def test_missing_prompt_names_language_and_name(tmp_path: Path) -> None:
    catalogue = PromptCatalogue(tmp_path)
    with pytest.raises(PromptNotFound) as info:
        catalogue.find("en", "welcom")
    assert str(info.value) == (
        'prompt "welcom" not found for language "en" (neither uploaded by the tenant nor '
        "shipped); did you mean welcome?"
    )
    assert (info.value.language, info.value.name) == ("en", "welcom")
    with pytest.raises(PromptNotFound, match='prompt "welcome" not found for language "fr"'):
        catalogue.clip("fr", "welcome")
    assert not catalogue.exists("fr", "welcome") and catalogue.exists("fr", "beep")
    assert catalogue.missing("en", ["welcome", "nope", "nope"]) == ["nope"]
    # Names become file names: nothing may climb out of the folder.
    for bad in ("../../etc/passwd", "a/b", "", "x" * 65):
        with pytest.raises(ValueError, match="invalid prompt name"):
            catalogue.find("en", bad)
        assert not catalogue.exists("en", bad)
    with pytest.raises(ValueError, match="invalid language"):
        catalogue.find("../en", "welcome")


def test_bad_uploads_are_refused(tmp_path: Path) -> None:
    catalogue = PromptCatalogue(tmp_path)
    tone = np.zeros(4410)
    with pytest.raises(PromptFormatError, match=r"sample rate is 44100 Hz, not 8000; .*sox"):
        catalogue.upload("en", "welcome", pcm_wav(tone, rate=44100))
    with pytest.raises(PromptFormatError, match="not a RIFF/WAVE file"):
        catalogue.upload("en", "welcome", b"ID3 an mp3")
    assert not (tmp_path / "en" / "welcome.wav").exists()
    assert list(tmp_path.glob("en/.*")) == []  # no temporary file left behind
    with pytest.raises(PromptError, match="no uploads folder"):
        PromptCatalogue().upload("en", "welcome", pcm_wav(tone))
    # A broken file put there by hand is reported when played, naming the prompt.
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "closed.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(PromptFormatError, match=r'prompt "closed" for language "en" .*tenant'):
        catalogue.clip("en", "closed")


def test_say_date_item_from_the_ivr() -> None:
    from datetime import date

    from minicc.queue.prompts import say, say_date

    assert say("date", "2026-12-24", "en") == say_date(date(2026, 12, 24), "en")
    with pytest.raises(ValueError):
        say("date", "24.12.2026", "en")
