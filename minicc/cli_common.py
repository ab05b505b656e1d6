"""Plumbing the management commands share: the ``--data-dir``/``--tenant``/``--json``
options and opening the control database of the right data dir.

A subcommand's ``--data-dir`` beats the group's, which beats ``$MINICC_DATA_DIR``, which
beats the per-user default. Like the command modules, this does not import
:mod:`minicc.cli`, so there is no import cycle.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from minicc.config import env_var, resolve_data_dir
from minicc.store.control import ControlStore
from minicc.tenants.models import Tenant

__all__ = [
    "command_data_dir",
    "data_dir_option",
    "json_option",
    "open_control",
    "require_tenant",
    "tenant_option",
]

data_dir_option = click.option(
    "--data-dir",
    "data_dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help=f"Data folder (default: ${env_var('data_dir')}, else the per-user data folder).",
)
tenant_option = click.option(
    "--tenant", "tenant_name", required=True, help="Tenant name or SIP domain."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def command_data_dir(ctx: click.Context, data_dir: str | None) -> Path:
    return resolve_data_dir(data_dir or ctx.find_root().params.get("data_dir"), os.environ)


@contextmanager
def open_control(ctx: click.Context, data_dir: str | None) -> Iterator[ControlStore]:
    with ControlStore(command_data_dir(ctx, data_dir)) as control:
        yield control


def require_tenant(control: ControlStore, name: str) -> Tenant:
    """The tenant named (or whose domain is) ``name``; a one-line error otherwise."""
    tenant = control.get_tenant(name)
    if tenant is None:
        raise click.ClickException(
            f"no tenant named {name!r}: see 'minicc tenant list' for the names"
        )
    return tenant
