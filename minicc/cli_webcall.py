"""``minicc webcall set | show | calls``: click-to-call settings of a tenant.

The first ``set`` enables click-to-call: it makes the tenant's public key, its secret and the
webcall extension (see :mod:`minicc.webcall.settings`). Later ``set`` calls change only the
options given. The commands work on the data dir directly, also while the server runs (it
rereads the settings within seconds).

Like :mod:`minicc.cli_tokens`, this module does not import :mod:`minicc.cli`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime

import click

from minicc.cli_common import (
    data_dir_option,
    json_option,
    open_control,
    require_tenant,
    tenant_option,
)
from minicc.store.database import StoreError
from minicc.store.tenant import TenantStore
from minicc.tenants.models import Tenant
from minicc.webcall.records import list_records
from minicc.webcall.settings import WebcallSettings, enable_webcall, load_settings

__all__ = ["WEBCALL_COMMANDS"]


@contextmanager
def _open(
    ctx: click.Context, data_dir: str | None, tenant_name: str
) -> Iterator[tuple[Tenant, TenantStore]]:
    with open_control(ctx, data_dir) as control:
        tenant = require_tenant(control, tenant_name)
        with control.open_tenant(tenant) as store:
            yield tenant, store


_data_dir = data_dir_option
_tenant = tenant_option
_as_json = json_option


def _public(settings: WebcallSettings) -> dict[str, object]:
    """Everything but the secret."""
    data = asdict(settings)
    data.pop("secret")
    data["origins"] = list(settings.origins)
    data["targets"] = [t for t in settings.target.split(",") if t]
    data.pop("target")
    return data


def _print(settings: WebcallSettings, as_json: bool) -> None:
    data = _public(settings)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        click.echo(f"{key}: {value}")
    targets = data["targets"] or ["NUMBER"]
    click.echo(
        '\nscript tag: <script src="https://YOUR-MINICC/webcall/widget.js" '
        f'data-key="{settings.public_key}" data-target="{targets[0]}" '  # type: ignore[index]
        'data-queue="QUEUE" async></script>'
    )


@click.group()
def webcall() -> None:
    """Click-to-call from web pages: allowed origins, limits, the widget's key."""


@webcall.command("set")
@_data_dir
@_tenant
@click.option(
    "--origin",
    "origins",
    multiple=True,
    help="Allow pages of this origin "
    "(scheme://host[:port]); repeat for more. Replaces the list unless --add.",
)
@click.option("--add", "add", is_flag=True, help="Add the --origin values to the list.")
@click.option("--clear-origins", is_flag=True, help="Allow no origin (only the demo page).")
@click.option("--max-calls", type=int, default=None, help="Concurrent web calls (default 5).")
@click.option("--per-ip", type=int, default=None, help="Requests per visitor address per minute.")
@click.option("--per-tenant", type=int, default=None, help="Web calls per minute, all visitors.")
@click.option(
    "--target",
    "targets",
    multiple=True,
    help="A number web calls may dial (IVR or "
    "queue number); repeat for more, the first is the default.",
)
@click.option("--enable/--disable", "enabled", default=None, help="Switch click-to-call on/off.")
@_as_json
@click.pass_context
def webcall_set(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    origins: tuple[str, ...],
    add: bool,
    clear_origins: bool,
    max_calls: int | None,
    per_ip: int | None,
    per_tenant: int | None,
    targets: tuple[str, ...],
    enabled: bool | None,
    as_json: bool,
) -> None:
    """Enable click-to-call for a tenant or change its settings."""
    with _open(ctx, data_dir, tenant_name) as (tenant, store):
        try:
            settings = enable_webcall(
                store,
                tenant.domain,
                origins=() if clear_origins else (origins if origins and not add else None),
                add_origins=origins if add else (),
                max_calls=max_calls,
                per_ip_per_minute=per_ip,
                per_tenant_per_minute=per_tenant,
                target=",".join(targets) if targets else None,
                enabled=enabled,
            )
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
    _print(settings, as_json)


@webcall.command("show")
@_data_dir
@_tenant
@_as_json
@click.pass_context
def webcall_show(ctx: click.Context, data_dir: str | None, tenant_name: str, as_json: bool) -> None:
    """The tenant's settings and the script tag to paste (never the secret)."""
    with _open(ctx, data_dir, tenant_name) as (tenant, store):
        settings = load_settings(store.db)
    if settings is None:
        raise click.ClickException(
            f"click-to-call is not set up for {tenant.name}: "
            f"'minicc webcall set --tenant {tenant.name} --origin https://...' enables it"
        )
    _print(settings, as_json)


@webcall.command("calls")
@_data_dir
@_tenant
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.pass_context
def webcall_calls(ctx: click.Context, data_dir: str | None, tenant_name: str, limit: int) -> None:
    """The latest web call records as JSON (page, origin, SIP Call-ID, end reason)."""
    with _open(ctx, data_dir, tenant_name) as (_tenant, store):
        records = list_records(store.db, limit)
    out = []
    for r in records:
        row = asdict(r)
        for key in ("started", "ended"):
            row[key] = datetime.fromtimestamp(row[key], UTC).isoformat(timespec="seconds")
        out.append(row)
    click.echo(json.dumps(out, indent=2))


WEBCALL_COMMANDS: tuple[click.Command, ...] = (webcall,)
