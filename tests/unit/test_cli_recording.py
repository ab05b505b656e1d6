"""``minicc voicemail`` and ``minicc disposition``, the stores behind them, and the wrap-up
columns of ``minicc cdr export`` (real SQLite files under tmp_path, CliRunner)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from minicc.cli import cli
from minicc.events import DispositionSet, VoicemailLeft
from minicc.store.callcenter import CallCenterStore
from minicc.store.control import ControlStore
from minicc.tenants.models import CallRecord, Disposition, HangupSide

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T = ("--tenant", "acme")


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data), *args])


def ok(data: Path, *args: str) -> Result:
    result = run(data, *args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    ok(folder, "tenant", "add", "acme", "--domain", "acme.example")
    return folder


def _with_store(data: Path, fn) -> None:  # type: ignore[no-untyped-def]
    with ControlStore(data) as control:
        tenant = control.get_tenant("acme")
        assert tenant is not None
        with control.open_tenant(tenant) as tenant_store:
            fn(tenant_store, CallCenterStore(tenant_store))


def _message(data: Path, box: str, caller: str, at: float) -> None:
    rel = f"recordings/acme/voicemail/{box}/{caller}.wav"
    (data / rel).parent.mkdir(parents=True, exist_ok=True)
    (data / rel).write_bytes(b"RIFF....WAVE")
    event = VoicemailLeft(
        tenant="acme",
        call_id=f"sip-{caller}",
        call_key=f"k-{caller}",
        box=box,
        caller=caller,
        caller_name="Ada" if caller == "5551" else None,
        path=rel,
        duration=7.25,
        left_at=at,
    )
    _with_store(data, lambda _t, store: store.save_voicemail(event).result(timeout=5))


def test_voicemail_list_and_export(data: Path, tmp_path: Path) -> None:
    assert ok(data, "voicemail", "list", *T).output.strip() == "no voicemail"
    _message(data, "sales", "5551", T0.timestamp())
    _message(data, "1002", "5552", T0.timestamp() + 60)
    rows = json.loads(ok(data, "voicemail", "list", *T, "--json").output)
    assert [(r["id"], r["box"], r["caller"], r["heard"]) for r in rows] == [
        (1, "sales", "5551", False),
        (2, "1002", "5552", False),
    ]
    assert rows[0]["left_at"] == "2026-03-02T09:00:00+00:00" and rows[0]["duration"] == 7.25
    assert rows[0]["file"] == str(data / "recordings/acme/voicemail/sales/5551.wav")
    only = json.loads(ok(data, "voicemail", "list", *T, "--box", "1002", "--json").output)
    assert [r["id"] for r in only] == [2]
    assert "Ada <5551>" in ok(data, "voicemail", "list", *T).output
    # Export: the path alone, or a copy; either way it is heard now.
    assert ok(data, "voicemail", "export", *T, "2").output.strip() == rows[1]["file"]
    copy = tmp_path / "out.wav"
    assert "-> " in ok(data, "voicemail", "export", *T, "1", "--to", str(copy)).output
    assert copy.read_bytes() == b"RIFF....WAVE"
    heard = json.loads(ok(data, "voicemail", "list", *T, "--json").output)
    assert [r["heard"] for r in heard] == [True, True]


def test_voicemail_errors_are_one_line(data: Path, tmp_path: Path) -> None:
    missing = run(data, "voicemail", "export", *T, "9")
    assert missing.exit_code == 1 and "no voicemail 9 in tenant acme" in missing.output
    assert "Traceback" not in missing.output
    _message(data, "sales", "5551", T0.timestamp())
    (data / "recordings/acme/voicemail/sales/5551.wav").unlink()
    gone = run(data, "voicemail", "export", *T, "1")
    assert gone.exit_code == 1 and "is missing" in gone.output
    bad = run(data, "voicemail", "export", *T, "abc")
    assert bad.exit_code == 2 and "'abc' is not a valid integer" in bad.output


def test_disposition_add_list_remove(data: Path) -> None:
    assert "no disposition codes yet" in ok(data, "disposition", "list", *T).output
    ok(data, "disposition", "add", *T, "resolved", "--label", "Resolved on first call")
    ok(data, "disposition", "add", *T, "callback-promised")
    listed = json.loads(ok(data, "disposition", "list", *T, "--json").output)
    assert listed == [
        {"code": "resolved", "label": "Resolved on first call"},
        {"code": "callback-promised", "label": "Callback promised"},
    ]
    bad = run(data, "disposition", "add", *T, "Not OK")
    assert bad.exit_code == 2 and "CODE: use 1-32 lowercase letters" in bad.output
    ok(data, "disposition", "remove", *T, "resolved")
    gone = run(data, "disposition", "remove", *T, "resolved")
    assert gone.exit_code == 1 and "known: callback-promised" in gone.output
    # The engine gets the codes with its setup, and whether they end the wrap-up.
    assert "leaves the wrap-up running" in ok(data, "disposition", "end-wrap-up", *T).output
    assert "ends the wrap-up" in ok(data, "disposition", "end-wrap-up", *T, "on").output
    seen: list[tuple[tuple[str, ...], bool]] = []
    _with_store(
        data,
        lambda _t, store: seen.append(
            (store.setup().dispositions, store.setup().end_wrap_up_on_disposition)
        ),
    )
    assert seen == [(("callback-promised",), True)]
    assert run(data, "disposition", "end-wrap-up", *T, "maybe").exit_code == 2


def test_cdr_export_shows_the_wrap_up(data: Path) -> None:
    def seed(tenant_store, store) -> None:  # type: ignore[no-untyped-def]
        for n in (1, 2):
            tenant_store.insert_cdr(
                CallRecord(
                    tenant="acme",
                    call_id=f"sip-{n}",
                    from_user="5551",
                    to_user="8001",
                    start=T0 + timedelta(minutes=n),
                    answer=T0 + timedelta(minutes=n, seconds=3),
                    end=T0 + timedelta(minutes=n, seconds=63),
                    disposition=Disposition.ANSWERED,
                    hangup_side=HangupSide.CALLER,
                )
            ).result(timeout=5)
        for code, note in (("resolved", None), ("escalated", "billing, 2nd line")):
            event = DispositionSet(
                tenant="acme",
                call_id="sip-1",
                call_key="k-1",
                agent="1001",
                queue="sales",
                code=code,
                note=note,
                set_at=T0.timestamp() + 100,
            )
            store.save_call_disposition(event).result(timeout=5)  # the later one wins

    _with_store(data, seed)
    rows = list(csv.DictReader(io.StringIO(ok(data, "cdr", "export", *T).stdout)))
    assert [(r["call_id"], r["wrap_up_code"], r["wrap_up_note"]) for r in rows] == [
        ("sip-1", "escalated", "billing, 2nd line"),
        ("sip-2", "", ""),
    ]
    as_json = json.loads(ok(data, "cdr", "export", *T, "--format", "json").stdout)
    assert as_json[1]["wrap_up_code"] is None
