"""A tenant's call center in its own database: queues, members, numbers, IVR flows and more.

:class:`CallCenterStore` sits on a :class:`~minicc.store.tenant.TenantStore` (the tables come
from its schema version 2) and is the one place that reads and writes them. Every
administrative write is one short transaction on the database's writer thread that checks
its references inside the transaction, so two processes provisioning at once (the CLI while
the server runs) can never leave a member without an extension or a number without a target.
:meth:`CallCenterStore.setup` reads everything the queue engine needs in one read
transaction and hands it over as a :class:`~minicc.queue.setup.CallCenterSetup`.

Writes the engine makes while calls run (callbacks, agent states, statistics snapshots) have
``submit_*`` / future-returning forms: the call path never waits on SQLite.

Errors are :class:`~minicc.store.database.StoreError`; a value the caller got wrong is an
:class:`OptionError` that names the field, so the CLI (and later the API) can point at the
flag or JSON key to fix.

The tables are grouped by what they hold, one module each, and :class:`CallCenterStore`
combines them: :mod:`~minicc.store.queues` (queues, members, numbers),
:mod:`~minicc.store.flows` (IVR flows, prompt folders), :mod:`~minicc.store.agents` (agent
states, VIPs, callbacks), :mod:`~minicc.store.dispositions` (codes, and those set on
calls), :mod:`~minicc.store.voicemail` and :mod:`~minicc.store.settings` (settings, time
zone, statistics); :mod:`~minicc.store.ccbase` holds what they share. The
names this module always offered are re-exported here.
"""

from __future__ import annotations

import sqlite3

from minicc.queue.setup import CallCenterSetup, FlowSource
from minicc.store.agents import AgentPresence, AgentTables, CallbackRecord, CallbackStatus
from minicc.store.ccbase import OptionError, normalize_number
from minicc.store.dispositions import DispositionTables
from minicc.store.flows import (
    PROMPTS_DIR,
    FlowTables,
    LoadedFlow,
    PromptExists,
    StoredFlow,
    tenant_prompts_dir,
)
from minicc.store.queues import (
    QueueTables,
    queue_config,
    queue_config_from_json,
    queue_config_to_json,
)
from minicc.store.settings import SavedStats, SettingsTables, stats_to_json
from minicc.store.voicemail import VoicemailTables

__all__ = [
    "PROMPTS_DIR",
    "AgentPresence",
    "CallCenterStore",
    "CallbackRecord",
    "CallbackStatus",
    "LoadedFlow",
    "OptionError",
    "PromptExists",
    "SavedStats",
    "StoredFlow",
    "normalize_number",
    "queue_config",
    "queue_config_from_json",
    "queue_config_to_json",
    "stats_to_json",
    "tenant_prompts_dir",
]


class CallCenterStore(
    QueueTables, FlowTables, AgentTables, DispositionTables, SettingsTables, VoicemailTables
):
    """The call-center tables of one tenant's database.

    Args:
        tenant_store: the tenant's open store; this object does not close it.
        clock: unix time source for the timestamps written (injected by tests).
    """

    # -- everything for the engine ---------------------------------------------------------

    def setup(self) -> CallCenterSetup:
        """Everything the tenant's queue engine needs, read in one consistent transaction."""
        return self.db.read(self._setup)

    def _setup(self, conn: sqlite3.Connection) -> CallCenterSetup:
        flows = {
            name: FlowSource(name=name, text=text, origin=origin)
            for name, text, origin in conn.execute(
                "SELECT name, toml, origin FROM ivr_flows ORDER BY name"
            )
        }
        vips = frozenset(row[0] for row in conn.execute("SELECT number FROM vip_numbers"))
        dispositions = tuple(
            row[0] for row in conn.execute("SELECT code FROM dispositions ORDER BY rowid")
        )
        callbacks = self._callbacks(conn, CallbackStatus.PENDING, None)
        return CallCenterSetup(
            tenant=self.tenant,
            timezone=self._timezone(conn),
            numbers=self._numbers(conn),
            queues=self._queues(conn),
            members=self._members(conn),
            flows=flows,
            agents=self._agents(conn),
            vip_numbers=vips,
            callbacks=tuple(record.callback for record in callbacks),
            dispositions=dispositions,
            end_wrap_up_on_disposition=self._ends_wrap_up(conn),
        )
