"""SQLite storage: the control database and one database file per tenant.

Only this package imports ``sqlite3``. See ``database.Database`` for the threading model.
"""

from minicc.store.control import ControlStore
from minicc.store.database import Database, Migration, StoreError
from minicc.store.tenant import TenantStore

__all__ = ["ControlStore", "Database", "Migration", "StoreError", "TenantStore"]
