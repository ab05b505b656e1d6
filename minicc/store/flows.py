"""IVR flows as stored text, and where a tenant's prompts live.

:class:`FlowTables` validates a flow against the tenant's queues, flows and time zone before it
becomes the live version, and refuses to remove a flow something still leads to.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import tomllib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from minicc.queue.ivr_schema import CallbackNode, Flow, FlowError, FlowNode, FlowProblem, QueueNode
from minicc.queue.ivr_validate import load_flow
from minicc.store.ccbase import _NAME, CallCenterBase, _check_name
from minicc.store.database import StoreError

__all__ = [
    "PROMPTS_DIR",
    "FlowTables",
    "LoadedFlow",
    "PromptExists",
    "StoredFlow",
    "tenant_prompts_dir",
]

logger = logging.getLogger(__name__)

PROMPTS_DIR = "prompts"
"""Folder of the data dir holding each tenant's uploaded prompts, one subfolder per tenant."""

PromptExists = Callable[[str, str], bool] | Collection[tuple[str, str]]
"""What the IVR loader checks prompts against: ``exists(language, name)`` or a set of pairs."""

_FLOW_HEADER = re.compile(r"\s*\[\s*flow\s*\]\s*(?:#.*)?\Z")


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


def tenant_prompts_dir(data_dir: Path, tenant: str) -> Path:
    """Where ``tenant``'s uploaded prompts live (for its :class:`PromptCatalogue`)."""
    return data_dir / PROMPTS_DIR / tenant


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


class FlowTables(CallCenterBase):
    """IVR flows (a mixin of :class:`~minicc.store.callcenter.CallCenterStore`)."""

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
