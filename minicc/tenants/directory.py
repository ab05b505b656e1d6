"""The switch's in-memory view of tenants and their extensions.

SIP requests must be answered without touching the database, so the switch keeps this
snapshot and refreshes it in a thread when ``PRAGMA data_version`` says the CLI (or another
process) changed a database. Resolution follows DESIGN.md: a request belongs to the tenant
whose SIP domain (or alias) is its host; a request addressed to one of the server's own
addresses belongs to the default tenant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from minicc.tenants.models import Extension, Tenant, TenantStatus

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TenantEntry:
    tenant: Tenant
    extensions: dict[str, Extension] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.tenant.name

    @property
    def realm(self) -> str:
        return self.tenant.domain


class TenantDirectory:
    """Maps SIP hosts to tenants and holds each tenant's extensions."""

    def __init__(self, own_hosts: set[str]) -> None:
        self._own_hosts = {h.lower() for h in own_hosts}
        self._by_domain: dict[str, TenantEntry] = {}
        self._by_name: dict[str, TenantEntry] = {}
        self._default: str | None = None

    def replace(
        self,
        tenants: list[tuple[Tenant, dict[str, Extension]]],
        default_tenant: str | None,
    ) -> None:
        """Swap in a fresh snapshot (built off the event loop by the server)."""
        by_domain: dict[str, TenantEntry] = {}
        by_name: dict[str, TenantEntry] = {}
        for tenant, extensions in tenants:
            entry = TenantEntry(tenant=tenant, extensions=extensions)
            by_name[tenant.name] = entry
            for domain in (tenant.domain, *tenant.aliases):
                by_domain[domain.lower()] = entry
        self._by_domain, self._by_name, self._default = by_domain, by_name, default_tenant

    def add_own_host(self, host: str) -> None:
        self._own_hosts.add(host.lower())

    def resolve_host(self, host: str) -> TenantEntry | None:
        """The tenant a request for ``host`` belongs to, or None (answer 404)."""
        host = host.strip("[]").lower()
        entry = self._by_domain.get(host)
        if entry is None and host in self._own_hosts and self._default is not None:
            entry = self._by_name.get(self._default)
        if entry is not None and entry.tenant.status is not TenantStatus.ACTIVE:
            return None
        return entry

    def suspended(self, host: str) -> TenantEntry | None:
        """The tenant ``host`` would reach if it were not suspended (None: it is not)."""
        entry = self._by_domain.get(host.strip("[]").lower())
        if entry is not None and entry.tenant.status is TenantStatus.SUSPENDED:
            return entry
        return None

    def get(self, name: str) -> TenantEntry | None:
        return self._by_name.get(name)

    def entries(self) -> list[TenantEntry]:
        return list(self._by_name.values())
