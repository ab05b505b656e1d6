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
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
import tomllib
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from minicc.queue.hours import HoursError, load_timezone
from minicc.queue.ivr_schema import CallbackNode, Flow, FlowError, FlowNode, FlowProblem, QueueNode
from minicc.queue.ivr_validate import load_flow
from minicc.queue.models import (
    EmptyRule,
    Member,
    OverflowKind,
    OverflowTarget,
    QueueConfig,
    RecordingPolicy,
    Strategy,
)
from minicc.queue.setup import (
    AgentSetting,
    CallCenterSetup,
    FlowSource,
    PendingCallback,
    Target,
    TargetKind,
)
from minicc.queue.stats import StatsSnapshot
from minicc.store.database import StoreError
from minicc.store.tenant import TenantStore

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

logger = logging.getLogger(__name__)

PROMPTS_DIR = "prompts"
"""Folder of the data dir holding each tenant's uploaded prompts, one subfolder per tenant."""

TIMEZONE_KEY = "timezone"
DEFAULT_TIMEZONE = "UTC"
MAX_REASON_LENGTH = 64

PromptExists = Callable[[str, str], bool] | Collection[tuple[str, str]]
"""What the IVR loader checks prompts against: ``exists(language, name)`` or a set of pairs."""

# Queue and flow names share the IVR loader's name rule, so any queue can be named in a flow.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_SKILL = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
_CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
# A DID in E.164 form (ITU-T E.164: at most 15 digits after the +) or a short service number
# such as 8000; local formats of up to 20 digits pass too.
_NUMBER = re.compile(r"\+?[0-9]{2,20}\Z")
_NUMBER_PUNCTUATION = str.maketrans("", "", " -().")
_FLOW_HEADER = re.compile(r"\s*\[\s*flow\s*\]\s*(?:#.*)?\Z")
_BLAME = re.compile(r"(QueueConfig|OverflowTarget|Member)\.(\w+): (.*)\Z", re.S)


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


class AgentPresence(Enum):
    """The agent states an administrator sets; the engine keeps the finer ones itself."""

    AVAILABLE = "available"
    PAUSED = "paused"
    LOGGED_OUT = "logged-out"


class CallbackStatus(Enum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredFlow:
    """An IVR flow as kept in the database."""

    name: str
    """Flow name, what ``ivr:NAME`` targets refer to."""
    origin: str
    """File name it was loaded from."""
    loaded_at: datetime
    """When it was (last) loaded, UTC."""
    text: str
    """The TOML text, which names the flow itself."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedFlow:
    """The outcome of a successful :meth:`CallCenterStore.load_ivr`."""

    name: str
    """The name it is stored under."""
    flow: Flow
    """The validated flow (its ``warnings`` list unreachable nodes)."""
    replaced: bool
    """True when an earlier version was replaced."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRecord:
    """A callback row, finished or not."""

    callback: PendingCallback
    """Queue, number, place in the queue and attempts."""
    status: CallbackStatus
    """Pending, done or failed."""
    result: str | None
    """What the last attempt ended in (free text from the engine)."""
    updated_at: float
    """Unix time of the last change."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedStats:
    """The engine's latest statistics snapshot."""

    taken_at: float
    """Unix time the engine took it."""
    data: Mapping[str, Any]
    """As written by :func:`stats_to_json` (or whatever mapping the engine saved)."""


# -- pure helpers ----------------------------------------------------------------------------


def tenant_prompts_dir(data_dir: Path, tenant: str) -> Path:
    """Where ``tenant``'s uploaded prompts live (for its :class:`PromptCatalogue`)."""
    return data_dir / PROMPTS_DIR / tenant


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


def stats_to_json(snapshot: StatsSnapshot) -> dict[str, Any]:
    """A statistics snapshot as JSON-ready values.

    Engine-clock times mean nothing outside the engine, so they become durations:
    ``period_seconds`` and each agent's ``in_state_seconds``.
    """
    return {
        "period_seconds": max(0.0, snapshot.at - snapshot.period_start),
        "queues": {
            name: {
                **{f.name: _plain(getattr(q, f.name)) for f in fields(q) if f.name != "left"},
                "left": {reason.value: count for reason, count in q.left.items()},
            }
            for name, q in snapshot.queues.items()
        },
        "agents": {
            agent_id: {
                "state": a.state.value,
                "reason": a.reason,
                "in_state_seconds": max(0.0, snapshot.at - a.since),
                "calls_handled": a.calls_handled,
                "occupancy": a.occupancy,
                "time_in": [
                    {"state": state.value, "reason": reason, "seconds": seconds}
                    for (state, reason), seconds in a.time_in.items()
                ],
            }
            for agent_id, a in snapshot.agents.items()
        },
    }


def _flow_references(text: str, origin: str) -> tuple[set[str], set[str]]:
    """(queues, flows) a stored flow names. Stored flows were valid; if one no longer
    parses (say, its time zone vanished from the system), it names nothing we can see."""
    try:
        flow = load_flow(text, prompt_exists=lambda _lang, _name: True, filename=origin)
    except FlowError as exc:
        logger.warning("stored IVR flow %s no longer loads: %s", origin, exc)
        return set(), set()
    queues: set[str] = set()
    flows: set[str] = set()
    for node in flow.nodes.values():
        if isinstance(node, QueueNode | CallbackNode) and node.queue is not None:
            queues.add(node.queue)
        elif isinstance(node, FlowNode) and node.flow != flow.name:
            flows.add(node.flow)
    return queues, flows


def _with_name(text: str, name: str) -> str | None:
    """``text`` with ``name = "<name>"`` added under its ``[flow]`` header, so the stored
    text names its flow by itself; None when there is no such header line to add it to."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if _FLOW_HEADER.fullmatch(line.rstrip("\r\n")):
            if not line.endswith("\n"):
                lines[index] = line + "\n"
            lines.insert(index + 1, f"name = {json.dumps(name)}  # added when loaded\n")
            return "".join(lines)
    return None


def _declared_name(text: str) -> str | None:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None  # load_flow reports it
    head = document.get("flow")
    value = head.get("name") if isinstance(head, dict) else None
    return value if isinstance(value, str) else None


# -- the store -------------------------------------------------------------------------------


class CallCenterStore:
    """The call-center tables of one tenant's database.

    Args:
        tenant_store: the tenant's open store; this object does not close it.
        clock: unix time source for the timestamps written (injected by tests).
    """

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

    # -- IVR flows -------------------------------------------------------------------------

    def load_ivr(
        self,
        source: Path | str,
        name: str | None = None,
        *,
        prompt_exists: PromptExists,
        hooks: Collection[str] | None = None,
        filename: str | None = None,
    ) -> LoadedFlow:
        """Validate an IVR flow and, only if it passes, make it the live version.

        The flow is checked against the tenant's queues and flows and its time zone. The
        stored text always names its flow (a file relying on its file name gets a ``name``
        line added), so whoever loads it later gets the same flow under the same name.

        Args:
            source: a TOML file, or the TOML text itself.
            name: store under this name; by default the flow's ``[flow] name``, else the
                file name without ``.toml``.
            prompt_exists: see :data:`PromptExists` (``PromptCatalogue(...).exists``).
            hooks: lookup hooks the plugins provide; None skips that check.
            filename: label for messages when ``source`` is text.

        Raises:
            FlowError: the problems found, each naming file, node and field. The
                previously stored version of the flow is untouched.
            OptionError: ``name`` is not a valid flow name.
        """
        stem: str | None = None
        if isinstance(source, Path):
            file = filename or source.name
            stem = source.stem
            try:
                text = source.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                problem = FlowProblem(
                    file=file, node=None, field=None, message=f"cannot read: {reason}"
                )
                raise FlowError([problem]) from None
        else:
            file = filename or "<flow>"
            text = source
        if name is not None:
            _check_name("IVR flow", name)
        declared = _declared_name(text)
        if declared is not None and name is not None and declared != name:
            problem = FlowProblem(
                file=file,
                node=None,
                field="name",
                message=f'the file names the flow "{declared}" but it is being loaded as '
                f'"{name}": make them agree',
            )
            raise FlowError([problem])
        if declared is None:
            wanted = name or (stem if stem and _NAME.fullmatch(stem) else None)
            if wanted is not None:
                # No header line to extend: the loader's own "missing name" problem stands.
                text = _with_name(text, wanted) or text
        queues, flows, timezone = self.db.read(
            lambda conn: (
                {row[0] for row in conn.execute("SELECT name FROM queues")},
                {row[0] for row in conn.execute("SELECT name FROM ivr_flows")},
                self._timezone(conn),
            )
        )
        flow = load_flow(
            text,
            prompt_exists=prompt_exists,
            known_queues=queues,
            known_flows=flows,
            hooks=hooks,
            default_timezone=timezone,
            filename=file,
        )
        stored_name = flow.name
        named = _flow_references(text, file)[0]

        def upsert(conn: sqlite3.Connection) -> bool:
            # The check above read a snapshot: a queue removed since then must not leave
            # the live flow pointing at nothing.
            for queue in sorted(named):
                if conn.execute("SELECT 1 FROM queues WHERE name = ?", (queue,)).fetchone() is None:
                    problem = FlowProblem(
                        file=file,
                        node=None,
                        field=None,
                        message=f'queue "{queue}" was just removed',
                    )
                    raise FlowError([problem])
            existed = conn.execute("SELECT 1 FROM ivr_flows WHERE name = ?", (stored_name,))
            replaced = existed.fetchone() is not None
            conn.execute(
                "INSERT INTO ivr_flows (name, toml, origin, loaded_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET toml = excluded.toml,"
                " origin = excluded.origin, loaded_at = excluded.loaded_at",
                (stored_name, text, file, self._now_text()),
            )
            return replaced

        replaced = self.db.write(upsert)
        logger.info("tenant %s: loaded IVR flow %s from %s", self.tenant, stored_name, file)
        return LoadedFlow(name=stored_name, flow=flow, replaced=replaced)

    def remove_ivr(self, name: str) -> None:
        """Delete a flow.

        Raises:
            StoreError: no such flow, or numbers or other flows still lead to it.
        """

        def delete(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM ivr_flows WHERE name = ?", (name,)).fetchone() is None:
                raise StoreError(f"no IVR flow named {name!r}: see 'minicc ivr list'")
            users = [
                f"number {row[0]}"
                for row in conn.execute(
                    "SELECT number FROM numbers WHERE target = ? ORDER BY number", (f"ivr:{name}",)
                )
            ]
            for other, text, origin in conn.execute(
                "SELECT name, toml, origin FROM ivr_flows WHERE name != ? ORDER BY name", (name,)
            ):
                if name in _flow_references(text, origin)[1]:
                    users.append(f"IVR flow {other}")
            if users:
                raise StoreError(
                    f"IVR flow {name!r} cannot be removed: it is used by {', '.join(users)}; "
                    "point those elsewhere first"
                )
            conn.execute("DELETE FROM ivr_flows WHERE name = ?", (name,))

        self.db.write(delete)

    def list_flows(self) -> list[StoredFlow]:
        """Every stored flow, by name."""
        rows = self.db.query("SELECT name, toml, origin, loaded_at FROM ivr_flows ORDER BY name")
        return [
            StoredFlow(
                name=row["name"],
                origin=row["origin"],
                loaded_at=datetime.fromisoformat(row["loaded_at"]),
                text=row["toml"],
            )
            for row in rows
        ]

    # -- agent states ----------------------------------------------------------------------

    def _agent_write(
        self, extension: str, state: AgentPresence | str, reason: str | None
    ) -> Callable[[sqlite3.Connection], AgentSetting]:
        subject = f"agent {extension}"
        try:
            presence = _choice(AgentPresence)(state)
        except ValueError as exc:
            raise OptionError(subject, "state", str(exc)) from None
        reason = reason.strip() if reason is not None and reason.strip() else None
        if reason is not None and presence is not AgentPresence.PAUSED:
            raise OptionError(subject, "reason", "only a paused agent has a reason")
        if reason is not None and len(reason) > MAX_REASON_LENGTH:
            raise OptionError(subject, "reason", f"keep it to {MAX_REASON_LENGTH} characters")
        setting = AgentSetting(extension=extension, state=presence.value, reason=reason)

        def upsert(conn: sqlite3.Connection) -> AgentSetting:
            self._require_extension(conn, extension, subject, "extension")
            conn.execute(
                "INSERT INTO agent_states (extension, state, reason, changed_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (extension) DO UPDATE SET"
                " state = excluded.state, reason = excluded.reason,"
                " changed_at = excluded.changed_at",
                (extension, presence.value, reason, self._now_text()),
            )
            return setting

        return upsert

    def set_agent_state(
        self, extension: str, state: AgentPresence | str, reason: str | None = None
    ) -> AgentSetting:
        """Persist an agent's state (blocking; for the CLI and start-up).

        Raises:
            OptionError: unknown state, a reason for a state that is not paused, or no such
                extension.
        """
        setting = self.db.write(self._agent_write(extension, state, reason))
        logger.info("tenant %s: agent %s is %s", self.tenant, extension, setting.state)
        return setting

    def submit_agent_state(
        self, extension: str, state: AgentPresence | str, reason: str | None = None
    ) -> Future[AgentSetting]:
        """Like :meth:`set_agent_state` without waiting (for the engine's event loop).

        Raises:
            OptionError: a bad state or reason (checked before queueing); a missing
                extension arrives through the future.
        """
        return self.db.submit(self._agent_write(extension, state, reason))

    def agent_states(self) -> dict[str, AgentSetting]:
        """Extension -> persisted state."""
        return self.db.read(self._agents)

    @staticmethod
    def _agents(conn: sqlite3.Connection) -> dict[str, AgentSetting]:
        rows = conn.execute(
            "SELECT extension, state, reason FROM agent_states"
            " ORDER BY length(extension), extension"
        )
        return {
            ext: AgentSetting(extension=ext, state=state, reason=reason)
            for ext, state, reason in rows
        }

    # -- VIP callers -----------------------------------------------------------------------

    def add_vip(self, number: str, note: str | None = None) -> bool:
        """Serve callers from ``number`` ahead of others; True if the number is new.

        Raises:
            OptionError: not a number.
        """
        number = normalize_number(number)

        def upsert(conn: sqlite3.Connection) -> bool:
            existed = conn.execute("SELECT 1 FROM vip_numbers WHERE number = ?", (number,))
            new = existed.fetchone() is None
            conn.execute(
                "INSERT INTO vip_numbers (number, note) VALUES (?, ?)"
                " ON CONFLICT (number) DO UPDATE SET note = excluded.note",
                (number, note or None),
            )
            return new

        return self.db.write(upsert)

    def remove_vip(self, number: str) -> None:
        """Raises StoreError when the number is not on the VIP list."""
        number = normalize_number(number)
        if self.db.execute_write("DELETE FROM vip_numbers WHERE number = ?", (number,)) == 0:
            raise StoreError(f"number {number} is not on the VIP list: see 'minicc vip list'")

    def list_vips(self) -> dict[str, str | None]:
        """VIP number -> note."""
        rows = self.db.query("SELECT number, note FROM vip_numbers ORDER BY number")
        return {row[0]: row[1] for row in rows}

    # -- callbacks -------------------------------------------------------------------------

    def add_callback(
        self,
        queue: str,
        number: str,
        *,
        joined_at: float,
        name: str | None = None,
        priority: int = 0,
    ) -> Future[PendingCallback]:
        """Queue a callback request; it keeps the place of ``joined_at`` (unix time).

        Returns:
            A future with the stored callback (its ``id`` for later updates); an
            :class:`OptionError` through it when the queue does not exist.

        Raises:
            OptionError: a bad number (checked before queueing).
        """
        number = normalize_number(number)
        subject = f"callback to {number}"

        def insert(conn: sqlite3.Connection) -> PendingCallback:
            self._require_queue(conn, queue, subject, "queue")
            cur = conn.execute(
                "INSERT INTO callbacks (queue, number, name, joined_at, priority, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (queue, number, name, joined_at, priority, self._clock()),
            )
            return PendingCallback(
                id=int(cur.lastrowid or 0),
                queue=queue,
                number=number,
                name=name,
                joined_at=joined_at,
                priority=priority,
            )

        return self.db.submit(insert)

    def update_callback(
        self,
        callback_id: int,
        *,
        status: CallbackStatus | str | None = None,
        attempts: int | None = None,
        result: str | None = None,
    ) -> Future[None]:
        """Record an attempt or the end of a callback; unchanged fields stay.

        Returns:
            A future; a :class:`StoreError` through it for an unknown id.
        """
        new_status = None if status is None else _choice(CallbackStatus)(status)
        if attempts is not None and attempts < 0:
            raise OptionError(f"callback {callback_id}", "attempts", "must be >= 0")

        def update(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE callbacks SET status = coalesce(?, status),"
                " attempts = coalesce(?, attempts), result = coalesce(?, result),"
                " updated_at = ? WHERE id = ?",
                (
                    None if new_status is None else new_status.value,
                    attempts,
                    result,
                    self._clock(),
                    callback_id,
                ),
            )
            if cur.rowcount == 0:
                raise StoreError(f"no callback with id {callback_id}")

        return self.db.submit(update)

    def pending_callbacks(self, queue: str | None = None) -> list[PendingCallback]:
        """Callbacks still to be made, oldest place first."""
        return [r.callback for r in self.list_callbacks(CallbackStatus.PENDING, queue=queue)]

    def list_callbacks(
        self, status: CallbackStatus | None = None, *, queue: str | None = None
    ) -> list[CallbackRecord]:
        """Callback rows, oldest place first, optionally of one status and queue."""
        return self.db.read(lambda conn: self._callbacks(conn, status, queue))

    @staticmethod
    def _callbacks(
        conn: sqlite3.Connection, status: CallbackStatus | None, queue: str | None
    ) -> list[CallbackRecord]:
        rows = conn.execute(
            "SELECT * FROM callbacks WHERE (?1 IS NULL OR status = ?1)"
            " AND (?2 IS NULL OR queue = ?2) ORDER BY joined_at, id",
            (None if status is None else status.value, queue),
        )
        return [
            CallbackRecord(
                callback=PendingCallback(
                    id=row["id"],
                    queue=row["queue"],
                    number=row["number"],
                    name=row["name"],
                    joined_at=row["joined_at"],
                    priority=row["priority"],
                    attempts=row["attempts"],
                ),
                status=CallbackStatus(row["status"]),
                result=row["result"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]

    # -- dispositions and settings ---------------------------------------------------------

    def add_disposition(self, code: str, label: str | None = None) -> None:
        """Add (or relabel) a wrap-up disposition code such as ``resolved``.

        Raises:
            OptionError: a code that is not lowercase letters, digits, '-' or '_'.
        """
        if not _CODE.fullmatch(code):
            raise OptionError(
                f"disposition {code!r}", "code", "use 1-32 lowercase letters, digits, '-' or '_'"
            )
        self.db.execute_write(
            "INSERT INTO dispositions (code, label) VALUES (?, ?)"
            " ON CONFLICT (code) DO UPDATE SET label = excluded.label",
            (code, label or code.replace("-", " ").capitalize()),
        )

    def remove_disposition(self, code: str) -> None:
        """Raises StoreError for an unknown code."""
        if self.db.execute_write("DELETE FROM dispositions WHERE code = ?", (code,)) == 0:
            raise StoreError(f"no disposition code {code!r}")

    def list_dispositions(self) -> list[tuple[str, str]]:
        """(code, label) in the order they were added."""
        rows = self.db.query("SELECT code, label FROM dispositions ORDER BY rowid")
        return [(row[0], row[1]) for row in rows]

    def get_setting(self, key: str) -> str | None:
        rows = self.db.query("SELECT value FROM settings WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_setting(self, key: str, value: str) -> None:
        self.db.execute_write(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def claim_once(self, key: str) -> bool:
        """Set setting ``key`` if it is unset; True for the one caller that set it.

        Atomic across processes: for "do this once per tenant" steps such as the demo set-up.
        """
        return (
            self.db.execute_write(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, self._now_text()),
            )
            == 1
        )

    def delete_setting(self, key: str) -> None:
        self.db.execute_write("DELETE FROM settings WHERE key = ?", (key,))

    def timezone(self) -> str:
        """The tenant's IANA time zone for business hours (UTC unless set)."""
        return self.db.read(self._timezone)

    @staticmethod
    def _timezone(conn: sqlite3.Connection) -> str:
        row = conn.execute("SELECT value FROM settings WHERE key = ?", (TIMEZONE_KEY,)).fetchone()
        return str(row[0]) if row else DEFAULT_TIMEZONE

    def set_timezone(self, name: str) -> str:
        """Set the tenant's time zone.

        Raises:
            OptionError: not an IANA zone name.
        """
        try:
            load_timezone(name)
        except HoursError as exc:
            raise OptionError(f"tenant {self.tenant}", "timezone", str(exc)) from None
        self.set_setting(TIMEZONE_KEY, name)
        return name

    # -- statistics ------------------------------------------------------------------------

    def save_stats_snapshot(
        self, snapshot: StatsSnapshot | Mapping[str, Any], *, taken_at: float | None = None
    ) -> Future[None]:
        """Replace the stored statistics with this snapshot, without waiting.

        Args:
            snapshot: the engine's snapshot, or an already JSON-ready mapping.
            taken_at: unix time of the snapshot; now by default.
        """
        data = stats_to_json(snapshot) if isinstance(snapshot, StatsSnapshot) else snapshot
        text = json.dumps(data, sort_keys=True, allow_nan=False)
        when = self._clock() if taken_at is None else taken_at

        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO queue_stats (id, taken_at, data) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET taken_at = excluded.taken_at,"
                " data = excluded.data",
                (when, text),
            )

        return self.db.submit(upsert)

    def latest_stats(self) -> SavedStats | None:
        """The last snapshot saved, or None before the engine saved one."""
        rows = self.db.query("SELECT taken_at, data FROM queue_stats WHERE id = 1")
        if not rows:
            return None
        return SavedStats(taken_at=float(rows[0][0]), data=json.loads(rows[0][1]))

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
        )
