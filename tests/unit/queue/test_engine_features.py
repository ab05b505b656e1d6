"""The engine's recording policy, feature codes, voicemail and dispositions (fake switch)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from minicc.events import DispositionSet, VoicemailLeft
from minicc.queue.agents import AgentState
from minicc.queue.engine_features import FeatureError
from minicc.queue.models import OverflowTarget, RecordingPolicy
from minicc.switch.control import RecordOutcome
from tests.unit.queue.engine_fakes import Rig, make_setup, members, queue


def rig_for(policy: RecordingPolicy, **queue_args: Any) -> Rig:
    setup = make_setup(
        queues=[queue("sales", recording=policy, **queue_args)],
        members={"sales": members("1001")},
        numbers={"8001": "queue:sales"},
    )
    return Rig(replace(setup, dispositions=("resolved", "escalated")))


def answered(rig: Rig) -> str:
    key = rig.call("8001")
    rig.answer(key, "1001")
    return key


def digits(rig: Rig, key: str, text: str) -> None:
    for digit in text:
        rig.engine.agent_dtmf(key, digit, rig.now)
        rig.check()


# -- recording policy ---------------------------------------------------------------------------


def test_always_records_at_the_agents_answer() -> None:
    rig = rig_for(RecordingPolicy.ALWAYS)
    key = rig.call("8001")
    assert rig.switch.of("record_call") == []  # not while waiting
    rig.answer(key, "1001")
    assert [r.args for r in rig.switch.of("record_call", key)] == [(True,)]
    with pytest.raises(FeatureError, match="records every call"):
        rig.engine.record_call(key, False, rig.now)
    digits(rig, key, "*2")
    assert rig.switch.recording[key] is True  # paused
    digits(rig, key, "*3")
    assert rig.switch.recording[key] is False


def test_never_does_not_record_and_refuses_to_start() -> None:
    rig = rig_for(RecordingPolicy.NEVER)
    key = answered(rig)
    with pytest.raises(FeatureError, match="never records"):
        rig.engine.record_call(key, True, rig.now)
    digits(rig, key, "*1")
    assert rig.switch.of("record_call") == []


def test_on_demand_starts_from_the_agents_phone_only() -> None:
    rig = rig_for(RecordingPolicy.ON_DEMAND)
    key = answered(rig)
    assert rig.switch.of("record_call") == []
    rig.press(key, "*1")  # the caller's keys are not the agent's feature codes
    assert rig.switch.of("record_call") == []
    digits(rig, key, "*1")
    assert [r.args for r in rig.switch.of("record_call", key)] == [(True,)]
    with pytest.raises(FeatureError, match="its recording is not paused"):
        rig.engine.resume_recording(key, rig.now)
    rig.engine.pause_recording(key, rig.now)
    with pytest.raises(FeatureError, match="is not recording, or its recording is paused"):
        rig.engine.pause_recording(key, rig.now)
    rig.engine.resume_recording(key, rig.now)
    rig.engine.record_call(key, False, rig.now)
    with pytest.raises(FeatureError, match="could not start"):
        rig.engine.record_call(key, True, rig.now)  # one recording per call


def test_recording_requests_need_a_call_with_an_agent_on_it() -> None:
    rig = rig_for(RecordingPolicy.ON_DEMAND, wrap_up=30)
    waiting = rig.call("8001")
    rig.engine.set_agent_state("1001", AgentState.PAUSED, rig.now, reason="x")
    with pytest.raises(FeatureError, match="no call 'call-1' with an agent"):
        rig.engine.record_call(waiting, True, rig.now)
    rig.engine.set_agent_state("1001", AgentState.AVAILABLE, rig.now)
    rig.answer(waiting, "1001")
    rig.hang_up(waiting)
    assert rig.state("1001") == "wrap-up"
    with pytest.raises(FeatureError, match="is over"):
        rig.engine.pause_recording(waiting, rig.now)
    digits(rig, waiting, "*1")  # after the call: ignored, no error
    assert rig.switch.of("record_call") == []


def test_a_callback_records_by_its_queue_policy_on_the_originated_call() -> None:
    from minicc.switch.control import OriginateLeg, RingResult

    rig = rig_for(RecordingPolicy.ALWAYS)
    rig.engine.set_agent_state("1001", AgentState.PAUSED, rig.now, reason="x")
    rig.engine.request_callback("sales", "5553333", rig.now)
    rig.engine.set_agent_state("1001", AgentState.AVAILABLE, rig.now)
    origin = rig.originated("1001")
    rig.origin_result(origin, OriginateLeg.AGENT, RingResult.ANSWERED)
    rig.origin_result(origin, OriginateLeg.CALLEE, RingResult.ANSWERED)
    assert [r.args for r in rig.switch.of("record_call", origin)] == [(True,)]
    digits(rig, origin, "*2")  # the agent's digits arrive under the switch's key
    assert rig.switch.recording[origin] is True


# -- voicemail ----------------------------------------------------------------------------------


def overflowing(rig: Rig) -> str:
    rig.engine.set_agent_state("1001", AgentState.PAUSED, rig.now, reason="x")
    key = rig.call("8001")
    rig.advance(31)
    assert rig.switch.now_playing(key) == ["leave_message", "beep"]
    return key


def test_queue_overflow_takes_a_message_for_the_queue() -> None:
    rig = rig_for(RecordingPolicy.NEVER, max_wait=30, overflow=OverflowTarget.parse("voicemail"))
    key = overflowing(rig)
    assert rig.switch.of("record") == []  # not before the beep ends
    rig.finish(key)
    (record,) = rig.switch.of("record", key)
    assert record.args == ("sales", 120.0, "#")
    rig.advance(60)  # a long message: the caller is not hung up on while speaking
    assert not rig.switch.hung_up(key)
    rig.record_done(key, path="recordings/acme/voicemail/sales/x.wav", duration=61.5)
    (left,) = rig.of(VoicemailLeft)
    assert (left.box, left.caller, left.call_id, left.path, left.duration) == (
        "sales",
        "5550100",
        f"sip-{key}",
        "recordings/acme/voicemail/sales/x.wav",
        61.5,
    )
    assert rig.switch.now_playing(key) == ["goodbye"]
    rig.finish(key)
    assert rig.switch.hung_up(key)


def test_a_caller_who_hangs_up_while_speaking_still_leaves_the_message() -> None:
    rig = rig_for(RecordingPolicy.NEVER, max_wait=30, overflow=OverflowTarget.parse("voicemail"))
    key = overflowing(rig)
    rig.finish(key)
    rig.hang_up(key)
    rig.record_done(key, path="recordings/acme/voicemail/sales/y.wav", outcome=RecordOutcome.HANGUP)
    assert [e.path for e in rig.of(VoicemailLeft)] == ["recordings/acme/voicemail/sales/y.wav"]


def test_silence_leaves_no_message_and_a_hang_up_during_the_prompt_records_nothing() -> None:
    rig = rig_for(RecordingPolicy.NEVER, max_wait=30, overflow=OverflowTarget.parse("voicemail"))
    quiet = overflowing(rig)
    rig.finish(quiet)
    rig.record_done(quiet, path=None, outcome=RecordOutcome.SILENCE)
    assert rig.of(VoicemailLeft) == []
    rig.finish(quiet)  # goodbye
    assert rig.switch.hung_up(quiet)
    gone = overflowing(rig)
    rig.hang_up(gone)
    rig.engine.playback_done(gone, rig.switch.of("play", gone)[-1].id, _aborted(), rig.now)
    assert rig.switch.of("record", gone) == []


def _aborted() -> Any:
    from minicc.switch.control import PlaybackOutcome

    return PlaybackOutcome.ABORTED


# -- dispositions -------------------------------------------------------------------------------


def test_disposition_during_the_call_and_its_wrap_up() -> None:
    rig = rig_for(RecordingPolicy.NEVER, wrap_up=30)
    key = answered(rig)
    rig.engine.set_disposition("1001", key, "resolved", None, rig.now)
    rig.hang_up(key)
    rig.advance(10)
    rig.engine.set_disposition("1001", key, "escalated", "  billing dispute ", rig.now)
    sets = rig.of(DispositionSet)
    assert [(e.call_key, e.call_id, e.agent, e.queue, e.code, e.note) for e in sets] == [
        (key, f"sip-{key}", "1001", "sales", "resolved", None),
        (key, f"sip-{key}", "1001", "sales", "escalated", "billing dispute"),
    ]
    with pytest.raises(FeatureError, match="use one of resolved, escalated"):
        rig.engine.set_disposition("1001", key, "fixed", None, rig.now)
    with pytest.raises(FeatureError, match="1002 is neither on call"):
        rig.engine.set_disposition("1002", key, "resolved", None, rig.now)
    rig.advance(30)  # wrap-up over
    with pytest.raises(FeatureError, match="neither on call"):
        rig.engine.set_disposition("1001", key, "resolved", None, rig.now)
    assert len(rig.of(DispositionSet)) == 2


def test_a_tenant_can_have_the_disposition_end_the_wrap_up() -> None:
    rig = rig_for(RecordingPolicy.NEVER, wrap_up=60)
    rig.engine.update(replace(rig.engine.setup, end_wrap_up_on_disposition=True), rig.now)
    key = answered(rig)
    rig.engine.set_disposition("1001", key, "resolved", None, rig.now)
    assert rig.state("1001") == "on call"  # during the call it changes nothing
    rig.hang_up(key)
    assert rig.state("1001") == "wrap-up"
    rig.engine.set_disposition("1001", key, "resolved", None, rig.now)
    assert rig.state("1001") == "available"
    waiting = rig.call("8001")  # and is offered the next call at once
    assert rig.switch.rung(waiting) == ["1001"]
