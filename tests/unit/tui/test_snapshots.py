"""Snapshots of the main screens at 80x24 and 120x40, as plain text.

The apps run offline with a frozen clock and fixed data, so every figure on screen is known.
A snapshot is the screen's text (what a person reads); colours are left out so a theme
tweak does not break them. When a screen changes on purpose, rewrite the files with

    MINICC_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/unit/tui/test_snapshots.py

and review the diff of ``tests/unit/tui/snapshots/`` like code.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App
from textual.widgets import DataTable

from minicc.tui.agent import AgentApp
from minicc.tui.agent_widgets import CallPanel, WrapUpForm
from minicc.tui.credentials import CredentialStore
from minicc.tui.login import LoginScreen
from minicc.tui.supervisor import SupervisorApp

SNAPSHOTS = Path(__file__).parent / "snapshots"
NOW = 1_795_450_000.0
SIZES = [(80, 24), (120, 40)]

AGENT = {
    "extension": "1001",
    "name": "Alice Agent",
    "state": "on-call",
    "reason": None,
    "since": NOW - 83,
    "queues": ["sales", "support"],
    "calls_handled": 12,
    "occupancy": 0.64,
}
POP = {
    "call_id": "a84b4c76e66710@10.0.0.1/1",
    "caller": "+4930123456",
    "caller_name": "Carol Customer",
    "number": "8100",
    "queue": "support",
    "waited": 42.0,
    "language": "en",
    "variables": {"order": "A-1042", "lang": "en"},
    "priority": 0,
    "agent": "1001",
    "history": [
        {
            "call_id": "x1",
            "started": "2026-11-22T09:14:03+00:00",
            "caller": "+4930123456",
            "callee": "8100",
            "disposition": "answered",
            "duration": 312.0,
        },
        {
            "call_id": "x2",
            "started": "2026-11-20T16:40:51+00:00",
            "caller": "+4930123456",
            "callee": "8100",
            "disposition": "cancelled",
            "duration": None,
        },
    ],
}
QUEUES = [
    {
        "name": "sales",
        "waiting": 0,
        "longest_wait": 0.0,
        "service_level": 92.0,
        "service_level_threshold": 20.0,
        "abandoned": 1,
        "asa": 8.0,
        "aht": 245.0,
    },
    {
        "name": "support",
        "waiting": 3,
        "longest_wait": 95.0,
        "service_level": 71.0,
        "service_level_threshold": 20.0,
        "abandoned": 4,
        "asa": 19.0,
        "aht": 312.0,
    },
]
AGENTS = [
    {
        "extension": "1001",
        "state": "on-call",
        "reason": None,
        "since": NOW - 83,
        "queues": ["sales", "support"],
    },
    {
        "extension": "1002",
        "state": "paused",
        "reason": "lunch",
        "since": NOW - 1900,
        "queues": ["support"],
    },
    {
        "extension": "1003",
        "state": "available",
        "reason": None,
        "since": NOW - 12,
        "queues": ["support"],
    },
    {
        "extension": "1004",
        "state": "wrap-up",
        "reason": None,
        "since": NOW - 4,
        "queues": ["sales"],
    },
]
CALLS = [
    {
        "call_id": "a84b4c76e66710@10.0.0.1/1",
        "caller": "+4930123456",
        "callee": "8100",
        "state": "answered",
        "started": "2026-11-23T10:00:01+00:00",
    },
]


def screen_text(app: App[None]) -> str:
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        record=True,
        color_system=None,
        legacy_windows=False,
    )
    console.print(app.screen._compositor.render_update(full=True))
    lines = console.export_text(styles=False).splitlines()
    return "\n".join(line.rstrip() for line in lines) + "\n"


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("MINICC_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if os.environ.get("MINICC_UPDATE_SNAPSHOTS") != "1":
            pytest.fail(f"new snapshot {path.name} written: review it and run again")
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} differs from {path}; if the change is wanted, rerun with "
        "MINICC_UPDATE_SNAPSHOTS=1 and review the diff"
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_agent_console_with_a_caller_popped(size: tuple[int, int]) -> None:
    app = AgentApp(offline=True, clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        app.apply_agent(AGENT)
        app.query_one(CallPanel).show(POP["call_id"], "on call", POP)
        await pilot.pause()
        check(f"agent-call-{size[0]}x{size[1]}", screen_text(app))


async def test_agent_wrap_up_counts_down() -> None:
    clock = [NOW]
    app = AgentApp(offline=True, clock=lambda: clock[0])
    async with app.run_test(size=(80, 24)) as pilot:
        app.apply_agent({**AGENT, "state": "wrap-up", "since": NOW - 3})
        app.query_one(WrapUpForm).set_codes(
            [{"code": "sale", "label": "Sale"}, {"code": "info", "label": "Information"}]
        )
        app.query_one(WrapUpForm).open(POP["call_id"], NOW - 3, 10.0)
        await pilot.pause()
        check("agent-wrap-up-80x24", screen_text(app))
        form = app.query_one(WrapUpForm)
        assert form.countdown_text() == "wrap-up ends in 7 s"
        clock[0] = NOW + 5
        app.tick()
        await pilot.pause()
        assert "wrap-up ends in 2 s" in screen_text(app)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_wallboard(size: tuple[int, int]) -> None:
    app = SupervisorApp(offline=True, clock=lambda: NOW)
    async with app.run_test(size=size) as pilot:
        app.arrivals = [NOW - s for s in (5, 20, 70, 75, 200, 600, 610, 1500)]
        app.show(queues=QUEUES, agents=AGENTS, calls=CALLS)
        await pilot.pause()
        text = screen_text(app)
        check(f"wallboard-{size[0]}x{size[1]}", text)
        assert "service level of support is 71%, under the 80% target" in text
        grid = app.query_one("#agents", DataTable)
        paused_long, on_call = grid.get_row("1002")[3], grid.get_row("1001")[3]
        assert any("red" in str(span.style) for span in paused_long.spans)  # 31:40 > 5 min
        assert not on_call.spans


async def test_light_theme_shows_the_same_screen() -> None:
    app = AgentApp(offline=True, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = "textual-light"
        app.apply_agent(AGENT)
        app.query_one(CallPanel).show(POP["call_id"], "on call", POP)
        await pilot.pause()
        check("agent-call-80x24", screen_text(app))


async def test_login_screen(tmp_path: Path) -> None:
    app = AgentApp(offline=True, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        store = CredentialStore(tmp_path, use_keyring=False)
        await app.push_screen(LoginScreen(store, reason=""))
        await pilot.pause()
        check("login-80x24", screen_text(app))
