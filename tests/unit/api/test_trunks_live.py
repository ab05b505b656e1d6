"""Trunks added with the CLI reach a running server: its switch knows the carrier's address,
the dial rules, and the flood guard never blocks the carrier."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from minicc.cli import cli
from tests.unit.api.conftest import Live, until


async def test_cli_trunk_changes_reach_the_running_server(live: Live) -> None:
    def run(*args: str) -> None:
        result = CliRunner().invoke(cli, [*args, "--data-dir", str(live.data_dir)])
        assert result.exit_code == 0, result.output

    switch = live.server.switch
    await asyncio.to_thread(
        run, "trunk", "add", "carrier", "--tenant", "acme", "--address", "198.51.100.7"
    )
    await asyncio.to_thread(run, "trunk", "rules", "--tenant", "acme", "--allow", "030")
    await until(lambda: switch.trunks.inbound("198.51.100.7") is not None)
    assert switch.dialable("acme", "0301234") and not switch.dialable("acme", "0401234")
    assert switch.dialable("acme", "112")  # emergency, whatever the rules
    assert not switch.dialable("other", "0301234")  # other has no trunk
    for _ in range(30):
        switch.guard.auth_failed("198.51.100.7", now=1.0)
    assert switch.guard.admit("198.51.100.7", 1.0)  # a carrier is never blocked

    await asyncio.to_thread(run, "trunk", "remove", "carrier", "--tenant", "acme")
    await until(lambda: switch.trunks.inbound("198.51.100.7") is None)
    assert not switch.dialable("acme", "0301234")
