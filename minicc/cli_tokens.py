"""``minicc token create | list | revoke``: API tokens for automation and wallboards.

A token made here lasts until revoked (logins through ``POST /api/sessions`` make session
tokens that expire). It is printed once and never again: only its digest is stored. The
commands work on the data dir directly, also while the server runs; a revoked token is
refused from the next request on, since the server checks every request against the
database.

Like :mod:`minicc.cli_callcenter`, this module does not import :mod:`minicc.cli`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from minicc.cli_common import (
    data_dir_option,
    json_option,
    open_control,
    require_tenant,
    tenant_option,
)
from minicc.store.tokens import Role, TokenKind, TokenRecord, TokenStore
from minicc.tenants.models import Tenant

__all__ = ["TOKEN_COMMANDS"]


@contextmanager
def _open(
    ctx: click.Context, data_dir: str | None, tenant_name: str
) -> Iterator[tuple[Tenant, TokenStore]]:
    with open_control(ctx, data_dir) as control:
        yield require_tenant(control, tenant_name), TokenStore(control.db)


def _when(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")


def _json(record: TokenRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "tenant": record.tenant,
        "role": record.role.value,
        "label": record.subject,
        "kind": record.kind.value,
        "created_at": _when(record.created_at),
        "expires_at": _when(record.expires_at) or None,
        "revoked_at": _when(record.revoked_at) or None,
    }


_data_dir = data_dir_option
_tenant = tenant_option
_as_json = json_option


@click.group()
def token() -> None:
    """API tokens for scripts and wallboards (shown once, stored as a digest)."""


@token.command("create")
@_data_dir
@_tenant
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    required=True,
    help="What the token may do: agent, supervisor (wallboard, state overrides) or admin.",
)
@click.option("--label", required=True, help="What the token is for, e.g. 'wallboard'.")
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Expire after this many days (default: never, until revoked).",
)
@_as_json
@click.pass_context
def token_create(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    role: str,
    label: str,
    days: float | None,
    as_json: bool,
) -> None:
    """Make a token; it is printed this once."""
    if not label.strip():
        raise click.BadParameter("must not be empty", param_hint="--label")
    with _open(ctx, data_dir, tenant_name) as (tenant, tokens):
        secret, record = tokens.issue(
            tenant=tenant.name,
            role=Role(role),
            subject=label.strip(),
            kind=TokenKind.LONG_LIVED,
            now=time.time(),
            lifetime=None if days is None else days * 86400.0,
        )
    if as_json:
        click.echo(json.dumps({**_json(record), "token": secret}, indent=2))
        return
    click.echo(secret)
    click.echo(
        f"token {record.id} for {tenant.name} ({role}, {label!r}): keep it now, "
        "it is not shown again; revoke it with 'minicc token revoke'",
        err=True,
    )


@token.command("list")
@_data_dir
@_tenant
@_as_json
@click.pass_context
def token_list(ctx: click.Context, data_dir: str | None, tenant_name: str, as_json: bool) -> None:
    """The tenant's tokens (never the tokens themselves)."""
    with _open(ctx, data_dir, tenant_name) as (tenant, tokens):
        records = tokens.list(tenant.name)
    if as_json:
        click.echo(json.dumps([_json(r) for r in records], indent=2))
        return
    now = time.time()
    table = Table(title=f"API tokens of {tenant.name}")
    for column in ("id", "role", "label", "kind", "created", "expires", "status"):
        table.add_column(column)
    for r in records:
        status = "revoked" if r.revoked_at else ("expired" if not r.valid_at(now) else "valid")
        table.add_row(
            str(r.id),
            r.role.value,
            r.subject,
            r.kind.value,
            _when(r.created_at),
            _when(r.expires_at),
            status,
        )
    Console().print(table)


@token.command("revoke")
@_data_dir
@_tenant
@click.argument("token_id", type=int)
@click.pass_context
def token_revoke(ctx: click.Context, data_dir: str | None, tenant_name: str, token_id: int) -> None:
    """Revoke a token by its id (from 'minicc token list'); refused from the next request."""
    with _open(ctx, data_dir, tenant_name) as (tenant, tokens):
        record = tokens.revoke(token_id, now=time.time(), tenant=tenant.name)
    click.echo(f"revoked token {record.id} ({record.role.value}, {record.subject!r})")


TOKEN_COMMANDS: tuple[click.Command, ...] = (token,)
