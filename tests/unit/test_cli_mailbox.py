"""Voicemail on direct calls: ``minicc user set --voicemail``, ``minicc voicemail default``
and ``rules``, and what the engine's setup reads (real SQLite files under tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from minicc.cli import cli
from minicc.queue.mailbox import MailboxRule
from minicc.store.callcenter import CallCenterStore
from minicc.store.control import ControlStore

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
    for ext in ("1001", "1002"):
        ok(folder, "user", "add", *T, "--extension", ext, "--password", "secret-pw")
    return folder


def setup_plan(data: Path):  # type: ignore[no-untyped-def]
    with ControlStore(data) as control:
        tenant = control.get_tenant("acme")
        assert tenant is not None
        with control.open_tenant(tenant) as store:
            return CallCenterStore(store).setup().voicemail


def test_nothing_set_means_no_voicemail_and_no_table(data: Path) -> None:
    plan = setup_plan(data)
    assert plan.ring_time("1001") is None and not plan.extensions


def test_user_set_voicemail_reaches_the_engine_setup(data: Path) -> None:
    out = ok(data, "user", "set", *T, "--extension", "1002", "--voicemail", "on").output
    assert "voicemail on after 20 s (default) of ringing" in out
    ok(data, "user", "set", *T, "--extension", "1002", "--voicemail-ring", "12")
    plan = setup_plan(data)
    assert plan.rule("1002") == MailboxRule(enabled=True, ring_seconds=12)
    assert plan.ring_time("1002") == 12 and plan.ring_time("1001") is None
    ok(data, "user", "set", *T, "--extension", "1002", "--voicemail", "off")
    assert setup_plan(data).ring_time("1002") is None


def test_tenant_default_and_rules(data: Path) -> None:
    out = ok(data, "voicemail", "default", *T, "on", "--ring", "25").output
    assert "voicemail on after 25 s of ringing" in out
    ok(data, "user", "set", *T, "--extension", "1001", "--voicemail", "off")
    plan = setup_plan(data)
    assert plan.ring_time("1002") == 25 and plan.ring_time("1001") is None
    assert plan.ring_time("+4930555") is None  # no extension: never voicemail
    rows = json.loads(ok(data, "voicemail", "rules", *T, "--json").output)
    assert rows == [
        {"extension": None, "enabled": True, "ring_seconds": 25.0},
        {"extension": "1001", "enabled": False, "ring_seconds": None},
    ]
    assert "1001" in ok(data, "voicemail", "rules", *T).output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--extension", "1002", "--voicemail-ring", "500"), "--voicemail-ring: ring time 500"),
        (("--extension", "1002", "--voicemail", "maybe"), "'maybe' is not one of"),
        (("--extension", "1002"), "nothing to change"),
    ],
)
def test_bad_input_names_the_fix(data: Path, args: tuple[str, ...], message: str) -> None:
    result = run(data, "user", "set", *T, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_unknown_extension(data: Path) -> None:
    result = run(data, "user", "set", *T, "--extension", "1009", "--voicemail", "on")
    assert result.exit_code == 1, result.output
    assert "extension 1009 does not exist in tenant acme" in result.output
    assert "Traceback" not in result.output


def test_bad_default_ring_time(data: Path) -> None:
    result = run(data, "voicemail", "default", *T, "--ring", "1")
    assert result.exit_code == 2, result.output
    assert "--ring: ring time 1 s: give 5 to 120 seconds" in result.output
