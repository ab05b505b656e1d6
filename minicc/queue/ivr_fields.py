"""Read the node tables of an IVR flow file into typed nodes. Pure.

Each :class:`Reader` wraps one TOML table and records a :class:`FlowProblem` for every field
that is missing, of the wrong type or out of range, substituting a harmless value so that
reading goes on and one load reports everything wrong with a file. Node references are only
collected here; :mod:`minicc.queue.ivr_validate` checks them once every node id is known.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, tzinfo
from types import MappingProxyType
from typing import Any

from minicc.queue.hours import (
    BusinessHours,
    HoursError,
    OpenSpan,
    load_timezone,
    parse_holiday,
    parse_schedule_line,
)
from minicc.queue.ivr_schema import (
    DTMF_KEYS,
    CallbackNode,
    CollectNode,
    ExtensionNode,
    FlowNode,
    FlowProblem,
    HangupNode,
    HoursNode,
    LanguageNode,
    LookupNode,
    MenuNode,
    Node,
    NodeType,
    PlayNode,
    PromptItem,
    PromptRef,
    Prompts,
    QueueNode,
    SayItem,
    SayKind,
    SetNode,
    Template,
    VoicemailNode,
)

PromptCatalogue = Callable[[str, str], bool] | Collection[tuple[str, str]]
"""``prompt_exists(language, name)``, or a set of (language, name) pairs."""

MAX_INPUT_TIMEOUT = 60.0
MAX_DIGIT_TIMEOUT = 30.0
MAX_LOOKUP_TIMEOUT = 30.0
MAX_RETRIES = 10
MAX_DIGITS = 64
MAX_PRIORITY = 9
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*\Z")
MISSING = object()

_COMMON = {"type", "description"}
_INPUT = {"prompts", "timeout", "retries", "invalid_prompt", "timeout_prompt", "default"}
_FIELDS: dict[NodeType, set[str]] = {
    NodeType.PLAY: {"prompts", "next", "interruptible"},
    NodeType.MENU: _INPUT | {"options"},
    NodeType.COLLECT: _INPUT
    | {"into", "next", "min_digits", "max_digits", "terminator", "digit_timeout"},
    NodeType.LANGUAGE: _INPUT | {"options", "next"},
    NodeType.HOURS: {"open", "holidays", "timezone", "open_next", "closed_next", "holiday_next"},
    NodeType.SET: {"priority", "skills", "variables", "language", "next"},
    NodeType.QUEUE: {"queue", "priority", "skills"},
    NodeType.EXTENSION: {"number"},
    NodeType.FLOW: {"flow"},
    NodeType.VOICEMAIL: {"box"},
    NodeType.CALLBACK: {"queue", "number", "next"},
    NodeType.HANGUP: {"reason"},
    NodeType.LOOKUP: {"hook", "input", "timeout", "branches", "fallback", "into", "prompts"},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadOptions:
    """What a load checks names against; ``None`` skips that check."""

    prompt_exists: PromptCatalogue
    known_queues: Collection[str] | None
    known_flows: Collection[str] | None
    hooks: Collection[str] | None
    default_timezone: str


class Collector:
    """What one load gathers while reading: problems, node references, prompt uses."""

    def __init__(self, file: str, options: LoadOptions) -> None:
        self.file = file
        self.options = options
        self.problems: list[FlowProblem] = []
        self.refs: list[tuple[str | None, str, str]] = []
        """(node, field, target id) for every node reference read."""
        self.prompt_uses: list[tuple[str | None, str, str]] = []
        """(node, field, prompt name) for every recorded prompt named."""
        self.flow_name: str | None = None

    def problem(self, node: str | None, field: str | None, message: str) -> None:
        self.problems.append(FlowProblem(file=self.file, node=node, field=field, message=message))


def listing(names: Iterable[str], limit: int = 12) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:limit])
    return shown + (", ..." if len(ordered) > limit else "")


class Reader:
    """Typed access to one TOML table, recording a problem for every bad field."""

    def __init__(self, collector: Collector, node: str | None, table: Mapping[str, Any]) -> None:
        self.collector = collector
        self.node = node
        self.table = table

    def problem(self, field: str | None, message: str) -> None:
        self.collector.problem(self.node, field, message)

    def get(self, key: str, kind: type | tuple[type, ...], what: str, default: Any) -> Any:
        value = self.table.get(key, MISSING)
        if value is MISSING:
            if default is MISSING:
                self.problem(key, "missing")
            return None if default is MISSING else default
        # bool is an int in Python; a TOML `true` is never a number here.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
            self.problem(key, f"expected {what}, got {show(value)}")
            return None if default is MISSING else default
        return value

    def text(self, key: str, default: Any = MISSING) -> Any:
        return self.get(key, str, "a string", default)

    def name(self, key: str, what: str, default: Any = MISSING) -> Any:
        value = self.text(key, default)
        if isinstance(value, str) and not NAME.match(value):
            self.problem(key, f'bad {what} "{value}" (use letters, digits, "_" and "-")')
        return value

    def number(self, key: str, default: float, high: float) -> float:
        value = self.get(key, (int, float), "a number of seconds", default)
        if not 0 < value <= high:
            self.problem(key, f"{value} is out of range (must be > 0 and at most {high:g} seconds)")
            return default
        return float(value)

    def integer(self, key: str, default: Any, low: int, high: int) -> Any:
        value = self.get(key, int, "a whole number", default)
        if value is not None and not low <= value <= high:
            self.problem(key, f"{value} is out of range ({low} to {high})")
            return default if default is not MISSING else None
        return value

    def ref(self, key: str, default: Any = MISSING) -> str:
        """A node id; whether it exists is checked once all ids are known."""
        value = self.text(key, default)
        if isinstance(value, str):
            self.collector.refs.append((self.node, key, value))
            return value
        return ""

    def template(self, key: str, value: Any) -> Template | None:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.problem(key, f"expected a string, got {show(value)}")
            return None
        try:
            return Template.parse(value)
        except ValueError as exc:
            self.problem(key, str(exc))
            return None

    def prompts(self, key: str, required: bool) -> Prompts:
        value = self.table.get(key, MISSING)
        if value is MISSING:
            if required:
                self.problem(key, "missing (list at least one prompt, so no caller hears silence)")
            return ()
        items = [value] if isinstance(value, (str, dict)) else value
        if not isinstance(items, list) or (required and not items):
            self.problem(key, f"expected a list of prompts, got {show(value)}")
            return ()
        result: list[PromptItem] = []
        for index, item in enumerate(items):
            field = f"{key}[{index}]"
            if isinstance(item, str):
                if not NAME.match(item):
                    self.problem(field, f'bad prompt name "{item}"')
                    continue
                result.append(PromptRef(name=item))
                self.collector.prompt_uses.append((self.node, field, item))
            elif isinstance(item, dict) and len(item) == 1:
                kind_text, raw = next(iter(item.items()))
                try:
                    kind = SayKind(kind_text)
                except ValueError:
                    kinds = ", ".join(kind.value for kind in SayKind)
                    self.problem(field, f'unknown say kind "{kind_text}" (use {kinds})')
                    continue
                template = self.template(f"{field}.{kind_text}", raw)
                if template is not None:
                    result.append(SayItem(kind=kind, template=template))
            else:
                self.problem(
                    field, f'expected a prompt name or {{ number = "{{var}}" }}, got {show(item)}'
                )
        return tuple(result)

    def keys(self, key: str, what: str) -> dict[str, Any]:
        """A table whose keys are single DTMF keys."""
        value = self.get(key, dict, "a table of keys", MISSING)
        if value is None:
            return {}
        if not value:
            self.problem(key, f"needs at least one key ({what})")
        for digit in value:
            if len(digit) != 1 or digit not in DTMF_KEYS:
                self.problem(f"{key}.{digit}", f'"{digit}" is not a key (use one of {DTMF_KEYS})')
        return {digit: target for digit, target in value.items() if digit in DTMF_KEYS}

    def skills(self) -> Mapping[str, int]:
        value = self.get("skills", dict, "a table of skill = level", {})
        skills: dict[str, int] = {}
        for skill, level in value.items():
            field = f"skills.{skill}"
            if not NAME.match(skill):
                self.problem(field, f'bad skill name "{skill}"')
            elif not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 10:
                self.problem(field, f"level must be a whole number 1 to 10, got {show(level)}")
            else:
                skills[skill] = level
        return MappingProxyType(skills)

    def language(self, key: str, value: Any) -> str | None:
        if not isinstance(value, str) or not LANGUAGE.match(value):
            self.problem(key, f'bad language code {show(value)} (use e.g. "en", "de", "pt-BR")')
            return None
        return value

    def check_fields(self, allowed: set[str], what: str) -> None:
        for key in self.table:
            if key not in allowed:
                self.problem(key, f"unknown field for {what} (allowed: {listing(allowed)})")


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _known(read: Reader, key: str, value: Any, known: Collection[str] | None, what: str) -> None:
    if isinstance(value, str) and known is not None and value not in known:
        read.problem(key, f'unknown {what} "{value}" (known: {listing(known)})')


def _input_fields(read: Reader) -> dict[str, Any]:
    """Fields every node that waits for a key shares."""
    return {
        "prompts": read.prompts("prompts", required=True),
        "timeout": read.number("timeout", 5.0, MAX_INPUT_TIMEOUT),
        "retries": read.integer("retries", 3, 0, MAX_RETRIES),
        "invalid_prompt": read.prompts("invalid_prompt", required=False),
        "timeout_prompt": read.prompts("timeout_prompt", required=False),
    }


def _default(read: Reader, what: str) -> str:
    if "default" not in read.table:
        read.problem(
            "default",
            f"missing (where a {what} sends callers after the retries, so none ends in silence)",
        )
        return ""
    return read.ref("default")


def _build_play(read: Reader, node_id: str, timezone: str) -> Node:
    return PlayNode(
        id=node_id,
        prompts=read.prompts("prompts", required=True),
        next=read.ref("next"),
        interruptible=read.get("interruptible", bool, "true or false", False),
    )


def _build_menu(read: Reader, node_id: str, timezone: str) -> Node:
    options = read.keys("options", 'e.g. { "1" = "sales" }')
    targets: dict[str, str] = {}
    for digit, target in options.items():
        if not isinstance(target, str):
            read.problem(f"options.{digit}", f"expected a node id, got {show(target)}")
            continue
        read.collector.refs.append((node_id, f"options.{digit}", target))
        targets[digit] = target
    return MenuNode(
        id=node_id,
        options=MappingProxyType(targets),
        default=_default(read, "menu"),
        **_input_fields(read),
    )


def _build_collect(read: Reader, node_id: str, timezone: str) -> Node:
    into = read.text("into")
    if isinstance(into, str) and not _VARIABLE.match(into):
        read.problem("into", f'bad variable name "{into}" (letters, digits and "_")')
    min_digits = read.integer("min_digits", 1, 0, MAX_DIGITS)
    max_digits = read.integer("max_digits", 20, 1, MAX_DIGITS)
    if min_digits > max_digits:
        read.problem("min_digits", f"min_digits {min_digits} is above max_digits {max_digits}")
    terminator = read.text("terminator", "#")
    if terminator not in ("", *"*#ABCD"):
        read.problem("terminator", f'bad terminator "{terminator}" (use "#", "*" or "" for none)')
        terminator = "#"
    return CollectNode(
        id=node_id,
        into=into or "",
        next=read.ref("next"),
        default=_default(read, "collect"),
        min_digits=min_digits,
        max_digits=max_digits,
        terminator=terminator,
        digit_timeout=read.number("digit_timeout", 3.0, MAX_DIGIT_TIMEOUT),
        **_input_fields(read),
    )


def _build_language(read: Reader, node_id: str, timezone: str) -> Node:
    options = read.keys("options", 'e.g. { "1" = "en", "2" = "de" }')
    languages: dict[str, str] = {}
    for digit, code in options.items():
        checked = read.language(f"options.{digit}", code)
        if checked is not None:
            languages[digit] = checked
    next_node = read.ref("next")
    return LanguageNode(
        id=node_id,
        options=MappingProxyType(languages),
        next=next_node,
        default=read.ref("default", next_node),
        **_input_fields(read),
    )


def _build_hours(read: Reader, node_id: str, timezone: str) -> Node | None:
    spans: list[OpenSpan] = []
    for index, line in enumerate(read.get("open", list, 'a list like ["mon-fri 08:00-18:00"]', [])):
        try:
            spans.extend(parse_schedule_line(_string(line)))
        except (HoursError, TypeError) as exc:
            read.problem(f"open[{index}]", str(exc))
    dated: set[date] = set()
    yearly: set[tuple[int, int]] = set()
    for index, text in enumerate(read.get("holidays", list, 'a list like ["12-25"]', [])):
        try:
            day = parse_holiday(_string(text))
        except (HoursError, TypeError) as exc:
            read.problem(f"holidays[{index}]", str(exc))
            continue
        if isinstance(day, date):
            dated.add(day)
        else:
            yearly.add(day)
    zone: tzinfo | None = None
    if "timezone" in read.table:
        try:
            zone = load_timezone(read.text("timezone", "UTC"))
        except HoursError as exc:
            read.problem("timezone", str(exc))
    else:
        with contextlib.suppress(HoursError):  # a bad [flow] timezone is reported there
            zone = load_timezone(timezone)
    closed_next = read.ref("closed_next")
    return HoursNode(
        id=node_id,
        hours=BusinessHours(
            spans=tuple(spans),
            holidays=frozenset(dated),
            yearly_holidays=frozenset(yearly),
            timezone=zone or UTC,
        ),
        open_next=read.ref("open_next"),
        closed_next=closed_next,
        holiday_next=read.ref("holiday_next", closed_next),
    )


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {show(value)}")
    return value


def _build_set(read: Reader, node_id: str, timezone: str) -> Node:
    variables: dict[str, Template] = {}
    for key, value in read.get("variables", dict, "a table of name = value", {}).items():
        field = f"variables.{key}"
        if not _VARIABLE.match(key):
            read.problem(field, f'bad variable name "{key}" (letters, digits and "_")')
            continue
        template = read.template(field, value)
        if template is not None:
            variables[key] = template
    language = read.table.get("language")
    return SetNode(
        id=node_id,
        next=read.ref("next"),
        priority=read.integer("priority", None, 0, MAX_PRIORITY),
        skills=read.skills(),
        variables=MappingProxyType(variables),
        language=None if language is None else read.language("language", language),
    )


def _build_queue(read: Reader, node_id: str, timezone: str) -> Node:
    queue = read.name("queue", "queue name")
    _known(read, "queue", queue, read.collector.options.known_queues, "queue")
    return QueueNode(
        id=node_id,
        queue=queue or "",
        priority=read.integer("priority", None, 0, MAX_PRIORITY),
        skills=read.skills(),
    )


def _required_template(read: Reader, key: str) -> Template:
    value = read.table.get(key, MISSING)
    if value is MISSING:
        read.problem(key, "missing")
        return Template(())
    template = read.template(key, value)
    if template is not None and not str(template).strip():
        read.problem(key, "must not be empty")
    return template or Template(())


def _build_extension(read: Reader, node_id: str, timezone: str) -> Node:
    return ExtensionNode(id=node_id, number=_required_template(read, "number"))


def _build_flow(read: Reader, node_id: str, timezone: str) -> Node:
    name = read.name("flow", "flow name")
    # A flow may always name itself (to start over), even before it is known to the tenant.
    if name != read.collector.flow_name:
        _known(read, "flow", name, read.collector.options.known_flows, "flow")
    return FlowNode(id=node_id, flow=name or "")


def _build_voicemail(read: Reader, node_id: str, timezone: str) -> Node:
    return VoicemailNode(id=node_id, box=_required_template(read, "box"))


def _build_callback(read: Reader, node_id: str, timezone: str) -> Node:
    queue = read.name("queue", "queue name", None)
    _known(read, "queue", queue, read.collector.options.known_queues, "queue")
    number = read.table.get("number", "{caller}")
    return CallbackNode(
        id=node_id,
        next=read.ref("next"),
        queue=queue,
        number=read.template("number", number) or Template(((True, "caller"),)),
    )


def _build_hangup(read: Reader, node_id: str, timezone: str) -> Node:
    return HangupNode(id=node_id, reason=read.text("reason", "normal"))


def _build_lookup(read: Reader, node_id: str, timezone: str) -> Node:
    hook = read.name("hook", "hook name")
    _known(read, "hook", hook, read.collector.options.hooks, "hook")
    into = read.text("into", "result")
    if not _VARIABLE.match(into):
        read.problem("into", f'bad variable name "{into}" (letters, digits and "_")')
    branches: dict[str, str] = {}
    for result, target in read.get("branches", dict, "a table of result = node", {}).items():
        if not isinstance(target, str):
            read.problem(f"branches.{result}", f"expected a node id, got {show(target)}")
            continue
        read.collector.refs.append((node_id, f"branches.{result}", target))
        branches[result] = target
    return LookupNode(
        id=node_id,
        hook=hook or "",
        input=_required_template(read, "input"),
        branches=MappingProxyType(branches),
        fallback=read.ref("fallback"),
        timeout=read.number("timeout", 5.0, MAX_LOOKUP_TIMEOUT),
        into=into,
        prompts=read.prompts("prompts", required=False),
    )


_BUILDERS: dict[NodeType, Callable[[Reader, str, str], Node | None]] = {
    NodeType.PLAY: _build_play,
    NodeType.MENU: _build_menu,
    NodeType.COLLECT: _build_collect,
    NodeType.LANGUAGE: _build_language,
    NodeType.HOURS: _build_hours,
    NodeType.SET: _build_set,
    NodeType.QUEUE: _build_queue,
    NodeType.EXTENSION: _build_extension,
    NodeType.FLOW: _build_flow,
    NodeType.VOICEMAIL: _build_voicemail,
    NodeType.CALLBACK: _build_callback,
    NodeType.HANGUP: _build_hangup,
    NodeType.LOOKUP: _build_lookup,
}


def parse_node(
    collector: Collector, node_id: str, table: Mapping[str, Any], timezone: str
) -> Node | None:
    """Read one ``[nodes.<id>]`` table; ``None`` when its type is missing or unknown.

    ``timezone`` is the flow's zone, used by hours nodes that name none.
    """
    read = Reader(collector, node_id, table)
    type_text = read.text("type")
    if type_text is None:
        return None
    try:
        kind = NodeType(type_text)
    except ValueError:
        types = ", ".join(t.value for t in NodeType)
        read.problem("type", f'unknown type "{type_text}" (use {types})')
        return None
    read.check_fields(_FIELDS[kind] | _COMMON, f"a {kind} node")
    return _BUILDERS[kind](read, node_id, timezone)
