"""``minicc voicemail default`` and ``minicc voicemail rules``: voicemail on direct calls.

Per extension it is ``minicc user set --extension E --voicemail on|off
[--voicemail-ring SECONDS]``; these commands set the tenant default (for extensions without
a rule of their own) and show every rule. The server picks changes up within a second
(:mod:`minicc.store.mailboxes`).
"""

from __future__ import annotations

import click
from rich.table import Table

from minicc.cli_callcenter import (
    _console,
    _data_dir_option,
    _json_option,
    _open,
    _print_json,
    _tenant_option,
)
from minicc.queue.mailbox import DEFAULT_RING_SECONDS
from minicc.store.database import StoreError
from minicc.store.mailboxes import describe, read_voicemail_plan, set_mailbox

__all__ = ["MAILBOX_COMMANDS"]


@click.command("default")
@_data_dir_option
@_tenant_option
@click.argument("switch", metavar="[on|off]", type=click.Choice(["on", "off"]), required=False)
@click.option(
    "--ring",
    type=float,
    default=None,
    metavar="SECONDS",
    help=f"Ring time before voicemail, 5-120 (default {DEFAULT_RING_SECONDS:g}).",
)
@click.pass_context
def voicemail_default(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    switch: str | None,
    ring: float | None,
) -> None:
    """The tenant default: voicemail on unanswered direct calls to its extensions (without
    on|off and --ring: show it)."""
    with _open(ctx, data_dir, tenant_name) as opened:
        if switch is not None or ring is not None:
            enabled = None if switch is None else switch == "on"
            try:
                set_mailbox(opened.store, None, enabled=enabled, ring_seconds=ring)
            except StoreError as exc:
                raise click.UsageError(f"--ring: {exc}") from exc
        plan = read_voicemail_plan(opened.store)
    click.echo(f"tenant {opened.tenant.name} default: {describe(plan.default)}")


@click.command("rules")
@_data_dir_option
@_tenant_option
@_json_option
@click.pass_context
def voicemail_rules(
    ctx: click.Context, data_dir: str | None, tenant_name: str, as_json: bool
) -> None:
    """Who gets voicemail on direct calls: the tenant default and each extension's rule."""
    with _open(ctx, data_dir, tenant_name) as opened:
        plan = read_voicemail_plan(opened.store)
    rows = [("*", plan.default), *sorted(plan.extensions.items())]
    if as_json:
        _print_json(
            [
                {
                    "extension": None if ext == "*" else ext,
                    "enabled": rule.enabled,
                    "ring_seconds": rule.ring_seconds,
                }
                for ext, rule in rows
            ]
        )
        return
    table = Table(title=f"Voicemail on direct calls, {opened.tenant.name}")
    table.add_column("Extension")
    table.add_column("Rule")
    for ext, rule in rows:
        shown = describe(rule) if ext == "*" else describe(rule, plan.default)
        table.add_row("default" if ext == "*" else ext, shown)
    _console().print(table)


MAILBOX_COMMANDS: tuple[click.Command, ...] = (voicemail_default, voicemail_rules)
"""Commands :mod:`minicc.cli_recording` adds to ``minicc voicemail``."""
