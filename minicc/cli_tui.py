"""``minicc agent | supervisor | login | status``: the terminal apps and their CLI helpers.

They are clients of a running server's HTTP API (see :mod:`minicc.tui.client`), unlike the
management commands, which open the data dir. Textual is imported only when an app starts,
so ``minicc --help`` stays quick. Like :mod:`minicc.cli_tokens`, this module does not import
:mod:`minicc.cli`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import click
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

__all__ = ["TUI_COMMANDS", "adopt_subcommands"]

DEFAULT_URL = "http://127.0.0.1:8080"


def _store(name: str) -> Any:
    from minicc.tui.credentials import CredentialStore

    return CredentialStore(name=name)


@click.group("agent", invoke_without_command=True)
@click.pass_context
def agent(ctx: click.Context) -> None:
    """The agent console (state, screen pop, call controls, wrap-up); with a subcommand,
    agents' states on the data dir."""
    if ctx.invoked_subcommand is not None:
        return
    from minicc.tui.agent import AgentApp

    AgentApp(_store("agent")).run()


def adopt_subcommands(command: click.Command, previous: click.Command | None) -> None:
    """``minicc agent`` alone opens the console, while ``minicc agent list`` and
    ``set-state`` (the management group of the same name) keep working: the console's
    group takes over the older group's subcommands."""
    if isinstance(command, click.Group) and isinstance(previous, click.Group):
        for name, sub in previous.commands.items():
            command.add_command(sub, name)


@click.command("supervisor")
@click.option(
    "--threshold",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds in a state (other than available) before it shows red.",
)
@click.option(
    "--sl-target",
    type=float,
    default=80.0,
    show_default=True,
    help="Service-level target in percent, for queues whose server gives none.",
)
def supervisor(threshold: float, sl_target: float) -> None:
    """The wallboard: queues, agents, live calls, listen/whisper/barge (Textual)."""
    from minicc.tui.supervisor import SupervisorApp

    SupervisorApp(_store("supervisor"), threshold=threshold, sl_target=sl_target).run()


@click.command("login")
@click.option("--url", default=None, help=f"The server's HTTP address [default: {DEFAULT_URL}].")
@click.option("--tenant", default=None, help="The tenant's SIP domain.")
@click.option("--extension", default=None, help="Your extension (your phone, for supervisors).")
@click.option(
    "--supervisor",
    "as_supervisor",
    is_flag=True,
    help="Store a supervisor token (from 'minicc token create') for the wallboard.",
)
def login(url: str | None, tenant: str | None, extension: str | None, as_supervisor: bool) -> None:
    """Log in and store the session token the way the consoles do (never the password)."""
    from minicc.tui.client import ApiError
    from minicc.tui.credentials import Profile
    from minicc.tui.login import log_in, storage_notice

    store = _store("supervisor" if as_supervisor else "agent")
    saved = store.profile()
    url = url or click.prompt("server URL", default=saved.url if saved else DEFAULT_URL)
    if not as_supervisor:
        tenant = tenant or click.prompt("tenant", default=saved.tenant if saved else None)
    extension = extension or click.prompt("extension", default=saved.extension if saved else None)
    secret = click.prompt("supervisor token" if as_supervisor else "password", hide_input=True)
    profile = Profile(url=url, tenant=tenant or "", extension=extension)
    try:
        credentials = asyncio.run(log_in(store, profile, secret, token_login=as_supervisor))
    except ApiError as exc:
        raise click.ClickException(f"{exc.message} (nothing was stored)") from exc
    click.echo(
        f"logged in as {credentials.profile.extension}@{credentials.profile.tenant}; "
        + storage_notice(credentials)
    )


@click.command("status")
@click.option(
    "--url",
    default=None,
    help=f"The server's HTTP address [default: the stored login's, else {DEFAULT_URL}].",
)
def status(url: str | None) -> None:
    """One screen about a running server: calls, registrations, queues and agents."""
    from minicc.tui.client import ApiClient, ApiError

    credentials = _store("supervisor").load() or _store("agent").load()
    url = (
        url
        or os.environ.get("MINICC_URL")
        or (credentials.profile.url if credentials else DEFAULT_URL)
    )

    async def read() -> tuple[dict[str, Any], list[Any] | None, list[Any] | None, str]:
        async with ApiClient(url) as api:
            summary = await api.status()
            queues = agents = None
            note = "log in ('minicc login') to see queues and agents"
            if credentials is not None and credentials.profile.url.rstrip("/") == api.base_url:
                api.token = credentials.token
                try:
                    queues = await api.queues()
                    agents = await api.agents()
                    note = ""
                except ApiError as exc:
                    note = f"queues/agents: {exc.message}"
            return summary, queues, agents, note

    try:
        summary, queues, agents, note = asyncio.run(read())
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    Console().print(_status_view(url, summary, queues, agents, note))


def _status_view(
    url: str,
    summary: dict[str, Any],
    queues: list[dict[str, Any]] | None,
    agents: list[dict[str, Any]] | None,
    note: str,
) -> Group:
    from minicc.tui.format import duration, percent

    head = Table.grid(padding=(0, 2))
    head.add_row("server", url, "up", duration(summary.get("uptime_seconds")))
    head.add_row(
        "calls",
        str(summary.get("active_calls", 0)),
        "registrations",
        str(summary.get("registrations", 0)),
    )
    head.add_row("tenants", ", ".join(summary.get("tenants", [])), "", "")
    parts: list[Any] = [Panel(head, title="minicc status")]
    calls = summary.get("calls") or []
    if calls:
        table = Table(title="calls")
        for column in ("tenant", "from", "to", "state", "started"):
            table.add_column(column)
        for c in calls[:10]:
            table.add_row(c["tenant"], c["from"], c["to"], c["state"], c["started"][11:19])
        parts.append(table)
    if queues:
        table = Table(title="queues")
        for column in ("queue", "waiting", "longest", "answered", "abandoned", "SL", "ASA"):
            table.add_column(column)
        for q in queues:
            table.add_row(
                q["name"],
                str(q["waiting"]),
                duration(q["longest_wait"]),
                str(q["answered"]),
                str(q["abandoned"]),
                percent(q["service_level"]),
                duration(q["asa"]),
            )
        parts.append(table)
    if agents:
        table = Table(title="agents")
        for column in ("agent", "name", "state", "reason"):
            table.add_column(column)
        for a in agents:
            table.add_row(a["extension"], a.get("name") or "", a["state"], a.get("reason") or "")
        parts.append(table)
    if note:
        parts.append(note)
    return Group(*parts)


TUI_COMMANDS: tuple[click.Command, ...] = (agent, supervisor, login, status)
