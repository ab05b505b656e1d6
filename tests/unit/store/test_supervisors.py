"""The supervisor flag: stored per tenant, granted and withdrawn from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from minicc.cli import cli
from minicc.store.control import ControlStore
from minicc.store.database import StoreError
from minicc.store.supervisors import read_supervisors, set_supervisor
from minicc.store.tenant import TenantStore


def test_grant_withdraw_and_cascade(tmp_path: Path) -> None:
    with TenantStore(tmp_path / "acme.db", tenant="acme") as store:
        assert read_supervisors(store) == frozenset()  # no table yet: nobody
        store.add_extension("1001", "secret1", "acme.test")
        store.add_extension("1009", "secret1", "acme.test")
        before = store.data_version()
        set_supervisor(store, "1009", True)
        set_supervisor(store, "1009", True)  # idempotent
        assert read_supervisors(store) == {"1009"}
        set_supervisor(store, "1001", True)
        set_supervisor(store, "1001", False)
        assert read_supervisors(store) == {"1009"}
        with pytest.raises(StoreError, match="extension 1077 does not exist in tenant acme"):
            set_supervisor(store, "1077", True)
        with pytest.raises(StoreError, match="invalid"):
            set_supervisor(store, "x", True)
        store.db.execute_write("DELETE FROM extensions WHERE extension = '1009'")
        assert read_supervisors(store) == frozenset()
        assert store.data_version() >= before


def _run(data: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--data-dir", str(data), *args])


def test_cli_user_add_and_set_supervisor(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run(data, "tenant", "add", "acme", "--domain", "acme.example").exit_code == 0
    added = _run(
        data, "user", "add", "--tenant", "acme", "--extension", "1009",
        "--password", "secret1", "--supervisor",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    _run(data, "user", "add", "--tenant", "acme", "--extension", "1001", "--password", "secret1")
    result = _run(data, "user", "set", "--tenant", "acme", "--extension", "1001", "--supervisor")
    assert result.exit_code == 0, result.output
    assert "extension 1001 of tenant acme is now a supervisor" in result.stdout
    result = _run(data, "user", "set", "--tenant", "acme", "--extension", "1009", "--no-supervisor")
    assert "is no longer a supervisor" in result.stdout
    control = ControlStore(data)
    try:
        tenant = control.get_tenant("acme")
        assert tenant is not None
        with control.open_tenant(tenant) as store:
            assert read_supervisors(store) == {"1001"}
    finally:
        control.close()
    missing = _run(data, "user", "set", "--tenant", "acme", "--extension", "1077", "--supervisor")
    assert missing.exit_code == 1
    assert "extension 1077 does not exist in tenant acme" in missing.stderr
    assert "Traceback" not in missing.output
    nothing = _run(data, "user", "set", "--tenant", "acme", "--extension", "1001")
    assert nothing.exit_code == 2 and "give --supervisor or --no-supervisor" in nothing.stderr
