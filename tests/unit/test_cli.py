"""The minicc command line through click's CliRunner, plus the real console entry."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from minicc.banner import render_banner
from minicc.bootstrap import DemoInfo, DemoLogin
from minicc.cli import MiniccGroup, cli
from minicc.config import ServeConfig
from minicc.store.control import ControlStore
from minicc.tenants.models import CallRecord, Disposition, HangupSide, Tenant

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC)


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


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(data: Path | None, *args: str, env: dict[str, str] | None = None) -> Result:
    full = ["--data-dir", str(data), *args] if data is not None else list(args)
    return CliRunner().invoke(cli, full, env=env)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_error_line(result: Result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert text in lines[0]
    assert "Traceback" not in result.output


# -- group behaviour -------------------------------------------------------------------------


def test_no_arguments_shows_help() -> None:
    result = run(None)
    assert result.exit_code == 0
    assert "serve" in result.stdout and "tenant" in result.stdout


def test_version() -> None:
    result = run(None, "--version")
    assert result.exit_code == 0 and "minicc, version" in result.stdout


def test_unknown_command() -> None:
    result = run(None, "tenant", "ad")
    _one_error_line(result, 2, "No such command 'ad'")
    assert "minicc tenant --help" in result.stderr


def test_missing_option() -> None:
    _one_error_line(run(None, "tenant", "add", "acme"), 2, "Missing option '--domain'")


def test_unexpected_errors_are_one_line() -> None:
    @click.group(cls=MiniccGroup)
    def group() -> None:
        pass

    @group.command()
    def boom() -> None:
        raise RuntimeError("kaput")

    result = CliRunner().invoke(group, ["boom"])
    _one_error_line(result, 1, "unexpected RuntimeError: kaput")


# -- tenants ---------------------------------------------------------------------------------


def test_tenant_add_and_list(data: Path) -> None:
    result = run(data, "tenant", "add", "acme", "--domain", "Acme.Example")
    assert result.exit_code == 0, result.output
    assert "added tenant acme (domain acme.example)" in result.stdout
    assert (data / "tenants" / "acme.db").is_file()
    table = run(data, "tenant", "list")
    assert table.exit_code == 0
    assert "acme" in table.stdout and "acme.example" in table.stdout
    rows = json.loads(run(data, "tenant", "list", "--json").stdout)
    assert [(r["name"], r["domain"], r["users"], r["default"]) for r in rows] == [
        ("acme", "acme.example", 0, False)
    ]


def test_tenant_add_json(data: Path) -> None:
    result = run(data, "tenant", "add", "acme", "--domain", "acme.example", "--json")
    assert json.loads(result.stdout)["name"] == "acme"


def test_tenant_list_empty(data: Path) -> None:
    result = run(data, "tenant", "list")
    assert result.exit_code == 0 and "no tenants yet" in result.stdout
    assert json.loads(run(data, "tenant", "list", "--json").stdout) == []


def test_tenant_errors(data: Path) -> None:
    run(data, "tenant", "add", "acme", "--domain", "acme.example")
    _one_error_line(
        run(data, "tenant", "add", "acme", "--domain", "x.example"),
        1,
        "tenant name 'acme' is already taken",
    )
    _one_error_line(
        run(data, "tenant", "add", "other", "--domain", "acme.example"),
        1,
        "domain 'acme.example' already belongs to tenant 'acme'",
    )
    _one_error_line(
        run(data, "tenant", "add", "Bad_Name", "--domain", "x.example"),
        2,
        "tenant name 'Bad_Name' is invalid",
    )
    _one_error_line(run(data, "tenant", "add", "ok", "--domain", "10.0.0.1"), 2, "is an IP address")


def test_data_dir_sources(tmp_path: Path) -> None:
    env_dir, group_dir, sub_dir = tmp_path / "env", tmp_path / "group", tmp_path / "sub"
    env = {"MINICC_DATA_DIR": str(env_dir)}
    runner = CliRunner()
    runner.invoke(cli, ["tenant", "add", "e", "--domain", "e.example"], env=env)
    runner.invoke(
        cli, ["--data-dir", str(group_dir), "tenant", "add", "g", "--domain", "g.example"], env=env
    )
    runner.invoke(
        cli,
        [
            "--data-dir",
            str(group_dir),
            "tenant",
            "add",
            "s",
            "--domain",
            "s.example",
            "--data-dir",
            str(sub_dir),
        ],
        env=env,
    )
    for folder, name in ((env_dir, "e"), (group_dir, "g"), (sub_dir, "s")):
        with ControlStore(folder) as control:
            assert [t.name for t in control.list_tenants()] == [name]


def test_unusable_data_dir_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    _one_error_line(run(afile / "sub", "tenant", "list"), 1, "cannot create data dir")


# -- users -----------------------------------------------------------------------------------


def test_user_add_and_list(data: Path) -> None:
    run(data, "tenant", "add", "acme", "--domain", "acme.example")
    result = run(
        data,
        "user",
        "add",
        "--tenant",
        "acme.example",
        "--extension",
        "1005",
        "--password",
        "hunter2-secret",
        "--name",
        "Ada Lovelace",
    )
    assert result.exit_code == 0, result.output
    assert "added extension 1005 to tenant acme (login 1005@acme.example)" in result.stdout
    listed = run(data, "user", "list", "--tenant", "acme", "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [(r["extension"], r["name"], r["registered"]) for r in rows] == [
        ("1005", "Ada Lovelace", 0)
    ]
    table = run(data, "user", "list", "--tenant", "acme")
    assert "Ada Lovelace" in table.stdout and "1005" in table.stdout
    for output in (listed.stdout, table.stdout):
        assert "hunter2-secret" not in output
        assert "ha1" not in output.lower()


def test_user_add_json(data: Path) -> None:
    run(data, "tenant", "add", "acme", "--domain", "acme.example")
    result = run(
        data,
        "user",
        "add",
        "--tenant",
        "acme",
        "--extension",
        "1005",
        "--password",
        "secret1",
        "--json",
    )
    out = json.loads(result.stdout)
    assert out["extension"] == "1005" and out["tenant"] == "acme"
    assert "secret1" not in result.stdout


def test_user_errors(data: Path) -> None:
    run(data, "tenant", "add", "acme", "--domain", "acme.example")
    base = ["user", "add", "--tenant", "acme"]
    _one_error_line(
        run(data, *base, "--extension", "10a5", "--password", "secret1"),
        2,
        "extension '10a5' is invalid: use 2 to 15 digits",
    )
    _one_error_line(
        run(data, *base, "--extension", "1005", "--password", "123"),
        2,
        "password is too short: use at least 6 characters",
    )
    _one_error_line(
        run(
            data, "user", "add", "--tenant", "nope", "--extension", "1005", "--password", "secret1"
        ),
        1,
        "no tenant named 'nope'",
    )
    run(data, *base, "--extension", "1005", "--password", "secret1")
    _one_error_line(
        run(data, *base, "--extension", "1005", "--password", "secret1"),
        1,
        "extension 1005 already exists in tenant acme",
    )
    _one_error_line(run(data, "user", "list", "--tenant", "nope"), 1, "no tenant named 'nope'")


# -- cdr export ------------------------------------------------------------------------------


def _seed_cdrs(data: Path) -> None:
    run(data, "tenant", "add", "acme", "--domain", "acme.example")
    with ControlStore(data) as control:
        tenant = control.get_tenant("acme")
        assert tenant is not None
        with control.open_tenant(tenant) as store:
            store.insert_cdr(
                CallRecord(
                    tenant="acme",
                    call_id="call-1",
                    from_user="1001",
                    to_user="1002",
                    from_display="Ada, L.",
                    start=T0,
                    answer=T0 + timedelta(seconds=3),
                    end=T0 + timedelta(seconds=63),
                    disposition=Disposition.ANSWERED,
                    hangup_side=HangupSide.CALLEE,
                )
            )
            store.insert_cdr(
                CallRecord(
                    tenant="acme",
                    call_id="call-2",
                    from_user="1001",
                    to_user="1003",
                    start=T0 + timedelta(days=1),
                    end=T0 + timedelta(days=1, seconds=20),
                    disposition=Disposition.NO_ANSWER,
                    hangup_side=HangupSide.SYSTEM,
                    sip_cause=408,
                )
            )


def test_cdr_export_csv(data: Path) -> None:
    _seed_cdrs(data)
    result = run(data, "cdr", "export", "--tenant", "acme")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["call_id"] for r in rows] == ["call-1", "call-2"]
    assert rows[0]["from_display"] == "Ada, L."
    assert rows[0]["billable_seconds"] == "60"
    assert rows[0]["start"] == "2024-05-01T09:00:00+00:00"
    assert rows[1]["answer"] == "" and rows[1]["disposition"] == "no-answer"
    assert rows[1]["sip_cause"] == "408" and rows[1]["hangup_side"] == "system"


def test_cdr_export_json_since_and_output(data: Path, tmp_path: Path) -> None:
    _seed_cdrs(data)
    result = run(
        data,
        "cdr",
        "export",
        "--tenant",
        "acme.example",
        "--format",
        "json",
        "--since",
        "2024-05-02T00:00Z",
    )
    assert [r["call_id"] for r in json.loads(result.stdout)] == ["call-2"]
    result = run(
        data,
        "cdr",
        "export",
        "--tenant",
        "acme",
        "--format",
        "json",
        "--until",
        "2024-05-01T10:00:00+00:00",
    )
    assert [r["call_id"] for r in json.loads(result.stdout)] == ["call-1"]
    out = tmp_path / "cdrs.json"
    result = run(data, "cdr", "export", "--tenant", "acme", "--format", "json", "-o", str(out))
    assert result.exit_code == 0
    assert "wrote 2 call records" in result.stderr
    assert len(json.loads(out.read_text())) == 2


def test_cdr_export_errors(data: Path, tmp_path: Path) -> None:
    _seed_cdrs(data)
    _one_error_line(
        run(data, "cdr", "export", "--tenant", "acme", "--since", "yesterday"),
        2,
        "Invalid value for '--since': 'yesterday' is not a date: use ISO 8601",
    )
    _one_error_line(run(data, "cdr", "export", "--tenant", "acme", "--format", "xml"), 2, "'xml'")
    _one_error_line(
        run(data, "cdr", "export", "--tenant", "acme", "-o", str(tmp_path / "no" / "x.csv")),
        1,
        "cannot write",
    )


# -- serve -----------------------------------------------------------------------------------


def _ports() -> list[str]:
    return ["--sip-port", str(_free_port()), "--http-port", str(_free_port())]


def test_serve_check_first_run_and_again(data: Path) -> None:
    first = run(data, "serve", "--check", *_ports())
    assert first.exit_code == 0, first.output
    assert "configuration OK" in first.stdout
    assert "demo.localhost" in first.stdout and "Agent One" in first.stdout
    assert "baresip: <sip:1001@127.0.0.1:" in first.stdout
    assert (data / "control.db").is_file() and (data / "demo-logins.toml").is_file()
    again = run(data, "serve", "--check", *_ports())
    assert again.exit_code == 0
    # The same generated passwords are shown again, read from demo-logins.toml.
    password = first.stdout.split("auth_pass=")[1].split(";")[0]
    assert f"auth_pass={password};" in again.stdout
    with ControlStore(data) as control:
        assert [t.name for t in control.list_tenants()] == ["demo"]


def test_serve_bad_values_are_one_line(data: Path, tmp_path: Path) -> None:
    _one_error_line(
        run(data, "serve", "--check", "--sip-port", "70000"),
        2,
        "sip_port = 70000 from --sip-port: must be a port number 1-65535",
    )
    result = CliRunner().invoke(
        cli, ["serve", "--check"], env={"MINICC_HTTP_PORT": "http", "MINICC_DATA_DIR": str(data)}
    )
    _one_error_line(result, 2, "http_port = http from MINICC_HTTP_PORT")
    config = tmp_path / "minicc.toml"
    config.write_text("[serve]\nsip_prot = 5070\n")
    _one_error_line(
        run(data, "serve", "--check", "--config", str(config)),
        2,
        f"unknown key 'sip_prot' in {config}:2: did you mean 'sip_port'?",
    )


def test_serve_unusable_data_dir(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    _one_error_line(
        run(afile / "data", "serve", "--check", *_ports()), 1, "is not usable (Not a directory)"
    )


def test_serve_port_in_use(data: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(
            data, "serve", "--check", "--sip-port", str(_free_port()), "--http-port", str(port)
        )
    _one_error_line(result, 1, f"HTTP port {port}/tcp on 127.0.0.1 is already in use")


# -- banner ----------------------------------------------------------------------------------


def _render(config: ServeConfig, tenants: list[Tenant], demo: DemoInfo | None) -> list[str]:
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(render_banner(config, tenants, demo, default_tenant="demo"))
    return console.export_text().rstrip("\n").splitlines()


def _tenant(name: str) -> Tenant:
    return Tenant(id=1, name=name, domain=f"{name}.example", created_at=T0)


DEMO = DemoInfo(
    tenant="demo",
    domain="demo.localhost",
    logins=tuple(
        DemoLogin(extension=f"100{i}", name=f"Agent {i}", password=f"pw-{i}-abcdefgh")
        for i in (1, 2, 3)
    ),
)


def test_banner_fits_one_screen(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    config = ServeConfig(
        data_dir=tmp_path, bind="0.0.0.0", tls_cert=cert, tls_key=key, sip_tls_port=5061
    )
    tenants = [_tenant(n) for n in ("demo", "acme", "beta", "gamma", "delta")]
    lines = _render(config, tenants, DEMO)
    assert len(lines) <= 24
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "udp+tcp 0.0.0.0:5060" in text and "tls 0.0.0.0:5061" in text
    assert "http://127.0.0.1:8080/" in text
    assert "+2 more" in text
    assert "pw-3-abcdefgh" in text
    assert "registrar/proxy 127.0.0.1:5060" in text
    assert "this machine's address" in text


def test_banner_without_demo(tmp_path: Path) -> None:
    config = ServeConfig(data_dir=tmp_path, bind="::1", sip_port=5070)
    text = "\n".join(_render(config, [], None))
    assert "udp+tcp [::1]:5070" in text
    assert "minicc tenant add" in text and "minicc user add" in text


# -- the real console entry ------------------------------------------------------------------


def _minicc(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINICC_")}
    env["MINICC_DATA_DIR"] = str(data)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "minicc", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_console_entry(data: Path) -> None:
    added = _minicc(data, "tenant", "add", "acme", "--domain", "acme.example")
    assert added.returncode == 0, added.stderr
    user = _minicc(
        data,
        "user",
        "add",
        "--tenant",
        "acme",
        "--extension",
        "1005",
        "--password",
        "secret1",
        "--name",
        "Ada",
    )
    assert user.returncode == 0, user.stderr
    listed = _minicc(data, "user", "list", "--tenant", "acme", "--json")
    assert listed.returncode == 0
    assert json.loads(listed.stdout)[0]["extension"] == "1005"
    exported = _minicc(data, "cdr", "export", "--tenant", "acme")
    assert exported.returncode == 0
    assert exported.stdout.splitlines()[0].startswith("id,tenant,call_id,")
    bad = _minicc(data, "serve", "--check", "--ring-timeout", "forever")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "error: ring_timeout = forever from --ring-timeout: must be a number of seconds "
        "between 1 and 3600"
    )
    for proc in (added, user, listed, exported, bad):
        assert "Traceback" not in proc.stdout + proc.stderr


def test_tenant_set_recording_round_trip(tmp_path: Path) -> None:
    from minicc.cli import cli as cli_main

    runner = CliRunner()
    data = str(tmp_path / "data")
    assert (
        runner.invoke(
            cli_main, ["tenant", "add", "acme", "--domain", "acme.test", "--data-dir", data]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        cli_main, ["tenant", "set", "acme", "--recording", "on", "--data-dir", data]
    )
    assert result.exit_code == 0, result.output
    listed = runner.invoke(cli_main, ["tenant", "list", "--json", "--data-dir", data])
    assert '"record_calls": true' in listed.output
    missing = runner.invoke(
        cli_main, ["tenant", "set", "nope", "--recording", "on", "--data-dir", data]
    )
    assert missing.exit_code != 0 and "Traceback" not in missing.output
