"""The pure recording and wrap-up decisions: feature codes, policies, disposition codes."""

from __future__ import annotations

import pytest

from minicc.queue.models import RecordingPolicy
from minicc.queue.recording import (
    FEATURE_WINDOW,
    MAX_NOTE_LENGTH,
    Feature,
    FeatureCodes,
    FeatureError,
    check_disposition,
    check_note,
    recording_change,
)


def test_feature_codes_need_a_star_just_before() -> None:
    codes = FeatureCodes()
    assert codes.feed("1", 0.0) is None  # a digit alone is no code
    assert codes.feed("*", 1.0) is None
    assert codes.feed("2", 1.5) is Feature.PAUSE
    assert codes.feed("3", 1.6) is None  # the star is used up
    assert [codes.feed(d, 2.0) for d in "*3"] == [None, Feature.RESUME]
    assert [codes.feed(d, 3.0) for d in "*1"] == [None, Feature.RECORD]
    codes.feed("*", 5.0)
    assert codes.feed("2", 5.0 + FEATURE_WINDOW + 0.1) is None  # too late
    assert [codes.feed(d, 9.0) for d in "*9"] == [None, None]  # no such code
    assert [codes.feed(d, 9.0) for d in "**2"] == [None, None, Feature.PAUSE]


@pytest.mark.parametrize(
    ("policy", "on", "allowed"),
    [
        (RecordingPolicy.ON_DEMAND, True, True),
        (RecordingPolicy.ON_DEMAND, False, True),
        (RecordingPolicy.ALWAYS, True, True),
        (RecordingPolicy.ALWAYS, False, False),
        (RecordingPolicy.NEVER, True, False),
        (RecordingPolicy.NEVER, False, True),
    ],
)
def test_recording_change_follows_the_policy(
    policy: RecordingPolicy, on: bool, allowed: bool
) -> None:
    if allowed:
        recording_change(policy, "sales", on=on)
    else:
        with pytest.raises(FeatureError, match="queue 'sales'"):
            recording_change(policy, "sales", on=on)


def test_never_names_the_fix() -> None:
    with pytest.raises(FeatureError, match="--recording on-demand"):
        recording_change(RecordingPolicy.NEVER, "sales", on=True)


def test_disposition_codes_and_notes() -> None:
    assert check_disposition("resolved", ("resolved", "escalated")) == "resolved"
    with pytest.raises(FeatureError, match="use one of resolved, escalated"):
        check_disposition("fixed", ("resolved", "escalated"))
    with pytest.raises(FeatureError, match="minicc disposition add"):
        check_disposition("fixed", ())
    assert check_note("  called about the bill ") == "called about the bill"
    assert check_note("   ") is None and check_note(None) is None
    with pytest.raises(FeatureError, match=f"keep it to {MAX_NOTE_LENGTH}"):
        check_note("x" * (MAX_NOTE_LENGTH + 1))
