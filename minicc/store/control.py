"""The control database: which tenants exist, their SIP domains, global settings.

Each tenant's own data (extensions, registrations, call records) lives in a separate file,
``<data_dir>/tenants/<name>.db`` (see ``minicc.store.tenant``), so no query on one tenant's
data can ever return another's, and a tenant can be moved or deleted as one file.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from minicc.store.database import Database, Migration, StoreError
from minicc.store.tenant import TenantStore
from minicc.tenants.models import Quotas, Tenant, TenantStatus

logger = logging.getLogger(__name__)

CONTROL_DB = "control.db"
TENANTS_DIR = "tenants"
RECORDINGS_DIR = "recordings"
DEFAULT_TENANT_KEY = "default_tenant"

MIGRATIONS: tuple[Migration, ...] = (
    """
    CREATE TABLE tenants (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        domain TEXT NOT NULL UNIQUE COLLATE NOCASE,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended'))
    );
    -- Every domain a tenant answers to, its primary one included, so that one primary key
    -- keeps a domain from ever belonging to two tenants.
    CREATE TABLE tenant_domains (
        domain TEXT PRIMARY KEY COLLATE NOCASE,
        tenant_id INTEGER NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        is_primary INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tenant_domains_tenant ON tenant_domains(tenant_id);
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: per-tenant call recording (issue 2: "optional per-tenant recording of bridged calls").
    "ALTER TABLE tenants ADD COLUMN record_calls INTEGER NOT NULL DEFAULT 0;",
    # 3: API tokens (issue 4). Only a SHA-256 digest of each token is kept: a stolen database
    # gives no usable token. Sessions expire; admin tokens live until revoked.
    """
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        tenant TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
        subject TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('session', 'long-lived')),
        created_at REAL NOT NULL,
        expires_at REAL,
        revoked_at REAL
    );
    CREATE INDEX api_tokens_tenant ON api_tokens(tenant);
    """,
    # 4: the audit log of administrative changes (issue 6): who, what, when, from where.
    """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        source TEXT NOT NULL,
        tenant TEXT,
        action TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX audit_log_tenant_at ON audit_log(tenant, at);
    """,
    # 5: per-tenant quotas (issue 6), a JSON object so a new limit needs no migration.
    "ALTER TABLE tenants ADD COLUMN quotas TEXT NOT NULL DEFAULT '{}';",
    # 6: trunks to carriers and per-tenant dial rules (issue 6). One address, one trunk:
    # an inbound call is given to a tenant by the address it comes from.
    """
    CREATE TABLE trunks (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        host TEXT NOT NULL UNIQUE,
        port INTEGER NOT NULL DEFAULT 5060,
        inbound INTEGER NOT NULL DEFAULT 1,
        outbound INTEGER NOT NULL DEFAULT 1,
        caller_id TEXT,
        UNIQUE (tenant, name)
    );
    ALTER TABLE tenants ADD COLUMN dial_rules TEXT NOT NULL DEFAULT '{}';
    """,
)

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
# RFC 1123 §2.1 host name label: letters, digits, hyphen; not starting or ending with one.
_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def validate_tenant_name(name: str) -> str:
    """Return ``name`` if it is a valid tenant slug.

    Raises:
        StoreError: naming the rule broken. Slugs become file names, hence the strict rule.
    """
    if not _NAME_RE.fullmatch(name):
        raise StoreError(
            f"tenant name {name!r} is invalid: use 1-32 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit (e.g. 'acme')"
        )
    return name


def normalize_domain(domain: str) -> str:
    """Return the domain lower-cased without a trailing dot, after checking its syntax.

    Raises:
        StoreError: the domain is not a host name (IP addresses are refused: the server's
            own addresses already reach the default tenant).
    """
    value = domain.strip().lower().removesuffix(".")
    hint = "use a host name such as 'acme.example.com'"
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        pass
    else:
        raise StoreError(f"domain {domain!r} is an IP address: {hint}")
    labels = value.split(".")
    if not value or len(value) > 253 or not all(_LABEL_RE.fullmatch(lb) for lb in labels):
        raise StoreError(f"domain {domain!r} is invalid: {hint}")
    return value


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ControlStore:
    """The control database of one data dir.

    Args:
        data_dir: the minicc data folder; created (mode 0700) if missing.

    Raises:
        StoreError: the folder or database cannot be created or opened.
    """

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            (self.data_dir / TENANTS_DIR).mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create data dir {self.data_dir}: {exc.strerror or exc}"
            ) from exc
        self.db = Database(self.data_dir / CONTROL_DB, MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ControlStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def data_version(self) -> int:
        """Changes whenever another connection commits (tenant added by the CLI...)."""
        return self.db.data_version()

    # -- tenants ---------------------------------------------------------------------------

    def add_tenant(self, name: str, domain: str) -> Tenant:
        """Create a tenant with its primary SIP domain.

        Raises:
            StoreError: invalid or already-taken name or domain; the message names which.
        """
        name = validate_tenant_name(name)
        domain = normalize_domain(domain)

        def insert(conn: sqlite3.Connection) -> int:
            if conn.execute("SELECT 1 FROM tenants WHERE name = ?", (name,)).fetchone():
                raise StoreError(f"tenant name {name!r} is already taken")
            owner = conn.execute(
                "SELECT t.name FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id"
                " WHERE d.domain = ?",
                (domain,),
            ).fetchone()
            if owner:
                raise StoreError(f"domain {domain!r} already belongs to tenant {owner[0]!r}")
            cur = conn.execute(
                "INSERT INTO tenants (name, domain, created_at) VALUES (?, ?, ?)",
                (name, domain, _now_text()),
            )
            tenant_id = int(cur.lastrowid or 0)
            conn.execute(
                "INSERT INTO tenant_domains (domain, tenant_id, is_primary) VALUES (?, ?, 1)",
                (domain, tenant_id),
            )
            return tenant_id

        self.db.write(insert)
        logger.info("added tenant %s (%s)", name, domain)
        tenant = self.get_tenant(name)
        assert tenant is not None  # just committed by us; tenants are never deleted here
        return tenant

    def set_recording(self, tenant: str, enabled: bool) -> Tenant:
        """Turn recording of every answered call of ``tenant`` on or off.

        Raises:
            StoreError: unknown tenant.
        """
        found = self._require(tenant)
        self.db.write(
            lambda conn: conn.execute(
                "UPDATE tenants SET record_calls = ? WHERE id = ?", (int(enabled), found.id)
            )
        )
        updated = self.get_tenant(found.name)
        assert updated is not None
        return updated

    def set_quotas(self, tenant: str, quotas: Quotas) -> Tenant:
        """Replace ``tenant``'s quotas (the running server applies them at once).

        Raises:
            StoreError: unknown tenant.
        """
        found = self._require(tenant)
        text = json.dumps(quotas.as_dict(), sort_keys=True)
        self.db.write(
            lambda conn: conn.execute(
                "UPDATE tenants SET quotas = ? WHERE id = ?", (text, found.id)
            )
        )
        updated = self.get_tenant(found.name)
        assert updated is not None
        return updated

    def set_status(self, tenant: str, status: TenantStatus) -> Tenant:
        """Suspend or resume ``tenant``: a suspended one keeps its data, but its calls,
        registrations and logins are refused (the running server sees the change).

        Raises:
            StoreError: unknown tenant.
        """
        found = self._require(tenant)
        self.db.write(
            lambda conn: conn.execute(
                "UPDATE tenants SET status = ? WHERE id = ?", (status.value, found.id)
            )
        )
        updated = self.get_tenant(found.name)
        assert updated is not None
        return updated

    def delete_tenant(self, tenant: str) -> None:
        """Remove ``tenant``'s rows (domains, tokens, default mark); its files are the
        caller's business (see :mod:`minicc.store.archive`).

        Raises:
            StoreError: unknown tenant.
        """
        found = self._require(tenant)

        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM tenant_domains WHERE tenant_id = ?", (found.id,))
            conn.execute("DELETE FROM api_tokens WHERE tenant = ?", (found.name,))
            conn.execute(
                "DELETE FROM settings WHERE key = ? AND value = ?",
                (DEFAULT_TENANT_KEY, found.name),
            )
            conn.execute("DELETE FROM tenants WHERE id = ?", (found.id,))

        self.db.write(delete)
        logger.info("deleted tenant %s", found.name)

    def add_domain_alias(self, tenant: str, domain: str) -> None:
        """Make ``domain`` resolve to ``tenant`` (by name or domain) as well.

        Raises:
            StoreError: unknown tenant, invalid domain or domain already in use.
        """
        target = self._require(tenant)
        domain = normalize_domain(domain)

        def insert(conn: sqlite3.Connection) -> None:
            owner = conn.execute(
                "SELECT t.name FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id"
                " WHERE d.domain = ?",
                (domain,),
            ).fetchone()
            if owner:
                raise StoreError(f"domain {domain!r} already belongs to tenant {owner[0]!r}")
            conn.execute(
                "INSERT INTO tenant_domains (domain, tenant_id) VALUES (?, ?)",
                (domain, target.id),
            )

        self.db.write(insert)

    def list_tenants(self) -> list[Tenant]:
        """Return all tenants ordered by name."""
        return self.db.read(lambda conn: self._select(conn, "1", ()))

    def get_tenant(self, name_or_domain: str) -> Tenant | None:
        """Look a tenant up by its name, else by any of its domains."""
        key = name_or_domain.strip().lower().removesuffix(".")

        def find(conn: sqlite3.Connection) -> Tenant | None:
            found = self._select(conn, "t.name = ?", (key,))
            if not found:
                found = self._select(
                    conn,
                    "t.id = (SELECT tenant_id FROM tenant_domains WHERE domain = ?)",
                    (key,),
                )
            return found[0] if found else None

        return self.db.read(find)

    def resolve_domain(self, domain: str, own_addresses: Iterable[str] = ()) -> Tenant | None:
        """Return the tenant a request for ``domain`` belongs to.

        Args:
            domain: host part of the Request-URI/To (no port).
            own_addresses: the server's own addresses (bind, public address, ``localhost``);
                a request to one of them goes to the default tenant.

        Returns:
            The tenant, or None when nobody serves the domain.
        """
        key = domain.strip().lower().removesuffix(".")
        if key.startswith("[") and key.endswith("]"):  # IPv6 reference (RFC 3261 §25.1)
            key = key[1:-1]
        own = {a.strip().lower().strip("[]") for a in own_addresses}

        def find(conn: sqlite3.Connection) -> Tenant | None:
            found = self._select(
                conn, "t.id = (SELECT tenant_id FROM tenant_domains WHERE domain = ?)", (key,)
            )
            if found:
                return found[0]
            if key in own:
                return self._default(conn)
            return None

        return self.db.read(find)

    def default_tenant(self) -> Tenant | None:
        """The tenant serving requests addressed to the server itself (the demo at first)."""
        return self.db.read(self._default)

    def set_default_tenant(self, tenant: str) -> None:
        """Make ``tenant`` (name or domain) the default tenant.

        Raises:
            StoreError: no such tenant.
        """
        self.set_setting(DEFAULT_TENANT_KEY, self._require(tenant).name)

    def tenant_path(self, tenant: Tenant) -> Path:
        """Return ``<data_dir>/tenants/<name>.db``."""
        return self.data_dir / TENANTS_DIR / f"{validate_tenant_name(tenant.name)}.db"

    def open_tenant(self, tenant: Tenant) -> TenantStore:
        """Open the tenant's own database; the caller owns (and closes) the store."""
        return TenantStore(self.tenant_path(tenant), tenant=tenant.name)

    # -- settings --------------------------------------------------------------------------

    def get_setting(self, key: str) -> str | None:
        rows = self.db.query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_setting(self, key: str, value: str) -> None:
        self.db.execute_write(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- helpers ---------------------------------------------------------------------------

    def _require(self, name_or_domain: str) -> Tenant:
        tenant = self.get_tenant(name_or_domain)
        if tenant is None:
            raise StoreError(
                f"no tenant named {name_or_domain!r}: see 'minicc tenant list' for names"
            )
        return tenant

    def _default(self, conn: sqlite3.Connection) -> Tenant | None:
        row = conn.execute(
            "SELECT value FROM settings WHERE key = ?", (DEFAULT_TENANT_KEY,)
        ).fetchone()
        if row is None:
            return None
        found = self._select(conn, "t.name = ?", (row[0],))
        return found[0] if found else None

    @staticmethod
    def _select(conn: sqlite3.Connection, where: str, params: tuple[str, ...]) -> list[Tenant]:
        rows = conn.execute(
            "SELECT t.id, t.name, t.domain, t.created_at, t.status, t.record_calls, t.quotas,"
            " (SELECT group_concat(domain, ' ') FROM"
            "   (SELECT domain FROM tenant_domains WHERE tenant_id = t.id AND NOT is_primary"
            "    ORDER BY domain)) AS aliases"
            f" FROM tenants t WHERE {where} ORDER BY t.name",
            params,
        ).fetchall()
        return [
            Tenant(
                id=row["id"],
                name=row["name"],
                domain=row["domain"],
                created_at=datetime.fromisoformat(row["created_at"]),
                status=TenantStatus(row["status"]),
                aliases=tuple(row["aliases"].split()) if row["aliases"] else (),
                record_calls=bool(row["record_calls"]),
                quotas=Quotas.from_dict(json.loads(row["quotas"] or "{}")),
            )
            for row in rows
        ]
