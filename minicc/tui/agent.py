"""``minicc agent``: the agent console.

One screen: the status bar (state, time in state, one-key state changes), the call panel that
pops the caller when the phone rings (``call.offered`` for this agent → ``GET .../pop``), call
controls, the wrap-up form with its countdown, the agent's own figures and the callbacks list.
Everything comes from the API: REST for the picture, the event stream for changes.
"""

from __future__ import annotations

import contextlib
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer

from minicc.tui.agent_widgets import (
    CallbacksPanel,
    CallPanel,
    PauseReasonScreen,
    StatsPanel,
    StatusBar,
    TransferScreen,
    WrapUpForm,
)
from minicc.tui.base import ConsoleApp, Notice
from minicc.tui.client import NotAvailable, ServerEvent
from minicc.tui.format import state_slug

__all__ = ["AgentApp"]


class AgentApp(ConsoleApp):
    """The agent console. ``offline=True`` (tests, snapshots) skips login and the server."""

    TITLE = "minicc agent"
    CSS_PATH = "agent.tcss"
    BINDINGS = [
        Binding("a", "available", "Ready"),
        Binding("p", "pause", "Pause"),
        Binding("l", "log_out", "Logout"),
        Binding("h", "hangup", "Hangup"),
        Binding("o", "hold", "Hold"),
        Binding("r", "resume", "Resume"),
        Binding("t", "transfer", "Xfer"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.me: dict[str, Any] = {}
        self.wrap_ups: dict[str, float] = {}
        """Wrap-up seconds per queue, when the server says (``wrap_up`` in /api/queues)."""

    def compose(self) -> ComposeResult:
        yield StatusBar(self.clock, id="status")
        yield CallPanel(id="call")
        yield WrapUpForm(self.clock, id="wrapup")
        with Horizontal(id="side"):
            yield StatsPanel(id="stats")
            yield CallbacksPanel(id="callbacks")
        yield Notice(id="notice")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        # query, not query_one: at shutdown the widgets go before the timer does.
        for bar in self.query(StatusBar):
            bar.refresh()
        for form in self.query(WrapUpForm):
            form.tick()

    def stream_changed(self) -> None:
        for bar in self.query(StatusBar):  # none while a login screen is on top
            bar.stream = self.stream_state
            bar.refresh()

    # -- the picture over REST -----------------------------------------------------------

    async def resync(self) -> None:
        assert self.api is not None
        agent = await self.api.agent()
        self.apply_agent(agent)
        queues = await self.api.queues()
        self.wrap_ups = {q["name"]: q["wrap_up"] for q in queues if q.get("wrap_up") is not None}
        for loader in (self._load_callbacks, self._load_dispositions):
            with contextlib.suppress(NotAvailable):  # the panel says so itself
                await loader()

    async def _load_callbacks(self) -> None:
        assert self.api is not None
        panel = self.query_one(CallbacksPanel)
        panel.set_items(None)
        panel.set_items(await self.api.callbacks())

    async def _load_dispositions(self) -> None:
        assert self.api is not None
        self.query_one(WrapUpForm).set_codes(await self.api.dispositions())

    def apply_agent(self, agent: dict[str, Any]) -> None:
        """Show ``GET /api/agent``'s answer (also used by snapshot tests)."""
        self.me = agent
        bar = self.query_one(StatusBar)
        bar.who = f"{agent.get('extension', '')} {agent.get('name') or ''}".strip()
        bar.set_state(agent["state"], agent.get("reason"), agent["since"])
        self.query_one(StatsPanel).set_agent(agent)

    # -- events --------------------------------------------------------------------------

    def on_server_event(self, event: ServerEvent) -> None:
        me = self.me.get("extension")
        data = event.data
        if event.type == "agent.state_changed" and data.get("agent") == me:
            self.state_changed(event)
        elif event.type == "call.offered" and data.get("agent") == me:
            call_id = data["call_id"]
            self.query_one(CallPanel).show(call_id, "ringing")
            self.run_api(lambda: self._pop(call_id))
        elif event.type == "call.answered_by_agent" and data.get("agent") == me:
            self.query_one(CallPanel).show(data["call_id"], "on call")
        elif event.type in ("call.abandoned", "call.left_queue"):
            panel = self.query_one(CallPanel)
            if panel.call_id == data.get("call_id") and panel.phase == "ringing":
                panel.clear()
        elif event.type.startswith("callback."):
            self.run_api(self._load_callbacks_quietly)

    async def _load_callbacks_quietly(self) -> None:
        with contextlib.suppress(NotAvailable):
            await self._load_callbacks()

    async def _pop(self, call_id: str) -> None:
        assert self.api is not None
        pop = await self.api.pop(call_id)
        panel = self.query_one(CallPanel)
        if panel.call_id == call_id:
            panel.show(call_id, panel.phase, pop)

    def state_changed(self, event: ServerEvent) -> None:
        data = event.data
        state = state_slug(data["state"])
        self.me = {**self.me, "state": state, "reason": data.get("reason"), "since": event.at}
        self.query_one(StatusBar).set_state(state, data.get("reason"), event.at)
        panel = self.query_one(CallPanel)
        form = self.query_one(WrapUpForm)
        if state == "wrap-up":
            call_id = data.get("call_id") or panel.call_id
            form.open(call_id, event.at, self.wrap_ups.get(data.get("queue") or ""))
            if panel.call_id is not None:
                panel.show(panel.call_id, "wrap-up")
        elif form.is_open:
            form.close()
        if state in ("available", "paused", "logged-out"):
            panel.clear()  # the call ended, or rang out unanswered (it goes to another agent)
        if state == "on-call" and data.get("call_id") and panel.call_id is None:
            panel.show(data["call_id"], "on call")
        if state in ("available", "wrap-up", "paused"):
            self.run_api(self._refresh_stats)

    async def _refresh_stats(self) -> None:
        assert self.api is not None
        self.query_one(StatsPanel).set_agent(await self.api.agent())

    # -- actions -------------------------------------------------------------------------

    def action_available(self) -> None:
        self._set_state("available")

    def action_pause(self) -> None:
        def chosen(reason: str | None) -> None:
            if reason:
                self._set_state("paused", reason)

        self.push_screen(PauseReasonScreen(), chosen)

    def action_log_out(self) -> None:
        self._set_state("logged-out")

    def _set_state(self, state: str, reason: str | None = None) -> None:
        if self.api is None:
            return
        api = self.api

        async def change() -> None:
            self.apply_agent(await api.set_state(state, reason))

        self.run_api(change, f"state: {state}" + (f" ({reason})" if reason else ""))

    def _call_action(self, name: str, *args: str) -> None:
        call_id = self.query_one(CallPanel).call_id
        if self.api is None or call_id is None:
            self.say("no call to act on")
            return
        method = getattr(self.api, name)
        self.run_api(lambda: method(call_id, *args), f"{name}: done")

    def action_hangup(self) -> None:
        self._call_action("hangup")

    def action_hold(self) -> None:
        self._call_action("hold")

    def action_resume(self) -> None:
        self._call_action("resume")

    def action_transfer(self) -> None:
        def chosen(target: str | None) -> None:
            if target:
                self._call_action("transfer", target)

        self.push_screen(TransferScreen(), chosen)

    @on(WrapUpForm.Submitted)
    def save_disposition(self, message: WrapUpForm.Submitted) -> None:
        if self.api is None:
            return
        api = self.api
        self.run_api(
            lambda: api.disposition(message.call_id, message.code, message.note),
            "disposition saved",
        )
