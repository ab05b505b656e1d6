"""Per-tenant webcall settings, kept in the tenant's own database.

A tenant that enables click-to-call gets:

- a *public key* (``wk_...``) that its web pages carry in the widget's ``<script>`` tag. It
  names the tenant and is not a secret;
- a *secret* that never leaves the server: it signs the widget's session tokens
  (:mod:`minicc.webcall.tokens`) and is the digest password of the tenant's *webcall
  extension*, the SIP identity the gateway workers call the switch as. Digest auth applies to
  web calls exactly as to phones; the extension is an ordinary one with a reserved number
  (``WEBCALL_EXTENSION``), which no phone is given a password for;
- allowed origins, a cap on concurrent web calls, per-IP and per-tenant rate limits, and the
  number web calls dial by default (an IVR or queue number).

The table is created on first use (``CREATE TABLE IF NOT EXISTS``) rather than by a numbered
migration, so this feature does not take a schema version other branches also need.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from minicc.store.database import Database, StoreError
from minicc.store.tenant import TenantStore

__all__ = [
    "WEBCALL_EXTENSION",
    "WebcallSettings",
    "enable_webcall",
    "load_settings",
    "normalize_origin",
    "save_settings",
]

WEBCALL_EXTENSION = "999999999999999"
"""The reserved extension (15 digits, the longest allowed) web calls come from."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webcall_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    public_key TEXT NOT NULL,
    secret TEXT NOT NULL,
    origins TEXT NOT NULL DEFAULT '[]',
    max_calls INTEGER NOT NULL DEFAULT 5,
    per_ip_per_minute INTEGER NOT NULL DEFAULT 10,
    per_tenant_per_minute INTEGER NOT NULL DEFAULT 60,
    target TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1
)
"""

_NUMBER = re.compile(r"^[0-9*#+]{1,32}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebcallSettings:
    public_key: str
    secret: str
    """Signs session tokens; the webcall extension's SIP password. Never sent to browsers."""
    origins: tuple[str, ...] = ()
    """``scheme://host[:port]`` pages the widget may run on; empty: none (off)."""
    max_calls: int = 5
    """Concurrent web calls of the tenant."""
    per_ip_per_minute: int = 10
    """Session and call requests per visitor address per minute."""
    per_tenant_per_minute: int = 60
    """Calls started per minute, all visitors together."""
    target: str = ""
    """The number a web call dials when the page names none (IVR or queue number)."""
    enabled: bool = True

    @property
    def extension(self) -> str:
        return WEBCALL_EXTENSION


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, without path or default port.

    Raises:
        StoreError: not an http(s) origin, naming the expected form.
    """
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(
            f"origin {origin!r} is invalid: use scheme://host[:port], e.g. https://www.example.com"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise StoreError(f"origin {origin!r} must not have a path, query or user: scheme://host")
    host = parts.hostname.lower()
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


def validate_target(target: str) -> str:
    if target and not _NUMBER.fullmatch(target):
        raise StoreError(f"target {target!r} is invalid: use the number to dial, e.g. 8000")
    return target


def _ensure(db: Database) -> None:
    db.write(lambda conn: conn.execute(_SCHEMA))


def _row(row: sqlite3.Row) -> WebcallSettings:
    return WebcallSettings(
        public_key=row["public_key"],
        secret=row["secret"],
        origins=tuple(json.loads(row["origins"])),
        max_calls=row["max_calls"],
        per_ip_per_minute=row["per_ip_per_minute"],
        per_tenant_per_minute=row["per_tenant_per_minute"],
        target=row["target"],
        enabled=bool(row["enabled"]),
    )


def load_settings(db: Database) -> WebcallSettings | None:
    """The tenant's settings, None when webcall was never enabled. Reads only."""

    def read(conn: sqlite3.Connection) -> WebcallSettings | None:
        has = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='webcall_settings'"
        ).fetchone()
        if not has:
            return None
        row = conn.execute("SELECT * FROM webcall_settings WHERE id = 1").fetchone()
        return _row(row) if row else None

    return db.read(read)


def save_settings(db: Database, settings: WebcallSettings) -> None:
    _ensure(db)

    def write(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO webcall_settings (id, public_key, secret, origins,"
            " max_calls, per_ip_per_minute, per_tenant_per_minute, target, enabled)"
            " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                settings.public_key,
                settings.secret,
                json.dumps(list(settings.origins)),
                settings.max_calls,
                settings.per_ip_per_minute,
                settings.per_tenant_per_minute,
                settings.target,
                int(settings.enabled),
            ),
        )

    db.write(write)


def enable_webcall(
    store: TenantStore,
    realm: str,
    *,
    origins: tuple[str, ...] | None = None,
    add_origins: tuple[str, ...] = (),
    max_calls: int | None = None,
    per_ip_per_minute: int | None = None,
    per_tenant_per_minute: int | None = None,
    target: str | None = None,
    enabled: bool | None = None,
) -> WebcallSettings:
    """Create or change the tenant's settings; the first time, make the public key, the
    secret and the webcall extension (digest realm ``realm``, the tenant's SIP domain).

    Raises:
        StoreError: a value out of range or malformed, naming the field.
    """
    for name, value in (
        ("max-calls", max_calls),
        ("per-ip", per_ip_per_minute),
        ("per-tenant", per_tenant_per_minute),
    ):
        if value is not None and not 0 <= value <= 10_000:
            raise StoreError(f"{name} {value} is out of range: use 0 to 10000")
    current = load_settings(store.db)
    if current is None:
        current = WebcallSettings(
            public_key="wk_" + secrets.token_urlsafe(18), secret=secrets.token_urlsafe(32)
        )
        if store.credentials(WEBCALL_EXTENSION) is None:
            store.add_extension(WEBCALL_EXTENSION, current.secret, realm, name="Web callers")
    changes: dict[str, object] = {}
    if origins is not None:
        changes["origins"] = tuple(dict.fromkeys(normalize_origin(o) for o in origins))
    if add_origins:
        base = changes.get("origins", current.origins)
        merged = (*base, *(normalize_origin(o) for o in add_origins))  # type: ignore[misc]
        changes["origins"] = tuple(dict.fromkeys(merged))
    if max_calls is not None:
        changes["max_calls"] = max_calls
    if per_ip_per_minute is not None:
        changes["per_ip_per_minute"] = per_ip_per_minute
    if per_tenant_per_minute is not None:
        changes["per_tenant_per_minute"] = per_tenant_per_minute
    if target is not None:
        changes["target"] = validate_target(target)
    if enabled is not None:
        changes["enabled"] = enabled
    updated = replace(current, **changes)  # type: ignore[arg-type]
    save_settings(store.db, updated)
    return updated
