"""Configuration of ``minicc serve``: defaults < TOML file < environment < command-line flags.

The TOML file keeps the serve settings under a ``[serve]`` table, so the same file can later
hold other sections without ambiguity::

    [serve]
    bind = "0.0.0.0"
    public_address = "192.0.2.10"
    sip_port = 5060
    data_dir = "data"        # relative paths are relative to this file's folder

Each key has an environment variable ``MINICC_<KEY>`` (``MINICC_SIP_PORT``) and a flag
``--<key-with-dashes>`` (``--sip-port``). The file is named by ``--config`` or
``MINICC_CONFIG``; there is no implicit config file, so what runs is what you asked for.

Every bad value raises ``ConfigError`` with one line naming the key, where the value came
from (flag, variable, or file and line), the value, and what to write instead.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "minicc"
ENV_PREFIX = "MINICC_"
CONFIG_ENV = "MINICC_CONFIG"
DATA_DIR_ENV = "MINICC_DATA_DIR"
SERVE_TABLE = "serve"
DEFAULT_TLS_PORT = 5061
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(Exception):
    """A configuration value is wrong; the message is one line fit for the user."""


def default_data_dir() -> Path:
    """The per-user data folder (``~/.local/share/minicc`` on Linux)."""
    return Path(platformdirs.user_data_dir(APP_NAME))


def resolve_data_dir(flag: str | Path | None, env: Mapping[str, str]) -> Path:
    """The data dir for management commands: ``--data-dir``, else ``MINICC_DATA_DIR``, else
    the platformdirs default. Returned absolute so messages show where it really is."""
    if flag:
        return _absolute(Path(flag))
    if env.get(DATA_DIR_ENV):
        return _absolute(Path(env[DATA_DIR_ENV]))
    return default_data_dir()


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    """Everything ``minicc serve`` needs to start; built by ``load_serve_config``."""

    data_dir: Path
    """Folder holding control.db, tenants/*.db, recordings and demo-logins.toml."""
    bind: str = "127.0.0.1"
    """Address the SIP and HTTP listeners bind to; ``0.0.0.0`` or ``::`` for all."""
    sip_port: int = 5060
    """SIP over UDP and TCP (RFC 3261 §18)."""
    http_port: int = 8080
    """REST API, event stream and the click-to-call page."""
    sip_tls_port: int | None = None
    """SIP over TLS; defaults to 5061 when both ``tls_cert`` and ``tls_key`` are set."""
    tls_cert: Path | None = None
    """PEM certificate (chain) for SIP TLS; TLS listens only when this and tls_key are set."""
    tls_key: Path | None = None
    """PEM private key matching ``tls_cert``."""
    rtp_port_min: int = 20000
    """Lowest UDP port used for RTP media."""
    rtp_port_max: int = 29999
    """Highest UDP port used for RTP media."""
    ring_timeout: float = 60.0
    """Seconds an unanswered call rings before it ends with no-answer."""
    media_relay: bool = True
    """Anchor RTP in minicc (relay, DTMF detection, recording). ``off`` passes SDP through so
    phones send media to each other directly: less work, but no recording and no NAT help."""
    log_level: str = "info"
    """One of debug, info, warning, error, critical."""
    public_address: str | None = None
    """Address put in Contact and SDP when ``bind`` is a wildcard or behind NAT."""
    guard_allow: tuple[str, ...] = ()
    """Addresses or networks (CIDR) the flood and fraud guard never blocks: carriers'
    trunks, the provider's own monitoring. A TOML list or a comma-separated string."""

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def is_wildcard_bind(self) -> bool:
        """True when binding to every interface (``0.0.0.0`` / ``::``)."""
        return self.bind in ("0.0.0.0", "::")

    @property
    def advertised_address(self) -> str:
        """The address phones should use: public_address, else bind, else loopback."""
        if self.public_address:
            return self.public_address
        if self.is_wildcard_bind:
            return "127.0.0.1" if self.bind == "0.0.0.0" else "::1"
        return self.bind

    def own_addresses(self) -> frozenset[str]:
        """Host names that address the server itself; requests to them reach the default
        tenant. The server may add its interface addresses when bound to a wildcard."""
        names = {"localhost", "127.0.0.1", "::1", self.bind, self.advertised_address}
        if self.public_address:
            names.add(self.public_address)
        names.discard("0.0.0.0")
        names.discard("::")
        return frozenset(n.lower() for n in names)


# -- value parsing ---------------------------------------------------------------------------


class _Invalid(Exception):
    """A value failed its check; the text says what to write instead."""


@dataclass(frozen=True, slots=True)
class _Origin:
    kind: str  # "flag", "env", "file", "default"
    where: str  # "--sip-port", "MINICC_SIP_PORT", "/etc/minicc.toml:3"
    base_dir: Path | None = None  # folder relative paths are resolved against

    def describe(self) -> str:
        if self.kind == "file":
            return f"in {self.where}"
        if self.kind == "default":
            return "(default)"
        return f"from {self.where}"


def _show(value: object, origin: _Origin | None = None) -> str:
    if (
        isinstance(value, str)
        and origin is not None
        and origin.kind in ("flag", "env")
        and value
        and not any(c.isspace() for c in value)
    ):
        return value  # shown as typed on the command line
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def _absolute(path: Path, base: Path | None = None) -> Path:
    path = path.expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return Path(os.path.normpath(path))


def _integer(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise _Invalid(what)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        return int(value)
    raise _Invalid(what)


def _port(value: object, origin: _Origin) -> int:
    what = "must be a port number 1-65535"
    port = _integer(value, what)
    if not 1 <= port <= 65535:
        raise _Invalid(what)
    return port


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(what)
    return value.strip()


_HOST_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _host(value: object, origin: _Origin) -> str:
    what = "must be an IP address (e.g. 127.0.0.1, 0.0.0.0 for all) or a host name"
    text = _text(value, what)
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    labels = text.removesuffix(".").split(".")
    if len(text) > 253 or not all(_HOST_LABEL.fullmatch(lb) for lb in labels):
        raise _Invalid(what)
    if all(lb.isdigit() for lb in labels):  # "300.1.2.3" is a broken IP, not a name
        raise _Invalid(what)
    return text.lower()


def _public_host(value: object, origin: _Origin) -> str:
    host = _host(value, origin)
    if host in ("0.0.0.0", "::"):
        raise _Invalid("must be a concrete address phones can reach, not a wildcard")
    return host


def _networks(value: object, origin: _Origin) -> tuple[str, ...]:
    what = "must be addresses or networks such as 203.0.113.7, 198.51.100.0/24 (comma-separated)"
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise _Invalid(what)
    networks = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise _Invalid(what)
        try:
            networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise _Invalid(f"{item.strip()!r} is not an address or network: {what}") from None
    return tuple(networks)


def _path(value: object, origin: _Origin) -> Path:
    return _absolute(Path(_text(value, "must be a path")), origin.base_dir)


def _seconds(value: object, origin: _Origin) -> float:
    what = "must be a number of seconds between 1 and 3600"
    if isinstance(value, bool):
        raise _Invalid(what)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _Invalid(what) from None
    if not isinstance(value, int | float) or not 1 <= value <= 3600:
        raise _Invalid(what)
    return float(value)


_TRUE = ("true", "on", "yes", "1")
_FALSE = ("false", "off", "no", "0")


def _bool(value: object, origin: _Origin) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise _Invalid("must be on or off (true/false)")


def _log_level(value: object, origin: _Origin) -> str:
    what = f"must be one of {', '.join(LOG_LEVELS)}"
    level = _text(value, what).lower()
    if level not in LOG_LEVELS:
        raise _Invalid(what)
    return level


_PARSERS: dict[str, Callable[[object, _Origin], Any]] = {
    "data_dir": _path,
    "bind": _host,
    "sip_port": _port,
    "http_port": _port,
    "sip_tls_port": _port,
    "tls_cert": _path,
    "tls_key": _path,
    "rtp_port_min": _port,
    "rtp_port_max": _port,
    "ring_timeout": _seconds,
    "media_relay": _bool,
    "log_level": _log_level,
    "public_address": _public_host,
    "guard_allow": _networks,
}
KEYS: tuple[str, ...] = tuple(f.name for f in fields(ServeConfig))
assert set(KEYS) == set(_PARSERS), "every ServeConfig field needs a parser"
_DEFAULTS: dict[str, object] = {f.name: f.default for f in fields(ServeConfig)}


def env_var(key: str) -> str:
    """``sip_port`` -> ``MINICC_SIP_PORT``."""
    return ENV_PREFIX + key.upper()


def flag_name(key: str) -> str:
    """``sip_port`` -> ``--sip-port``."""
    return "--" + key.replace("_", "-")


# -- the TOML file ---------------------------------------------------------------------------

_TABLE_RE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]\s*(?:#.*)?$")


def _key_line(text: str, table: str | None, key: str) -> int | None:
    """Best-effort line number of ``key`` inside ``[table]`` (None = top level).

    tomllib reports no positions for valid documents, and a message that says which line to
    edit is worth this small scan.
    """
    current: str | None = None
    key_re = re.compile(rf"^\s*(?:\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE_RE.match(line.replace("[[", "[").replace("]]", "]"))
        if header:
            current = header.group(1).strip("\"'")
            if table is None and current.split(".")[0] == key:
                return number  # the key is itself a table: [key] or [[key]]
            continue
        if current == table and key_re.match(line):
            return number
    return None


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, KEYS, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"valid keys are {', '.join(KEYS)}"


def _read_file(path: Path, origin_desc: str) -> dict[str, tuple[object, _Origin]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} ({origin_desc}) not found: check the path or create it"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"config file {path} ({origin_desc}) cannot be read ({reason}): "
            "fix its permissions or encoding (UTF-8)"
        ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not valid TOML: {exc}: fix the syntax there"
        ) from None

    def where(table: str | None, key: str) -> str:
        line = _key_line(text, table, key)
        return f"{path}:{line}" if line else str(path)

    for key in document:
        if key == SERVE_TABLE:
            continue
        if key in KEYS:
            raise ConfigError(
                f"{key} in {where(None, key)} is outside any table: "
                f"put serve settings under a [{SERVE_TABLE}] table"
            )
        raise ConfigError(
            f"unknown key {key!r} in {where(None, key)}: "
            f"this file holds a [{SERVE_TABLE}] table only"
        )
    table = document.get(SERVE_TABLE, {})
    if not isinstance(table, dict):
        raise ConfigError(
            f"{SERVE_TABLE} in {where(None, SERVE_TABLE)} must be a table: write [{SERVE_TABLE}]"
        )
    values: dict[str, tuple[object, _Origin]] = {}
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(
                f"unknown key {key!r} in {where(SERVE_TABLE, key)}: {_did_you_mean(key)}"
            )
        values[key] = (value, _Origin("file", where(SERVE_TABLE, key), path.parent))
    return values


# -- loading ---------------------------------------------------------------------------------


def load_serve_config(
    *,
    flags: Mapping[str, object | None] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> ServeConfig:
    """Build the serve configuration from every source.

    Args:
        flags: command-line values by key (``{"sip_port": "5070"}``); None means not given.
        env: the environment (``os.environ``); variables with empty values count as unset.
        config_file: path given with ``--config``; else ``MINICC_CONFIG`` from ``env``.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: one line naming the key, the source, the value and the fix.
    """
    flags = flags or {}
    env = env or {}
    unknown = set(flags) - set(KEYS)
    if unknown:
        raise ValueError(f"unknown flag keys: {sorted(unknown)}")

    raw: dict[str, tuple[object, _Origin]] = {}
    if config_file is not None:
        raw.update(_read_file(_absolute(Path(config_file)), "from --config"))
    elif env.get(CONFIG_ENV):
        raw.update(_read_file(_absolute(Path(env[CONFIG_ENV])), f"from {CONFIG_ENV}"))
    for key in KEYS:
        if env.get(env_var(key)):
            raw[key] = (env[env_var(key)], _Origin("env", env_var(key)))
    for key, value in flags.items():
        if value is not None:
            raw[key] = (value, _Origin("flag", flag_name(key)))

    values: dict[str, Any] = {}
    origins: dict[str, _Origin] = {}
    for key, (value, origin) in raw.items():
        try:
            values[key] = _PARSERS[key](value, origin)
        except _Invalid as exc:
            raise ConfigError(
                f"{key} = {_show(value, origin)} {origin.describe()}: {exc}"
            ) from None
        origins[key] = origin
    values.setdefault("data_dir", default_data_dir())

    def fail(key: str, problem: str) -> ConfigError:
        origin = origins.get(key, _Origin("default", ""))
        value = values.get(key, _DEFAULTS.get(key))
        shown = _show(str(value) if isinstance(value, Path) else value, origin)
        return ConfigError(f"{key} = {shown} {origin.describe()}: {problem}")

    _check_tls(values, origins, fail)
    config = ServeConfig(**values)
    _check_ports(config, fail)
    return config


def _check_tls(
    values: dict[str, Any],
    origins: Mapping[str, _Origin],
    fail: Callable[[str, str], ConfigError],
) -> None:
    cert, key = values.get("tls_cert"), values.get("tls_key")
    if (cert is None) != (key is None):
        present, missing = ("tls_cert", "tls_key") if cert else ("tls_key", "tls_cert")
        raise fail(present, f"{missing} is not set: set both to enable SIP over TLS, or neither")
    if cert is None:
        if "sip_tls_port" in values:
            raise fail("sip_tls_port", "SIP over TLS needs tls_cert and tls_key as well")
        return
    for name in ("tls_cert", "tls_key"):
        path: Path = values[name]
        if not path.is_file():
            raise fail(name, "file not found: give the path of a PEM file")
        if not os.access(path, os.R_OK):
            raise fail(name, "file is not readable: fix its permissions")
    values.setdefault("sip_tls_port", DEFAULT_TLS_PORT)


def _check_ports(config: ServeConfig, fail: Callable[[str, str], ConfigError]) -> None:
    if config.rtp_port_min >= config.rtp_port_max:
        raise fail("rtp_port_min", f"must be below rtp_port_max ({config.rtp_port_max})")
    # Listeners that would collide on the same transport protocol.
    tcp = {"sip_port": config.sip_port, "http_port": config.http_port}
    if config.sip_tls_port is not None:
        tcp["sip_tls_port"] = config.sip_tls_port
    seen: dict[int, str] = {}
    for name, port in tcp.items():
        if port in seen:
            raise fail(name, f"same port as {seen[port]}: give each listener its own port")
        seen[port] = name
    if config.rtp_port_min <= config.sip_port <= config.rtp_port_max:
        raise fail(
            "sip_port",
            f"inside the RTP range {config.rtp_port_min}-{config.rtp_port_max}: move one of them",
        )
