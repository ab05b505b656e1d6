"""The plain records in minicc.tenants.models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from minicc.tenants.models import Binding, CallRecord, Disposition, HangupSide

T0 = datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "disposition"),
    [
        (200, Disposition.ANSWERED),
        (486, Disposition.BUSY),
        (600, Disposition.BUSY),
        (408, Disposition.NO_ANSWER),
        (480, Disposition.NO_ANSWER),
        (487, Disposition.CANCELLED),
        (404, Disposition.FAILED),
        (503, Disposition.FAILED),
    ],
)
def test_disposition_from_status(status: int, disposition: Disposition) -> None:
    assert Disposition.from_final_status(status) is disposition


def test_disposition_values() -> None:
    assert [d.value for d in Disposition] == [
        "answered",
        "busy",
        "no-answer",
        "cancelled",
        "failed",
    ]
    assert [h.value for h in HangupSide] == ["caller", "callee", "system"]


def _record(**kw: object) -> CallRecord:
    fields: dict[str, object] = {
        "tenant": "t",
        "call_id": "c",
        "from_user": "a",
        "to_user": "b",
        "start": T0,
        "end": T0 + timedelta(seconds=10),
        "disposition": Disposition.NO_ANSWER,
        "hangup_side": HangupSide.SYSTEM,
    }
    fields.update(kw)
    return CallRecord(**fields)  # type: ignore[arg-type]


def test_billable_seconds_round_up() -> None:
    rec = _record(
        disposition=Disposition.ANSWERED,
        answer=T0 + timedelta(seconds=2),
        end=T0 + timedelta(seconds=12, milliseconds=1),
    )
    assert rec.billable_seconds == 11
    exact = _record(disposition=Disposition.ANSWERED, answer=T0, end=T0 + timedelta(seconds=7))
    assert exact.billable_seconds == 7
    assert _record().billable_seconds == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start": datetime(2024, 1, 1)}, "timezone-aware"),
        ({"end": T0 - timedelta(seconds=1)}, "before start"),
        ({"disposition": Disposition.ANSWERED}, "needs an answer time"),
        ({"answer": T0}, "cannot have an answer time"),
        (
            {"disposition": Disposition.ANSWERED, "answer": T0 + timedelta(hours=1)},
            "outside",
        ),
        ({"sip_cause": 42}, "sip_cause"),
    ],
)
def test_call_record_validation(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _record(**changes)


def test_records_are_frozen() -> None:
    rec = _record()
    with pytest.raises(AttributeError):
        rec.call_id = "x"  # type: ignore[misc]


def test_binding_validation() -> None:
    with pytest.raises(ValueError, match="source_port"):
        Binding(
            extension="1",
            contact_uri="sip:x",
            expires_at=1.0,
            call_id="c",
            cseq=1,
            transport="udp",
            source_host="h",
            source_port=70000,
        )
