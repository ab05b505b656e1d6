"""The audit log: CLI changes recorded with secrets masked, reads not recorded."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from minicc.cli import cli
from minicc.store.audit import AuditLog, mask_secrets
from minicc.store.control import ControlStore


def run(data_dir: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output


def test_secrets_are_masked() -> None:
    assert mask_secrets(["user", "add", "--password", "hunter22", "--name", "x"]) == [
        "user",
        "add",
        "--password",
        "***",
        "--name",
        "x",
    ]
    assert mask_secrets(["--password=hunter22"]) == ["--password=***"]


def test_cli_changes_are_recorded_and_reads_are_not(tmp_path: Path) -> None:
    run(tmp_path, "tenant", "add", "acme", "--domain", "acme.test")
    run(tmp_path, "user", "add", "--tenant", "acme", "--extension", "1001", "--password", "s3cret!")
    run(tmp_path, "tenant", "list")
    run(tmp_path, "user", "list", "--tenant", "acme")
    run(tmp_path, "tenant", "suspend", "acme")
    result = CliRunner().invoke(cli, ["audit", "--json", "--data-dir", str(tmp_path)])
    entries = json.loads(result.output)
    assert [(e["action"], e["tenant"]) for e in entries] == [
        ("tenant suspend", "acme"),
        ("user add", "acme"),
        ("tenant add", "acme"),
    ]
    assert all(e["source"].startswith("cli@") and e["actor"] for e in entries)
    assert "s3cret!" not in result.output and "--password ***" in entries[1]["detail"]
    assert "--data-dir" not in entries[0]["detail"]
    # A command that failed changed nothing and is not recorded.
    failed = CliRunner().invoke(cli, ["tenant", "suspend", "nope", "--data-dir", str(tmp_path)])
    assert failed.exit_code == 1
    with ControlStore(tmp_path) as control:
        assert len(AuditLog(control.db).entries()) == 3
