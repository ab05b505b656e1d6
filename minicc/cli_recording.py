"""``minicc voicemail`` and ``minicc disposition``: messages callers left, wrap-up codes.

Like the other call-center commands (:mod:`minicc.cli_callcenter`) these work on a tenant's
own database while the server runs; the server picks up new disposition codes within a
second. A voicemail's audio is a WAV under the data folder; ``export`` copies it out (and
marks it heard).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from minicc.cli_callcenter import (
    _blame,
    _console,
    _data_dir_option,
    _json_option,
    _open,
    _print_json,
    _tenant_option,
)
from minicc.store.database import StoreError
from minicc.store.voicemail import Voicemail

__all__ = ["RECORDING_COMMANDS"]


def _when(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds")


def _voicemail_json(vm: Voicemail, data_dir: Path) -> dict[str, object]:
    return {
        "id": vm.id,
        "box": vm.box,
        "caller": vm.caller,
        "caller_name": vm.caller_name,
        "call_id": vm.call_id,
        "left_at": _when(vm.left_at),
        "duration": round(vm.duration, 2),
        "path": vm.path,
        "file": str(vm.file(data_dir)),
        "heard": vm.heard,
    }


# -- voicemail -------------------------------------------------------------------------------


@click.group("voicemail")
def voicemail_group() -> None:
    """Messages callers left (queue overflow, IVR voicemail, unanswered extensions)."""


@voicemail_group.command("list")
@_data_dir_option
@_tenant_option
@click.option("--box", default=None, help="Only this box (a queue name or an extension).")
@_json_option
@click.pass_context
def voicemail_list(
    ctx: click.Context, data_dir: str | None, tenant_name: str, box: str | None, as_json: bool
) -> None:
    """List the messages, oldest first."""
    with _open(ctx, data_dir, tenant_name) as opened:
        messages = opened.store.list_voicemails(box)
    if as_json:
        _print_json([_voicemail_json(vm, opened.data_dir) for vm in messages])
        return
    if not messages:
        click.echo("no voicemail" + (f" in box {box}" if box else ""))
        return
    table = Table(title=f"Voicemail of {opened.tenant.name}")
    for column in ("Id", "Box", "From", "Left at (UTC)", "Seconds", "Heard"):
        table.add_column(column, no_wrap=True)
    for vm in messages:
        caller = f"{vm.caller_name} <{vm.caller}>" if vm.caller_name else vm.caller
        table.add_row(
            str(vm.id),
            vm.box,
            caller,
            _when(vm.left_at),
            f"{vm.duration:.1f}",
            "yes" if vm.heard else "no",
        )
    _console().print(table)


@voicemail_group.command("export")
@_data_dir_option
@_tenant_option
@click.argument("voicemail_id", metavar="ID", type=int)
@click.option(
    "--to",
    "target",
    type=click.Path(path_type=Path),
    default=None,
    help="Copy the WAV here (a file, or a folder to copy it into); without it, print its path.",
)
@click.pass_context
def voicemail_export(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    voicemail_id: int,
    target: Path | None,
) -> None:
    """Copy message ID's WAV out (or print where it is) and mark it heard."""
    with _open(ctx, data_dir, tenant_name) as opened:
        try:
            vm = opened.store.get_voicemail(voicemail_id)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
        source = vm.file(opened.data_dir)
        if not source.is_file():
            raise click.ClickException(
                f"voicemail {vm.id}: its file {source} is missing (moved or deleted?)"
            )
        if target is None:
            click.echo(str(source))
        else:
            dest = target / source.name if target.is_dir() else target
            try:
                shutil.copyfile(source, dest)
            except OSError as exc:
                raise click.ClickException(
                    f"--to: cannot write {dest}: {exc.strerror or exc}"
                ) from None
            click.echo(f"voicemail {vm.id} ({vm.duration:.1f} s from {vm.caller}) -> {dest}")
        opened.store.mark_heard(vm.id)


# -- dispositions ----------------------------------------------------------------------------


@click.group("disposition")
def disposition_group() -> None:
    """Wrap-up codes agents give a call (``resolved``, ``callback-promised``...)."""


@disposition_group.command("add")
@_data_dir_option
@_tenant_option
@click.argument("code")
@click.option("--label", default=None, help="What agents see (default: from the code).")
@click.pass_context
def disposition_add(
    ctx: click.Context, data_dir: str | None, tenant_name: str, code: str, label: str | None
) -> None:
    """Add wrap-up code CODE (or change its label)."""
    with _open(ctx, data_dir, tenant_name) as opened, _blame({"code": "CODE"}):
        opened.store.add_disposition(code, label)
    click.echo(f"disposition {code} added")


@disposition_group.command("remove")
@_data_dir_option
@_tenant_option
@click.argument("code")
@click.pass_context
def disposition_remove(
    ctx: click.Context, data_dir: str | None, tenant_name: str, code: str
) -> None:
    """Remove wrap-up code CODE (calls that have it keep it)."""
    with _open(ctx, data_dir, tenant_name) as opened:
        try:
            opened.store.remove_disposition(code)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"disposition {code} removed")


@disposition_group.command("list")
@_data_dir_option
@_tenant_option
@_json_option
@click.pass_context
def disposition_list(
    ctx: click.Context, data_dir: str | None, tenant_name: str, as_json: bool
) -> None:
    """List the wrap-up codes, in the order they were added."""
    with _open(ctx, data_dir, tenant_name) as opened:
        codes = opened.store.list_dispositions()
    if as_json:
        _print_json([{"code": code, "label": label} for code, label in codes])
        return
    if not codes:
        click.echo("no disposition codes yet: add one with 'minicc disposition add CODE'")
        return
    table = Table(title=f"Disposition codes of {opened.tenant.name}")
    table.add_column("Code", no_wrap=True)
    table.add_column("Label")
    for code, label in codes:
        table.add_row(code, label)
    _console().print(table)


@disposition_group.command("end-wrap-up")
@_data_dir_option
@_tenant_option
@click.argument("switch", metavar="on|off", type=click.Choice(["on", "off"]), required=False)
@click.pass_context
def disposition_end_wrap_up(
    ctx: click.Context, data_dir: str | None, tenant_name: str, switch: str | None
) -> None:
    """Whether a disposition set during wrap-up ends the wrap-up (without on|off: show it)."""
    with _open(ctx, data_dir, tenant_name) as opened:
        if switch is not None:
            opened.store.set_end_wrap_up(switch == "on")
        on = opened.store.ends_wrap_up()
    click.echo(
        "a disposition ends the wrap-up" if on else "a disposition leaves the wrap-up running"
    )


RECORDING_COMMANDS: tuple[click.Command, ...] = (voicemail_group, disposition_group)
"""The groups :mod:`minicc.cli` adds to ``minicc``."""
