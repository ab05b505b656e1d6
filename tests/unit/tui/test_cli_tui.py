"""``minicc login`` and ``minicc status`` against the real server (the CLI runs in a thread,
since the server runs in the test's event loop)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result

from minicc.cli import cli
from minicc.store.tokens import Role
from minicc.tui.credentials import CredentialStore
from tests.unit.tui.conftest import PASSWORDS, Live


async def run(args: list[str], config: Path, stdin: str = "") -> Result:
    runner = CliRunner()
    env = {
        "MINICC_CONFIG_DIR": str(config),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return await asyncio.to_thread(runner.invoke, cli, args, input=stdin, env=env)


async def test_login_stores_the_token_and_refuses_a_wrong_password(
    live: Live, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    base = ["login", "--url", live.url, "--tenant", "acme.test", "--extension", "1001"]
    wrong = await run(base, config, "not-it\n")
    assert wrong.exit_code == 1
    assert "wrong tenant, extension or password (nothing was stored)" in wrong.output
    assert not config.exists() or not any(config.iterdir())

    good = await run(base, config, PASSWORDS["1001"] + "\n")
    assert good.exit_code == 0, good.output
    assert "logged in as 1001@acme" in good.output and "no system keyring here" in good.output
    kept = CredentialStore(config, name="agent", use_keyring=False).load()
    assert kept is not None and kept.token.startswith("mcc_")


async def test_status_summarises_the_server_and_its_queues(live: Live, tmp_path: Path) -> None:
    config = tmp_path / "config"
    bare = await run(["status", "--url", live.url], config)
    assert bare.exit_code == 0, bare.output
    assert "minicc status" in bare.output and "acme" in bare.output
    assert "log in ('minicc login')" in bare.output

    token = live.long_lived("acme", Role.SUPERVISOR)
    login = await run(
        ["login", "--supervisor", "--url", live.url, "--extension", "1003"], config, token + "\n"
    )
    assert login.exit_code == 0, login.output
    full = await run(["status"], config)  # the URL comes from the stored login
    assert full.exit_code == 0, full.output
    assert "support" in full.output and "sales" in full.output and "1002" in full.output


async def test_status_of_a_server_that_is_not_there(tmp_path: Path) -> None:
    result = await run(["status", "--url", "http://127.0.0.1:9"], tmp_path / "c")
    assert result.exit_code == 1
    assert result.output.strip() == "error: cannot reach the server at http://127.0.0.1:9"
