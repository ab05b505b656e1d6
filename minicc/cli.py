"""The ``minicc`` command: ``serve`` and the management commands on a data dir.

Management commands open the same SQLite files as a running server (WAL mode allows it) and
the server notices their commits through ``PRAGMA data_version``, so no restart is needed.

Every failure ends with one ``error: ...`` line on stderr and exit status 2 (bad usage or
configuration) or 1 (anything else); tracebacks are logged at debug level only (``--debug``).
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from minicc import __version__
from minicc.bootstrap import StartupError
from minicc.cli_audit import AUDIT_COMMANDS, record_command
from minicc.cli_callcenter import CALLCENTER_COMMANDS
from minicc.cli_recording import RECORDING_COMMANDS
from minicc.cli_tenants import LIFECYCLE_COMMANDS
from minicc.cli_tokens import TOKEN_COMMANDS
from minicc.cli_trunks import TRUNK_COMMANDS
from minicc.cli_tui import TUI_COMMANDS, adopt_subcommands
from minicc.cli_webcall import WEBCALL_COMMANDS
from minicc.config import ConfigError, env_var, load_serve_config, resolve_data_dir
from minicc.queue.mailbox import check_ring_seconds
from minicc.store.callcenter import CallCenterStore, tenant_prompts_dir
from minicc.store.control import (
    RECORDINGS_DIR,
    ControlStore,
    normalize_domain,
    validate_tenant_name,
)
from minicc.store.database import StoreError
from minicc.store.mailboxes import describe, set_mailbox
from minicc.store.supervisors import set_supervisor
from minicc.store.tenant import validate_extension, validate_password
from minicc.store.transfers import transfers_by_call
from minicc.store.usage import folder_bytes, summarise
from minicc.tenants.models import CallRecord, Tenant

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_RUNTIME = 1
EXIT_USAGE = 2

CDR_FIELDS = (
    "id",
    "tenant",
    "call_id",
    "from_display",
    "from_user",
    "to_user",
    "start",
    "answer",
    "end",
    "duration",
    "billable_seconds",
    "disposition",
    "hangup_side",
    "sip_cause",
    "recording_path",
    "transfers",
    "wrap_up_code",
    "wrap_up_note",
)


class CliError(Exception):
    """A runtime failure with a message fit for the user (exit status 1)."""


# -- logging ---------------------------------------------------------------------------------


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def _setup_logging(level: str) -> None:
    root = logging.getLogger("minicc")
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())


# -- the group and its error handling ------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


class MiniccGroup(click.Group):
    """A click group that turns every failure into one ``error:`` line and an exit status."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        code = self._run(args, prog_name, complete_var, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        **extra: Any,
    ) -> int:
        no_args_is_help = getattr(click.exceptions, "NoArgsIsHelpError", None)
        words = list(args) if args is not None else sys.argv[1:]
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            record_command(self, words)
        except click.exceptions.UsageError as exc:
            if no_args_is_help is not None and isinstance(exc, no_args_is_help):
                click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
                return 0
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            return _fail(_one_line(exc.format_message()) + hint, EXIT_USAGE)
        except ConfigError as exc:
            return _fail(str(exc), EXIT_USAGE)
        except click.ClickException as exc:
            return _fail(_one_line(exc.format_message()), exc.exit_code)
        except (CliError, StoreError, StartupError) as exc:
            logger.debug("command failed", exc_info=True)
            return _fail(str(exc), EXIT_RUNTIME)
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("", err=True)
            return 130
        except BrokenPipeError:
            # `minicc cdr export | head`: the reader left; not an error worth a message.
            return 0
        except Exception as exc:
            logger.debug("unexpected failure", exc_info=True)
            return _fail(
                f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)",
                EXIT_RUNTIME,
            )
        return result if isinstance(result, int) else 0


def _fail(message: str, code: int) -> int:
    click.echo(f"error: {message}", err=True)
    return code


@dataclass
class _State:
    data_dir: str | None = None


def data_dir_option(fn: F) -> F:
    """``--data-dir`` on a subcommand; it overrides the group's option."""
    return click.option(
        "--data-dir",
        "data_dir",
        type=click.Path(file_okay=False, path_type=str),
        default=None,
        help=f"Data folder (default: ${env_var('data_dir')}, else the per-user data folder).",
    )(fn)


def _data_dir(ctx: click.Context, data_dir: str | None) -> Path:
    state = ctx.find_object(_State)
    flag = data_dir or (state.data_dir if state else None)
    return resolve_data_dir(flag, os.environ)


@contextmanager
def _control(ctx: click.Context, data_dir: str | None) -> Iterator[ControlStore]:
    store = ControlStore(_data_dir(ctx, data_dir))
    try:
        yield store
    finally:
        store.close()


def _tenant(control: ControlStore, name_or_domain: str) -> Tenant:
    tenant = control.get_tenant(name_or_domain)
    if tenant is None:
        raise CliError(
            f"no tenant named {name_or_domain!r}: see 'minicc tenant list' for the names"
        )
    return tenant


def _usage(exc: StoreError) -> click.UsageError:
    return click.UsageError(str(exc))


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@click.group(
    name="minicc", cls=MiniccGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="minicc")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help=f"Data folder (default: ${env_var('data_dir')}, else the per-user data folder).",
)
@click.option("--debug", is_flag=True, help="Log debug details, tracebacks included.")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, debug: bool) -> None:
    """minicc: a terminal-first call center with its own SIP softswitch."""
    _setup_logging("debug" if debug else "warning")
    ctx.obj = _State(data_dir=data_dir)
    ctx.meta["minicc.debug"] = debug


# -- serve -----------------------------------------------------------------------------------


def _serve_flag(name: str, help_text: str) -> Callable[[F], F]:
    return click.option(f"--{name}", default=None, metavar="VALUE", help=help_text)


@cli.command()
@data_dir_option
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="TOML file with a [serve] table (default: $MINICC_CONFIG).",
)
@_serve_flag("bind", "Address to listen on (default 127.0.0.1; 0.0.0.0 for all).")
@_serve_flag("sip-port", "SIP UDP/TCP port (default 5060).")
@_serve_flag("http-port", "HTTP port for the API and web page (default 8080).")
@_serve_flag("sip-tls-port", "SIP TLS port (default 5061 when a certificate is set).")
@_serve_flag("tls-cert", "PEM certificate for SIP TLS.")
@_serve_flag("tls-key", "PEM private key for SIP TLS.")
@_serve_flag("rtp-port-min", "Lowest RTP port (default 20000).")
@_serve_flag("rtp-port-max", "Highest RTP port (default 29999).")
@_serve_flag("ring-timeout", "Seconds before an unanswered call gives up (default 60).")
@_serve_flag("media-relay", "on (default): RTP through minicc; off: phones send it directly.")
@_serve_flag("log-level", "debug, info, warning or error (default info).")
@_serve_flag("public-address", "Address phones reach us at, put in Contact/SDP.")
@_serve_flag("guard-allow", "Addresses/networks the flood guard never blocks (comma-separated).")
@click.option(
    "--check",
    is_flag=True,
    help="Validate the configuration, prepare the data dir, check the ports, show the "
    "banner, then exit.",
)
@click.pass_context
def serve(ctx: click.Context, config_file: str | None, check: bool, **flags: str | None) -> None:
    """Run the call center (creates a demo tenant on the first run).

    Every option can also be set as MINICC_<OPTION> (MINICC_SIP_PORT) or in the config file.
    """
    # Imported here: they pull in nothing heavy, but keep `minicc tenant ...` lean.
    from minicc.banner import render_banner
    from minicc.bootstrap import check_ports, ensure_demo, load_demo_logins, prepare_data_dir

    state = ctx.find_object(_State)
    if flags.get("data_dir") is None and state is not None:
        flags["data_dir"] = state.data_dir
    config = load_serve_config(flags=flags, env=os.environ, config_file=config_file)
    debug = ctx.meta.get("minicc.debug") or config.log_level == "debug"
    if debug:
        _setup_logging("debug")
    prepare_data_dir(config.data_dir)
    with ControlStore(config.data_dir) as control:
        demo = ensure_demo(control) or load_demo_logins(config.data_dir)
        tenants = control.list_tenants()
        default = control.default_tenant()
    check_ports(config)
    console = Console()
    console.print(
        render_banner(config, tenants, demo, default_tenant=default.name if default else None)
    )
    if check:
        console.print("configuration OK; not starting (--check)")
        return
    console.print("Ctrl+C stops the server.")
    # Quiet until here so start-up problems read as one line; the server logs at its level.
    if not debug:
        _setup_logging(config.log_level)
    try:
        from minicc import server
    except ImportError as exc:
        raise CliError(f"the server part of minicc is missing ({exc}): reinstall minicc") from exc
    try:
        server.run(config)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        logger.debug("server failed to start", exc_info=True)
        if exc.errno == errno.EADDRINUSE:
            raise CliError(
                f"a port is already in use ({exc.strerror}): stop the other program or "
                "change --sip-port/--http-port; 'minicc serve --check' shows which"
            ) from exc
        raise CliError(f"cannot start: {exc}") from exc
    click.echo("minicc stopped.", err=True)


# -- tenant ----------------------------------------------------------------------------------


@cli.group()
def tenant() -> None:
    """Tenants (companies served by this switch): add, list, set, suspend, resume, export,
    import, delete."""


@tenant.command("add")
@data_dir_option
@click.argument("name")
@click.option("--domain", required=True, help="SIP domain of the tenant (its digest realm).")
@click.option("--json", "as_json", is_flag=True, help="Print the new tenant as JSON.")
@click.pass_context
def tenant_add(
    ctx: click.Context, data_dir: str | None, name: str, domain: str, as_json: bool
) -> None:
    """Add tenant NAME (lowercase letters, digits, '-') with its SIP domain."""
    try:
        validate_tenant_name(name)
        domain = normalize_domain(domain)
    except StoreError as exc:
        raise _usage(exc) from exc
    with _control(ctx, data_dir) as control:
        created = control.add_tenant(name, domain)
        # Create the tenant's own database now, so problems show here and not on a call.
        control.open_tenant(created).close()
    if as_json:
        _print_json(_tenant_json(created, default=False, users=0))
    else:
        click.echo(f"added tenant {created.name} (domain {created.domain})")


def _tenant_json(tenant: Tenant, *, default: bool, users: int) -> dict[str, Any]:
    return {
        "name": tenant.name,
        "domain": tenant.domain,
        "aliases": list(tenant.aliases),
        "status": tenant.status.value,
        "default": default,
        "users": users,
        "record_calls": tenant.record_calls,
        "quotas": tenant.quotas.as_dict(),
        "created_at": tenant.created_at.isoformat(),
    }


@tenant.command("set")
@data_dir_option
@click.argument("name")
@click.option(
    "--recording",
    type=click.Choice(["on", "off"]),
    default=None,
    help="Record every answered call of the tenant (two-channel WAV, one party per channel).",
)
@click.option(
    "--max-calls",
    default=None,
    metavar="N|none",
    help="Calls in progress at once; beyond it a call gets 503 (none: no limit).",
)
@click.pass_context
def tenant_set(
    ctx: click.Context,
    data_dir: str | None,
    name: str,
    recording: str | None,
    max_calls: str | None,
) -> None:
    """Change settings of tenant NAME (by name or domain)."""
    if recording is None and max_calls is None:
        raise click.UsageError("nothing to change: give --recording and/or --max-calls")
    limit = _limit(max_calls, "--max-calls") if max_calls is not None else None
    with _control(ctx, data_dir) as control:
        updated = _tenant(control, name)
        if recording is not None:
            updated = control.set_recording(name, recording == "on")
            click.echo(
                f"tenant {updated.name}: recording {'on' if updated.record_calls else 'off'}"
            )
        if max_calls is not None:
            updated = control.set_quotas(name, replace(updated.quotas, max_calls=limit))
            shown = "no limit" if limit is None else str(limit)
            click.echo(f"tenant {updated.name}: max calls {shown}")


def _limit(text: str, flag: str) -> int | None:
    if text.strip().lower() in ("none", "off", "unlimited"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise click.BadParameter(
            f"{text!r}: give a whole number of 0 or more, or none", param_hint=flag
        )
    return value


@tenant.command("list")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def tenant_list(ctx: click.Context, data_dir: str | None, as_json: bool) -> None:
    """List tenants."""
    with _control(ctx, data_dir) as control:
        default = control.default_tenant()
        rows = []
        for item in control.list_tenants():
            with control.open_tenant(item) as store:
                users = len(store.list_extensions())
            rows.append(
                _tenant_json(
                    item, default=default is not None and default.id == item.id, users=users
                )
            )
    if as_json:
        _print_json(rows)
        return
    if not rows:
        click.echo("no tenants yet: add one with 'minicc tenant add NAME --domain D'")
        return
    table = Table(title="Tenants")
    for column in ("Name", "Domain", "Aliases", "Users", "Default", "Created"):
        table.add_column(column, no_wrap=column in ("Name", "Domain"))
    for row in rows:
        table.add_row(
            row["name"],
            row["domain"],
            " ".join(row["aliases"]),
            str(row["users"]),
            "yes" if row["default"] else "",
            row["created_at"][:10],
        )
    Console().print(table)


# -- user ------------------------------------------------------------------------------------


@cli.group()
def user() -> None:
    """Add and list SIP logins (extensions) of a tenant."""


@user.command("add")
@data_dir_option
@click.option("--tenant", "tenant_name", required=True, help="Tenant name or SIP domain.")
@click.option("--extension", required=True, help="2 to 15 digits, e.g. 1005.")
@click.option("--password", required=True, help="SIP password, at least 6 characters.")
@click.option("--name", default=None, help="Display name, e.g. 'Ada Lovelace'.")
@click.option(
    "--supervisor", is_flag=True, help="May listen, whisper and barge (docs/supervisor.md)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the new login as JSON.")
@click.pass_context
def user_add(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    extension: str,
    password: str,
    name: str | None,
    supervisor: bool,
    as_json: bool,
) -> None:
    """Add a SIP login to a tenant. Only password hashes are stored."""
    try:
        validate_extension(extension)
        validate_password(password)
    except StoreError as exc:
        raise _usage(exc) from exc
    with _control(ctx, data_dir) as control:
        target = _tenant(control, tenant_name)
        with control.open_tenant(target) as store:
            added = store.add_extension(extension, password, target.domain, name)
            if supervisor:
                set_supervisor(store, extension, True)
    if as_json:
        _print_json(
            {
                "tenant": target.name,
                "domain": target.domain,
                **_user_json(added.extension, added.name, added.created_at, 0),
            }
        )
    else:
        click.echo(
            f"added extension {added.extension} to tenant {target.name} "
            f"(login {added.extension}@{target.domain})"
        )


@user.command("set")
@data_dir_option
@click.option("--tenant", "tenant_name", required=True, help="Tenant name or SIP domain.")
@click.option("--extension", required=True, help="The login to change, e.g. 1005.")
@click.option(
    "--supervisor/--no-supervisor",
    default=None,
    help="Grant or withdraw monitoring (listen, whisper, barge; docs/supervisor.md).",
)
@click.option(
    "--voicemail",
    type=click.Choice(["on", "off"]),
    default=None,
    help="Unanswered, busy or unreachable direct calls go to the extension's mailbox.",
)
@click.option(
    "--voicemail-ring",
    type=float,
    default=None,
    metavar="SECONDS",
    help="How long the phones ring before voicemail (5-120; default: the tenant's, else 20).",
)
@click.pass_context
def user_set(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    extension: str,
    supervisor: bool | None,
    voicemail: str | None,
    voicemail_ring: float | None,
) -> None:
    """Change a SIP login of a tenant."""
    if supervisor is None and voicemail is None and voicemail_ring is None:
        raise click.UsageError(
            "nothing to change: give --supervisor or --no-supervisor, --voicemail on|off "
            "or --voicemail-ring SECONDS"
        )
    try:
        validate_extension(extension)
        if voicemail_ring is not None:
            check_ring_seconds(voicemail_ring)
    except StoreError as exc:
        raise _usage(exc) from exc
    except ValueError as exc:
        raise click.UsageError(f"--voicemail-ring: {exc}") from exc
    with _control(ctx, data_dir) as control:
        target = _tenant(control, tenant_name)
        with control.open_tenant(target) as store:
            if supervisor is not None:
                set_supervisor(store, extension, supervisor)
                state = "is now a supervisor" if supervisor else "is no longer a supervisor"
                click.echo(f"extension {extension} of tenant {target.name} {state}")
            if voicemail is not None or voicemail_ring is not None:
                enabled = None if voicemail is None else voicemail == "on"
                rule = set_mailbox(store, extension, enabled=enabled, ring_seconds=voicemail_ring)
                click.echo(f"extension {extension} of tenant {target.name}: {describe(rule)}")


def _user_json(
    extension: str, name: str | None, created: datetime | None, registered: int
) -> dict[str, Any]:
    return {
        "extension": extension,
        "name": name,
        "registered": registered,
        "created_at": created.isoformat() if created else None,
    }


@user.command("list")
@data_dir_option
@click.option("--tenant", "tenant_name", required=True, help="Tenant name or SIP domain.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def user_list(ctx: click.Context, data_dir: str | None, tenant_name: str, as_json: bool) -> None:
    """List a tenant's SIP logins (never their passwords)."""
    with _control(ctx, data_dir) as control:
        target = _tenant(control, tenant_name)
        with control.open_tenant(target) as store:
            extensions = store.list_extensions()
            registered = store.binding_counts(time.time())
    rows = [
        _user_json(e.extension, e.name, e.created_at, registered.get(e.extension, 0))
        for e in extensions
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"Logins of {target.name} (domain {target.domain})")
    for column in ("Extension", "Name", "Registered", "Created"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["extension"],
            row["name"] or "",
            str(row["registered"]) if row["registered"] else "",
            (row["created_at"] or "")[:10],
        )
    Console().print(table)


# -- cdr -------------------------------------------------------------------------------------


def _parse_when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date: use ISO 8601 such as 2024-05-01, 2024-05-01T09:30 "
            "(local time) or 2024-05-01T09:30Z",
            ctx=ctx,
            param=param,
        ) from None
    # A date without a zone means local time: what a person typing it means.
    return parsed if parsed.tzinfo is not None else parsed.astimezone()


def cdr_dict(record: CallRecord, transfers: str | None = None) -> dict[str, Any]:
    """One call record as plain JSON-ready values (times in ISO 8601 UTC); ``transfers``
    summarises the call's transfers (:func:`minicc.store.transfers.transfers_by_call`)."""
    return {
        "id": record.id,
        "tenant": record.tenant,
        "call_id": record.call_id,
        "from_display": record.from_display,
        "from_user": record.from_user,
        "to_user": record.to_user,
        "start": record.start.isoformat(),
        "answer": record.answer.isoformat() if record.answer else None,
        "end": record.end.isoformat(),
        "duration": round(record.duration, 3),
        "billable_seconds": record.billable_seconds,
        "disposition": record.disposition.value,
        "hangup_side": record.hangup_side.value,
        "sip_cause": record.sip_cause,
        "recording_path": record.recording_path,
        "transfers": transfers,
    }


def _write_cdrs(
    out: IO[str],
    records: list[CallRecord],
    fmt: str,
    transfers: Mapping[str, str] | None = None,
    wrap_ups: Mapping[str, tuple[str, str | None]] | None = None,
) -> None:
    """Write the records; ``transfers`` maps a Call-ID to its transfers' summary,
    ``wrap_ups`` to the agent's (code, note)."""
    found = transfers or {}
    rows = [
        {
            **cdr_dict(r, found.get(r.call_id)),
            "wrap_up_code": (wrap_ups or {}).get(r.call_id, (None, None))[0],
            "wrap_up_note": (wrap_ups or {}).get(r.call_id, (None, None))[1],
        }
        for r in records
    ]
    if fmt == "json":
        json.dump(rows, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=CDR_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})


@cli.group()
def cdr() -> None:
    """Call-detail records."""


@cdr.command("export")
@data_dir_option
@click.option("--tenant", "tenant_name", required=True, help="Tenant name or SIP domain.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option("--since", callback=_parse_when, help="Calls that started at or after this.")
@click.option("--until", callback=_parse_when, help="Calls that started before this.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE instead of standard output.",
)
@click.pass_context
def cdr_export(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str,
    fmt: str,
    since: datetime | None,
    until: datetime | None,
    output: Path | None,
) -> None:
    """Export a tenant's call-detail records, oldest first."""
    with _control(ctx, data_dir) as control:
        target = _tenant(control, tenant_name)
        with control.open_tenant(target) as store:
            records = store.export_cdrs(since=since, until=until)
            transfers = transfers_by_call(store.db, (r.call_id for r in records))
            wrap_ups = {
                d.call_id: (d.code, d.note)
                for d in CallCenterStore(store).call_dispositions({r.call_id for r in records})
                if d.call_id is not None
            }
    if output is None:
        _write_cdrs(sys.stdout, records, fmt, transfers, wrap_ups)
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as fh:
            _write_cdrs(fh, records, fmt, transfers, wrap_ups)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from exc
    click.echo(f"wrote {len(records)} call records to {output}", err=True)


@cli.command()
@data_dir_option
@click.option("--tenant", "tenant_name", default=None, help="Only this tenant (default: all).")
@click.option("--since", callback=_parse_when, help="Calls that started at or after this.")
@click.option("--until", callback=_parse_when, help="Calls that started before this.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def usage(
    ctx: click.Context,
    data_dir: str | None,
    tenant_name: str | None,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    """Usage per tenant per day (UTC): calls, answered, billed minutes, peak concurrent
    calls; and each tenant's storage now."""
    rows: list[dict[str, Any]] = []
    storage: dict[str, int] = {}
    with _control(ctx, data_dir) as control:
        tenants = [_tenant(control, tenant_name)] if tenant_name else control.list_tenants()
        for item in tenants:
            with control.open_tenant(item) as store:
                records = store.export_cdrs(since=since, until=until)
            storage[item.name] = folder_bytes(
                control.tenant_path(item),
                control.data_dir / RECORDINGS_DIR / item.name,
                tenant_prompts_dir(control.data_dir, item.name),
            )
            for day in summarise(item.name, records):
                rows.append(
                    {
                        "tenant": day.tenant,
                        "day": day.day.isoformat(),
                        "calls": day.calls,
                        "answered": day.answered,
                        "minutes": day.minutes,
                        "peak_concurrent": day.peak_concurrent,
                    }
                )
    if as_json:
        _print_json({"days": rows, "storage_bytes": storage})
        return
    table = Table(title="Usage per tenant and day (UTC)")
    for column in ("Tenant", "Day", "Calls", "Answered", "Minutes", "Peak concurrent"):
        table.add_column(column, justify="right" if column not in ("Tenant", "Day") else "left")
    for row in rows:
        table.add_row(
            row["tenant"],
            row["day"],
            str(row["calls"]),
            str(row["answered"]),
            f"{row['minutes']:.1f}",
            str(row["peak_concurrent"]),
        )
    console = Console()
    console.print(table)
    for name, size in storage.items():
        console.print(f"{name}: {size / 1_000_000:.1f} MB stored (database, recordings, prompts)")


# -- call center: queue, number, ivr, agent, vip (minicc/cli_callcenter.py) ----------------

for _command in (
    *CALLCENTER_COMMANDS,
    *TOKEN_COMMANDS,
    *AUDIT_COMMANDS,
    *TRUNK_COMMANDS,
    *WEBCALL_COMMANDS,
):
    cli.add_command(_command)
for _command in LIFECYCLE_COMMANDS:
    tenant.add_command(_command)
for _command in TUI_COMMANDS:  # `minicc agent` alone: the console; `agent list`: as before
    adopt_subcommands(_command, cli.commands.get(_command.name or ""))
    cli.add_command(_command)

# -- voicemail and disposition codes (minicc/cli_recording.py) -------------------------------

for _command in RECORDING_COMMANDS:
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (``minicc`` and ``python -m minicc``)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="minicc")
