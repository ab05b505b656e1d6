"""Load an IVR flow from TOML and check it before it can go live. Pure.

Every problem found is collected, not just the first, and each names the file, the node and
the field, so a tenant admin can fix a file in one round. A flow that fails any check is never
returned: the caller keeps the previous valid version live.

Checks beyond field syntax:

- Every node reference points at a node of the flow; every prompt exists in every language a
  caller can have chosen by the time they reach it (a small data-flow pass over the graph).
- No loop can run without waiting for the caller (a ring of play / set / hours / lookup /
  callback nodes), and no loop is taken forever by a caller who presses nothing (menus whose
  ``default`` leads back to themselves): either would keep a line open with no end.
- Unreachable nodes are reported as warnings on :attr:`Flow.warnings`, not errors.
"""

from __future__ import annotations

import tomllib
from collections import deque
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from minicc.queue.hours import HoursError, load_timezone
from minicc.queue.ivr_fields import (
    MISSING,
    NAME,
    Collector,
    LoadOptions,
    PromptCatalogue,
    Reader,
    listing,
    parse_node,
    show,
)
from minicc.queue.ivr_schema import (
    INPUT_NODES,
    Flow,
    FlowError,
    FlowNode,
    FlowProblem,
    LanguageNode,
    Node,
    SetNode,
    edges,
    silent_edges,
)

_FLOW_FIELDS = {"name", "start", "language", "timezone", "description"}


class _Loader(Collector):
    def load(self, text: str, stem: str | None) -> Flow:
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            self.problem(None, None, f"not valid TOML: {exc}")
            raise FlowError(self.problems) from None
        for key in document:
            if key not in ("flow", "nodes"):
                self.problem(None, None, f'unknown table "{key}" (use [flow] and [nodes.<id>])')
        head = Reader(self, None, _table(self, document, "flow"))
        head.check_fields(_FLOW_FIELDS, "[flow]")
        name = head.name("name", "flow name", stem if stem and NAME.match(stem) else MISSING)
        self.flow_name = name
        start = head.ref("start")
        language = head.language("language", head.get("language", str, "a string", "en")) or "en"
        timezone = head.text("timezone", self.options.default_timezone)
        try:
            load_timezone(timezone)
        except HoursError as exc:
            head.problem("timezone", str(exc))
        nodes: dict[str, Node] = {}
        node_tables = _table(self, document, "nodes")
        for node_id, table in node_tables.items():
            if not NAME.match(node_id):
                self.problem(node_id, None, 'bad node id (use letters, digits, "_" and "-")')
            if not isinstance(table, dict):
                self.problem(node_id, None, f"expected a table, got {show(table)}")
                continue
            node = parse_node(self, node_id, table, timezone)
            if node is not None:
                nodes[node_id] = node
        if not nodes and "nodes" in document:
            self.problem(None, None, "the flow has no nodes")
        ids = set(node_tables)
        for source, field, target in self.refs:
            if target not in ids:
                self.problem(source, field, f'unknown node "{target}" (known: {listing(ids)})')
        flow_name = name or "flow"
        graph = _Graph(nodes, start, flow_name)
        self.check_prompts(graph, language)
        self.check_loops(graph)
        if self.problems:
            raise FlowError(self.problems)
        warnings = [
            FlowProblem(
                file=self.file,
                node=node_id,
                field=None,
                message=f'unreachable from start "{start}"',
            )
            for node_id in nodes
            if node_id not in graph.reachable
        ]
        return Flow(
            name=flow_name,
            start=start,
            language=language,
            timezone=timezone,
            nodes=MappingProxyType(nodes),
            source=self.file,
            warnings=tuple(warnings),
        )

    def check_prompts(self, graph: _Graph, start_language: str) -> None:
        catalogue = self.options.prompt_exists
        languages = graph.languages(start_language)
        for node_id, field, name in self.prompt_uses:
            wanted = languages.get(node_id or "") or {start_language}
            missing = sorted(
                lang
                for lang in wanted
                if not (catalogue(lang, name) if callable(catalogue) else (lang, name) in catalogue)
            )
            if missing:
                label = "language" if len(missing) == 1 else "languages"
                quoted = ", ".join(f'"{lang}"' for lang in missing)
                self.problem(node_id, field, f'missing prompt "{name}" ({label} {quoted})')

    def check_loops(self, graph: _Graph) -> None:
        quiet = {i for i, node in graph.nodes.items() if not isinstance(node, INPUT_NODES)}
        reported: set[frozenset[str]] = set()
        for cycle in graph.cycles(lambda n: [e for e in graph.out(n) if e[1] in quiet], quiet):
            reported.add(frozenset(cycle))
            field = graph.field_between(cycle[0], cycle[1 % len(cycle)])
            path = " -> ".join(f'"{node}"' for node in [*cycle, cycle[0]])
            self.problem(
                cycle[0],
                field,
                f"loop {path} never waits for caller input "
                "(add a menu or collect to it, or end it with a hangup)",
            )
        for cycle in graph.cycles(graph.silent_out, set(graph.nodes)):
            if frozenset(cycle) in reported or not any(n in graph.inputs for n in cycle):
                continue
            first = next(n for n in cycle if n in graph.inputs)
            cycle = cycle[cycle.index(first) :] + cycle[: cycle.index(first)]
            path = " -> ".join(f'"{node}"' for node in [*cycle, cycle[0]])
            self.problem(
                first,
                "default",
                f"loop {path} is taken forever by a caller who presses nothing "
                "(send the default somewhere that ends the call)",
            )


def _table(loader: _Loader, document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = document.get(key, MISSING)
    if value is MISSING:
        loader.problem(None, None, f"missing [{key}] table")
        return {}
    if not isinstance(value, dict):
        loader.problem(None, None, f"[{key}] must be a table")
        return {}
    return value


class _Graph:
    """The node graph, for reachability, loop and language checks."""

    def __init__(self, nodes: Mapping[str, Node], start: str, flow_name: str) -> None:
        self.nodes = nodes
        self.start = start
        self.flow_name = flow_name
        self.order = {node_id: index for index, node_id in enumerate(nodes)}
        self.inputs = {i for i, node in nodes.items() if isinstance(node, INPUT_NODES)}
        self.reachable = self._reach(self.out)

    def _self_edge(self, node: Node) -> list[tuple[str, str]]:
        # A flow node naming its own flow starts it over: an edge to the start node.
        if isinstance(node, FlowNode) and node.flow == self.flow_name:
            return [("flow", self.start)]
        return []

    def out(self, node_id: str) -> list[tuple[str, str]]:
        node = self.nodes[node_id]
        found = edges(node) + self._self_edge(node)
        return [(field, target) for field, target in found if target in self.nodes]

    def silent_out(self, node_id: str) -> list[tuple[str, str]]:
        node = self.nodes[node_id]
        found = silent_edges(node) + self._self_edge(node)
        return [(field, target) for field, target in found if target in self.nodes]

    def field_between(self, source: str, target: str) -> str:
        return next(field for field, node in self.out(source) if node == target)

    def _reach(self, out: Callable[[str], list[tuple[str, str]]]) -> set[str]:
        if self.start not in self.nodes:
            return set()
        seen = {self.start}
        todo = deque([self.start])
        while todo:
            for _, target in out(todo.popleft()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    def languages(self, start_language: str) -> dict[str, set[str]]:
        """For each node, the languages a caller can be in on arriving there."""
        result: dict[str, set[str]] = {node_id: set() for node_id in self.nodes}
        if self.start not in self.nodes:
            return result
        result[self.start].add(start_language)
        todo = deque([self.start])
        while todo:
            node_id = todo.popleft()
            node = self.nodes[node_id]
            arriving = result[node_id]
            for field, target in self.out(node_id):
                if isinstance(node, SetNode) and node.language is not None:
                    leaving = {node.language}
                elif isinstance(node, LanguageNode) and field == "next":
                    leaving = arriving | set(node.options.values())
                elif isinstance(node, FlowNode):
                    leaving = {start_language}
                else:
                    leaving = arriving
                if not leaving <= result[target]:
                    result[target] |= leaving
                    todo.append(target)
        return result

    def cycles(
        self, out: Callable[[str], list[tuple[str, str]]], among: set[str]
    ) -> list[list[str]]:
        """One shortest cycle per strongly connected component of ``among`` that has one."""
        found = []
        for component in _components(among, lambda n: [t for _, t in out(n) if t in among]):
            first = min(component, key=self.order.__getitem__)
            cycle = _shortest_cycle(first, out, component)
            if cycle:
                found.append(cycle)
        found.sort(key=lambda cycle: self.order[cycle[0]])
        return found


def _components(nodes: set[str], succ: Callable[[str], list[str]]) -> list[set[str]]:
    """Strongly connected components (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(succ(root)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ(child))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _shortest_cycle(
    first: str, out: Callable[[str], list[tuple[str, str]]], within: set[str]
) -> list[str]:
    """Nodes of the shortest cycle through ``first`` inside ``within``, or [] if none."""
    parent: dict[str, str] = {}
    todo = deque([first])
    while todo:
        node = todo.popleft()
        for _, target in out(node):
            if target not in within:
                continue
            if target == first:
                path = [node]
                while path[-1] != first:
                    path.append(parent[path[-1]])
                return path[::-1]
            if target not in parent:
                parent[target] = node
                todo.append(target)
    return []


def load_flow(
    source: Path | str,
    *,
    prompt_exists: PromptCatalogue,
    known_queues: Collection[str] | None = None,
    known_flows: Collection[str] | None = None,
    hooks: Collection[str] | None = None,
    default_timezone: str = "UTC",
    filename: str | None = None,
) -> Flow:
    """Load and check one IVR flow.

    Args:
        source: A :class:`~pathlib.Path` to read, or the TOML text itself.
        prompt_exists: ``prompt_exists(language, name)``, or a set of (language, name) pairs.
        known_queues: The tenant's queue names; ``None`` skips that check.
        known_flows: The tenant's flow names; ``None`` skips that check. A flow may always
            name itself.
        hooks: Lookup hook names the plugins provide; ``None`` skips that check.
        default_timezone: The tenant's zone, used when ``[flow]`` names none.
        filename: Label for messages when ``source`` is text (default ``"<flow>"``).

    Returns:
        The validated flow; :attr:`Flow.warnings` lists unreachable nodes.

    Raises:
        FlowError: with one :class:`FlowProblem` per problem found.
    """
    stem: str | None = None
    if isinstance(source, Path):
        file = filename or source.name
        stem = source.stem
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise FlowError(
                [FlowProblem(file=file, node=None, field=None, message=f"cannot read: {reason}")]
            ) from None
    else:
        file = filename or "<flow>"
        text = source
    options = LoadOptions(
        prompt_exists=prompt_exists,
        known_queues=known_queues,
        known_flows=known_flows,
        hooks=hooks,
        default_timezone=default_timezone,
    )
    return _Loader(file, options).load(text, stem)
