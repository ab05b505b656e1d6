"""``minicc tenant suspend | resume | export | import | delete``: a tenant's whole life.

Registered on the ``tenant`` group of :mod:`minicc.cli` (which keeps ``add``, ``list`` and
``set``). Like the other command modules it does not import :mod:`minicc.cli`. A running
server sees each change through the control database: a suspended tenant's phones get
``403 Tenant Suspended`` and its API tokens are refused from the next request on.
"""

from __future__ import annotations

from pathlib import Path

import click

from minicc import runtime
from minicc.cli_common import (
    command_data_dir,
    data_dir_option,
    open_control,
    require_tenant,
)
from minicc.store.archive import delete_tenant, export_tenant, import_tenant
from minicc.tenants.models import TenantStatus

__all__ = ["LIFECYCLE_COMMANDS"]

_data_dir = data_dir_option


_folder = command_data_dir
_control = open_control


def _set_status(ctx: click.Context, data_dir: str | None, name: str, status: TenantStatus) -> None:
    with _control(ctx, data_dir) as control:
        updated = control.set_status(name, status)
    click.echo(f"tenant {updated.name}: {updated.status.value}")


@click.command("suspend")
@_data_dir
@click.argument("name")
@click.pass_context
def tenant_suspend(ctx: click.Context, data_dir: str | None, name: str) -> None:
    """Suspend tenant NAME: calls, registrations and logins are refused; data is kept."""
    _set_status(ctx, data_dir, name, TenantStatus.SUSPENDED)


@click.command("resume")
@_data_dir
@click.argument("name")
@click.pass_context
def tenant_resume(ctx: click.Context, data_dir: str | None, name: str) -> None:
    """Resume a suspended tenant."""
    _set_status(ctx, data_dir, name, TenantStatus.ACTIVE)


@click.command("export")
@_data_dir
@click.argument("name")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The archive to write (.tar.gz): database, recordings, prompts, settings.",
)
@click.pass_context
def tenant_export(ctx: click.Context, data_dir: str | None, name: str, output: Path) -> None:
    """Write tenant NAME to one archive (safe while the server runs)."""
    with _control(ctx, data_dir) as control:
        done = export_tenant(control, name, output)
    click.echo(f"exported {done.tenant} to {done.path} ({done.files} files, {done.size} bytes)")


@click.command("import")
@_data_dir
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Import under this name instead.")
@click.option("--domain", default=None, help="Import with this SIP domain instead.")
@click.pass_context
def tenant_import(
    ctx: click.Context, data_dir: str | None, archive: Path, name: str | None, domain: str | None
) -> None:
    """Create a tenant from an archive 'minicc tenant export' wrote."""
    with _control(ctx, data_dir) as control:
        tenant = import_tenant(control, archive, name=name, domain=domain)
    click.echo(f"imported tenant {tenant.name} (domain {tenant.domain})")
    if domain is not None:
        # SIP digest binds each stored password hash to the realm (the old domain).
        click.echo(
            "warning: the SIP domain changed, so phones cannot log in with their old "
            "passwords: set new ones with 'minicc user add ... --password' (API logins "
            "keep working)",
            err=True,
        )


@click.command("delete")
@_data_dir
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--no-archive",
    is_flag=True,
    help="Do not keep a retention copy in <data dir>/deleted/ (it is kept by default).",
)
@click.pass_context
def tenant_delete(
    ctx: click.Context, data_dir: str | None, name: str, yes: bool, no_archive: bool
) -> None:
    """Delete tenant NAME and its data (refused while it has calls in progress)."""
    folder = _folder(ctx, data_dir)
    with _control(ctx, data_dir) as control:
        tenant = require_tenant(control, name)
        try:
            status = runtime.live_status(folder)
        except OSError as exc:
            raise click.ClickException(f"{exc}; stop it or retry") from exc
        live = [c for c in (status or {}).get("calls", []) if c.get("tenant") == tenant.name]
        if live:
            raise click.ClickException(
                f"tenant {tenant.name} has {len(live)} call(s) in progress: suspend it first "
                f"('minicc tenant suspend {tenant.name}'), wait for them to end, then delete"
            )
        if not yes:
            if not click.get_text_stream("stdin").isatty():
                raise click.UsageError("deleting needs --yes when not run in a terminal")
            typed = click.prompt(f"Type the tenant's name ({tenant.name}) to delete it")
            if typed.strip() != tenant.name:
                raise click.ClickException("the name did not match: nothing was deleted")
        kept = delete_tenant(control, tenant.name, keep_archive=not no_archive)
    where = f"; a copy is kept in {kept}" if kept else ""
    click.echo(f"deleted tenant {tenant.name}{where}")


LIFECYCLE_COMMANDS: tuple[click.Command, ...] = (
    tenant_suspend,
    tenant_resume,
    tenant_export,
    tenant_import,
    tenant_delete,
)
