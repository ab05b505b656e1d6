"""Voicemail for direct calls to extensions: per-extension rules and the tenant default.

The rules (:mod:`minicc.queue.mailbox`) live in a table of their own in the tenant's
database, created on first write (``CREATE TABLE IF NOT EXISTS``) like the supervisor flag
(:mod:`minicc.store.supervisors`): a table that needs no schema version cannot collide
with the numbered migrations other work adds. The tenant default is the row whose
extension is ``*`` (extensions are digits only, so it can never clash with one). Reading
never creates the table: a tenant that never set a rule has none, and no voicemail on
direct calls. The server reads the rules with the rest of the call-center setup, so a
change is live within a second (no restart).
"""

from __future__ import annotations

import logging
import sqlite3
from types import MappingProxyType

from minicc.queue.mailbox import (
    DEFAULT_RING_SECONDS,
    MailboxRule,
    VoicemailPlan,
    check_ring_seconds,
)
from minicc.store.ccbase import CallCenterBase
from minicc.store.database import StoreError
from minicc.store.tenant import TenantStore, validate_extension

__all__ = ["DEFAULT_ROW", "describe", "read_plan", "read_voicemail_plan", "set_mailbox"]

log = logging.getLogger(__name__)

DEFAULT_ROW = "*"
"""The extension column's value for the tenant default."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS extension_voicemail (
    extension TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    ring_seconds REAL
)
"""


def set_mailbox(
    store: TenantStore | CallCenterBase,
    extension: str | None,
    *,
    enabled: bool | None = None,
    ring_seconds: float | None = None,
) -> MailboxRule:
    """Set voicemail on no answer for ``extension`` (None: the tenant default).

    Args:
        store: the tenant's database.
        extension: an existing extension, or None for the tenant default.
        enabled: on or off; None keeps what was set (off when nothing was).
        ring_seconds: ring time before voicemail (5..120); None keeps what was set.

    Returns:
        The rule now stored.

    Raises:
        StoreError: a malformed or unknown extension, or a ring time out of range.
    """
    if extension is not None:
        validate_extension(extension)
    if ring_seconds is not None:
        try:
            check_ring_seconds(ring_seconds)
        except ValueError as exc:
            raise StoreError(str(exc)) from exc
    key = DEFAULT_ROW if extension is None else extension

    def write(conn: sqlite3.Connection) -> MailboxRule:
        conn.execute(_SCHEMA)
        if extension is not None:
            found = conn.execute(
                "SELECT 1 FROM extensions WHERE extension = ?", (extension,)
            ).fetchone()
            if found is None:
                raise StoreError(
                    f"extension {extension} does not exist in tenant {store.tenant}: "
                    "add it first with 'minicc user add'"
                )
        row = conn.execute(
            "SELECT enabled, ring_seconds FROM extension_voicemail WHERE extension = ?", (key,)
        ).fetchone()
        old_enabled = bool(row[0]) if row else False
        old_ring = row[1] if row else None
        rule = MailboxRule(
            enabled=old_enabled if enabled is None else enabled,
            ring_seconds=old_ring if ring_seconds is None else ring_seconds,
        )
        conn.execute(
            "INSERT INTO extension_voicemail (extension, enabled, ring_seconds) VALUES (?, ?, ?)"
            " ON CONFLICT (extension) DO UPDATE SET enabled = excluded.enabled,"
            " ring_seconds = excluded.ring_seconds",
            (key, int(rule.enabled), rule.ring_seconds),
        )
        return rule

    rule = store.db.write(write)
    log.info("tenant %s: voicemail for %s: %s", store.tenant, extension or "the default", rule)
    return rule


def read_plan(conn: sqlite3.Connection) -> VoicemailPlan:
    """The tenant's plan, read on ``conn`` (inside the call-center setup's transaction)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'extension_voicemail'"
    ).fetchone()
    if exists is None:
        return VoicemailPlan()
    known = frozenset(str(row[0]) for row in conn.execute("SELECT extension FROM extensions"))
    default = MailboxRule(enabled=False)
    rules: dict[str, MailboxRule] = {}
    for extension, enabled, ring in conn.execute(
        "SELECT extension, enabled, ring_seconds FROM extension_voicemail"
    ):
        try:
            rule = MailboxRule(enabled=bool(enabled), ring_seconds=ring)
        except ValueError as exc:  # edited by hand: leave it out rather than fail the setup
            log.error("voicemail rule of %s ignored: %s", extension, exc)
            continue
        if extension == DEFAULT_ROW:
            default = rule
        else:
            rules[str(extension)] = rule
    return VoicemailPlan(default=default, extensions=MappingProxyType(rules), known=known)


def read_voicemail_plan(store: TenantStore | CallCenterBase) -> VoicemailPlan:
    """The tenant's plan (none set: voicemail off everywhere)."""
    return store.db.read(read_plan)


def describe(rule: MailboxRule, default: MailboxRule | None = None) -> str:
    """A rule in words, for the CLI: ``voicemail on after 20 s of ringing``."""
    ring = rule.ring_seconds
    if ring is None and default is not None:
        ring = default.ring_seconds
    shown = f"{ring:g} s" if ring is not None else f"{DEFAULT_RING_SECONDS:g} s (default)"
    if not rule.enabled:
        return f"voicemail off (ring time when on: {shown})"
    return f"voicemail on after {shown} of ringing"
