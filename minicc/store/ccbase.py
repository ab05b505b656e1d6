"""What the call-center store's parts share: the base class, value checks and errors.

:class:`CallCenterBase` holds a tenant's open database and the reference checks the write
transactions run (a queue, extension or flow must exist). The table groups
(:mod:`~minicc.store.queues`, :mod:`~minicc.store.flows`, :mod:`~minicc.store.agents`,
:mod:`~minicc.store.settings`, :mod:`~minicc.store.dispositions`) are mixins on it, which
:class:`~minicc.store.callcenter.CallCenterStore` combines.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from minicc.store.database import Database, StoreError
from minicc.store.tenant import TenantStore

__all__ = ["DEFAULT_TIMEZONE", "TIMEZONE_KEY", "CallCenterBase", "OptionError", "normalize_number"]

TIMEZONE_KEY = "timezone"
DEFAULT_TIMEZONE = "UTC"

# Queue and flow names share the IVR loader's name rule, so any queue can be named in a flow.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
# A DID in E.164 form (ITU-T E.164: at most 15 digits after the +) or a short service number
# such as 8000; local formats of up to 20 digits pass too.
_NUMBER = re.compile(r"\+?[0-9]{2,20}\Z")
_NUMBER_PUNCTUATION = str.maketrans("", "", " -().")


class OptionError(StoreError):
    """A value given for one field is wrong; ``field`` names it, ``reason`` says why and how."""

    def __init__(self, subject: str, field: str, reason: str) -> None:
        super().__init__(f"{subject}: {field}: {reason}")
        self.subject = subject
        """What was being changed, e.g. ``queue 'sales'``."""
        self.field = field
        """The field (QueueConfig field, ``extension``, ``target``...)."""
        self.reason = reason
        """What is wrong and what to do instead."""


def normalize_number(text: str, *, field: str = "number") -> str:
    """Return a dialled or calling number without spaces, dashes, dots or brackets.

    Raises:
        OptionError: not 2-20 digits with an optional leading ``+``.
    """
    value = text.strip().translate(_NUMBER_PUNCTUATION)
    if not _NUMBER.fullmatch(value):
        raise OptionError(
            f"number {text!r}",
            field,
            "use 2 to 20 digits, optionally starting with + (e.g. 8000 or +4930123456)",
        )
    return value


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise OptionError(
            f"{kind} {name!r}", "name", "use 1-64 letters, digits, '_' or '-' (e.g. sales)"
        )
    return name


def _choice(enum: type[Enum]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, enum):
            return value
        try:
            return enum(value)
        except ValueError:
            choices = ", ".join(str(member.value) for member in enum.__members__.values())
            raise ValueError(f"{value!r} is not one of {choices}") from None

    return convert


class CallCenterBase:
    """The call-center tables of one tenant's database (the part every table group uses).

    Args:
        tenant_store: the tenant's open store; this object does not close it.
        clock: unix time source for the timestamps written (injected by tests).
    """

    tenant: str
    db: Database

    def __init__(self, tenant_store: TenantStore, *, clock: Callable[[], float] = time.time):
        self.tenant = tenant_store.tenant
        self.db = tenant_store.db
        self._clock = clock

    def _now_text(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds")

    # -- references checked inside write transactions --------------------------------------

    def _require_queue(self, conn: sqlite3.Connection, name: str, subject: str, field: str) -> None:
        if conn.execute("SELECT 1 FROM queues WHERE name = ?", (name,)).fetchone() is None:
            raise OptionError(
                subject,
                field,
                f"no queue named {name!r} in tenant {self.tenant}: add it first "
                f"('minicc queue add {name} --strategy ...') or see 'minicc queue list'",
            )

    def _require_extension(
        self, conn: sqlite3.Connection, extension: str, subject: str, field: str
    ) -> None:
        row = conn.execute("SELECT 1 FROM extensions WHERE extension = ?", (extension,))
        if row.fetchone() is None:
            raise OptionError(
                subject,
                field,
                f"no extension {extension} in tenant {self.tenant}: add it first "
                f"('minicc user add --tenant {self.tenant} --extension {extension} "
                "--password P') or see 'minicc user list'",
            )

    def _require_flow(self, conn: sqlite3.Connection, name: str, subject: str) -> None:
        if conn.execute("SELECT 1 FROM ivr_flows WHERE name = ?", (name,)).fetchone() is None:
            raise OptionError(
                subject,
                "target",
                f"no IVR flow named {name!r} in tenant {self.tenant}: load it first "
                "('minicc ivr load FILE') or see 'minicc ivr list'",
            )

    @staticmethod
    def _timezone(conn: sqlite3.Connection) -> str:
        row = conn.execute("SELECT value FROM settings WHERE key = ?", (TIMEZONE_KEY,)).fetchone()
        return str(row[0]) if row else DEFAULT_TIMEZONE
