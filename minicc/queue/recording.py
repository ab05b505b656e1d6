"""Recording, voicemail and wrap-up decisions, as pure functions of state.

- :func:`recording_change`: whether a queue's :class:`~minicc.queue.models.RecordingPolicy`
  allows starting or stopping a call's recording, with the message an agent (or the API)
  is shown when it does not.
- :class:`FeatureCodes`: the agent's desk-phone feature codes, read from the digits the
  agent's phone sends: ``*1`` records an on-demand call, ``*2`` pauses the recording (a
  caller is about to read out a card number), ``*3`` resumes it. A ``*`` arms the reader
  for :data:`FEATURE_WINDOW` seconds; the next digit picks the code. The caller's digits
  never reach it (the switch reports the two sides apart).
- :func:`check_disposition`: a wrap-up code against the tenant's list.

The engine layer that applies these is :mod:`minicc.queue.engine_features`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from minicc.queue.models import RecordingPolicy

__all__ = [
    "FEATURE_CODES",
    "FEATURE_WINDOW",
    "MAX_NOTE_LENGTH",
    "VOICEMAIL_MAX_SECONDS",
    "VOICEMAIL_SILENCE",
    "Feature",
    "FeatureCodes",
    "FeatureError",
    "check_disposition",
    "check_note",
    "recording_change",
]

VOICEMAIL_MAX_SECONDS = 120.0
"""Longest message a caller can leave."""
VOICEMAIL_SILENCE = 10.0
"""A message ends after this many seconds without a voice."""
FEATURE_WINDOW = 3.0
"""Seconds after ``*`` in which the code digit must follow."""
MAX_NOTE_LENGTH = 500
"""Longest wrap-up note kept."""


class FeatureError(ValueError):
    """A recording or wrap-up request that cannot be done; the message says why and what
    to do instead (it is shown to the agent or returned by the API)."""


class Feature(Enum):
    """What a feature code asks for."""

    RECORD = "record"
    """Start recording (a queue whose policy is on-demand)."""
    PAUSE = "pause"
    """Pause the recording."""
    RESUME = "resume"
    """Resume the recording."""


FEATURE_CODES: dict[str, Feature] = {"1": Feature.RECORD, "2": Feature.PAUSE, "3": Feature.RESUME}
"""The digit after ``*`` -> the feature."""


@dataclass(slots=True)
class FeatureCodes:
    """Reads feature codes from one agent's digits (module doc). Pass ``now`` in seconds."""

    armed_until: float | None = None

    def feed(self, digit: str, now: float) -> Feature | None:
        """One digit; returns the feature it completes, if any."""
        if digit == "*":
            self.armed_until = now + FEATURE_WINDOW
            return None
        armed = self.armed_until is not None and now <= self.armed_until
        self.armed_until = None
        return FEATURE_CODES.get(digit) if armed else None


def recording_change(policy: RecordingPolicy, queue: str, *, on: bool) -> None:
    """Check that a call of ``queue`` may start (``on``) or stop recording.

    Raises:
        FeatureError: the policy forbids it; the message names the fix.
    """
    if on and policy is RecordingPolicy.NEVER:
        raise FeatureError(
            f"queue {queue!r} never records calls (its recording policy is 'never'): "
            f"'minicc queue update {queue} --recording on-demand' lets agents record"
        )
    if not on and policy is RecordingPolicy.ALWAYS:
        raise FeatureError(
            f"queue {queue!r} records every call (its recording policy is 'always'): "
            "pause the recording instead to leave a part out"
        )


def check_disposition(code: str, codes: Sequence[str]) -> str:
    """Return ``code`` if it is one of the tenant's disposition codes.

    Raises:
        FeatureError: an unknown code, listing the valid ones (or how to add some).
    """
    if code in codes:
        return code
    if not codes:
        raise FeatureError(
            f"unknown disposition {code!r}: the tenant has no disposition codes yet "
            "(add them with 'minicc disposition add CODE --label TEXT')"
        )
    raise FeatureError(f"unknown disposition {code!r}: use one of {', '.join(codes)}")


def check_note(note: str | None) -> str | None:
    """A wrap-up note, trimmed; None for an empty one.

    Raises:
        FeatureError: longer than :data:`MAX_NOTE_LENGTH`.
    """
    if note is None or not note.strip():
        return None
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise FeatureError(f"note: keep it to {MAX_NOTE_LENGTH} characters (got {len(note)})")
    return note
