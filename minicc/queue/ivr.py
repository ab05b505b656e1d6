"""The IVR interpreter: one caller's way through a flow. Pure, sans-IO.

A :class:`FlowRun` is driven like the SIP core (``handle`` / ``get_timer`` /
``handle_timer``): the engine feeds it what happened on the call — a key (RFC 4733
telephone-event or SIP INFO, RFC 4733 §3.2 digits 0-9 * # A-D), the end of a prompt, a plugin
lookup's answer, the caller hanging up — and performs the actions it returns (play prompts,
stop them, run a lookup, route the call). It reads no clock: every call passes ``now``, and the
run says when it next wants :meth:`FlowRun.handle_timer` through :meth:`FlowRun.get_timer`.

``now`` is wall-clock unix seconds, because hours nodes need the date; a clock stepped back
shifts a pending timer back with it, so a waiting caller is never forgotten.

What the caller hears is always defined:

- Every input node has retries and a ``default``; a timeout or a wrong key replays the prompts
  (after the invalid / timeout prompt) until the retries run out, then goes to the default.
- While a run is not ended, either a prompt is playing or a timer is armed (see
  :meth:`FlowRun.is_silent`): there is no state that waits on nothing.
- More than ``max_steps`` node transitions without a key from the caller end the call with
  ``HangUp("loop")`` — defence in depth behind the loader's loop checks, and the only guard
  for loops that span flows.

Keys pressed during an interruptible prompt stop it (barge-in) and count as input; keys
pressed during an interruptible play node or a lookup are kept as type-ahead for the next menu
or collect, so a caller who knows the menu need not wait for it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, MutableMapping
from datetime import date
from types import MappingProxyType
from typing import Any

from minicc.queue.hours import HoursStatus
from minicc.queue.ivr_events import (
    TERMINAL_ACTIONS,
    Action,
    CallerHungUp,
    CancelLookup,
    DigitPressed,
    HangUp,
    IvrEvent,
    Lookup,
    LookupResult,
    Play,
    PromptsFinished,
    RequestCallback,
    RouteToExtension,
    RouteToQueue,
    Say,
    SetLanguage,
    StopPlayback,
    Voicemail,
)
from minicc.queue.ivr_schema import (
    CallbackNode,
    CollectNode,
    ExtensionNode,
    Flow,
    FlowError,
    FlowNode,
    FlowProblem,
    HangupNode,
    HoursNode,
    LanguageNode,
    LookupNode,
    MenuNode,
    Node,
    PlayNode,
    PromptRef,
    Prompts,
    QueueNode,
    SayKind,
    SetNode,
    VoicemailNode,
)
from minicc.queue.ivr_validate import load_flow

__all__ = [
    "TERMINAL_ACTIONS",
    "Action",
    "CallerHungUp",
    "CancelLookup",
    "DigitPressed",
    "Flow",
    "FlowError",
    "FlowProblem",
    "FlowRun",
    "HangUp",
    "IvrEvent",
    "Lookup",
    "LookupResult",
    "Play",
    "PromptsFinished",
    "RequestCallback",
    "RouteToExtension",
    "RouteToQueue",
    "Say",
    "SetLanguage",
    "StopPlayback",
    "Voicemail",
    "load_flow",
]

log = logging.getLogger(__name__)

MAX_STEPS = 50
"""Node transitions allowed without a key from the caller before the run gives up."""
MAX_TYPEAHEAD = 32


class Phase(enum.Enum):
    """Where the run is within its current node."""

    NOT_STARTED = "not started"
    PLAYING = "playing"
    """A play node's prompts are playing."""
    PROMPTING = "prompting"
    """An input node's prompts are playing; a key barges in."""
    WAITING = "waiting"
    """An input node waits for the first key (timer armed)."""
    COLLECTING = "collecting"
    """A collect node has digits and waits for more (inter-digit timer armed)."""
    LOOKUP = "lookup"
    """A lookup is out (timer armed); its prompts may be playing."""
    ENDED = "ended"


FlowResolver = Callable[[str], Flow | None]
_InputNode = MenuNode | CollectNode | LanguageNode


class _Adapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = self.extra or {}
        return f"{extra.get('call_id', '-')} {msg}", kwargs


class FlowRun:
    """One caller's run through a flow (and the flows it continues into).

    Args:
        flow: The validated flow to start in.
        variables: Initial variables, e.g. ``caller`` and ``called`` from the engine.
        language: Starting language; the flow's own by default.
        priority: Starting queue priority (VIP callers may arrive with one already).
        flows: Finds another flow of the tenant by name, for flow nodes. Without it, a flow
            node can only restart its own flow.
        call_id: Put at the start of every log line.
        max_steps: Node transitions allowed without a key before ``HangUp("loop")``.
    """

    def __init__(
        self,
        flow: Flow,
        *,
        variables: Mapping[str, str] | None = None,
        language: str | None = None,
        priority: int = 0,
        flows: FlowResolver | None = None,
        call_id: str = "",
        max_steps: int = MAX_STEPS,
    ) -> None:
        self._flow = flow
        self._flows = flows
        self._vars: dict[str, str] = dict(variables or {})
        self._language = language or flow.language
        self._priority = priority
        self._skills: dict[str, int] = {}
        self._max_steps = max_steps
        self._log = _Adapter(log, {"call_id": call_id or "-"})
        self._phase = Phase.NOT_STARTED
        self._node: Node | None = None
        self._steps = 0
        self._deadline: float | None = None
        self._last_now: float | None = None
        self._play_ids = 0
        self._playing: int | None = None
        self._attempt = 0
        self._digits = ""
        self._typeahead: list[str] = []
        self._lookup_id = 0
        self._lookup_pending = False
        self._after_lookup: str | None = None

    # -- what the engine may read ------------------------------------------------------------

    @property
    def flow(self) -> Flow:
        """The flow the caller is in now (changes at flow nodes)."""
        return self._flow

    @property
    def node(self) -> str | None:
        """Id of the current node, ``None`` before :meth:`start`."""
        return None if self._node is None else self._node.id

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def ended(self) -> bool:
        """Whether a terminal action was returned or the caller hung up."""
        return self._phase is Phase.ENDED

    @property
    def language(self) -> str:
        return self._language

    @property
    def priority(self) -> int:
        return self._priority

    @property
    def skills(self) -> Mapping[str, int]:
        return MappingProxyType(dict(self._skills))

    @property
    def variables(self) -> Mapping[str, str]:
        return MappingProxyType(dict(self._vars))

    @property
    def playing(self) -> int | None:
        """The ``play_id`` of the :class:`Play` in progress, if any."""
        return self._playing

    def is_silent(self) -> bool:
        """True if the run waits on nothing: no prompt playing and no timer. Never while live."""
        return not self.ended and self._playing is None and self._deadline is None

    # -- driving it ---------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Enter the flow's start node.

        Raises:
            RuntimeError: the run was already started.
        """
        if self._phase is not Phase.NOT_STARTED:
            raise RuntimeError("FlowRun.start() called twice")
        self._last_now = now
        out: list[Action] = []
        self._log.info("flow %s: start at %s", self._flow.name, self._flow.start)
        self._run(self._flow.start, now, out)
        return out

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` next wants to run (unix seconds), or ``None``."""
        return self._deadline

    def handle_timer(self, now: float) -> list[Action]:
        """Fire the timer if it is due; early or spurious calls do nothing."""
        self._observe(now)
        if self._deadline is None or now < self._deadline:
            return []
        self._deadline = None
        out: list[Action] = []
        node = self._node
        if self._phase is Phase.WAITING and isinstance(node, (MenuNode, CollectNode, LanguageNode)):
            self._log.info("node %s: no key within %gs", node.id, node.timeout)
            self._run(self._fail(node, timeout=True, now=now, out=out), now, out)
        elif self._phase is Phase.COLLECTING and isinstance(node, CollectNode):
            self._run(self._finish_collect(node, now, out), now, out)
        elif self._phase is Phase.LOOKUP and isinstance(node, LookupNode):
            self._log.warning("node %s: lookup %s timed out", node.id, node.hook)
            out.append(CancelLookup(request_id=self._lookup_id))
            self._lookup_pending = False
            self._lookup_done(node.fallback, now, out)
        return out

    def handle(self, event: IvrEvent, now: float) -> list[Action]:
        """Feed one event; returns what to do about it (often nothing)."""
        self._observe(now)
        if self._phase in (Phase.ENDED, Phase.NOT_STARTED):
            self._log.debug("ignoring %s in phase %s", event, self._phase.value)
            return []
        out: list[Action] = []
        match event:
            case DigitPressed():
                self._steps = 0
                self._digit(event.digit, now, out)
            case PromptsFinished():
                self._prompts_finished(event.play_id, now, out)
            case LookupResult():
                self._lookup_result(event, now, out)
            case CallerHungUp():
                if self._lookup_pending:
                    out.append(CancelLookup(request_id=self._lookup_id))
                self._log.info("node %s: caller hung up", self.node)
                self._end()
        return out

    # -- internals ----------------------------------------------------------------------------

    def _observe(self, now: float) -> None:
        # A wall clock stepped backwards would push a pending timeout far into the future and
        # leave the caller in silence; move the deadline back by the same amount.
        if self._last_now is not None and now < self._last_now and self._deadline is not None:
            self._deadline -= self._last_now - now
        self._last_now = now

    def _end(self) -> None:
        self._phase = Phase.ENDED
        self._deadline = None
        self._playing = None
        self._lookup_pending = False

    def _finish(self, action: Action, out: list[Action]) -> None:
        self._log.info("node %s: %s", self.node, action)
        if self._playing is not None:
            out.append(StopPlayback(play_id=self._playing))
        out.append(action)
        self._end()

    def _run(self, node_id: str | None, now: float, out: list[Action]) -> None:
        """Enter nodes until one waits (for a key, a prompt or a lookup) or the run ends."""
        while node_id is not None and self._phase is not Phase.ENDED:
            self._steps += 1
            if self._steps > self._max_steps:
                self._log.warning("%d transitions without a key: hanging up", self._max_steps)
                self._finish(HangUp(reason="loop"), out)
                return
            node = self._flow.nodes.get(node_id)
            if node is None:  # validated flows cannot get here; never leave a caller hanging
                self._log.error("flow %s: no node %r", self._flow.name, node_id)
                self._finish(HangUp(reason="no destination"), out)
                return
            self._node = node
            self._deadline = None
            node_id = self._enter(node, now, out)

    def _enter(self, node: Node, now: float, out: list[Action]) -> str | None:
        """Start ``node``; returns the node to go to at once, or ``None`` if it waits/ended."""
        self._log.debug("enter %s (%s)", node.id, type(node).__name__)
        match node:
            case PlayNode():
                if node.interruptible and self._typeahead:
                    return node.next  # the caller already typed ahead: skip to the menu
                if not self._play(node.prompts, out, interruptible=node.interruptible):
                    return node.next
                self._phase = Phase.PLAYING
                return None
            case MenuNode() | CollectNode() | LanguageNode():
                return self._enter_input(node, now, out)
            case HoursNode():
                status = node.hours.status(now)
                self._log.info("node %s: %s", node.id, status.value)
                if status is HoursStatus.OPEN:
                    return node.open_next
                return node.holiday_next if status is HoursStatus.HOLIDAY else node.closed_next
            case SetNode():
                return self._apply_set(node, out)
            case LookupNode():
                self._start_lookup(node, now, out)
            case CallbackNode():
                out.append(
                    RequestCallback(
                        queue=node.queue,
                        number=node.number.render(self._vars),
                        variables=self.variables,
                    )
                )
                return node.next
            case FlowNode():
                return self._goto_flow(node, out)
            case QueueNode():
                self._skills.update(node.skills)
                priority = self._priority if node.priority is None else node.priority
                self._finish(
                    RouteToQueue(
                        queue=node.queue,
                        priority=priority,
                        skills=self.skills,
                        variables=self.variables,
                        language=self._language,
                    ),
                    out,
                )
            case ExtensionNode():
                number = node.number.render(self._vars).strip()
                action: Action = (
                    RouteToExtension(number=number, variables=self.variables)
                    if number
                    else HangUp(reason="no destination")
                )
                self._finish(action, out)
            case VoicemailNode():
                box = node.box.render(self._vars).strip()
                self._finish(
                    Voicemail(box=box, language=self._language)
                    if box
                    else HangUp(reason="no destination"),
                    out,
                )
            case HangupNode():
                self._finish(HangUp(reason=node.reason), out)
        return None

    def _play(self, items: Prompts, out: list[Action], *, interruptible: bool) -> bool:
        """Start playing ``items``; False (and nothing played) if none has anything to say."""
        rendered: list[PromptRef | Say] = []
        for item in items:
            if isinstance(item, PromptRef):
                rendered.append(item)
                continue
            value = _say_value(item.kind, item.template.render(self._vars))
            if value is None:
                self._log.warning("node %s: nothing to say for %s", self.node, item.template)
            else:
                rendered.append(Say(kind=item.kind, value=value))
        if not rendered:
            return False
        self._play_ids += 1
        self._playing = self._play_ids
        out.append(
            Play(
                play_id=self._playing,
                items=tuple(rendered),
                language=self._language,
                interruptible=interruptible,
            )
        )
        return True

    def _stop_playing(self, out: list[Action]) -> None:
        if self._playing is not None:
            out.append(StopPlayback(play_id=self._playing))
            self._playing = None

    def _prompt(
        self,
        node: _InputNode,
        items: Prompts,
        now: float,
        out: list[Action],
    ) -> None:
        if self._play(items, out, interruptible=True):
            self._phase = Phase.PROMPTING
        else:
            self._phase = Phase.WAITING
            self._deadline = now + node.timeout

    def _enter_input(self, node: _InputNode, now: float, out: list[Action]) -> str | None:
        self._attempt = 0
        self._digits = ""
        if not self._typeahead:
            self._prompt(node, node.prompts, now, out)
            return None
        self._phase = Phase.WAITING
        while self._typeahead and self._phase in (Phase.WAITING, Phase.COLLECTING):
            following = self._input_digit(node, self._typeahead.pop(0), now, out)
            if following is not None:
                return following
        return None

    def _digit(self, digit: str, now: float, out: list[Action]) -> None:
        node = self._node
        if self._phase is Phase.PLAYING and isinstance(node, PlayNode):
            if not node.interruptible:
                self._log.debug("node %s: key %s ignored during prompt", node.id, digit)
                return
            self._stop_playing(out)
            self._keep(digit)
            self._run(node.next, now, out)
        elif self._phase is Phase.LOOKUP:
            self._keep(digit)
        elif isinstance(node, (MenuNode, CollectNode, LanguageNode)):
            self._run(self._input_digit(node, digit, now, out), now, out)

    def _keep(self, digit: str) -> None:
        if len(self._typeahead) < MAX_TYPEAHEAD:
            self._typeahead.append(digit)

    def _input_digit(
        self, node: _InputNode, digit: str, now: float, out: list[Action]
    ) -> str | None:
        self._stop_playing(out)  # barge-in
        self._deadline = None
        match node:
            case MenuNode():
                if digit in node.options:
                    self._log.info("node %s: key %s", node.id, digit)
                    return node.options[digit]
            case LanguageNode():
                if digit in node.options:
                    self._language = node.options[digit]
                    self._log.info("node %s: language %s", node.id, self._language)
                    out.append(SetLanguage(language=self._language))
                    return node.next
            case CollectNode():
                if node.terminator and digit == node.terminator:
                    return self._finish_collect(node, now, out)
                if digit.isdigit():
                    self._digits += digit
                    if len(self._digits) >= node.max_digits:
                        return self._finish_collect(node, now, out)
                    self._phase = Phase.COLLECTING
                    self._deadline = now + node.digit_timeout
                    return None
        self._log.info("node %s: invalid key %s", node.id, digit)
        return self._fail(node, timeout=False, now=now, out=out)

    def _finish_collect(self, node: CollectNode, now: float, out: list[Action]) -> str | None:
        if len(self._digits) < node.min_digits:
            self._log.info(
                "node %s: %d digits, need %d", node.id, len(self._digits), node.min_digits
            )
            return self._fail(node, timeout=not self._digits, now=now, out=out)
        self._vars[node.into] = self._digits
        self._log.info("node %s: collected %d digits", node.id, len(self._digits))
        return node.next

    def _fail(
        self,
        node: _InputNode,
        *,
        timeout: bool,
        now: float,
        out: list[Action],
    ) -> str | None:
        """A wrong key or no key: replay with the matching prompt, or give up to the default."""
        self._attempt += 1
        self._digits = ""
        self._typeahead.clear()  # keys mashed after a wrong one are not a new choice
        if self._attempt > node.retries:
            self._log.info("node %s: retries used up, going to %s", node.id, node.default)
            return node.default
        lead = node.timeout_prompt if timeout else node.invalid_prompt
        self._prompt(node, lead + node.prompts, now, out)
        return None

    def _prompts_finished(self, play_id: int, now: float, out: list[Action]) -> None:
        if play_id != self._playing:
            self._log.debug("stale PromptsFinished %d (playing %s)", play_id, self._playing)
            return
        self._playing = None
        node = self._node
        if self._phase is Phase.PLAYING and isinstance(node, PlayNode):
            self._run(node.next, now, out)
        elif self._phase is Phase.PROMPTING and isinstance(
            node, (MenuNode, CollectNode, LanguageNode)
        ):
            self._phase = Phase.WAITING
            self._deadline = now + node.timeout
        elif self._phase is Phase.LOOKUP and self._after_lookup is not None:
            following, self._after_lookup = self._after_lookup, None
            self._run(following, now, out)

    def _apply_set(self, node: SetNode, out: list[Action]) -> str:
        if node.priority is not None:
            self._priority = node.priority
        self._skills.update(node.skills)
        for name, template in node.variables.items():
            self._vars[name] = template.render(self._vars)
        if node.language is not None and node.language != self._language:
            self._language = node.language
            out.append(SetLanguage(language=node.language))
        return node.next

    def _start_lookup(self, node: LookupNode, now: float, out: list[Action]) -> None:
        self._lookup_id += 1
        self._lookup_pending = True
        self._after_lookup = None
        self._phase = Phase.LOOKUP
        self._deadline = now + node.timeout
        out.append(
            Lookup(
                request_id=self._lookup_id,
                hook=node.hook,
                input=node.input.render(self._vars),
                timeout=node.timeout,
            )
        )
        self._play(node.prompts, out, interruptible=False)

    def _lookup_result(self, event: LookupResult, now: float, out: list[Action]) -> None:
        node = self._node
        if (
            self._phase is not Phase.LOOKUP
            or not isinstance(node, LookupNode)
            or event.request_id != self._lookup_id
            or not self._lookup_pending
        ):
            self._log.debug("stale lookup result %d", event.request_id)
            return
        self._lookup_pending = False
        self._deadline = None
        for key in [k for k in self._vars if k.startswith(node.into + ".")]:
            del self._vars[key]
        self._vars[node.into] = event.result or ""
        for key, value in event.data.items():
            self._vars[f"{node.into}.{key}"] = str(value)
        if event.error is not None:
            self._log.warning("node %s: lookup %s failed: %s", node.id, node.hook, event.error)
            following = node.fallback
        elif event.result is None or event.result not in node.branches:
            self._log.info("node %s: no branch for result %r", node.id, event.result)
            following = node.fallback
        else:
            following = node.branches[event.result]
        self._lookup_done(following, now, out)

    def _lookup_done(self, following: str, now: float, out: list[Action]) -> None:
        # Let "one moment please" finish rather than cut it mid-word.
        if self._playing is not None:
            self._after_lookup = following
        else:
            self._run(following, now, out)

    def _goto_flow(self, node: FlowNode, out: list[Action]) -> str | None:
        target = self._flow if node.flow == self._flow.name else None
        if target is None and self._flows is not None:
            target = self._flows(node.flow)
        if target is None:
            self._log.error("node %s: flow %r is not available", node.id, node.flow)
            self._finish(HangUp(reason="flow unavailable"), out)
            return None
        self._log.info("node %s: continuing in flow %s", node.id, target.name)
        self._flow = target
        return target.start


def _say_value(kind: SayKind, text: str) -> str | None:
    """The spoken value for ``text``, or ``None`` if it has nothing ``kind`` can say."""
    text = text.strip()
    if kind is SayKind.DIGITS:
        # The digit prompts cover 0-9, "star" and "pound"; A-D have no spoken name.
        keys = "".join(char for char in text if char in "0123456789*#")
        return keys or None
    if kind is SayKind.DATE:
        try:  # "2026-03-14", or the date part of "2026-03-14T10:00:00+01:00"
            return date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            return None
    try:
        number = round(float(text))
    except (ValueError, OverflowError):
        return None
    return str(number) if number >= 0 else None
