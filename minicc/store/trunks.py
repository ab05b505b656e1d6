"""Trunks and dial rules in the control database (see :mod:`minicc.tenants.trunks`)."""

from __future__ import annotations

import ipaddress
import json
import sqlite3

from minicc.store.control import ControlStore
from minicc.store.database import StoreError
from minicc.tenants.trunks import DialRules, Trunk, clean_number

__all__ = ["TrunkStore"]


def _trunk(row: sqlite3.Row) -> Trunk:
    return Trunk(
        tenant=row["tenant"],
        name=row["name"],
        host=row["host"],
        port=row["port"],
        inbound=bool(row["inbound"]),
        outbound=bool(row["outbound"]),
        caller_id=row["caller_id"],
    )


class TrunkStore:
    def __init__(self, control: ControlStore) -> None:
        self._control = control
        self._db = control.db

    def add(self, trunk: Trunk) -> Trunk:
        """Raises: StoreError naming the field (unknown tenant, bad address, taken)."""
        tenant = self._control.get_tenant(trunk.tenant)
        if tenant is None:
            raise StoreError(f"no tenant named {trunk.tenant!r}: see 'minicc tenant list'")
        try:
            host = str(ipaddress.ip_address(trunk.host.strip("[]")))
        except ValueError:
            raise StoreError(
                f"--address {trunk.host!r}: give the carrier's IP address (e.g. 203.0.113.7): "
                "calls from it are let in without a password, so a name is not good enough"
            ) from None
        if not 1 <= trunk.port <= 65535:
            raise StoreError(f"--port {trunk.port}: must be 1-65535")
        caller_id = clean_number(trunk.caller_id) if trunk.caller_id else None

        def insert(conn: sqlite3.Connection) -> None:
            owner = conn.execute("SELECT tenant, name FROM trunks WHERE host = ?", (host,))
            taken = owner.fetchone()
            if taken:
                raise StoreError(
                    f"--address {host} is already trunk {taken[1]!r} of tenant {taken[0]!r}"
                )
            try:
                conn.execute(
                    "INSERT INTO trunks (tenant, name, host, port, inbound, outbound, caller_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        tenant.name,
                        trunk.name,
                        host,
                        trunk.port,
                        int(trunk.inbound),
                        int(trunk.outbound),
                        caller_id,
                    ),
                )
            except sqlite3.IntegrityError:
                raise StoreError(
                    f"tenant {tenant.name} already has a trunk {trunk.name!r}"
                ) from None

        self._db.write(insert)
        return next(t for t in self.list(tenant.name) if t.name == trunk.name)

    def remove(self, tenant: str, name: str) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            cur = conn.execute("DELETE FROM trunks WHERE tenant = ? AND name = ?", (tenant, name))
            if cur.rowcount == 0:
                raise StoreError(f"tenant {tenant} has no trunk {name!r}: see 'minicc trunk list'")

        self._db.write(delete)

    def list(self, tenant: str | None = None) -> list[Trunk]:
        if tenant is None:
            rows = self._db.query("SELECT * FROM trunks ORDER BY tenant, name")
        else:
            rows = self._db.query("SELECT * FROM trunks WHERE tenant = ? ORDER BY name", (tenant,))
        return [_trunk(r) for r in rows]

    def rules(self) -> dict[str, DialRules]:
        rows = self._db.query("SELECT name, dial_rules FROM tenants")
        result = {}
        for row in rows:
            data = json.loads(row["dial_rules"] or "{}")
            result[row["name"]] = DialRules(
                allowed_prefixes=tuple(data.get("allowed_prefixes", ())),
                international=bool(data.get("international", False)),
            )
        return result

    def set_rules(self, tenant: str, rules: DialRules) -> None:
        found = self._control.get_tenant(tenant)
        if found is None:
            raise StoreError(f"no tenant named {tenant!r}: see 'minicc tenant list'")
        for prefix in rules.allowed_prefixes:
            if not clean_number(prefix).lstrip("+").isdigit():
                raise StoreError(f"--allow {prefix!r}: a prefix is digits, e.g. 030 or +4930")
        text = json.dumps(
            {"allowed_prefixes": list(rules.allowed_prefixes), "international": rules.international}
        )
        self._db.write(
            lambda conn: conn.execute(
                "UPDATE tenants SET dial_rules = ? WHERE id = ?", (text, found.id)
            )
        )
