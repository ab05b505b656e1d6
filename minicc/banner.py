"""The start-up screen of ``minicc serve``: where to connect and how, in one 80x24 screen."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from minicc import __version__
from minicc.bootstrap import DEMO_IVR_NUMBER, DemoInfo
from minicc.config import ServeConfig
from minicc.tenants.models import Tenant

MAX_TENANTS_SHOWN = 3


def _hostport(host: str, port: int) -> str:
    # IPv6 references need brackets next to a port (RFC 3261 §25.1, RFC 3986 §3.2.2).
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tenants_line(tenants: Sequence[Tenant], default: str | None) -> Text:
    if not tenants:
        return Text("none yet: minicc tenant add NAME --domain D", style="yellow")
    parts = []
    for tenant in tenants[:MAX_TENANTS_SHOWN]:
        mark = ", default" if tenant.name == default else ""
        parts.append(f"{tenant.name} ({tenant.domain}{mark})")
    more = len(tenants) - MAX_TENANTS_SHOWN
    if more > 0:
        parts.append(f"+{more} more (minicc tenant list)")
    return Text(", ".join(parts))


def render_banner(
    config: ServeConfig,
    tenants: Sequence[Tenant],
    demo_logins: DemoInfo | None,
    *,
    default_tenant: str | None = None,
) -> RenderableType:
    """Build the start-up screen.

    Args:
        config: the serve configuration (addresses and ports).
        tenants: all tenants; only the first few are named.
        demo_logins: the demo tenant's clear-text logins, when known.
        default_tenant: name of the tenant reached through the server's own address.

    Returns:
        A rich renderable that fits an 80x24 terminal.
    """
    shown_bind = f"{config.bind} (all interfaces)" if config.is_wildcard_bind else config.bind
    host = config.advertised_address
    sip = f"udp+tcp {_hostport(config.bind, config.sip_port)}"
    if config.tls_enabled and config.sip_tls_port is not None:
        sip += f"   tls {_hostport(config.bind, config.sip_tls_port)}"

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold cyan", no_wrap=True)
    facts.add_column()
    facts.add_row("SIP", sip)
    if config.is_wildcard_bind:
        facts.add_row("Bind", shown_bind)
    facts.add_row("HTTP", f"http://{_hostport(host, config.http_port)}/")
    facts.add_row("Data", str(config.data_dir))
    facts.add_row("Tenants", _tenants_line(tenants, default_tenant))

    parts: list[RenderableType] = [facts, Text()]
    registrar = _hostport(host, config.sip_port)
    if demo_logins and demo_logins.logins:
        logins = Table.grid(padding=(0, 2))
        logins.add_column(style="bold", no_wrap=True)
        logins.add_column(no_wrap=True)
        logins.add_column(style="green", no_wrap=True)
        for login in demo_logins.logins:
            logins.add_row(f"  {login.extension}", login.name, login.password)
        first = demo_logins.logins[0]
        parts += [
            Text.assemble(
                ("Demo logins", "bold"),
                f"  tenant {demo_logins.tenant}, domain ",
                (demo_logins.domain, "bold"),
                ", user / name / password",
            ),
            logins,
            Text(),
            Text("Point a softphone at it", style="bold"),
            Text(f"  registrar/proxy {registrar}   domain {demo_logins.domain}"),
            Text(f"  user {first.extension}   password {first.password}   (digest auth)"),
            Text(
                f"  baresip: <sip:{first.extension}@{registrar}>;"
                f"auth_pass={first.password};regint=600"
            ),
            Text(
                f"  call {DEMO_IVR_NUMBER} for the demo IVR: 1 sales, 2 support "
                "(the agents above answer)"
            ),
        ]
    else:
        parts += [
            Text("Point a softphone at it", style="bold"),
            Text(f"  registrar/proxy {registrar}, domain = your tenant's domain"),
            Text("  add a login: minicc user add --tenant T --extension 1005 --password P"),
        ]
    if config.is_wildcard_bind and not config.public_address:
        parts.append(
            Text(
                "  from other machines use this machine's address (or set public_address)",
                style="yellow",
            )
        )
    return Panel(
        Group(*parts),
        title=f"minicc {__version__}",
        title_align="left",
        expand=False,
        border_style="cyan",
    )
