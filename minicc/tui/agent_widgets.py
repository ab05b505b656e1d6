"""The agent console's widgets. Each takes its data through attributes or methods set by the
app ("attributes down") and sends its own messages up ("messages up"); none talks to the API.
Times are computed from the app's clock at render time, so a frozen clock freezes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select, Static

from minicc.tui.format import (
    PAUSE_REASONS,
    STATE_LABELS,
    duration,
    fraction,
    wrap_up_left,
)

Clock = Callable[[], float]


class StatusBar(Static):
    """State, reason and time in state (ticking), who is logged in, and the stream's health."""

    DEFAULT_CSS = """
    StatusBar { height: 1; padding: 0 1; background: $panel; }
    """

    def __init__(self, clock: Clock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.state = "logged-out"
        self.reason: str | None = None
        self.since = clock()
        self.who = ""
        self.stream = "offline"

    def set_state(self, state: str, reason: str | None, since: float) -> None:
        self.state, self.reason, self.since = state, reason, since
        self.refresh()

    def render(self) -> Text:
        label = STATE_LABELS.get(self.state, self.state.upper())
        text = Text()
        text.append(f" {label} ", style=f"bold reverse {_state_style(self.state)}")
        if self.reason:
            text.append(f" {self.reason}")
        text.append(f"  {duration(self.clock() - self.since)}", style="bold")
        text.append(f"   {self.who}")
        text.append(f"   events: {self.stream}", style="dim" if self.stream == "live" else "red")
        return text


def _state_style(state: str) -> str:
    return {
        "available": "green",
        "reserved": "yellow",
        "on-call": "blue",
        "wrap-up": "magenta",
        "paused": "yellow",
    }.get(state, "")


class CallPanel(Static):
    """The incoming or current call: the screen pop (caller, queue, wait, IVR answers, last
    calls) and the call's phase (ringing, on call, on hold)."""

    DEFAULT_CSS = """
    CallPanel { border: round $accent; padding: 0 1; height: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "call"
        self.pop: dict[str, Any] | None = None
        self.phase = ""
        self.call_id: str | None = None

    def show(self, call_id: str | None, phase: str, pop: dict[str, Any] | None = None) -> None:
        self.call_id, self.phase = call_id, phase
        if pop is not None:
            self.pop = pop
        self.border_title = f"call: {phase}" if phase else "call"
        self.refresh()

    def clear(self) -> None:
        self.call_id, self.phase, self.pop = None, "", None
        self.border_title = "call"
        self.refresh()

    def render(self) -> Table | Text:
        if self.call_id is None:
            return Text("No call. Waiting for the next one.", style="dim")
        pop = self.pop
        if pop is None:
            return Text(f"{self.phase}: call {self.call_id}")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        name = f" ({pop['caller_name']})" if pop.get("caller_name") else ""
        grid.add_row("Caller", f"{pop.get('caller', '?')}{name}")
        grid.add_row("Queue", f"{pop.get('queue') or '-'}  dialled {pop.get('number', '')}")
        grid.add_row("Waited", duration(pop.get("waited")))
        for key, value in sorted((pop.get("variables") or {}).items()):
            grid.add_row(key, str(value))
        history = pop.get("history") or []
        if history:
            lines = [
                f"{h['started'][:16].replace('T', ' ')} {h['disposition']} "
                f"{duration(h.get('duration'))}"
                for h in history
            ]
            grid.add_row("Last calls", "\n".join(lines))
        else:
            grid.add_row("Last calls", "none")
        return grid


class WrapUpForm(Vertical):
    """Disposition and notes after a call, with the wrap-up countdown."""

    DEFAULT_CSS = """
    WrapUpForm { border: round $warning; height: auto; padding: 0 1; display: none; }
    WrapUpForm.-open { display: block; }
    WrapUpForm #countdown { text-style: bold; }
    """

    class Submitted(Message):
        def __init__(self, call_id: str, code: str, note: str) -> None:
            super().__init__()
            self.call_id, self.code, self.note = call_id, code, note

    def __init__(self, clock: Clock, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock
        self.border_title = "wrap-up"
        self.call_id: str | None = None
        self.started = 0.0
        self.wrap_up: float | None = None

    def compose(self) -> ComposeResult:
        yield Label("", id="countdown")
        yield Select[str]([], prompt="disposition", id="disposition")
        yield Input(placeholder="notes (Enter saves)", id="note")

    def open(self, call_id: str | None, started: float, wrap_up: float | None) -> None:
        self.call_id, self.started, self.wrap_up = call_id, started, wrap_up
        self.add_class("-open")
        self.query_one("#note", Input).value = ""
        self.tick()

    def close(self) -> None:
        self.remove_class("-open")
        self.call_id = None

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def set_codes(self, codes: list[dict[str, Any]]) -> None:
        select = self.query_one("#disposition", Select)
        select.set_options([(c.get("label") or c["code"], c["code"]) for c in codes])

    def countdown_text(self) -> str:
        left = wrap_up_left(self.wrap_up, self.started, self.clock())
        if left is None:
            return f"wrap-up {duration(self.clock() - self.started)}"
        return f"wrap-up ends in {int(left + 0.999)} s"

    def tick(self) -> None:
        if self.is_open:
            self.query_one("#countdown", Label).update(self.countdown_text())

    @on(Input.Submitted, "#note")
    def save(self) -> None:
        select = self.query_one("#disposition", Select)
        code = "" if select.value is Select.NULL else str(select.value)
        if self.call_id is not None:
            note = self.query_one("#note", Input).value
            self.post_message(self.Submitted(self.call_id, code, note))


class StatsPanel(Static):
    """The agent's own day: calls handled, occupancy, time in the current state, queues."""

    DEFAULT_CSS = """
    StatsPanel { border: round $primary; padding: 0 1; height: auto; width: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "today"
        self.agent: dict[str, Any] = {}

    def set_agent(self, agent: dict[str, Any]) -> None:
        self.agent = agent
        self.refresh()

    def render(self) -> Text:
        a = self.agent
        return Text(
            f"calls handled {a.get('calls_handled', 0)}   "
            f"occupancy {fraction(a.get('occupancy'))}\n"
            f"queues {', '.join(a.get('queues') or []) or '-'}"
        )


class CallbacksPanel(Static):
    """Callbacks waiting in the agent's queues."""

    DEFAULT_CSS = """
    CallbacksPanel { border: round $primary; padding: 0 1; height: auto; width: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "callbacks"
        self.items: list[dict[str, Any]] | None = None

    def set_items(self, items: list[dict[str, Any]] | None) -> None:
        self.items = items
        self.refresh()

    def render(self) -> Text:
        if self.items is None:
            return Text("not available on this server yet", style="dim")
        if not self.items:
            return Text("none waiting", style="dim")
        return Text(
            "\n".join(
                f"{c.get('queue', '')} {c.get('number', '')} {c.get('name') or ''} "
                f"{c.get('status', '')}"
                for c in self.items[:5]
            )
        )


class PauseReasonScreen(ModalScreen[str | None]):
    """Pick a pause reason (Escape cancels)."""

    DEFAULT_CSS = """
    PauseReasonScreen { align: center middle; }
    PauseReasonScreen OptionList { width: 30; height: auto; border: round $accent; }
    """
    BINDINGS = [("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        options = OptionList(*PAUSE_REASONS, id="reasons")
        options.border_title = "pause reason"
        yield options

    @on(OptionList.OptionSelected)
    def chosen(self, message: OptionList.OptionSelected) -> None:
        self.dismiss(PAUSE_REASONS[message.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class TransferScreen(ModalScreen[str | None]):
    """Ask for the transfer target (an extension or number)."""

    DEFAULT_CSS = """
    TransferScreen { align: center middle; }
    TransferScreen Input { width: 40; border: round $accent; }
    """
    BINDINGS = [("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        yield Input(placeholder="transfer to (extension or number)", id="target")

    @on(Input.Submitted)
    def chosen(self, message: Input.Submitted) -> None:
        self.dismiss(message.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
