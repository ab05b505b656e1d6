"""Queues, their members and the numbers that route calls: the routing tables.

:func:`queue_config` builds a :class:`~minicc.queue.models.QueueConfig` from plain values
(flags, JSON) and names the field that is wrong; :class:`QueueTables` reads and writes the
``queues``, ``queue_members`` and ``numbers`` tables, checking references inside each write.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from enum import Enum
from typing import Any

from minicc.queue.models import (
    EmptyRule,
    Member,
    OverflowKind,
    OverflowTarget,
    QueueConfig,
    RecordingPolicy,
    Strategy,
)
from minicc.queue.setup import Target, TargetKind
from minicc.store.ccbase import (
    CallCenterBase,
    OptionError,
    _check_name,
    _choice,
    normalize_number,
)
from minicc.store.database import StoreError
from minicc.store.flows import _flow_references

__all__ = [
    "QueueTables",
    "queue_config",
    "queue_config_from_json",
    "queue_config_to_json",
]

logger = logging.getLogger(__name__)

_SKILL = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
_BLAME = re.compile(r"(QueueConfig|OverflowTarget|Member)\.(\w+): (.*)\Z", re.S)


def _overflow(value: Any) -> OverflowTarget:
    return value if isinstance(value, OverflowTarget) else OverflowTarget.parse(str(value))


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "strategy": _choice(Strategy),
    "overflow": _overflow,
    "join_empty": _choice(EmptyRule),
    "leave_when_empty": _choice(EmptyRule),
    "recording": _choice(RecordingPolicy),
}
_QUEUE_OPTIONS = frozenset(f.name for f in fields(QueueConfig)) - {"name"}


def _blame(exc: ValueError, default: str) -> tuple[str, str]:
    """(field, reason) from a model's ``Owner.field: reason`` message."""
    match = _BLAME.match(str(exc))
    if match is None:
        return default, str(exc)
    owner, field, reason = match.groups()
    return ("overflow" if owner == "OverflowTarget" else field), reason


def queue_config(name: str, base: QueueConfig | None = None, **options: Any) -> QueueConfig:
    """Build a queue's configuration from plain values, e.g. from flags or JSON.

    Args:
        name: the queue's name.
        base: the configuration to change; the defaults of :class:`QueueConfig` if None.
        options: QueueConfig fields; enums may be given by value (``strategy="ring-all"``)
            and the overflow as text (``"queue:support"``).

    Returns:
        The configuration, checked by ``QueueConfig.__post_init__``.

    Raises:
        OptionError: naming the field that is wrong.
    """
    _check_name("queue", name)
    subject = f"queue {name!r}"
    converted: dict[str, Any] = {}
    for key, value in options.items():
        if key not in _QUEUE_OPTIONS:
            raise OptionError(subject, key, f"unknown option (known: {sorted(_QUEUE_OPTIONS)})")
        convert = _CONVERTERS.get(key)
        try:
            converted[key] = convert(value) if convert is not None else value
        except ValueError as exc:
            raise OptionError(subject, key, _blame(exc, key)[1]) from None
    try:
        if base is not None:
            return replace(base, name=name, **converted)
        return QueueConfig(name=name, **converted)
    except ValueError as exc:
        field, reason = _blame(exc, "name")
        raise OptionError(subject, field, reason) from None


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, OverflowTarget):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def queue_config_to_json(config: QueueConfig) -> dict[str, Any]:
    """Every field but the name as JSON-ready values (enums by value, overflow as text)."""
    return {f.name: _plain(getattr(config, f.name)) for f in fields(config) if f.name != "name"}


def queue_config_from_json(name: str, data: Mapping[str, Any]) -> QueueConfig:
    """The inverse of :func:`queue_config_to_json`; keys this version does not know are
    ignored (a row written by a newer minicc still loads).

    Raises:
        OptionError: a stored value no longer passes validation.
    """
    unknown = set(data) - _QUEUE_OPTIONS
    if unknown:
        logger.debug("queue %s: ignoring unknown stored options %s", name, sorted(unknown))
    return queue_config(name, **{k: v for k, v in data.items() if k in _QUEUE_OPTIONS})


def _member(queue: str, extension: str, skills: Mapping[str, int], penalty: int) -> Member:
    subject = f"member {extension!r} of queue {queue!r}"
    for skill in skills:
        if not isinstance(skill, str) or not _SKILL.fullmatch(skill):
            raise OptionError(
                subject, "skills", f"skill name {skill!r}: use 1-32 letters, digits, '_' or '-'"
            )
    try:
        return Member(agent_id=extension, skills=skills, penalty=penalty)
    except ValueError as exc:
        field, reason = _blame(exc, "skills")
        raise OptionError(subject, "extension" if field == "agent_id" else field, reason) from None


class QueueTables(CallCenterBase):
    """Queues, members and numbers (a mixin of
    :class:`~minicc.store.callcenter.CallCenterStore`)."""

    def _check_overflow(self, conn: sqlite3.Connection, config: QueueConfig) -> None:
        if config.overflow.kind is not OverflowKind.QUEUE or config.overflow.queue is None:
            return
        subject = f"queue {config.name!r}"
        self._require_queue(conn, config.overflow.queue, subject, "overflow")
        # Follow the chain: a ring of overflows would pass a caller round for ever.
        chain = [config.name, config.overflow.queue]
        while True:
            row = conn.execute("SELECT config FROM queues WHERE name = ?", (chain[-1],))
            found = row.fetchone()
            following = json.loads(found[0]).get("overflow", "none") if found else "none"
            if not isinstance(following, str) or not following.startswith("queue:"):
                return
            following = following.removeprefix("queue:")
            if following == config.name:
                ring = " -> ".join([*chain, following])
                raise OptionError(
                    subject, "overflow", f"would make an overflow loop {ring}: pick another"
                )
            if following in chain:
                return
            chain.append(following)

    # -- queues ----------------------------------------------------------------------------

    def add_queue(self, config: QueueConfig) -> QueueConfig:
        """Create a queue.

        Raises:
            OptionError: the overflow names a missing queue or makes a loop.
            StoreError: a queue of that name exists.
        """
        name = _check_name("queue", config.name)
        data = json.dumps(queue_config_to_json(config), sort_keys=True)

        def insert(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM queues WHERE name = ?", (name,)).fetchone():
                raise StoreError(
                    f"queue {name!r} already exists: change it with 'minicc queue update {name}'"
                )
            self._check_overflow(conn, config)
            conn.execute(
                "INSERT INTO queues (name, config, created_at) VALUES (?, ?, ?)",
                (name, data, self._now_text()),
            )

        self.db.write(insert)
        logger.info("tenant %s: added queue %s", self.tenant, name)
        return config

    def update_queue(self, config: QueueConfig) -> QueueConfig:
        """Replace an existing queue's configuration (members stay).

        Raises:
            OptionError: the overflow names a missing queue or makes a loop.
            StoreError: no such queue.
        """
        name = _check_name("queue", config.name)
        data = json.dumps(queue_config_to_json(config), sort_keys=True)

        def update(conn: sqlite3.Connection) -> None:
            self._check_overflow(conn, config)
            cur = conn.execute("UPDATE queues SET config = ? WHERE name = ?", (data, name))
            if cur.rowcount == 0:
                raise StoreError(f"no queue named {name!r}: see 'minicc queue list'")

        self.db.write(update)
        logger.info("tenant %s: updated queue %s", self.tenant, name)
        return config

    def remove_queue(self, name: str) -> None:
        """Delete a queue and its memberships.

        Raises:
            StoreError: no such queue, or something still sends calls to it (numbers,
                other queues' overflow, IVR flows, pending callbacks); the message lists them.
        """

        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM queues WHERE name = ?", (name,)).fetchone() is None:
                raise StoreError(f"no queue named {name!r}: see 'minicc queue list'")
            users = [
                f"number {row[0]}"
                for row in conn.execute(
                    "SELECT number FROM numbers WHERE target = ? ORDER BY number",
                    (f"queue:{name}",),
                )
            ]
            for other, data in conn.execute("SELECT name, config FROM queues ORDER BY name"):
                if json.loads(data).get("overflow") == f"queue:{name}":
                    users.append(f"the overflow of queue {other}")
            for flow, text, origin in conn.execute(
                "SELECT name, toml, origin FROM ivr_flows ORDER BY name"
            ):
                if name in _flow_references(text, origin)[0]:
                    users.append(f"IVR flow {flow}")
            pending = conn.execute(
                "SELECT count(*) FROM callbacks WHERE queue = ? AND status = 'pending'", (name,)
            ).fetchone()[0]
            if pending:
                users.append(f"{pending} pending callback(s)")
            if users:
                raise StoreError(
                    f"queue {name!r} cannot be removed: it is used by {', '.join(users)}; "
                    "point those elsewhere first"
                )
            conn.execute("DELETE FROM queues WHERE name = ?", (name,))

        self.db.write(delete)
        logger.info("tenant %s: removed queue %s", self.tenant, name)

    def get_queue(self, name: str) -> QueueConfig | None:
        """One queue's configuration, or None."""
        rows = self.db.query("SELECT name, config FROM queues WHERE name = ?", (name,))
        return queue_config_from_json(rows[0][0], json.loads(rows[0][1])) if rows else None

    def list_queues(self) -> list[QueueConfig]:
        """Every queue, by name."""
        return list(self.db.read(self._queues).values())

    def _queues(self, conn: sqlite3.Connection) -> dict[str, QueueConfig]:
        queues: dict[str, QueueConfig] = {}
        for name, data in conn.execute("SELECT name, config FROM queues ORDER BY name"):
            try:
                queues[name] = queue_config_from_json(name, json.loads(data))
            except (OptionError, ValueError) as exc:
                # One bad row must not take the tenant's other queues down with it.
                logger.error("tenant %s: skipping queue %s: %s", self.tenant, name, exc)
        return queues

    # -- members ---------------------------------------------------------------------------

    def add_member(
        self,
        queue: str,
        extension: str,
        *,
        skills: Mapping[str, int] | None = None,
        penalty: int = 0,
    ) -> tuple[Member, bool]:
        """Make ``extension`` an agent of ``queue``, or change its skills and penalty.

        Returns:
            The membership, and True when it is new (False: an existing one was updated).

        Raises:
            OptionError: no such queue or extension, or a bad skill or penalty.
        """
        member = _member(queue, extension, dict(skills or {}), penalty)
        subject = f"member {extension!r} of queue {queue!r}"

        def upsert(conn: sqlite3.Connection) -> bool:
            self._require_queue(conn, queue, subject, "queue")
            self._require_extension(conn, extension, subject, "extension")
            existed = conn.execute(
                "SELECT 1 FROM queue_members WHERE queue = ? AND extension = ?",
                (queue, extension),
            ).fetchone()
            conn.execute(
                "INSERT INTO queue_members (queue, extension, skills, penalty)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (queue, extension) DO UPDATE SET"
                " skills = excluded.skills, penalty = excluded.penalty",
                (queue, extension, json.dumps(dict(member.skills), sort_keys=True), penalty),
            )
            return existed is None

        created = self.db.write(upsert)
        logger.info("tenant %s: extension %s in queue %s", self.tenant, extension, queue)
        return member, created

    def remove_member(self, queue: str, extension: str) -> None:
        """Take ``extension`` out of ``queue``.

        Raises:
            StoreError: it is not a member.
        """

        def delete(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "DELETE FROM queue_members WHERE queue = ? AND extension = ?", (queue, extension)
            )
            if cur.rowcount == 0:
                raise StoreError(
                    f"extension {extension} is not a member of queue {queue!r}: "
                    "see 'minicc queue list'"
                )

        self.db.write(delete)

    def list_members(self) -> dict[str, tuple[Member, ...]]:
        """Queue name -> its members, in extension order."""
        return self.db.read(self._members)

    @staticmethod
    def _members(conn: sqlite3.Connection) -> dict[str, tuple[Member, ...]]:
        found: dict[str, list[Member]] = {}
        for queue, extension, skills, penalty in conn.execute(
            "SELECT queue, extension, skills, penalty FROM queue_members"
            " ORDER BY queue, length(extension), extension"
        ):
            member = Member(agent_id=extension, skills=json.loads(skills), penalty=penalty)
            found.setdefault(queue, []).append(member)
        return {queue: tuple(members) for queue, members in found.items()}

    # -- numbers ---------------------------------------------------------------------------

    def add_number(self, number: str, target: Target | str) -> Target | None:
        """Route a dialled number (a DID or a service number like 8000) to a target.

        An existing route of the number is replaced.

        Returns:
            The previous target, or None for a new number.

        Raises:
            OptionError: a bad number, a number that is an extension, or a target that does
                not exist.
        """
        number = normalize_number(number)
        subject = f"number {number}"
        if not isinstance(target, Target):
            try:
                target = Target.parse(target)
            except ValueError as exc:
                raise OptionError(subject, "target", str(exc)) from None
        goal = target

        def upsert(conn: sqlite3.Connection) -> Target | None:
            own = conn.execute("SELECT 1 FROM extensions WHERE extension = ?", (number,))
            if own.fetchone() is not None:
                raise OptionError(
                    subject,
                    "number",
                    f"{number} is an extension of tenant {self.tenant}; dialling it already "
                    "rings that extension: pick a number no extension has",
                )
            if goal.kind is TargetKind.QUEUE:
                self._require_queue(conn, goal.name, subject, "target")
            elif goal.kind is TargetKind.IVR:
                self._require_flow(conn, goal.name, subject)
            else:
                self._require_extension(conn, goal.name, subject, "target")
            old = conn.execute("SELECT target FROM numbers WHERE number = ?", (number,))
            previous = old.fetchone()
            conn.execute(
                "INSERT INTO numbers (number, target) VALUES (?, ?)"
                " ON CONFLICT (number) DO UPDATE SET target = excluded.target",
                (number, str(goal)),
            )
            return Target.parse(previous[0]) if previous else None

        previous = self.db.write(upsert)
        logger.info("tenant %s: number %s -> %s", self.tenant, number, goal)
        return previous

    def remove_number(self, number: str) -> None:
        """Stop routing ``number``.

        Raises:
            StoreError: the number is not routed.
        """
        number = normalize_number(number)
        if self.db.execute_write("DELETE FROM numbers WHERE number = ?", (number,)) == 0:
            raise StoreError(f"number {number} is not routed: see 'minicc number list'")

    def list_numbers(self) -> dict[str, Target]:
        """Number -> target, in number order."""
        return self.db.read(self._numbers)

    @staticmethod
    def _numbers(conn: sqlite3.Connection) -> dict[str, Target]:
        rows = conn.execute("SELECT number, target FROM numbers ORDER BY length(number), number")
        return {number: Target.parse(target) for number, target in rows}
