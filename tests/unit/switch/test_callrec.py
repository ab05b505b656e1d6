"""The switch's recording requests with real UDP phones: messages (voicemail) ended by a stop
digit, silence or the hang-up; a call recording started, paused and stopped mid-call; and
the agent's digits reported apart from the caller's."""

from __future__ import annotations

import json
import math
import secrets
from pathlib import Path

import numpy as np
import pytest

from minicc.events import CallEnded
from minicc.queue.prompts import PromptCatalogue
from minicc.switch.control import RecordOutcome, RecordResult, RingResult
from minicc.switch.media import g711
from minicc.switch.media.dtmf import build_dtmf_rtp
from minicc.switch.media.wav import parse_wav
from tests.unit.switch.flows import AppCaller, answer_agent, app_call
from tests.unit.switch.harness import FakeEngine, Harness, MakeSwitch
from tests.unit.switch.ua import Talker

MOH = PromptCatalogue().find("en", "moh").path
RATE = 8000


def _tone(freq: float, packets: int) -> list[bytes]:
    samples = [round(9000 * math.sin(2 * math.pi * freq * n / RATE)) for n in range(160 * packets)]
    return [g711.ulaw_encode(samples[i * 160 : (i + 1) * 160]) for i in range(packets)]


def _digit(rtp: object, dest: tuple[str, int], digit: str, *, ts: int) -> None:
    packets = build_dtmf_rtp(
        digit, payload_type=101, ssrc=secrets.randbits(32), sequence_number=ts % 60000, timestamp=ts
    )
    for packet in packets:
        rtp.send_raw(dest, packet)  # type: ignore[attr-defined]


@pytest.fixture
async def rec(make_switch: MakeSwitch, engine: FakeEngine, tmp_path: Path) -> Harness:
    return await make_switch(observer=engine, recordings_dir=tmp_path / "recordings")


async def _caller(sw: Harness, engine: FakeEngine) -> AppCaller:
    return await app_call(sw, engine, await sw.phone("acme", "1001"))


async def test_a_message_ends_at_the_stop_digit_which_the_engine_is_not_told(
    rec: Harness, engine: FakeEngine, tmp_path: Path
) -> None:
    call = await _caller(rec, engine)
    rid = rec.switch.record(call.key, "sales", max_seconds=30, silence_timeout=5)
    talker = Talker(call.rtp)
    for payload in _tone(600, 50):  # one second of 600 Hz
        talker.send(call.sends_to, payload=payload)
    _digit(call.rtp, call.sends_to, "5", ts=1000)
    _digit(call.rtp, call.sends_to, "#", ts=9000)
    done = await engine.wait("record_done", call.key)
    record, result = done.args
    assert record == rid and isinstance(result, RecordResult)
    assert (result.outcome, result.digit) == (RecordOutcome.STOP_DIGIT, "#")
    assert [t.args for t in engine.of("dtmf", call.key)] == [("5",)]  # not the #
    assert result.path is not None and result.path.startswith("recordings/acme/voicemail/sales/")
    assert result.duration == pytest.approx(1.0, abs=0.1)
    fmt, audio = parse_wav((tmp_path / result.path).read_bytes())
    assert (fmt.format_tag, fmt.channels, fmt.sample_rate) == (7, 1, RATE)
    pcm = np.array(g711.ulaw_decode(audio), dtype=float)
    peak = np.fft.rfftfreq(len(pcm), 1 / RATE)[int(np.argmax(np.abs(np.fft.rfft(pcm))))]
    assert peak == pytest.approx(600, abs=5)


async def test_silence_keeps_nothing_and_a_hang_up_keeps_what_was_said(
    rec: Harness, engine: FakeEngine, tmp_path: Path
) -> None:
    call = await _caller(rec, engine)
    rec.switch.record(call.key, "1002", max_seconds=30, silence_timeout=0.5)
    quiet = Talker(call.rtp)
    quiet.send(call.sends_to, 10, payload=bytes([g711.ULAW_SILENCE]) * 160)
    _, result = (await engine.wait("record_done", call.key, timeout=5)).args
    assert (result.outcome, result.path) == (RecordOutcome.SILENCE, None)

    rid = rec.switch.record(call.key, "1002", max_seconds=30, silence_timeout=5)
    talker = Talker(call.rtp)
    for payload in _tone(900, 25):
        talker.send(call.sends_to, payload=payload)
    # A key after the tone, from the same socket: once the engine hears it, the tone is in.
    _digit(call.rtp, call.sends_to, "5", ts=20000)
    await engine.wait("dtmf", call.key)
    assert (await call.dialog.bye()).status == 200
    await engine.wait("call_ended", call.key)
    record, result = (await engine.wait("record_done", call.key)).args
    assert (record, result.outcome) == (rid, RecordOutcome.HANGUP)
    assert result.path is not None and (tmp_path / result.path).is_file()


async def test_record_on_a_call_that_is_gone_fails_once(rec: Harness, engine: FakeEngine) -> None:
    rid = rec.switch.record("nope", "sales", max_seconds=5)
    _, result = (await engine.wait("record_done", "nope")).args
    assert result.outcome is RecordOutcome.FAILED and result.path is None
    assert [t.args[0] for t in engine.of("record_done")] == [rid]


async def test_recording_on_demand_pause_and_the_agents_digits(
    rec: Harness, engine: FakeEngine, tmp_path: Path
) -> None:
    call = await _caller(rec, engine)
    rec.switch.play(call.key, [MOH], loop=True)
    bob = await rec.phone("acme", "1002")
    rec.switch.ring(call.key, "1002", timeout=5)
    agent = await answer_agent(rec, bob)
    assert (await engine.wait("ring_result", call.key)).args[1] is RingResult.ANSWERED
    assert rec.switch.pause_recording(call.key) is False  # nothing records yet
    assert rec.switch.record_call(call.key, True) is True
    assert rec.switch.record_call(call.key, True) is True  # already: fine
    assert rec.switch.pause_recording(call.key) is True
    assert rec.switch.pause_recording(call.key) is False
    assert rec.switch.resume_recording(call.key) is True

    # The agent's key goes to agent_dtmf, the caller's to dtmf: never mixed up.
    _digit(agent.rtp, agent.sends_to, "2", ts=4000)
    assert (await engine.wait("agent_dtmf", call.key)).args == ("2",)
    _digit(call.rtp, call.sends_to, "3", ts=8000)
    assert (await engine.wait("dtmf", call.key)).args == ("3",)
    assert engine.of("agent_dtmf", call.key)[-1].args == ("2",)
    assert [t.args for t in engine.of("dtmf", call.key)] == [("3",)]

    assert rec.switch.record_call(call.key, False) is True
    assert rec.switch.record_call(call.key, True) is False  # one recording per call
    live = rec.b2bua.call(call.key)
    assert live is not None and live.media is not None
    written = await live.media.recording_written()  # the file and its metadata are complete
    assert written is not None and written.error is None and len(written.pauses) == 1
    assert (await call.dialog.bye()).status == 200
    record = (await rec.events.wait(CallEnded)).record
    assert record.recording_path is not None
    wav = tmp_path / record.recording_path
    meta = wav.with_suffix(".json")
    data = json.loads(meta.read_text())
    assert len(data["pauses"]) == 1 and data["channels"] == ["caller", "callee"]
