"""First run and start-up checks for ``minicc serve``.

- ``prepare_data_dir``: the data folder exists and is writable, or one clear error.
- ``check_ports``: the listeners' ports are free, or one clear error naming the flag to change.
- ``ensure_demo``: on the very first run, a ``demo`` tenant with three extensions whose
  generated passwords are kept in ``demo-logins.toml`` (0600) so later starts can show them
  again; the database only holds HA1 values, which cannot be turned back into passwords.
- ``ensure_demo_callcenter``: the demo tenant's call center (number 8000 -> an IVR, queues
  ``sales`` and ``support`` with the three agents), added once: on the first run, or on the
  first start of a version that has it for a demo tenant made before.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import socket
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from minicc.config import ServeConfig, env_var, flag_name
from minicc.queue.ivr_schema import FlowError
from minicc.queue.models import Strategy
from minicc.store.callcenter import AgentPresence, CallCenterStore, queue_config
from minicc.store.control import ControlStore
from minicc.store.database import StoreError

logger = logging.getLogger(__name__)

DEMO_TENANT = "demo"
DEMO_DOMAIN = "demo.localhost"
DEMO_EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("1001", "Agent One"),
    ("1002", "Agent Two"),
    ("1003", "Agent Three"),
)
DEMO_LOGINS_FILE = "demo-logins.toml"
DEMO_IVR_NUMBER = "8000"
DEMO_FLOW = "demo_main"
DEMO_QUEUES = ("sales", "support")
DEMO_DISPOSITIONS: tuple[tuple[str, str], ...] = (
    ("resolved", "Resolved"),
    ("callback-needed", "Callback needed"),
    ("escalated", "Escalated"),
    ("no-answer", "No answer"),
)
DEMO_CALLCENTER_KEY = "demo_callcenter_created"
"""Tenant setting marking that the demo call center was made: it is never made twice, so
an admin who deletes a demo queue does not see it come back on the next start."""


class StartupError(Exception):
    """Start-up cannot continue; the message is one line naming the problem and the fix."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoLogin:
    """One demo extension with its clear-text password."""

    extension: str
    """SIP user name."""
    name: str
    """Display name."""
    password: str
    """Generated password, shown in the banner."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoInfo:
    """The demo tenant's logins, as written to ``demo-logins.toml``."""

    tenant: str
    """Tenant name (``demo``)."""
    domain: str
    """SIP domain and digest realm (``demo.localhost``)."""
    logins: tuple[DemoLogin, ...]
    """Extensions with their passwords."""


def default_password() -> str:
    """A random password easy to type into a softphone: 12 URL-safe characters."""
    return secrets.token_urlsafe(9)


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data dir (mode 0700) if needed and prove it is writable.

    Raises:
        StartupError: naming the folder, the reason and how to pick another one.
    """
    fix = f"choose another with --data-dir or {env_var('data_dir')}, or fix its permissions"
    if data_dir.exists() and not data_dir.is_dir():
        raise StartupError(f"data dir {data_dir} is a file, not a folder: {fix}")
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = data_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"data dir {data_dir} is not usable ({exc.strerror or exc}): {fix}"
        ) from None


def _listeners(config: ServeConfig) -> list[tuple[str, str, int, socket.SocketKind]]:
    found = [
        ("SIP", "sip_port", config.sip_port, socket.SOCK_DGRAM),
        ("SIP", "sip_port", config.sip_port, socket.SOCK_STREAM),
        ("HTTP", "http_port", config.http_port, socket.SOCK_STREAM),
    ]
    if config.tls_enabled and config.sip_tls_port is not None:
        found.append(("SIP TLS", "sip_tls_port", config.sip_tls_port, socket.SOCK_STREAM))
    return found


def check_ports(config: ServeConfig) -> None:
    """Try to bind each listening port once, then release it.

    This is a pre-flight check so that ``serve --check`` and start-up can report a busy port
    in one line; the real sockets are opened by the switch's transport afterwards. TCP
    probes set SO_REUSEADDR like asyncio's servers do, so a port in TIME_WAIT is not
    reported as busy.

    Raises:
        StartupError: the first port that cannot be bound, with the setting to change.
    """
    try:
        infos = socket.getaddrinfo(config.bind, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StartupError(
            f"bind address {config.bind!r} does not resolve ({exc.strerror}): "
            f"set --bind / {env_var('bind')} to an address of this machine"
        ) from None
    family, _, _, _, sockaddr = infos[0]
    host = sockaddr[0]
    for label, key, port, kind in _listeners(config):
        proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
        sock = socket.socket(family, kind)
        try:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError as exc:
            raise StartupError(_bind_error(label, key, port, proto, config.bind, exc)) from None
        finally:
            sock.close()


def _bind_error(label: str, key: str, port: int, proto: str, bind: str, exc: OSError) -> str:
    change = f"{flag_name(key)} / {env_var(key)} / {key} in the config file"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{label} port {port}/{proto} on {bind} is already in use: stop the program "
            f"using it or choose another port with {change}"
        )
    if exc.errno == errno.EACCES:
        return (
            f"{label} port {port}/{proto} on {bind} needs privileges: use a port above 1023 "
            f"with {change}"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"bind address {bind} is not an address of this machine: set --bind / "
            f"{env_var('bind')} to one of its addresses, or 0.0.0.0 for all"
        )
    return f"cannot listen on {label} port {port}/{proto} on {bind} ({exc.strerror}): {change}"


def ensure_demo(
    control: ControlStore, token_factory: Callable[[], str] = default_password
) -> DemoInfo | None:
    """Create the demo tenant on the first run (no tenants at all yet).

    Args:
        control: the data dir's control store.
        token_factory: returns one new password per call (injected by tests).

    Returns:
        The demo logins when they were just created, else None.

    Raises:
        StoreError: the tenant database or the logins file cannot be written.
    """
    if control.list_tenants():
        _demo_callcenter(control)
        return None
    try:
        tenant = control.add_tenant(DEMO_TENANT, DEMO_DOMAIN)
    except StoreError:
        # Another process (a second `minicc serve`, a CLI command) won the first-run race.
        if control.get_tenant(DEMO_TENANT) is not None:
            _demo_callcenter(control)
            return None
        raise
    logins = tuple(
        DemoLogin(extension=ext, name=name, password=token_factory())
        for ext, name in DEMO_EXTENSIONS
    )
    with control.open_tenant(tenant) as store:
        for login in logins:
            store.add_extension(login.extension, login.password, tenant.domain, login.name)
    control.set_default_tenant(tenant.name)
    _demo_callcenter(control)
    info = DemoInfo(tenant=tenant.name, domain=tenant.domain, logins=logins)
    write_demo_logins(control.data_dir, info)
    logger.info("created demo tenant %s with %d extensions", tenant.name, len(logins))
    return info


def ensure_demo_callcenter(control: ControlStore) -> bool:
    """Give the demo tenant its call center, once in its life.

    Number 8000 leads to the IVR ``demo_main`` ("1 for sales, 2 for support"), queues
    ``sales`` and ``support`` (longest idle, announcements every 30 s, a callback offered
    above 120 s of estimated wait) have the demo extensions as members, and those agents
    start available. Extensions the admin has deleted are left out.

    Returns:
        True when it was created now; False when there is no demo tenant or it was made
        before (by this process or another: the claim is one atomic write).

    Raises:
        StoreError: the tenant database cannot be written, or the shipped flow does not
            load (a packaging fault); the claim is withdrawn so the next start retries.
    """
    # Imported here: the prompt catalogue pulls in the audio code, needed only this once.
    from minicc.queue.prompts import PromptCatalogue

    tenant = control.get_tenant(DEMO_TENANT)
    if tenant is None:
        return False
    with control.open_tenant(tenant) as tenant_store:
        store = CallCenterStore(tenant_store)
        if not store.claim_once(DEMO_CALLCENTER_KEY):
            return False
        try:
            agents = [e.extension for e in tenant_store.list_extensions()]
            agents = [ext for ext, _name in DEMO_EXTENSIONS if ext in agents]
            for name in DEMO_QUEUES:
                # Every step tolerates what an earlier, interrupted attempt left behind.
                if store.get_queue(name) is None:
                    store.add_queue(
                        queue_config(
                            name,
                            strategy=Strategy.LONGEST_IDLE,
                            announce_interval=30.0,
                            callback_threshold=120.0,
                        )
                    )
                for extension in agents:
                    store.add_member(name, extension)
            for extension in agents:
                store.set_agent_state(extension, AgentPresence.AVAILABLE)
            for code, label in DEMO_DISPOSITIONS:
                store.add_disposition(code, label)
            flow = resources.files("minicc.queue").joinpath("flows").joinpath(f"{DEMO_FLOW}.toml")
            store.load_ivr(
                flow.read_text(encoding="utf-8"),
                prompt_exists=PromptCatalogue().exists,
                filename=f"{DEMO_FLOW}.toml",
            )
            store.add_number(DEMO_IVR_NUMBER, f"ivr:{DEMO_FLOW}")
        except (StoreError, FlowError, OSError) as exc:
            store.delete_setting(DEMO_CALLCENTER_KEY)
            reason = "; ".join(str(exc).splitlines())
            raise StoreError(f"cannot set up the demo call center: {reason}") from exc
    logger.info(
        "demo tenant: number %s -> IVR %s, queues %s with agents %s",
        DEMO_IVR_NUMBER,
        DEMO_FLOW,
        ", ".join(DEMO_QUEUES),
        ", ".join(agents),
    )
    return True


def _demo_callcenter(control: ControlStore) -> None:
    """The demo call center is a convenience: failing to make it must not keep the server
    from starting (the switch works without it), so it is logged and retried next start."""
    try:
        ensure_demo_callcenter(control)
    except StoreError as exc:
        logger.warning("%s (will retry on the next start)", exc)


def _toml_string(value: str) -> str:
    # A JSON string with ASCII escapes is also a valid TOML basic string.
    return json.dumps(value, ensure_ascii=True)


def write_demo_logins(data_dir: Path, info: DemoInfo) -> Path:
    """Write ``demo-logins.toml`` readable by the owner only (0600), atomically."""
    lines = [
        "# Demo logins created on the first run of minicc serve.",
        "# The database keeps only password hashes; this file is how they can be shown again.",
        f"tenant = {_toml_string(info.tenant)}",
        f"domain = {_toml_string(info.domain)}",
    ]
    for login in info.logins:
        lines += [
            "",
            "[[login]]",
            f"extension = {_toml_string(login.extension)}",
            f"name = {_toml_string(login.name)}",
            f"password = {_toml_string(login.password)}",
        ]
    target = data_dir / DEMO_LOGINS_FILE
    temp = data_dir / f".{DEMO_LOGINS_FILE}.{os.getpid()}.tmp"
    try:
        # Created 0600 from the start: the secret is never readable by others, not even
        # briefly between create and chmod.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return target


def load_demo_logins(data_dir: Path) -> DemoInfo | None:
    """Read ``demo-logins.toml`` back; None when absent or unreadable (logged)."""
    path = data_dir / DEMO_LOGINS_FILE
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        return DemoInfo(
            tenant=str(document["tenant"]),
            domain=str(document["domain"]),
            logins=tuple(
                DemoLogin(
                    extension=str(item["extension"]),
                    name=str(item["name"]),
                    password=str(item["password"]),
                )
                for item in document.get("login", [])
            ),
        )
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        logger.warning("ignoring unreadable %s: %s", path, exc)
        return None
