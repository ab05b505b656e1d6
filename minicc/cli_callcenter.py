"""Call-center provisioning commands: ``minicc queue | number | ivr | agent | vip``.

Each command opens the tenant's database (``--tenant``, and the data dir as the core
commands find it), makes one change in one short transaction and says what it did. A running
server notices the commit through ``PRAGMA data_version`` and rebuilds its call center from
``CallCenterStore.setup()``: no restart.

A value that is wrong ends with one ``error:`` line naming the flag or argument and the fix,
exit status 2; anything else (no such tenant, a queue still in use) with exit status 1. The
group in :mod:`minicc.cli` turns the exceptions into those lines; this module never prints a
traceback. ``ivr load`` is the one command that prints several lines on failure: one per
problem in the flow file, each naming file, node and field.

This module does not import :mod:`minicc.cli` (which registers these commands), so there is
no import cycle whichever is imported first.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from minicc.config import env_var, resolve_data_dir
from minicc.queue.ivr_schema import FlowError
from minicc.queue.models import EmptyRule, QueueConfig, RecordingPolicy, Strategy
from minicc.queue.setup import TargetKind
from minicc.store.callcenter import (
    AgentPresence,
    CallbackStatus,
    CallCenterStore,
    OptionError,
    normalize_number,
    queue_config,
    queue_config_to_json,
    tenant_prompts_dir,
)
from minicc.store.control import ControlStore
from minicc.tenants.models import Tenant

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2
STALE_STATS_SECONDS = 30.0
"""A snapshot older than this is shown with a warning: the server may not be running."""

# Flags whose name is not the QueueConfig field with '-' for '_'.
_QUEUE_FLAGS = {
    "service_level_threshold": "--sl-threshold",
    "service_level_target": "--sl-target",
    "required_skills": "--require",
}


# -- shared plumbing -------------------------------------------------------------------------


def _data_dir_option(fn: F) -> F:
    return click.option(
        "--data-dir",
        "data_dir",
        type=click.Path(file_okay=False, path_type=str),
        default=None,
        help=f"Data folder (default: ${env_var('data_dir')}, else the per-user data folder).",
    )(fn)


def _tenant_option(fn: F) -> F:
    return click.option(
        "--tenant", "tenant_name", required=True, help="Tenant name or SIP domain."
    )(fn)


def _json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


@dataclass(frozen=True, slots=True)
class _Opened:
    tenant: Tenant
    store: CallCenterStore
    data_dir: Path


@contextmanager
def _open(ctx: click.Context, data_dir: str | None, tenant_name: str) -> Iterator[_Opened]:
    """The tenant's call-center store; the subcommand's --data-dir beats the group's."""
    flag = data_dir or ctx.find_root().params.get("data_dir")
    folder = resolve_data_dir(flag, os.environ)
    with ControlStore(folder) as control:
        tenant = control.get_tenant(tenant_name)
        if tenant is None:
            raise click.ClickException(
                f"no tenant named {tenant_name!r}: see 'minicc tenant list' for the names"
            )
        with control.open_tenant(tenant) as tenant_store:
            yield _Opened(tenant, CallCenterStore(tenant_store), folder)


def _flag(field: str, names: Mapping[str, str]) -> str:
    return names.get(field) or _QUEUE_FLAGS.get(field) or "--" + field.replace("_", "-")


@contextmanager
def _blame(names: Mapping[str, str] | None = None) -> Iterator[None]:
    """Turn an :class:`OptionError` into a usage error naming the flag or argument."""
    try:
        yield
    except OptionError as exc:
        raise click.UsageError(f"{_flag(exc.field, names or {})}: {exc.reason}") from None


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _console() -> Console:
    return Console()


def _skills(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> dict[str, int]:
    skills: dict[str, int] = {}
    for text in values:
        name, sep, level = text.partition("=")
        if not sep or not name.strip() or not level.strip().isdigit():
            raise click.BadParameter(
                f"{text!r}: write name=level with a level 1-10, e.g. billing=7",
                ctx=ctx,
                param=param,
            )
        skills[name.strip()] = int(level)
    return skills


class _Off:
    """``off`` given for a limit: switch it off (None in QueueConfig)."""


OFF = _Off()


class _SecondsOrOff(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    name = "SECONDS|off"

    def __init__(self, integer: bool = False) -> None:
        self.integer = integer
        if integer:
            self.name = "N|off"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is OFF or isinstance(value, int | float):
            return value
        text = str(value).strip().lower()
        if text in ("off", "none"):
            return OFF
        try:
            return int(text) if self.integer else float(text)
        except ValueError:
            kind = "a whole number" if self.integer else "a number of seconds"
            self.fail(f"{value!r} is not {kind} or 'off'", param, ctx)


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "off"
    return f"{value:g}s"


# -- queue -----------------------------------------------------------------------------------


def _queue_options(*, for_add: bool) -> Callable[[F], F]:
    """The queue settings shared by ``queue add`` and ``queue update``."""

    def decorate(fn: F) -> F:
        options = [
            click.option(
                "--strategy",
                type=click.Choice([s.value for s in Strategy]),
                required=for_add,
                help="How an idle agent is chosen.",
            ),
            click.option(
                "--ring-timeout", type=float, help="Seconds an offer rings an agent (15)."
            ),
            click.option("--wrap-up", type=float, help="After-call work seconds (10)."),
            click.option(
                "--max-wait", type=_SecondsOrOff(), help="Overflow after this wait (off)."
            ),
            click.option(
                "--max-length",
                type=_SecondsOrOff(integer=True),
                help="Overflow new callers beyond this many waiting (off).",
            ),
            click.option(
                "--overflow",
                metavar="queue:X|voicemail|callback-offer|none",
                help="Where callers go on max wait or max length (none).",
            ),
            click.option(
                "--announce-interval",
                type=_SecondsOrOff(),
                help="Seconds between position/wait announcements (60).",
            ),
            click.option(
                "--callback-threshold",
                type=_SecondsOrOff(),
                help="Offer a callback when the estimated wait exceeds this (off).",
            ),
            click.option(
                "--sl-threshold", type=float, help="Service level: answered within (20 s)."
            ),
            click.option("--sl-target", type=float, help="Service level target percent (80)."),
            click.option(
                "--recording",
                type=click.Choice([r.value for r in RecordingPolicy]),
                help="Record answered calls (never).",
            ),
            click.option(
                "--join-empty",
                type=click.Choice([r.value for r in EmptyRule]),
                help="Refuse callers when no agent could serve them (ignore).",
            ),
            click.option(
                "--leave-when-empty",
                type=click.Choice([r.value for r in EmptyRule]),
                help="Move waiting callers on when the queue empties (ignore).",
            ),
            click.option(
                "--require",
                "required_skills",
                multiple=True,
                callback=_skills,
                metavar="NAME=LEVEL",
                help="A skill every call needs (repeat for more).",
            ),
            click.option(
                "--widen-after",
                type=_SecondsOrOff(),
                help="Lower required skill levels by one after each such wait (off).",
            ),
            click.option(
                "--max-misses",
                type=_SecondsOrOff(integer=True),
                help="Missed offers in a row before an agent is auto-paused (3).",
            ),
            click.option(
                "--hold-timeout",
                type=_SecondsOrOff(),
                help="Ring the agent back after a caller was held this long (120; 0 = off).",
            ),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _given(flags: Mapping[str, Any]) -> dict[str, Any]:
    """QueueConfig fields from the flags actually given (``off`` -> None)."""
    renamed = {"sl_threshold": "service_level_threshold", "sl_target": "service_level_target"}
    given: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None or (key == "required_skills" and not value):
            continue
        given[renamed.get(key, key)] = None if value is OFF else value
    return given


def _queue_row(config: QueueConfig, members: Sequence[Any]) -> dict[str, Any]:
    return {
        "name": config.name,
        **queue_config_to_json(config),
        "members": [
            {"extension": m.agent_id, "skills": dict(m.skills), "penalty": m.penalty}
            for m in members
        ],
    }


@click.group("queue")
def queue_group() -> None:
    """Queues (ACD): add, change, list, members and live statistics."""


@queue_group.command("add")
@_data_dir_option
@_tenant_option
@click.argument("name")
@_queue_options(for_add=True)
@_json_option
@click.pass_context
def queue_add(
    ctx: click.Context,
    /,
    data_dir: str | None,
    tenant_name: str,
    name: str,
    as_json: bool,
    **flags: Any,
) -> None:
    """Add queue NAME to a tenant."""
    with _blame({"name": "NAME"}):
        config = queue_config(name, **_given(flags))
    with _open(ctx, data_dir, tenant_name) as opened, _blame():
        opened.store.add_queue(config)
    if as_json:
        _print_json(_queue_row(config, ()))
    else:
        click.echo(
            f"added queue {config.name} ({config.strategy.value}) to tenant "
            f"{opened.tenant.name}; add agents with 'minicc queue member add {config.name} EXT'"
        )


@queue_group.command("update")
@_data_dir_option
@_tenant_option
@click.argument("name")
@_queue_options(for_add=False)
@click.pass_context
def queue_update(
    ctx: click.Context, /, data_dir: str | None, tenant_name: str, name: str, **flags: Any
) -> None:
    """Change settings of queue NAME; settings not given stay as they are."""
    changes = _given(flags)
    if not changes:
        raise click.UsageError("nothing to change: give at least one setting, e.g. --wrap-up 30")
    with _open(ctx, data_dir, tenant_name) as opened:
        current = opened.store.get_queue(name)
        if current is None:
            raise click.ClickException(f"no queue named {name!r}: see 'minicc queue list'")
        with _blame():
            opened.store.update_queue(queue_config(name, current, **changes))
    click.echo(f"updated queue {name}: {', '.join(sorted(changes))}")


@queue_group.command("remove")
@_data_dir_option
@_tenant_option
@click.argument("name")
@click.pass_context
def queue_remove(ctx: click.Context, data_dir: str | None, tenant_name: str, name: str) -> None:
    """Remove queue NAME (refused while numbers, flows or other queues send calls to it)."""
    with _open(ctx, data_dir, tenant_name) as opened:
        opened.store.remove_queue(name)
    click.echo(f"removed queue {name}")


@queue_group.command("list")
@_data_dir_option
@_tenant_option
@_json_option
@click.pass_context
def queue_list(ctx: click.Context, data_dir: str | None, tenant_name: str, as_json: bool) -> None:
    """List a tenant's queues with their settings and members."""
    with _open(ctx, data_dir, tenant_name) as opened:
        queues = opened.store.list_queues()
        members = opened.store.list_members()
    if as_json:
        _print_json([_queue_row(q, members.get(q.name, ())) for q in queues])
        return
    if not queues:
        click.echo("no queues yet: add one with 'minicc queue add NAME --strategy longest-idle'")
        return
    table = Table(title=f"Queues of {opened.tenant.name}")
    table.add_column("Queue", no_wrap=True)
    table.add_column("Strategy", no_wrap=True)
    table.add_column("Members")
    table.add_column("Settings")
    for q in queues:
        listed = []
        for m in members.get(q.name, ()):
            extras = [f"{k}={v}" for k, v in sorted(m.skills.items())]
            if m.penalty:
                extras.append(f"penalty {m.penalty}")
            listed.append(m.agent_id + (f" ({', '.join(extras)})" if extras else ""))
        limits = f"max wait {_fmt_seconds(q.max_wait)}"
        if q.max_length is not None:
            limits += f", max {q.max_length} waiting"
        settings = [
            f"ring {_fmt_seconds(q.ring_timeout)}, wrap-up {_fmt_seconds(q.wrap_up)}",
            f"{limits} -> {q.overflow}",
            f"announce {_fmt_seconds(q.announce_interval)}, "
            f"callback over {_fmt_seconds(q.callback_threshold)}",
            f"SL {q.service_level_target:g}% in {q.service_level_threshold:g}s, "
            f"recording {q.recording.value}",
            f"hold ring-back {_fmt_seconds(q.hold_timeout or None)}",
        ]
        if q.required_skills:
            needs = ", ".join(f"{k}={v}" for k, v in sorted(q.required_skills.items()))
            settings.append(f"requires {needs}")
        table.add_row(q.name, q.strategy.value, "\n".join(listed) or "none", "\n".join(settings))
    _console().print(table)


@queue_group.group("member")
def member_group() -> None:
    """Agents (extensions) of a queue, with their skills."""


@member_group.command("add")
@_data_dir_option
@_tenant_option
@click.argument("queue")
@click.argument("extension")
@click.option(
    "--skill",
    "skills",
    multiple=True,
    callback=_skills,
    metavar="NAME=LEVEL",
    help="A skill with a level 1-10 (repeat for more).",
)
@click.option("--penalty", type=int, default=0, show_default=True, help="Higher rings later.")
@click.pass_context
def member_add(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    queue: str,
    extension: str,
    skills: dict[str, int],
    penalty: int,
) -> None:
    """Make EXTENSION an agent of QUEUE (again: replace its skills and penalty)."""
    names = {"queue": "QUEUE", "extension": "EXTENSION", "skills": "--skill"}
    with _open(ctx, data_dir, tenant_name) as opened, _blame(names):
        _member, created = opened.store.add_member(queue, extension, skills=skills, penalty=penalty)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(skills.items())) or "no skills"
    verb = "added" if created else "updated"
    click.echo(f"{verb} extension {extension} in queue {queue} ({shown}, penalty {penalty})")


@member_group.command("remove")
@_data_dir_option
@_tenant_option
@click.argument("queue")
@click.argument("extension")
@click.pass_context
def member_remove(
    ctx: click.Context, data_dir: str | None, tenant_name: str, queue: str, extension: str
) -> None:
    """Take EXTENSION out of QUEUE."""
    with _open(ctx, data_dir, tenant_name) as opened:
        opened.store.remove_member(queue, extension)
    click.echo(f"removed extension {extension} from queue {queue}")


def _stats_view(opened: _Opened, name: str | None, now: float) -> dict[str, Any]:
    store = opened.store
    queues = store.list_queues()
    if name is not None:
        queues = [q for q in queues if q.name == name]
        if not queues:
            raise click.ClickException(f"no queue named {name!r}: see 'minicc queue list'")
    members = store.list_members()
    agents = store.agent_states()
    saved = store.latest_stats()
    live_queues: Mapping[str, Any] = saved.data.get("queues", {}) if saved else {}
    view: dict[str, Any] = {
        "tenant": opened.tenant.name,
        "taken_at": saved.taken_at if saved else None,
        "age_seconds": round(max(0.0, now - saved.taken_at), 1) if saved else None,
        "queues": {},
    }
    for q in queues:
        ids = [m.agent_id for m in members.get(q.name, ())]
        available = [
            i for i in ids if i in agents and agents[i].state == AgentPresence.AVAILABLE.value
        ]
        view["queues"][q.name] = {
            "strategy": q.strategy.value,
            "members": ids,
            "available": available,
            "live": live_queues.get(q.name),
        }
    return view


def _number(value: Any, fmt: str = "{:g}", none: str = "-") -> str:
    return none if value is None else fmt.format(value)


@queue_group.command("stats")
@_data_dir_option
@_tenant_option
@click.argument("name", required=False)
@_json_option
@click.pass_context
def queue_stats(
    ctx: click.Context, data_dir: str | None, tenant_name: str, name: str | None, as_json: bool
) -> None:
    """Queue statistics: agents staffed and the server's latest live figures."""
    with _open(ctx, data_dir, tenant_name) as opened:
        view = _stats_view(opened, name, time.time())
    if as_json:
        _print_json(view)
        return
    if not view["queues"]:
        click.echo("no queues yet: add one with 'minicc queue add NAME --strategy longest-idle'")
        return
    table = Table(title=f"Queues of {view['tenant']}")
    table.add_column("Queue", no_wrap=True)
    for column in ("Agents", "Waiting", "Longest", "Answered", "Aband.", "SL%", "ASA", "AHT"):
        table.add_column(column, no_wrap=True, justify="right")
    for queue_name, row in view["queues"].items():
        live = row["live"] or {}
        table.add_row(
            queue_name,
            f"{len(row['available'])}/{len(row['members'])}",
            _number(live.get("waiting"), "{}"),
            _number(live.get("longest_wait"), "{:.0f}s"),
            _number(live.get("answered"), "{}"),
            _number(live.get("abandoned"), "{}"),
            _number(live.get("service_level"), "{:.1f}"),
            _number(live.get("asa"), "{:.1f}s"),
            _number(live.get("aht"), "{:.0f}s"),
        )
    console = _console()
    console.print(table)
    console.print("Agents: available / members.")
    age = view["age_seconds"]
    if age is None:
        console.print("no live figures yet: 'minicc serve' saves them every few seconds")
    elif age > STALE_STATS_SECONDS:
        console.print(
            f"[yellow]live figures are {age:.0f}s old: is 'minicc serve' running?[/yellow]"
        )
    else:
        console.print(f"live figures as of {age:.0f}s ago")


@queue_group.command("callbacks")
@_data_dir_option
@_tenant_option
@click.argument("name", required=False)
@click.option(
    "--status",
    type=click.Choice([s.value for s in CallbackStatus]),
    default=None,
    help="Only callbacks in this state (default: all).",
)
@_json_option
@click.pass_context
def queue_callbacks(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    name: str | None,
    status: str | None,
    as_json: bool,
) -> None:
    """Callback requests (of queue NAME), oldest place first: pending ones keep their place
    across restarts; done and failed ones say how they ended."""
    wanted = None if status is None else CallbackStatus(status)
    with _open(ctx, data_dir, tenant_name) as opened:
        records = opened.store.list_callbacks(wanted, queue=name)
    rows: list[dict[str, Any]] = [
        {
            "id": r.callback.id,
            "queue": r.callback.queue,
            "number": r.callback.number,
            "name": r.callback.name,
            "joined_at": r.callback.joined_at,
            "priority": r.callback.priority,
            "attempts": r.callback.attempts,
            "status": r.status.value,
            "result": r.result,
            "updated_at": r.updated_at,
        }
        for r in records
    ]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        click.echo("no callbacks")
        return
    table = Table(title=f"Callbacks of {opened.tenant.name}")
    for column in ("Id", "Queue", "Number", "Waiting since", "Attempts", "Status", "Result"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["queue"],
            row["number"],
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["joined_at"])),
            str(row["attempts"]),
            row["status"],
            row["result"] or "",
        )
    _console().print(table)


# -- number ----------------------------------------------------------------------------------


@click.group("number")
def number_group() -> None:
    """Dialled numbers (DIDs, service numbers) and where they lead."""


@number_group.command("add")
@_data_dir_option
@_tenant_option
@click.argument("number")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="queue:NAME|ivr:FLOW|ext:EXT",
    help="Where calls to NUMBER go.",
)
@click.pass_context
def number_add(
    ctx: click.Context, data_dir: str | None, tenant_name: str, number: str, target: str
) -> None:
    """Route NUMBER to a queue, an IVR flow or an extension (replaces an earlier route)."""
    with (
        _open(ctx, data_dir, tenant_name) as opened,
        _blame({"number": "NUMBER", "target": "--to"}),
    ):
        previous = opened.store.add_number(number, target)
        shown = normalize_number(number)
    was = f" (was {previous})" if previous is not None else ""
    click.echo(f"number {shown} now leads to {target.strip()}{was}")


@number_group.command("remove")
@_data_dir_option
@_tenant_option
@click.argument("number")
@click.pass_context
def number_remove(ctx: click.Context, data_dir: str | None, tenant_name: str, number: str) -> None:
    """Stop routing NUMBER."""
    with _open(ctx, data_dir, tenant_name) as opened, _blame({"number": "NUMBER"}):
        opened.store.remove_number(number)
    click.echo(f"removed number {number}")


@number_group.command("list")
@_data_dir_option
@_tenant_option
@_json_option
@click.pass_context
def number_list(ctx: click.Context, data_dir: str | None, tenant_name: str, as_json: bool) -> None:
    """List a tenant's numbers and their targets."""
    with _open(ctx, data_dir, tenant_name) as opened:
        numbers = opened.store.list_numbers()
    rows = [
        {"number": n, "target": str(t), "kind": t.kind.value, "name": t.name}
        for n, t in numbers.items()
    ]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        click.echo("no numbers yet: add one with 'minicc number add 8000 --to queue:NAME'")
        return
    table = Table(title=f"Numbers of {opened.tenant.name}")
    table.add_column("Number", no_wrap=True)
    table.add_column("Leads to")
    labels = {TargetKind.QUEUE: "queue", TargetKind.IVR: "IVR flow", TargetKind.EXTENSION: "ext."}
    for n, t in numbers.items():
        table.add_row(n, f"{labels[t.kind]} {t.name}")
    _console().print(table)


# -- ivr -------------------------------------------------------------------------------------


@click.group("ivr")
def ivr_group() -> None:
    """IVR flows (TOML files, see docs/ivr.md) and the tenant's time zone."""


@ivr_group.command("load")
@_data_dir_option
@_tenant_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Store under this name (default: the flow's own).")
@_json_option
@click.pass_context
def ivr_load(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    file: Path,
    name: str | None,
    as_json: bool,
) -> None:
    """Validate FILE and make it the live version of its flow.

    A file with problems changes nothing: each problem is printed on its own line and the
    flow's previous version stays live.
    """
    # Imported here: the prompt catalogue pulls in the audio code, which no other command needs.
    from minicc.queue.prompts import PromptCatalogue

    with _open(ctx, data_dir, tenant_name) as opened:
        catalogue = PromptCatalogue(tenant_prompts_dir(opened.data_dir, opened.tenant.name))
        try:
            with _blame({"name": "--name"}):
                loaded = opened.store.load_ivr(file, name, prompt_exists=catalogue.exists)
        except FlowError as exc:
            problems = [str(p) for p in exc.problems]
            if as_json:
                _print_json({"loaded": False, "problems": problems})
            for problem in problems:
                click.echo(f"error: {problem}", err=True)
            click.echo(
                f"error: {file.name} was not loaded ({len(problems)} problem(s)); "
                "any earlier version of the flow stays live",
                err=True,
            )
            ctx.exit(EXIT_USAGE)
    warnings = [str(w) for w in loaded.flow.warnings]
    if as_json:
        _print_json(
            {
                "loaded": True,
                "name": loaded.name,
                "replaced": loaded.replaced,
                "warnings": warnings,
            }
        )
        return
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    action = "replaced" if loaded.replaced else "loaded"
    click.echo(f"{action} IVR flow {loaded.name} from {file.name} ({len(loaded.flow.nodes)} nodes)")


@ivr_group.command("list")
@_data_dir_option
@_tenant_option
@_json_option
@click.pass_context
def ivr_list(ctx: click.Context, data_dir: str | None, tenant_name: str, as_json: bool) -> None:
    """List a tenant's IVR flows and the numbers that lead to them."""
    with _open(ctx, data_dir, tenant_name) as opened:
        flows = opened.store.list_flows()
        numbers = opened.store.list_numbers()
    rows: list[dict[str, Any]] = [
        {
            "name": f.name,
            "origin": f.origin,
            "loaded_at": f.loaded_at.isoformat(),
            "numbers": [
                n for n, t in numbers.items() if t.kind is TargetKind.IVR and t.name == f.name
            ],
        }
        for f in flows
    ]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        click.echo("no IVR flows yet: load one with 'minicc ivr load FILE'")
        return
    table = Table(title=f"IVR flows of {opened.tenant.name}")
    for column in ("Flow", "File", "Loaded (UTC)", "Numbers"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"], row["origin"], row["loaded_at"][:19], " ".join(row["numbers"]) or "none"
        )
    _console().print(table)


@ivr_group.command("remove")
@_data_dir_option
@_tenant_option
@click.argument("name")
@click.pass_context
def ivr_remove(ctx: click.Context, data_dir: str | None, tenant_name: str, name: str) -> None:
    """Remove flow NAME (refused while numbers or other flows lead to it)."""
    with _open(ctx, data_dir, tenant_name) as opened:
        opened.store.remove_ivr(name)
    click.echo(f"removed IVR flow {name}")


@ivr_group.command("timezone")
@_data_dir_option
@_tenant_option
@click.argument("zone", required=False)
@click.pass_context
def ivr_timezone(
    ctx: click.Context, data_dir: str | None, tenant_name: str, zone: str | None
) -> None:
    """Show or set the tenant's time zone (IANA name) for business hours."""
    with _open(ctx, data_dir, tenant_name) as opened:
        if zone is None:
            click.echo(opened.store.timezone())
            return
        with _blame({"timezone": "ZONE"}):
            opened.store.set_timezone(zone)
    click.echo(f"tenant {opened.tenant.name}: time zone {zone}")


# -- agent -----------------------------------------------------------------------------------


@click.group("agent")
def agent_group() -> None:
    """Agents' states (available, paused, logged out)."""


@agent_group.command("set-state")
@_data_dir_option
@_tenant_option
@click.argument("extension")
@click.argument("state", metavar="STATE", type=click.Choice([p.value for p in AgentPresence]))
@click.option("--reason", default=None, help="Why the agent is paused, e.g. lunch.")
@click.pass_context
def agent_set_state(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    extension: str,
    state: str,
    reason: str | None,
) -> None:
    """Set the state of agent EXTENSION: available, paused or logged-out."""
    names = {"extension": "EXTENSION", "state": "STATE"}
    with _open(ctx, data_dir, tenant_name) as opened, _blame(names):
        setting = opened.store.set_agent_state(extension, state, reason)
    because = f" ({setting.reason})" if setting.reason else ""
    click.echo(f"agent {extension} is now {setting.state}{because}")


@agent_group.command("list")
@_data_dir_option
@_tenant_option
@_json_option
@click.pass_context
def agent_list(ctx: click.Context, data_dir: str | None, tenant_name: str, as_json: bool) -> None:
    """List agents (queue members and agents with a state) and their queues."""
    with _open(ctx, data_dir, tenant_name) as opened:
        states = opened.store.agent_states()
        members = opened.store.list_members()
    queues_of: dict[str, list[str]] = {}
    for queue, listed in members.items():
        for m in listed:
            queues_of.setdefault(m.agent_id, []).append(queue)
    extensions = sorted(set(states) | set(queues_of), key=lambda e: (len(e), e))
    rows: list[dict[str, Any]] = [
        {
            "extension": ext,
            "state": states[ext].state if ext in states else AgentPresence.LOGGED_OUT.value,
            "reason": states[ext].reason if ext in states else None,
            "queues": queues_of.get(ext, []),
        }
        for ext in extensions
    ]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        click.echo("no agents yet: add one with 'minicc queue member add QUEUE EXTENSION'")
        return
    table = Table(title=f"Agents of {opened.tenant.name}")
    for column in ("Extension", "State", "Reason", "Queues"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["extension"], row["state"], row["reason"] or "", " ".join(row["queues"]))
    _console().print(table)


# -- vip -------------------------------------------------------------------------------------


@click.group("vip")
def vip_group() -> None:
    """Caller numbers served ahead of everyone else."""


@vip_group.command("add")
@_data_dir_option
@_tenant_option
@click.argument("number")
@click.option("--note", default=None, help="Who this is, for the people reading the list.")
@click.pass_context
def vip_add(
    ctx: click.Context, data_dir: str | None, tenant_name: str, number: str, note: str | None
) -> None:
    """Put caller NUMBER on the VIP list."""
    with _open(ctx, data_dir, tenant_name) as opened, _blame({"number": "NUMBER"}):
        new = opened.store.add_vip(number, note)
    click.echo(f"{'added' if new else 'updated'} VIP number {number}")


@vip_group.command("remove")
@_data_dir_option
@_tenant_option
@click.argument("number")
@click.pass_context
def vip_remove(ctx: click.Context, data_dir: str | None, tenant_name: str, number: str) -> None:
    """Take caller NUMBER off the VIP list."""
    with _open(ctx, data_dir, tenant_name) as opened, _blame({"number": "NUMBER"}):
        opened.store.remove_vip(number)
    click.echo(f"removed VIP number {number}")


@vip_group.command("list")
@_data_dir_option
@_tenant_option
@_json_option
@click.pass_context
def vip_list(ctx: click.Context, data_dir: str | None, tenant_name: str, as_json: bool) -> None:
    """List the VIP numbers."""
    with _open(ctx, data_dir, tenant_name) as opened:
        vips = opened.store.list_vips()
    if as_json:
        _print_json([{"number": n, "note": note} for n, note in vips.items()])
        return
    if not vips:
        click.echo("no VIP numbers yet: add one with 'minicc vip add NUMBER'")
        return
    table = Table(title=f"VIP callers of {opened.tenant.name}")
    table.add_column("Number", no_wrap=True)
    table.add_column("Note")
    for n, note in vips.items():
        table.add_row(n, note or "")
    _console().print(table)


CALLCENTER_COMMANDS: tuple[click.Command, ...] = (
    queue_group,
    number_group,
    ivr_group,
    agent_group,
    vip_group,
)
"""The groups :mod:`minicc.cli` adds to ``minicc``."""
