"""The IVR flow model: nodes, prompts, templates and load problems. Pure data.

A :class:`Flow` is what :func:`minicc.queue.ivr_validate.load_flow` returns once a TOML file
has passed every check; :class:`minicc.queue.ivr.FlowRun` interprets it. Everything here is
frozen, so a live flow can be shared by every call running it and swapped for a new version
without touching the calls already inside the old one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from minicc.queue.hours import BusinessHours

DTMF_KEYS = "0123456789*#ABCD"
"""Keys a caller can press (RFC 4733 §3.2 events 0-15)."""

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


def _no_entries() -> Mapping[Any, Any]:
    return _EMPTY  # shared and read-only, so one instance serves every node


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


class NodeType(enum.StrEnum):
    """The ``type`` of a node in the TOML file."""

    PLAY = "play"
    MENU = "menu"
    COLLECT = "collect"
    HOURS = "hours"
    LANGUAGE = "language"
    SET = "set"
    QUEUE = "queue"
    EXTENSION = "extension"
    FLOW = "flow"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    HANGUP = "hangup"
    LOOKUP = "lookup"


class SayKind(enum.StrEnum):
    """How a ``say`` item speaks its value with the number prompts."""

    NUMBER = "number"
    """As a whole number ("forty-two")."""
    DIGITS = "digits"
    """Digit by digit ("four two"), for order or phone numbers."""
    MINUTES = "minutes"
    """As a number followed by "minutes"."""
    DATE = "date"
    """A calendar date (``YYYY-MM-DD``) as weekday, month and day, e.g. a delivery date."""


@dataclass(frozen=True, slots=True)
class Template:
    """Text with ``{variable}`` placeholders, parsed once at load time.

    Variable names are identifiers, dotted for lookup results (``{result.delivery_date}``).
    A literal brace is written doubled: ``{{`` and ``}}``.
    """

    parts: tuple[tuple[bool, str], ...]
    """(is_variable, text) pieces in order."""

    @classmethod
    def parse(cls, text: str) -> Template:
        """Parse ``text``.

        Raises:
            ValueError: a brace that opens no valid placeholder, or closes none.
        """
        parts: list[tuple[bool, str]] = []
        literal: list[str] = []
        pos = 0
        while pos < len(text):
            char = text[pos]
            if text.startswith(("{{", "}}"), pos):
                literal.append(char)
                pos += 2
            elif char == "{":
                match = _PLACEHOLDER.match(text, pos)
                if match is None:
                    raise ValueError(f'bad placeholder at "{text[pos : pos + 20]}" in "{text}"')
                if literal:
                    parts.append((False, "".join(literal)))
                    literal = []
                parts.append((True, match.group(1)))
                pos = match.end()
            elif char == "}":
                raise ValueError(f'unmatched "}}" in "{text}" (write "}}}}" for a brace)')
            else:
                literal.append(char)
                pos += 1
        if literal:
            parts.append((False, "".join(literal)))
        return cls(tuple(parts))

    @property
    def variables(self) -> tuple[str, ...]:
        """Names of the variables the template reads."""
        return tuple(text for is_var, text in self.parts if is_var)

    def render(self, variables: Mapping[str, str]) -> str:
        """The text with each placeholder replaced; an unset variable renders empty."""
        return "".join(variables.get(text, "") if is_var else text for is_var, text in self.parts)

    def __str__(self) -> str:
        return "".join(
            "{" + text + "}" if is_var else text.replace("{", "{{").replace("}", "}}")
            for is_var, text in self.parts
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptRef:
    """A recorded prompt by name, resolved in the caller's language when played."""

    name: str
    """Prompt name, e.g. ``"welcome"``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SayItem:
    """A value spoken with the number prompts, e.g. the order number just typed."""

    kind: SayKind
    """How to speak it."""
    template: Template
    """Where the value comes from, e.g. ``{order}``."""


PromptItem = PromptRef | SayItem
Prompts = tuple[PromptItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayNode:
    """Play prompts, then go on."""

    id: str
    prompts: Prompts
    next: str
    interruptible: bool = False
    """A key stops the prompts and is kept for the next menu or collect (type-ahead)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuNode:
    """Play prompts, wait for one key, branch on it."""

    id: str
    prompts: Prompts
    options: Mapping[str, str]
    """Key -> node id."""
    default: str
    """Where a caller goes after ``retries`` invalid keys or timeouts."""
    timeout: float = 5.0
    """Seconds to wait for a key after the prompts end."""
    retries: int = 3
    """Repeats after the first attempt before going to ``default``."""
    invalid_prompt: Prompts = ()
    timeout_prompt: Prompts = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectNode:
    """Play prompts, collect several digits into a variable."""

    id: str
    prompts: Prompts
    into: str
    """Variable that receives the digits (terminator excluded)."""
    next: str
    default: str
    min_digits: int = 1
    max_digits: int = 20
    terminator: str = "#"
    """Key that ends input early; empty for none."""
    timeout: float = 5.0
    """Seconds to wait for the first digit after the prompts end."""
    digit_timeout: float = 3.0
    """Seconds between digits after which input counts as finished."""
    retries: int = 3
    invalid_prompt: Prompts = ()
    timeout_prompt: Prompts = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LanguageNode:
    """Play prompts, let the caller pick a language with one key, go on to ``next``."""

    id: str
    prompts: Prompts
    options: Mapping[str, str]
    """Key -> language code."""
    next: str
    default: str
    """Where a caller goes, in the language they had, after ``retries`` failures."""
    timeout: float = 5.0
    retries: int = 3
    invalid_prompt: Prompts = ()
    timeout_prompt: Prompts = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HoursNode:
    """Branch on business hours and holidays."""

    id: str
    hours: BusinessHours
    open_next: str
    closed_next: str
    holiday_next: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetNode:
    """Set priority, skills, language or variables for the rest of the call."""

    id: str
    next: str
    priority: int | None = None
    skills: Mapping[str, int] = field(default_factory=_no_entries)
    variables: Mapping[str, Template] = field(default_factory=_no_entries)
    language: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueNode:
    """Hand the call to an ACD queue (ends the flow)."""

    id: str
    queue: str
    priority: int | None = None
    skills: Mapping[str, int] = field(default_factory=_no_entries)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtensionNode:
    """Ring an extension (ends the flow)."""

    id: str
    number: Template


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowNode:
    """Continue in another flow of the same tenant, keeping language and variables."""

    id: str
    flow: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailNode:
    """Record a voicemail into a box (ends the flow)."""

    id: str
    box: Template


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackNode:
    """Register a callback request, then go on (usually to a goodbye and hang-up)."""

    id: str
    next: str
    queue: str | None = None
    """Queue whose virtual line the callback joins; ``None`` for the tenant's default."""
    number: Template = Template(((True, "caller"),))
    """Number to call back; the caller's own by default."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupNode:
    """End the call."""

    id: str
    reason: str = "normal"


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupNode:
    """Ask a plugin hook for data and branch on its answer."""

    id: str
    hook: str
    input: Template
    branches: Mapping[str, str]
    """Result value -> node id."""
    fallback: str
    """Where to go on timeout, error or a result with no branch."""
    timeout: float = 5.0
    into: str = "result"
    """Variable for the result; its fields land in ``into.field``."""
    prompts: Prompts = ()
    """Played (not interruptible) while the lookup runs, e.g. "one moment please"."""


Node = (
    PlayNode
    | MenuNode
    | CollectNode
    | LanguageNode
    | HoursNode
    | SetNode
    | QueueNode
    | ExtensionNode
    | FlowNode
    | VoicemailNode
    | CallbackNode
    | HangupNode
    | LookupNode
)

INPUT_NODES = (MenuNode, CollectNode, LanguageNode)
"""Nodes that wait for the caller (with a timeout)."""


def edges(node: Node) -> list[tuple[str, str]]:
    """(field, target node id) for every way out of ``node`` within its flow."""
    match node:
        case PlayNode() | SetNode() | CallbackNode():
            return [("next", node.next)]
        case MenuNode():
            return [(f"options.{key}", target) for key, target in node.options.items()] + [
                ("default", node.default)
            ]
        case CollectNode() | LanguageNode():
            return [("next", node.next), ("default", node.default)]
        case HoursNode():
            return [
                ("open_next", node.open_next),
                ("closed_next", node.closed_next),
                ("holiday_next", node.holiday_next),
            ]
        case LookupNode():
            return [(f"branches.{key}", target) for key, target in node.branches.items()] + [
                ("fallback", node.fallback)
            ]
        case _:
            return []


def silent_edges(node: Node) -> list[tuple[str, str]]:
    """The ways out of ``node`` a caller who presses nothing can take."""
    if isinstance(node, INPUT_NODES):
        return [("default", node.default)]
    return edges(node)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowProblem:
    """One thing wrong (or suspicious) in a flow file, with where it is."""

    file: str
    """File name (without directories), or ``<flow>`` for text."""
    node: str | None
    """Node id, or ``None`` for the ``[flow]`` table or the file as a whole."""
    field: str | None
    """Field path inside the node, e.g. ``options.3`` or ``prompts[1]``."""
    message: str
    """What is wrong, naming the bad value."""

    def __str__(self) -> str:
        where = self.file
        if self.node is not None:
            where += f': node "{self.node}"'
        elif self.field is not None:
            where += ": [flow]"
        if self.field is not None:
            where += f' field "{self.field}"'
        return f"{where}: {self.message}"


class FlowError(ValueError):
    """A flow file was rejected; :attr:`problems` lists every reason found."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    """A validated IVR flow."""

    name: str
    start: str
    """Id of the first node."""
    language: str
    """Language callers start in."""
    timezone: str
    """IANA zone of the hours nodes."""
    nodes: Mapping[str, Node]
    source: str
    """File name it was loaded from, for log lines."""
    warnings: tuple[FlowProblem, ...] = ()
    """Things worth fixing that do not stop the flow, e.g. unreachable nodes."""
