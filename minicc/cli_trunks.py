"""``minicc trunk add | list | remove | rules``: carriers' trunks and the dial rules.

A trunk is IP-authorised: calls from its address reach its tenant without a password, and
the tenant's phones reach outside numbers through it, within the tenant's dial rules
(international off by default, allowed prefixes, emergency numbers always). Like the other
command modules it does not import :mod:`minicc.cli`; a running server picks changes up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.table import Table

from minicc.cli_common import (
    data_dir_option,
    open_control,
    require_tenant,
    tenant_option,
)
from minicc.store.control import ControlStore
from minicc.store.trunks import TrunkStore
from minicc.tenants.trunks import EMERGENCY_NUMBERS, DialRules, Trunk

__all__ = ["TRUNK_COMMANDS"]

_data_dir = data_dir_option
_tenant = tenant_option


@contextmanager
def _trunks(ctx: click.Context, data_dir: str | None) -> Iterator[tuple[ControlStore, TrunkStore]]:
    with open_control(ctx, data_dir) as control:
        yield control, TrunkStore(control)


def _tenant_name(control: ControlStore, name: str) -> str:
    return require_tenant(control, name).name


@click.group()
def trunk() -> None:
    """Trunks to carriers (IP-authorised) and the tenants' dial rules."""


@trunk.command("add")
@_data_dir
@_tenant
@click.argument("name")
@click.option("--address", required=True, help="The carrier's IP address.")
@click.option("--port", type=int, default=5060, show_default=True)
@click.option("--inbound/--no-inbound", default=True, help="Accept calls from it (default on).")
@click.option("--outbound/--no-outbound", default=True, help="Send calls out (default on).")
@click.option("--caller-id", default=None, help="Number the called party sees.")
@click.pass_context
def trunk_add(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    name: str,
    address: str,
    port: int,
    inbound: bool,
    outbound: bool,
    caller_id: str | None,
) -> None:
    """Add trunk NAME of a tenant."""
    with _trunks(ctx, data_dir) as (control, trunks):
        added = trunks.add(
            Trunk(
                tenant=_tenant_name(control, tenant_name),
                name=name,
                host=address,
                port=port,
                inbound=inbound,
                outbound=outbound,
                caller_id=caller_id,
            )
        )
    click.echo(f"added trunk {added.name} of {added.tenant} ({added.host}:{added.port})")


@trunk.command("list")
@_data_dir
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def trunk_list(
    ctx: click.Context, data_dir: str | None, tenant_name: str | None, as_json: bool
) -> None:
    """Trunks, with each tenant's dial rules."""
    with _trunks(ctx, data_dir) as (control, trunks):
        name = _tenant_name(control, tenant_name) if tenant_name else None
        found = trunks.list(name)
        rules = trunks.rules()
    rows = [
        {
            "tenant": t.tenant,
            "name": t.name,
            "address": t.host,
            "port": t.port,
            "inbound": t.inbound,
            "outbound": t.outbound,
            "caller_id": t.caller_id,
        }
        for t in found
    ]
    if as_json:
        shown = {k: v for k, v in rules.items() if name is None or k == name}
        out = {
            "trunks": rows,
            "dial_rules": {
                k: {"allowed_prefixes": list(v.allowed_prefixes), "international": v.international}
                for k, v in shown.items()
            },
        }
        click.echo(json.dumps(out, indent=2))
        return
    table = Table(title="Trunks")
    for column in ("Tenant", "Name", "Address", "In", "Out", "Caller ID", "Dial rules"):
        table.add_column(column)
    for t in found:
        r = rules.get(t.tenant, DialRules())
        summary = (", ".join(r.allowed_prefixes) or "any national") + (
            "; international" if r.international else "; no international"
        )
        table.add_row(
            t.tenant,
            t.name,
            f"{t.host}:{t.port}",
            "yes" if t.inbound else "",
            "yes" if t.outbound else "",
            t.caller_id or "",
            summary,
        )
    Console().print(table)


@trunk.command("remove")
@_data_dir
@_tenant
@click.argument("name")
@click.pass_context
def trunk_remove(ctx: click.Context, data_dir: str | None, tenant_name: str, name: str) -> None:
    """Remove trunk NAME of a tenant."""
    with _trunks(ctx, data_dir) as (control, trunks):
        tenant = _tenant_name(control, tenant_name)
        trunks.remove(tenant, name)
    click.echo(f"removed trunk {name} of {tenant}")


@trunk.command("rules")
@_data_dir
@_tenant
@click.option("--allow", "prefixes", multiple=True, help="An allowed prefix (repeat); none: any.")
@click.option(
    "--international/--no-international",
    default=False,
    help="Allow numbers starting with + or 00 (off by default: toll fraud goes abroad).",
)
@click.pass_context
def trunk_rules(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    prefixes: tuple[str, ...],
    international: bool,
) -> None:
    """Set which outside numbers a tenant may dial (emergency numbers always)."""
    with _trunks(ctx, data_dir) as (control, trunks):
        tenant = _tenant_name(control, tenant_name)
        trunks.set_rules(tenant, DialRules(allowed_prefixes=prefixes, international=international))
    allowed = ", ".join(prefixes) or "any national number"
    emergency = ", ".join(sorted(EMERGENCY_NUMBERS))
    click.echo(
        f"tenant {tenant} may dial: {allowed}; international "
        f"{'on' if international else 'off'}; emergency ({emergency}) always"
    )


TRUNK_COMMANDS: tuple[click.Command, ...] = (trunk,)
