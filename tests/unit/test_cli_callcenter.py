"""Call-center provisioning commands through CliRunner, and once through the real entry."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from minicc.banner import render_banner
from minicc.bootstrap import DemoInfo, DemoLogin
from minicc.cli import cli
from minicc.config import ServeConfig
from minicc.store.callcenter import CallCenterStore
from minicc.store.control import ControlStore

ROOT = Path(__file__).resolve().parents[2]
DEMO_FLOW = ROOT / "minicc" / "queue" / "flows" / "demo_main.toml"

GOOD_FLOW = """\
[flow]
name = "main"
start = "menu"

[nodes.menu]
type = "menu"
prompts = ["please_hold"]
options = { "1" = "sales" }
default = "sales"

[nodes.sales]
type = "queue"
queue = "sales"
"""

BAD_FLOW = """\
[flow]
name = "main"
start = "menu"

[nodes.menu]
type = "menu"
prompts = ["no_such_prompt"]
options = { "1" = "nowhere" }
default = "sales"

[nodes.sales]
type = "queue"
queue = "ghost"
"""


@pytest.fixture(autouse=True)
def _clean_env_and_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("MINICC_"):
            monkeypatch.delenv(name)
    logger = logging.getLogger("minicc")
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data), *args])


def ok(data: Path, *args: str) -> Result:
    result = run(data, *args)
    assert result.exit_code == 0, result.output
    return result


def as_json(data: Path, *args: str) -> Any:
    return json.loads(ok(data, *args, "--json").stdout)


def one_error(result: Result, code: int, *texts: str) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for text in texts:
        assert text in lines[0]
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    ok(folder, "tenant", "add", "acme", "--domain", "acme.example")
    for extension in ("1001", "1002", "1003"):
        ok(
            folder,
            "user",
            "add",
            "--tenant",
            "acme",
            "--extension",
            extension,
            "--password",
            "secret1",
        )
    return folder


T = ("--tenant", "acme")


def _store(data: Path) -> tuple[ControlStore, CallCenterStore]:
    control = ControlStore(data)
    tenant = control.get_tenant("acme")
    assert tenant is not None
    return control, CallCenterStore(control.open_tenant(tenant))


# -- queues ----------------------------------------------------------------------------------


def test_queue_add_and_list(data: Path) -> None:
    result = ok(
        data,
        "queue",
        "add",
        "sales",
        *T,
        "--strategy",
        "skills",
        "--ring-timeout",
        "20",
        "--wrap-up",
        "30",
        "--max-wait",
        "300",
        "--max-length",
        "10",
        "--overflow",
        "voicemail",
        "--announce-interval",
        "45",
        "--callback-threshold",
        "120",
        "--sl-threshold",
        "15",
        "--sl-target",
        "90",
        "--recording",
        "on-demand",
        "--require",
        "en=3",
    )
    assert "added queue sales (skills)" in result.stdout
    ok(data, "queue", "add", "support", *T, "--strategy", "ring-all", "--overflow", "queue:sales")
    (sales, support) = as_json(data, "queue", "list", *T)
    assert sales["name"] == "sales" and sales["strategy"] == "skills"
    assert sales["ring_timeout"] == 20 and sales["wrap_up"] == 30 and sales["max_wait"] == 300
    assert sales["max_length"] == 10 and sales["overflow"] == "voicemail"
    assert sales["announce_interval"] == 45 and sales["callback_threshold"] == 120
    assert sales["service_level_threshold"] == 15 and sales["service_level_target"] == 90
    assert sales["recording"] == "on-demand" and sales["required_skills"] == {"en": 3}
    assert support["overflow"] == "queue:sales" and support["members"] == []
    table = ok(data, "queue", "list", *T).stdout
    assert "sales" in table and "ring-all" in table and "voicemail" in table


def test_queue_update_changes_only_what_is_given(data: Path) -> None:
    ok(data, "queue", "add", "sales", *T, "--strategy", "ring-all", "--max-wait", "60")
    ok(data, "queue", "update", "sales", *T, "--wrap-up", "5", "--max-wait", "off")
    (sales,) = as_json(data, "queue", "list", *T)
    assert sales["strategy"] == "ring-all" and sales["wrap_up"] == 5 and sales["max_wait"] is None
    one_error(run(data, "queue", "update", "sales", *T), 2, "nothing to change")
    one_error(run(data, "queue", "update", "ghost", *T, "--wrap-up", "1"), 1, "no queue named")


def test_queue_hold_timeout(data: Path) -> None:
    ok(data, "queue", "add", "sales", *T, "--strategy", "ring-all", "--hold-timeout", "2")
    (sales,) = as_json(data, "queue", "list", *T)
    assert sales["hold_timeout"] == 2
    ok(data, "queue", "update", "sales", *T, "--hold-timeout", "off")
    (sales,) = as_json(data, "queue", "list", *T)
    assert sales["hold_timeout"] is None
    ok(data, "queue", "add", "support", *T, "--strategy", "ring-all")
    assert as_json(data, "queue", "list", *T)[1]["hold_timeout"] == 120
    assert "hold ring-back off" in ok(data, "queue", "list", *T).output


@pytest.mark.parametrize(
    ("args", "texts"),
    [
        (("--strategy", "longest-idle", "--ring-timeout", "-1"), ("--ring-timeout", "> 0")),
        (
            (
                "--strategy",
                "random",
            ),
            ("--strategy",),
        ),
        (
            (
                "--ring-timeout",
                "5",
            ),
            ("--strategy",),
        ),
        (("--strategy", "ring-all", "--max-wait", "soon"), ("--max-wait", "'off'")),
        (("--strategy", "ring-all", "--sl-target", "120"), ("--sl-target", "0-100")),
        (("--strategy", "ring-all", "--overflow", "mars"), ("--overflow", "voicemail")),
        (("--strategy", "ring-all", "--overflow", "queue:ghost"), ("--overflow", "ghost")),
        (("--strategy", "ring-all", "--require", "en"), ("--require", "name=level")),
        (("--strategy", "ring-all", "--hold-timeout", "-5"), ("--hold-timeout", ">= 0")),
    ],
)
def test_queue_add_errors_are_one_line_naming_the_flag(
    data: Path, args: tuple[str, ...], texts: tuple[str, ...]
) -> None:
    one_error(run(data, "queue", "add", "sales", *T, *args), 2, *texts)
    assert as_json(data, "queue", "list", *T) == []


def test_queue_errors_at_run_time(data: Path) -> None:
    one_error(run(data, "queue", "add", "bad name", *T, "--strategy", "ring-all"), 2, "NAME")
    one_error(run(data, "queue", "list", "--tenant", "nobody"), 1, "no tenant named 'nobody'")
    ok(data, "queue", "add", "sales", *T, "--strategy", "ring-all")
    one_error(run(data, "queue", "add", "sales", *T, "--strategy", "ring-all"), 1, "exists")
    ok(data, "number", "add", "8000", *T, "--to", "queue:sales")
    one_error(run(data, "queue", "remove", "sales", *T), 1, "used by number 8000")
    ok(data, "number", "remove", "8000", *T)
    ok(data, "queue", "remove", "sales", *T)
    assert as_json(data, "queue", "list", *T) == []


# -- members ---------------------------------------------------------------------------------


def test_members(data: Path) -> None:
    ok(data, "queue", "add", "sales", *T, "--strategy", "skills")
    added = ok(
        data, "queue", "member", "add", "sales", "1001", *T, "--skill", "en=5", "--skill", "de=2"
    )
    assert "added extension 1001 in queue sales (de=2, en=5, penalty 0)" in added.stdout
    updated = ok(data, "queue", "member", "add", "sales", "1001", *T, "--penalty", "1")
    assert updated.stdout.startswith("updated")
    ok(data, "queue", "member", "add", "sales", "1002", *T)
    (sales,) = as_json(data, "queue", "list", *T)
    assert sales["members"] == [
        {"extension": "1001", "skills": {}, "penalty": 1},
        {"extension": "1002", "skills": {}, "penalty": 0},
    ]
    ok(data, "queue", "member", "remove", "sales", "1002", *T)
    one_error(run(data, "queue", "member", "remove", "sales", "1002", *T), 1, "not a member")
    one_error(
        run(data, "queue", "member", "add", "sales", "1009", *T),
        2,
        "EXTENSION",
        "no extension 1009",
        "minicc user add --tenant acme --extension 1009",
    )
    one_error(run(data, "queue", "member", "add", "ghost", "1001", *T), 2, "QUEUE", "ghost")
    one_error(
        run(data, "queue", "member", "add", "sales", "1001", *T, "--skill", "en=11"),
        2,
        "--skill",
        "1-10",
    )
    one_error(
        run(data, "queue", "member", "add", "sales", "1001", *T, "--skill", "en"),
        2,
        "--skill",
        "name=level",
    )


# -- numbers ---------------------------------------------------------------------------------


def test_numbers(data: Path) -> None:
    ok(data, "queue", "add", "sales", *T, "--strategy", "ring-all")
    added = ok(data, "number", "add", "+49 30 1234", *T, "--to", "queue:sales")
    assert "number +49301234 now leads to queue:sales" in added.stdout
    ok(data, "number", "add", "8100", *T, "--to", "ext:1003")
    moved = ok(data, "number", "add", "8100", *T, "--to", "queue:sales")
    assert "(was ext:1003)" in moved.stdout
    assert as_json(data, "number", "list", *T) == [
        {"number": "8100", "target": "queue:sales", "kind": "queue", "name": "sales"},
        {"number": "+49301234", "target": "queue:sales", "kind": "queue", "name": "sales"},
    ]
    assert "queue sales" in ok(data, "number", "list", *T).stdout
    one_error(run(data, "number", "add", "8000", *T, "--to", "ivr:ghost"), 2, "--to", "ghost")
    one_error(run(data, "number", "add", "8000", *T, "--to", "sip:x"), 2, "--to", "queue:NAME")
    one_error(run(data, "number", "add", "80a0", *T, "--to", "queue:sales"), 2, "NUMBER")
    one_error(run(data, "number", "add", "8000", *T), 2, "--to")


# -- IVR -------------------------------------------------------------------------------------


def test_ivr_load_list_and_a_bad_file_keeps_the_old_flow(data: Path, tmp_path: Path) -> None:
    ok(data, "queue", "add", "sales", *T, "--strategy", "ring-all")
    good = tmp_path / "main.toml"
    good.write_text(GOOD_FLOW, encoding="utf-8")
    loaded = ok(data, "ivr", "load", str(good), *T)
    assert "loaded IVR flow main from main.toml (2 nodes)" in loaded.stdout
    ok(data, "number", "add", "8000", *T, "--to", "ivr:main")

    bad = tmp_path / "main_v2.toml"
    bad.write_text(BAD_FLOW, encoding="utf-8")
    result = run(data, "ivr", "load", str(bad), *T)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("error: main_v2.toml") for line in lines)
    assert any('node "menu" field "prompts[0]"' in ln and "no_such_prompt" in ln for ln in lines)
    assert any('node "menu" field "options.1"' in ln and "nowhere" in ln for ln in lines)
    assert any('node "sales" field "queue"' in ln and "ghost" in ln for ln in lines)
    assert "stays live" in lines[-1]
    assert "Traceback" not in result.output

    (listed,) = as_json(data, "ivr", "list", *T)
    assert listed["name"] == "main" and listed["origin"] == "main.toml"
    assert listed["numbers"] == ["8000"]
    control, store = _store(data)
    try:
        assert store.setup().flows["main"].text == GOOD_FLOW
    finally:
        control.close()

    report = json.loads(run(data, "ivr", "load", str(bad), *T, "--json").stdout)
    assert report["loaded"] is False and len(report["problems"]) == 3
    again = as_json(data, "ivr", "load", str(good), *T)
    assert again == {"loaded": True, "name": "main", "replaced": True, "warnings": []}
    one_error(run(data, "ivr", "remove", "main", *T), 1, "used by number 8000")


def test_ivr_load_of_the_demo_flow_needs_its_queues(data: Path) -> None:
    result = run(data, "ivr", "load", str(DEMO_FLOW), *T)
    assert result.exit_code == 2
    assert 'unknown queue "sales"' in result.stderr
    for queue in ("sales", "support"):
        ok(data, "queue", "add", queue, *T, "--strategy", "longest-idle")
    ok(data, "ivr", "load", str(DEMO_FLOW), *T)
    ok(data, "ivr", "load", str(DEMO_FLOW), *T, "--name", "demo_main")
    bad = run(data, "ivr", "load", str(DEMO_FLOW), *T, "--name", "other")
    assert bad.exit_code == 2 and "make them agree" in bad.stderr


def test_ivr_load_of_a_missing_file(data: Path, tmp_path: Path) -> None:
    result = run(data, "ivr", "load", str(tmp_path / "absent.toml"), *T)
    assert result.exit_code == 2
    assert "error: absent.toml: cannot read" in result.stderr


def test_time_zone(data: Path) -> None:
    assert ok(data, "ivr", "timezone", *T).stdout.strip() == "UTC"
    ok(data, "ivr", "timezone", "Europe/Berlin", *T)
    assert ok(data, "ivr", "timezone", *T).stdout.strip() == "Europe/Berlin"
    one_error(run(data, "ivr", "timezone", "Mars/Base", *T), 2, "ZONE", "Mars/Base")


# -- agents and VIPs -------------------------------------------------------------------------


def test_agent_states(data: Path) -> None:
    ok(data, "queue", "add", "sales", *T, "--strategy", "ring-all")
    ok(data, "queue", "member", "add", "sales", "1001", *T)
    paused = ok(data, "agent", "set-state", "1002", "paused", "--reason", "lunch", *T)
    assert "agent 1002 is now paused (lunch)" in paused.stdout
    assert as_json(data, "agent", "list", *T) == [
        {"extension": "1001", "state": "logged-out", "reason": None, "queues": ["sales"]},
        {"extension": "1002", "state": "paused", "reason": "lunch", "queues": []},
    ]
    ok(data, "agent", "set-state", "1001", "available", *T)
    assert as_json(data, "agent", "list", *T)[0]["state"] == "available"
    one_error(
        run(data, "agent", "set-state", "1001", "available", "--reason", "x", *T),
        2,
        "--reason",
        "only a paused agent",
    )
    one_error(run(data, "agent", "set-state", "1009", "paused", *T), 2, "EXTENSION", "1009")
    one_error(run(data, "agent", "set-state", "1001", "asleep", *T), 2, "STATE")


def test_vips(data: Path) -> None:
    ok(data, "vip", "add", "+49 30 999", *T, "--note", "big client")
    assert as_json(data, "vip", "list", *T) == [{"number": "+4930999", "note": "big client"}]
    assert "big client" in ok(data, "vip", "list", *T).stdout
    ok(data, "vip", "remove", "+4930999", *T)
    one_error(run(data, "vip", "remove", "+4930999", *T), 1, "not on the VIP list")
    one_error(run(data, "vip", "add", "anonymous", *T), 2, "NUMBER")


# -- statistics ------------------------------------------------------------------------------


def test_queue_stats(data: Path) -> None:
    ok(data, "queue", "add", "sales", *T, "--strategy", "ring-all")
    ok(data, "queue", "add", "support", *T, "--strategy", "ring-all")
    ok(data, "queue", "member", "add", "sales", "1001", *T)
    ok(data, "queue", "member", "add", "sales", "1002", *T)
    ok(data, "agent", "set-state", "1001", "available", *T)
    view = as_json(data, "queue", "stats", *T)
    assert view["taken_at"] is None
    assert view["queues"]["sales"] == {
        "strategy": "ring-all",
        "members": ["1001", "1002"],
        "available": ["1001"],
        "live": None,
    }
    assert "no live figures yet" in ok(data, "queue", "stats", *T).stdout

    live = {"waiting": 2, "longest_wait": 42.0, "answered": 7, "abandoned": 1, "asa": 12.5}
    control, store = _store(data)
    try:
        store.save_stats_snapshot({"queues": {"sales": live}}, taken_at=1000.0).result()
    finally:
        control.close()
    view = as_json(data, "queue", "stats", "sales", *T)
    assert list(view["queues"]) == ["sales"]
    assert view["queues"]["sales"]["live"] == live and view["taken_at"] == 1000.0
    text = ok(data, "queue", "stats", *T).stdout
    assert "42s" in text and "12.5s" in text and "1/2" in text
    assert "is 'minicc serve' running?" in text  # taken_at is long ago
    one_error(run(data, "queue", "stats", "ghost", *T), 1, "no queue named 'ghost'")


# -- banner and the real entry ---------------------------------------------------------------


def test_banner_names_the_demo_number(tmp_path: Path) -> None:
    demo = DemoInfo(
        tenant="demo",
        domain="demo.localhost",
        logins=(DemoLogin(extension="1001", name="Agent One", password="pw-1-abcdefgh"),),
    )
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(render_banner(ServeConfig(data_dir=tmp_path), [], demo))
    assert "call 8000 for the demo IVR" in console.export_text()


def test_console_entry(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINICC_")}
    env["MINICC_DATA_DIR"] = str(data)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")

    def minicc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "minicc", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert minicc("tenant", "add", "acme", "--domain", "acme.example").returncode == 0
    added = minicc("queue", "add", "sales", "--tenant", "acme", "--strategy", "fewest-calls")
    assert added.returncode == 0, added.stderr
    listed = minicc("queue", "list", "--tenant", "acme", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["strategy"] == "fewest-calls"
    bad = minicc(
        "queue", "add", "x", "--tenant", "acme", "--strategy", "ring-all", "--wrap-up", "-3"
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --wrap-up: must be >= 0 seconds, got -3.0 (see 'minicc queue add --help')"
    ]
