"""Properties: whatever a caller presses, or if they press nothing, the call ends somewhere
defined, within a bounded number of steps, and never waits in silence."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minicc.queue.ivr import (
    TERMINAL_ACTIONS,
    Action,
    CallerHungUp,
    DigitPressed,
    Flow,
    FlowError,
    FlowRun,
    HangUp,
    Lookup,
    LookupResult,
    Play,
    PromptsFinished,
    StopPlayback,
    load_flow,
)
from minicc.queue.ivr_schema import DTMF_KEYS

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()  # Monday, 10:00 in Berlin


def always(language: str, name: str) -> bool:
    return True


CENTER = load_flow(
    """
[flow]
name = "center"
start = "hours"
timezone = "Europe/Berlin"

[nodes.hours]
type = "hours"
open = ["mon-fri 08:00-18:00"]
open_next = "lang"
closed_next = "closed"

[nodes.lang]
type = "language"
prompts = ["choose_language"]
options = { "1" = "en", "2" = "de" }
timeout = 3
retries = 1
next = "welcome"

[nodes.welcome]
type = "play"
prompts = ["welcome"]
interruptible = true
next = "main"

[nodes.main]
type = "menu"
prompts = ["menu"]
options = { "1" = "sales", "2" = "order", "3" = "vip", "9" = "main", "0" = "welcome" }
timeout = 4
retries = 2
invalid_prompt = "invalid_option"
timeout_prompt = "no_input"
default = "support"

[nodes.vip]
type = "set"
priority = 9
skills = { german = 5 }
next = "sales"

[nodes.sales]
type = "queue"
queue = "sales"

[nodes.order]
type = "collect"
prompts = ["enter_order_number"]
into = "order"
min_digits = 3
max_digits = 6
retries = 2
next = "status"
default = "main"

[nodes.status]
type = "lookup"
hook = "order_status"
input = "{order}"
timeout = 2
prompts = ["one_moment"]
branches = { "shipped" = "shipped", "again" = "order", "callback" = "callback" }
fallback = "support"

[nodes.shipped]
type = "play"
prompts = ["order", { digits = "{order}" }, "was_shipped", { number = "{result.day}" }]
interruptible = true
next = "after"

[nodes.after]
type = "menu"
prompts = ["anything_else"]
options = { "1" = "main", "2" = "bye" }
retries = 1
default = "bye"

[nodes.callback]
type = "callback"
next = "bye"

[nodes.bye]
type = "hangup"

[nodes.support]
type = "queue"
queue = "support"

[nodes.closed]
type = "voicemail"
box = "main"
""",
    prompt_exists=always,
)

step = st.one_of(
    st.tuples(st.just("key"), st.sampled_from(DTMF_KEYS)),
    st.tuples(st.just("finish"), st.none()),
    st.tuples(st.just("timer"), st.none()),
    st.tuples(st.just("lookup"), st.sampled_from(["shipped", "again", "callback", "?", None])),
    st.tuples(st.just("error"), st.none()),
    st.tuples(st.just("stale"), st.none()),
)


class Checked:
    """Runs a FlowRun and checks the invariants after every call."""

    def __init__(self, flow: Flow, flows: dict[str, Flow] | None = None) -> None:
        self.run = FlowRun(flow, variables={"caller": "555"}, flows=(flows or {}).get)
        self.now = START
        self.log: list[Action] = []
        self.plays: list[int] = []
        self.lookup = 0

    def take(self, actions: list[Action]) -> None:
        if self.log and isinstance(self.log[-1], TERMINAL_ACTIONS):
            assert actions == [], "nothing may follow the end of the run"
        for action in actions:
            assert not (self.log and isinstance(self.log[-1], TERMINAL_ACTIONS))
            if isinstance(action, Play):
                assert not self.plays or action.play_id > self.plays[-1]
                self.plays.append(action.play_id)
            if isinstance(action, StopPlayback):
                assert action.play_id == self.plays[-1]
            if isinstance(action, Lookup):
                self.lookup = action.request_id
            self.log.append(action)
        assert not self.run.is_silent(), f"silence at {self.run.node} ({self.run.phase})"
        assert self.run.ended == isinstance(self.log[-1] if self.log else None, TERMINAL_ACTIONS)

    def start(self) -> None:
        self.take(self.run.start(self.now))

    def do(self, kind: str, value: str | None) -> None:
        self.now += 0.25
        if kind == "key":
            assert value is not None
            self.take(self.run.handle(DigitPressed(digit=value), self.now))
        elif kind == "finish" and self.run.playing is not None:
            self.take(self.run.handle(PromptsFinished(play_id=self.run.playing), self.now))
        elif kind == "timer":
            timer = self.run.get_timer()
            if timer is not None:
                self.now = max(self.now, timer)
                self.take(self.run.handle_timer(self.now))
        elif kind in ("lookup", "error"):
            answer = (
                LookupResult(request_id=self.lookup, result=value, data={"day": "3"})
                if kind == "lookup"
                else LookupResult(request_id=self.lookup, error="boom")
            )
            self.take(self.run.handle(answer, self.now))
        elif kind == "stale":
            self.take(self.run.handle(PromptsFinished(play_id=-1), self.now))

    def silence(self, limit: int) -> int:
        """The caller presses nothing more; prompts end and timers fire. Returns steps used."""
        for used in range(limit):
            if self.run.ended:
                return used
            if self.run.playing is not None:
                self.do("finish", None)
            else:
                self.do("timer", None)
        raise AssertionError(f"still running after {limit} silent steps at {self.run.node}")


@settings(max_examples=400, deadline=None)
@given(st.lists(step, max_size=60))
def test_random_keys_then_silence_always_end_somewhere_defined(steps: list) -> None:  # type: ignore[type-arg]
    caller = Checked(CENTER)
    caller.start()
    for kind, value in steps:
        if caller.run.ended:
            break
        caller.do(kind, value)
    caller.silence(100)
    assert isinstance(caller.log[-1], TERMINAL_ACTIONS)
    assert caller.log[-1] != HangUp(reason="loop")
    assert sum(isinstance(a, TERMINAL_ACTIONS) for a in caller.log) == 1


@given(st.lists(step, max_size=30))
def test_hanging_up_at_any_moment_ends_quietly(steps: list) -> None:  # type: ignore[type-arg]
    caller = Checked(CENTER)
    caller.start()
    for kind, value in steps:
        if caller.run.ended:
            break
        caller.do(kind, value)
    caller.run.handle(CallerHungUp(), caller.now)
    assert caller.run.ended and caller.run.get_timer() is None
    assert caller.run.handle(DigitPressed(digit="1"), caller.now) == []
    assert caller.run.handle_timer(caller.now + 1000) == []


# -- random flows: whatever the loader accepts, a silent caller gets out of -------------------

TYPES = [
    "play",
    "menu",
    "collect",
    "language",
    "set",
    "hours",
    "lookup",
    "callback",
    "queue",
    "hangup",
    "voicemail",
]


@st.composite
def random_flow(draw: st.DrawFn) -> str:
    count = draw(st.integers(2, 9))
    ids = [f"n{i}" for i in range(count)]
    target = st.sampled_from(ids)
    lines = ['[flow]\nname = "r"\nstart = "n0"\n']
    for node_id in ids:
        kind = draw(st.sampled_from(TYPES))
        lines.append(f'[nodes.{node_id}]\ntype = "{kind}"')
        if kind in ("menu", "collect", "language"):
            lines.append('prompts = ["p"]')
            lines.append(f"retries = {draw(st.integers(0, 2))}")
            lines.append(f'default = "{draw(target)}"')
        if kind in ("play", "set", "callback", "collect", "language"):
            lines.append(f'next = "{draw(target)}"')
        if kind == "play":
            lines.append('prompts = ["p"]')
            lines.append(f"interruptible = {str(draw(st.booleans())).lower()}")
        elif kind == "menu":
            keys = draw(
                st.lists(st.sampled_from("0123456789*#"), min_size=1, max_size=3, unique=True)
            )
            options = ", ".join(f'"{key}" = "{draw(target)}"' for key in keys)
            lines.append(f"options = {{ {options} }}")
        elif kind == "collect":
            lines.append('into = "v"\nmin_digits = 1\nmax_digits = 3')
        elif kind == "language":
            lines.append('options = { "1" = "en", "2" = "de" }')
        elif kind == "hours":
            lines.append('open = ["mon-fri 08:00-18:00"]')
            lines.append(f'open_next = "{draw(target)}"\nclosed_next = "{draw(target)}"')
        elif kind == "lookup":
            lines.append('hook = "h"\ninput = "{v}"\ntimeout = 1')
            lines.append(f'branches = {{ "a" = "{draw(target)}" }}\nfallback = "{draw(target)}"')
        elif kind == "queue":
            lines.append('queue = "q"')
        elif kind == "voicemail":
            lines.append('box = "b"')
        lines.append("")
    return "\n".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_flow(), st.lists(step, max_size=20))
def test_any_flow_the_loader_accepts_ends_for_every_caller(text: str, steps: list) -> None:  # type: ignore[type-arg]
    try:
        flow = load_flow(text, prompt_exists=always)
    except FlowError as exc:
        assert all(p.message.startswith("loop ") for p in exc.problems), str(exc)
        return
    silent = Checked(flow)
    silent.start()
    silent.silence(len(flow.nodes) * 10 + 10)
    # The loader proved every silent path acyclic, so the runtime guard never has to act.
    assert silent.log[-1] != HangUp(reason="loop")

    caller = Checked(flow)
    caller.start()
    for kind, value in steps:
        if caller.run.ended:
            break
        caller.do(kind, value)
    caller.silence(500)
    assert isinstance(caller.log[-1], TERMINAL_ACTIONS)


# -- the loader never fails with anything but FlowError --------------------------------------

SOURCE = (
    'name = "x"\nstart = "m"\ntimezone = "UTC"\n[nodes.m]\ntype = "menu"\nprompts = ["p"]\n'
    'options = { "1" = "q" }\ndefault = "q"\ntimeout = 2.5\n[nodes.q]\ntype = "queue"\n'
    'queue = "q"\n[nodes.h]\ntype = "hours"\nopen = ["mon-fri 08:00-18:00"]\n'
    'holidays = ["12-25"]\nopen_next = "m"\nclosed_next = "q"\n'
)


@given(
    st.lists(
        st.tuples(
            st.integers(0, len(SOURCE)),
            st.integers(0, 4),
            st.text(alphabet='[]{}"=,.#\n 0123456789abcmnq-:_', max_size=4),
        ),
        max_size=6,
    )
)
def test_mangled_files_raise_flow_error_only(edits: list[tuple[int, int, str]]) -> None:
    text = "[flow]\n" + SOURCE
    for position, cut, insert in edits:
        text = text[:position] + insert + text[position + cut :]
    try:
        load_flow(text, prompt_exists=always)
    except FlowError as exc:
        assert exc.problems and all(str(p).startswith("<flow>: ") for p in exc.problems)
