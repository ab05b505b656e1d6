"""``minicc supervisor``: the wallboard.

Per queue: waiting now, longest wait (ticking), service level against its target, abandoned,
ASA, AHT, and the agents available / on a call / paused; the agent grid with state, reason and
time in state (red past a threshold); the live calls, with keys to listen, whisper or barge;
a sparkline of calls per interval; and an alert line when a service level drops under target.

Changes arrive by events: an agent's change is applied at once from the event, and the
figures are re-read from ``/api/queues`` (and ``/api/calls``) on relevant events, at most
every :attr:`SupervisorApp.throttle` seconds. Nothing polls on a timer; the 1 s tick only
redraws the clocks.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Footer, Sparkline, Static

from minicc.tui.base import ConsoleApp, Notice
from minicc.tui.client import ServerEvent
from minicc.tui.format import (
    STATE_LABELS,
    duration,
    over_threshold,
    per_interval,
    percent,
    service_level_alert,
    staffing,
    state_slug,
)

__all__ = ["SupervisorApp"]

QUEUE_EVENTS = ("call.", "callback.", "agent.state_changed")
INTERVAL = 60.0
"""Seconds per sparkline bar."""
BARS = 30


class SupervisorApp(ConsoleApp):
    TITLE = "minicc supervisor"
    CSS_PATH = "supervisor.tcss"
    TOKEN_LOGIN = True
    BINDINGS = [
        Binding("L", "monitor('listen')", "Listen"),
        Binding("W", "monitor('whisper')", "Whisper"),
        Binding("B", "monitor('barge')", "Barge"),
        Binding("V", "force('available')", "Agent ready"),
        Binding("X", "force('logged-out')", "Log agent out"),
        Binding("tab", "focus_next", "Next table", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        *args: Any,
        threshold: float = 300.0,
        sl_target: float = 80.0,
        throttle: float = 0.25,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.threshold = threshold
        self.sl_target = sl_target
        self.throttle = throttle
        self.queues: list[dict[str, Any]] = []
        self.queues_at = 0.0
        """Clock time of the last read of the queues: the longest wait ticks on from it."""
        self.agents: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.call_keys: dict[str, str] = {}
        """SIP Call-ID -> the call-center's call key (``N/Call-ID``), learnt from events:
        ``/api/calls`` lists Call-IDs, while the call routes (monitor) take the key."""
        self.call_agents: dict[str, str] = {}
        """call key -> the agent talking on it."""
        self._reread_due = False

    @classmethod
    def store_name(cls) -> str:
        return "supervisor"

    def compose(self) -> ComposeResult:
        yield Static("", id="alert")
        yield DataTable(id="queues", cursor_type="none", zebra_stripes=True)
        with Horizontal(id="lower"):
            yield DataTable(id="agents", cursor_type="row")
            yield DataTable(id="calls", cursor_type="row")
        yield Sparkline([0] * BARS, id="spark")
        yield Notice(id="notice")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#queues", DataTable).add_columns(
            "queue", "wait", "longest", "SL", "aband", "ASA", "AHT", "av/call/pause"
        )
        self.query_one("#agents", DataTable).add_columns("agent", "state", "reason", "time")
        self.query_one("#calls", DataTable).add_columns("caller", "agent/to", "state", "time")
        self.query_one("#agents").border_title = "agents"
        self.query_one("#calls").border_title = "live calls"
        self.query_one("#spark").border_title = f"calls per {INTERVAL:.0f} s"
        super().on_mount()
        self.set_interval(1.0, self.redraw)

    # -- the picture ---------------------------------------------------------------------

    async def resync(self) -> None:
        assert self.api is not None
        queues, agents = await self.api.queues(), await self.api.agents()
        calls = await self.api.calls()
        self.show(queues=queues, agents=agents, calls=calls)

    async def reread(self) -> None:
        assert self.api is not None
        self._reread_due = False
        self.show(queues=await self.api.queues(), calls=await self.api.calls())

    def show(
        self,
        *,
        queues: list[dict[str, Any]] | None = None,
        agents: list[dict[str, Any]] | None = None,
        calls: list[dict[str, Any]] | None = None,
    ) -> None:
        """Replace parts of the picture and redraw (snapshot tests call it directly)."""
        if queues is not None:
            self.queues, self.queues_at = queues, self.clock()
        if agents is not None:
            self.agents = {a["extension"]: a for a in agents}
        if calls is not None:
            self.calls = calls
        self.redraw()

    # -- events --------------------------------------------------------------------------

    def on_server_event(self, event: ServerEvent) -> None:
        data = event.data
        if event.type == "agent.state_changed":
            ext = data.get("agent", "")
            agent = self.agents.setdefault(ext, {"extension": ext, "queues": []})
            agent.update(state=state_slug(data["state"]), reason=data.get("reason"), since=event.at)
            self.redraw()
        key = data.get("call_id")
        if isinstance(key, str) and "/" in key:
            self.call_keys[key.split("/", 1)[1]] = key
        if event.type == "call.answered_by_agent" and isinstance(key, str):
            self.call_agents[key] = data.get("agent", "")
        if event.type == "call.queued":
            self.arrivals.append(event.at)
            self.arrivals = self.arrivals[-2000:]
        if event.type.startswith(QUEUE_EVENTS) and not self._reread_due:
            self._reread_due = True
            self.set_timer(self.throttle, lambda: self.run_api(self.reread))

    # -- drawing -------------------------------------------------------------------------

    def redraw(self) -> None:
        if not self.query("#queues"):
            return  # shutting down: the widgets went before the timer
        now = self.clock()
        self._draw_queues(now)
        self._draw_agents(now)
        self._draw_calls()
        self.query_one("#spark", Sparkline).data = per_interval(
            self.arrivals, now, interval=INTERVAL, count=BARS
        )
        alerts = [a for q in self.queues if (a := service_level_alert(q, self.sl_target))]
        alert = self.query_one("#alert", Static)
        alert.update(Text("⚠ " + "; ".join(alerts), style="bold") if alerts else "")
        alert.set_class(bool(alerts), "-on")

    def _draw_queues(self, now: float) -> None:
        table = self.query_one("#queues", DataTable)
        table.clear()
        agents = list(self.agents.values())
        for q in self.queues:
            target = q.get("service_level_target", self.sl_target)
            level = q.get("service_level")
            sl = Text(f"{percent(level)}/{target:.0f}")
            if level is not None and level < target:
                sl.stylize("bold red")
            av, on_call, paused = staffing(agents, q["name"])
            table.add_row(
                q["name"],
                str(q["waiting"]),
                duration(q["longest_wait"] + now - self.queues_at) if q["waiting"] else "-",
                sl,
                str(q["abandoned"]),
                duration(q.get("asa")),
                duration(q.get("aht")),
                f"{av}/{on_call}/{paused}",
            )

    def _draw_agents(self, now: float) -> None:
        table = self.query_one("#agents", DataTable)
        row = table.cursor_row
        table.clear()
        for ext, a in sorted(self.agents.items(), key=lambda kv: (len(kv[0]), kv[0])):
            state = a.get("state", "logged-out")
            seconds = now - a.get("since", now)
            time_cell = Text(duration(seconds))
            if over_threshold(state, seconds, self.threshold):
                time_cell.stylize("bold red")
            table.add_row(
                ext, STATE_LABELS.get(state, state), a.get("reason") or "", time_cell, key=ext
            )
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    def _draw_calls(self) -> None:
        table = self.query_one("#calls", DataTable)
        row = table.cursor_row
        table.clear()
        for call in self.calls:
            agent = self.call_agents.get(self.call_key(call["call_id"]), "")
            table.add_row(
                call["caller"],
                agent or call["callee"],
                call["state"],
                call["started"][11:19],
                key=call["call_id"],
            )
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    def call_key(self, call_id: str) -> str:
        """The id the call routes take for a call ``/api/calls`` listed."""
        return call_id if "/" in call_id else self.call_keys.get(call_id, call_id)

    # -- actions -------------------------------------------------------------------------

    def action_monitor(self, mode: str) -> None:
        table = self.query_one("#calls", DataTable)
        if self.api is None or not self.calls:
            self.say("no live call to monitor")
            return
        call_id = self.call_key(self.calls[min(table.cursor_row, len(self.calls) - 1)]["call_id"])
        phone = self.credentials.profile.extension if self.credentials else ""
        if not phone:
            self.say("log in with your phone's extension to listen in", error=True)
            return
        api = self.api
        self.run_api(lambda: api.monitor(call_id, mode, phone), f"{mode}: calling your phone")

    def action_force(self, state: str) -> None:
        """Set the agent under the grid's cursor to ``state`` (a supervisor's override)."""
        table = self.query_one("#agents", DataTable)
        if self.api is None or not table.row_count:
            self.say("no agent selected")
            return
        row_key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        extension = str(row_key.value)
        api = self.api
        self.run_api(lambda: api.force_state(extension, state), f"{extension}: {state}")
