"""The CLI's half of the audit log: each command that changed something is recorded.

:func:`record_command` is called by the ``minicc`` group after a command succeeded, with
the words it was run with. Read-only commands (lists, statistics, exports of call records,
``serve`` itself) are not recorded; everything else is, with secret values masked, under
the operating-system user, from ``cli@<host>``. ``minicc audit`` shows the log.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from minicc.cli_common import data_dir_option, open_control
from minicc.config import resolve_data_dir
from minicc.store.audit import AuditLog, mask_secrets
from minicc.store.control import ControlStore

__all__ = ["AUDIT_COMMANDS", "record_command"]

# Top-level commands that never change anything an administrator answers for.
_NOT_CHANGES = {"serve", "usage", "cdr", "audit", "status", "login", "supervisor"}
_READ_ONLY_LEAVES = {"list", "stats", "show"}
# Options that take a value (so the value is not mistaken for a command word).
_VALUED = {"--data-dir", "--config"}


def _command_path(group: click.Group, words: Sequence[str]) -> tuple[list[str], list[str]]:
    """The command names ``words`` lead to, and the words after them."""
    ctx = click.Context(group)
    path: list[str] = []
    command: click.Command = group
    rest = list(words)
    while isinstance(command, click.Group):
        while rest and rest[0].startswith("-"):
            flag = rest.pop(0)
            if flag in _VALUED and rest:
                rest.pop(0)
        if not rest:
            break
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            break
        path.append(rest.pop(0))
        command = sub
    if isinstance(command, click.Group):
        return [], rest  # a group on its own (help, or an app like the agent console)
    return path, rest


def _option(words: Sequence[str], flag: str) -> str | None:
    for i, word in enumerate(words):
        if word == flag and i + 1 < len(words):
            return words[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


def _without_data_dir(words: Sequence[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--data-dir":
            skip = True
        elif not word.startswith("--data-dir="):
            kept.append(word)
    return kept


def record_command(group: click.Group, words: Sequence[str]) -> None:
    """Record a successful command if it changed something (see module doc)."""
    path, rest = _command_path(group, words)
    if not path or path[0] in _NOT_CHANGES or path[-1] in _READ_ONLY_LEAVES:
        return
    if path == ["agent"]:
        return  # `minicc agent` alone is the agent console (an API client), not a change
    tenant = _option(words, "--tenant")
    if tenant is None and path[0] == "tenant":
        tenant = next((w for w in rest if not w.startswith("-")), None)
    folder = resolve_data_dir(_option(words, "--data-dir"), os.environ)
    if not folder.is_dir():
        return
    try:
        actor = getpass.getuser()
    except (KeyError, OSError):
        actor = f"uid {os.getuid()}"
    try:
        with ControlStore(folder) as control:
            AuditLog(control.db).record(
                at=time.time(),
                actor=actor,
                source=f"cli@{socket.gethostname()}",
                action=" ".join(path),
                tenant=tenant,
                detail=" ".join(mask_secrets(_without_data_dir(words))),
            ).result(5.0)
    except Exception as exc:  # the change is made; say the record is missing, go on
        click.echo(f"warning: the audit log was not written: {exc}", err=True)


@click.command("audit")
@data_dir_option
@click.option("--tenant", "tenant_name", default=None, help="Only changes to this tenant.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def audit(
    ctx: click.Context, data_dir: str | None, tenant_name: str | None, limit: int, as_json: bool
) -> None:
    """Administrative changes, newest first: who, what, when, from where."""
    with open_control(ctx, data_dir) as control:
        entries = AuditLog(control.db).entries(tenant=tenant_name, limit=limit)
    rows = [
        {
            "at": datetime.fromtimestamp(e.at, UTC).isoformat(timespec="seconds"),
            "actor": e.actor,
            "source": e.source,
            "tenant": e.tenant,
            "action": e.action,
            "detail": e.detail,
        }
        for e in entries
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Audit log")
    for column in ("When (UTC)", "Who", "From", "Tenant", "What", "Command"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["at"],
            row["actor"],
            row["source"],
            row["tenant"] or "",
            row["action"],
            row["detail"],
        )
    Console().print(table)


AUDIT_COMMANDS: tuple[click.Command, ...] = (audit,)
