"""Per-tenant webcall settings in the tenant database, and ``minicc webcall``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from minicc.cli import cli
from minicc.store.control import ControlStore
from minicc.store.database import StoreError
from minicc.webcall.settings import (
    WEBCALL_EXTENSION,
    enable_webcall,
    load_settings,
    normalize_origin,
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    with ControlStore(tmp_path) as control:
        control.add_tenant("acme", "acme.test")
    return tmp_path


@pytest.mark.parametrize(
    ("raw", "origin"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example:443/", "https://shop.example"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_origins_are_normalized(raw: str, origin: str) -> None:
    assert normalize_origin(raw) == origin


@pytest.mark.parametrize("bad", ["shop.example", "ftp://x", "https://x/path", "https://"])
def test_a_bad_origin_names_the_expected_form(bad: str) -> None:
    with pytest.raises(StoreError, match="origin"):
        normalize_origin(bad)


def test_enabling_makes_a_key_a_secret_and_the_webcall_extension(data_dir: Path) -> None:
    with ControlStore(data_dir) as control:
        tenant = control.get_tenant("acme")
        assert tenant is not None
        with control.open_tenant(tenant) as store:
            assert load_settings(store.db) is None
            first = enable_webcall(store, tenant.domain, origins=("https://shop.example",))
            assert first.public_key.startswith("wk_") and len(first.secret) >= 32
            assert store.credentials(WEBCALL_EXTENSION) is not None
            again = enable_webcall(store, tenant.domain, max_calls=2, target="8000")
            # Later changes keep the key, the secret and the origins.
            assert (again.public_key, again.secret) == (first.public_key, first.secret)
            assert again.origins == ("https://shop.example",)
            assert (again.max_calls, again.target) == (2, "8000")
            assert load_settings(store.db) == again
            with pytest.raises(StoreError, match="max-calls"):
                enable_webcall(store, tenant.domain, max_calls=-1)


def test_cli_set_and_show(data_dir: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(data_dir), "--tenant", "acme"]
    result = runner.invoke(
        cli,
        ["webcall", "set", *base, "--origin", "https://shop.example", "--max-calls", "3",
         "--target", "8000", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["origins"] == ["https://shop.example"] and shown["max_calls"] == 3
    assert "secret" not in shown
    result = runner.invoke(cli, ["webcall", "set", *base, "--origin", "https://b.example", "--add"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["webcall", "show", *base, "--json"])
    assert json.loads(result.output)["origins"] == ["https://shop.example", "https://b.example"]
    result = runner.invoke(cli, ["webcall", "set", *base, "--origin", "shop.example"])
    assert result.exit_code != 0
    assert "scheme://host" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["webcall", "show", "--data-dir", str(data_dir), "--tenant", "x"])
    assert result.exit_code != 0 and "no tenant named 'x'" in result.output
