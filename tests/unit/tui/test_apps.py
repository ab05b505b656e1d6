"""The agent console and the wallboard driven by Textual's Pilot against the real server:
login (good and wrong password), a state change seen on the wallboard, the screen pop within
a second of the phone ringing, the wrap-up form, and the reconnect after the stream is cut."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from textual.widgets import Input, Label

from minicc.events import CallOffered
from minicc.queue.models import QueueConfig
from minicc.store.callcenter import CallCenterStore
from minicc.store.tokens import Role
from minicc.switch.sip.peer import Transport
from minicc.tui.agent import AgentApp
from minicc.tui.agent_widgets import CallbacksPanel, CallPanel, StatusBar, WrapUpForm
from minicc.tui.credentials import CredentialStore
from minicc.tui.login import LoginScreen
from minicc.tui.supervisor import SupervisorApp
from tests.unit.switch.ua import HOST, Account, RtpPeer, SipUA, make_sdp
from tests.unit.tui.conftest import PASSWORDS, Live, Proxy, stored, until


async def login_token(live: Live, ext: str) -> str:
    async with httpx.AsyncClient(base_url=live.url) as http:
        return await live.login(http, ext)


async def test_first_run_logs_in_and_keeps_only_the_token(
    live: Live, store: CredentialStore
) -> None:
    app = AgentApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, LoginScreen), what="login screen")
        screen = app.screen
        screen.query_one("#url", Input).value = live.url
        screen.query_one("#tenant", Input).value = "acme.test"
        screen.query_one("#extension", Input).value = "1001"
        secret = screen.query_one("#secret", Input)

        secret.value = "wrong-password"
        secret.focus()
        await pilot.press("enter")
        error = screen.query_one("#error", Label)
        await until(pilot, lambda: "wrong tenant" in str(error.content), what="refusal")
        assert isinstance(app.screen, LoginScreen) and store.load() is None
        assert not store.token_file.exists()

        secret.value = PASSWORDS["1001"]
        await pilot.press("enter")
        bar = app.query_one(StatusBar)
        await until(pilot, lambda: bar.who.startswith("1001"), what="console after login")
        assert "no system keyring here" in str(app.query_one("#notice").content)
        kept = store.load()
        assert kept is not None and kept.profile.extension == "1001"
        assert PASSWORDS["1001"] not in store.token_file.read_text()


async def test_an_expired_session_goes_back_to_login_with_the_reason(
    live: Live, store: CredentialStore
) -> None:
    stored(store, live.url, "1001", "mcc_expired-or-revoked")
    app = AgentApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, LoginScreen), what="back to login")
        reason = app.screen.query_one("#reason", Label)
        assert "please log in again" in str(reason.content)
        assert store.load() is None  # the refused token is gone


@asynccontextmanager
async def wallboard(live: Live, tmp_path: Path) -> AsyncIterator[SupervisorApp]:
    boss = CredentialStore(tmp_path / "boss", name="supervisor", use_keyring=False)
    stored(boss, live.url, "1003", live.long_lived("acme", Role.SUPERVISOR))
    app = SupervisorApp(boss, throttle=0.05)
    async with app.run_test(size=(120, 40)):
        yield app


async def test_a_state_change_on_the_console_shows_on_the_wallboard(
    live: Live, store: CredentialStore, tmp_path: Path
) -> None:
    stored(store, live.url, "1001", await login_token(live, "1001"))
    agent = AgentApp(store)
    async with wallboard(live, tmp_path) as board, agent.run_test(size=(80, 24)) as pilot:
        bar = agent.query_one(StatusBar)
        await until(pilot, lambda: bar.who.startswith("1001") and bar.stream == "live")
        await until(pilot, lambda: board.stream_state == "live" and "1001" in board.agents)

        await pilot.press("p")
        await pilot.press("down", "enter")  # the second reason: lunch
        await until(pilot, lambda: bar.state == "paused", what="console paused")
        took = await until(
            pilot,
            lambda: board.agents["1001"].get("reason") == "lunch",
            timeout=2.0,
            what="wallboard shows the pause",
        )
        assert took < 1.0
        assert board.agents["1001"]["state"] == "paused"
        cells = board.query_one("#agents").get_row("1001")  # type: ignore[attr-defined]
        assert cells[1] == "PAUSED" and cells[2] == "lunch"

        await pilot.press("a")
        await until(pilot, lambda: board.agents["1001"]["state"] == "available", timeout=2.0)

        # And back: the supervisor logs the agent out (1001 is the grid's first row).
        await board.run_action("force('logged-out')")
        await until(pilot, lambda: bar.state == "logged-out", timeout=2.0, what="forced out")


@pytest.fixture
def support_number(live: Live) -> str:
    """Dialling 8100 joins the support queue, whose wrap-up is short for the tests."""
    store = live.server.stores.tenant("acme")
    assert store is not None
    callcenter = CallCenterStore(store)
    callcenter.add_number("8100", "queue:support")
    callcenter.update_queue(QueueConfig(name="support", wrap_up=1.0))
    return "8100"


async def engine_has(live: Live, number: str) -> None:
    for _ in range(100):
        if number in live.server.callcenter.engine("acme").setup.numbers:  # type: ignore[union-attr]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the engine never loaded number {number}")


async def test_the_phone_rings_and_the_caller_pops_within_a_second_then_wrap_up(
    live: Live, store: CredentialStore, support_number: str, tmp_path: Path
) -> None:
    stored(store, live.url, "1001", await login_token(live, "1001"))
    await engine_has(live, support_number)
    addr = (HOST, live.server.switch.ports[Transport.UDP])
    offered = live.server.bus.subscribe("test-tui-pop")
    rtp = await RtpPeer.open()
    phone = await SipUA(Account("1001", PASSWORDS["1001"], "acme.test"), addr).start()
    caller = await SipUA(Account("1003", PASSWORDS["1003"], "acme.test"), addr).start()
    app = AgentApp(store)
    try:
        async with wallboard(live, tmp_path) as board, app.run_test(size=(80, 24)) as pilot:
            bar = app.query_one(StatusBar)
            await until(pilot, lambda: bar.stream == "live" and bar.who != "")
            await until(pilot, lambda: board.stream_state == "live")
            await pilot.press("a")
            await until(pilot, lambda: bar.state == "available")
            assert (await phone.register()).status == 200

            out = await caller.call(f"sip:{support_number}@acme.test", make_sdp(rtp.port))
            incoming = await phone.incoming(timeout=10.0)  # the phone rings now
            rang = asyncio.get_running_loop().time()
            panel = app.query_one(CallPanel)
            await until(pilot, lambda: panel.pop is not None, timeout=3.0, what="screen pop")
            assert asyncio.get_running_loop().time() - rang < 1.0
            event = None
            while not isinstance(event, CallOffered):
                event = await asyncio.wait_for(offered.get(), 5.0)
            assert panel.call_id == event.call_id and panel.phase == "ringing"
            assert panel.pop is not None and panel.pop["caller"] == "1003"
            assert panel.pop["queue"] == "support"
            # The wallboard learnt of the call by events (it has no polling timer).
            await until(
                pilot,
                lambda: len(board.arrivals) == 1 and len(board.calls) == 1,
                timeout=1.0,
                what="wallboard shows the call",
            )
            assert sum(board.query_one("#spark").data or []) == 1  # type: ignore[attr-defined]

            agent_leg = await incoming.answer(make_sdp(rtp.port))
            assert (await out.final()).status == 200
            await until(pilot, lambda: bar.state == "on-call", what="on call")
            assert panel.phase == "on call"
            # The wallboard lists the call under its agent, with the id the call routes take.
            await until(pilot, lambda: board.call_agents.get(event.call_id) == "1001")
            assert [board.call_key(c["call_id"]) for c in board.calls] == [event.call_id]
            # The call-control routes come with a later server: one clear line, no traceback.
            notice = app.query_one("#notice")
            await pilot.press("o")
            await until(
                pilot,
                lambda: (
                    "not available on this server yet" in str(notice.content)
                    or "hold: done" in str(notice.content)
                ),
                what="hold answered",
            )

            # The agent hangs up with `h`: both phones get a BYE, the agent wraps up.
            await pilot.press("h")
            assert out.dialog is not None
            caller.reply(await out.dialog.request("BYE"), 200)
            phone.reply(await agent_leg.request("BYE"), 200)
            await until(pilot, lambda: "hangup: done" in str(notice.content), what="hung up")
            form = app.query_one(WrapUpForm)
            await until(pilot, lambda: form.is_open, what="wrap-up form")
            assert bar.state == "wrap-up"
            assert form.countdown_text().startswith("wrap-up")
            await until(pilot, lambda: not form.is_open, timeout=5.0, what="wrap-up ends")
            assert bar.state == "available" and panel.call_id is None
    finally:
        offered.close()
        phone.close()
        caller.close()
        rtp.close()


async def test_the_console_reconnects_and_shows_what_changed_meanwhile(
    live: Live, store: CredentialStore, proxy: Proxy
) -> None:
    stored(store, proxy.url, "1001", await login_token(live, "1001"))
    app = AgentApp(store, base_delay=0.05)
    boss = live.long_lived("acme", Role.SUPERVISOR)
    async with (
        app.run_test(size=(80, 24)) as pilot,
        httpx.AsyncClient(base_url=live.url, headers={"Authorization": f"Bearer {boss}"}) as http,
    ):
        bar = app.query_one(StatusBar)
        await until(pilot, lambda: bar.stream == "live" and bar.who != "")
        proxy.cut()
        await until(pilot, lambda: bar.stream == "reconnecting", what="notices the cut")
        notice = app.query_one("#notice")
        await until(pilot, lambda: "retrying in" in str(notice.content), what="says it retries")
        reply = await http.put(
            "/api/agents/1001/state", json={"state": "paused", "reason": "training"}
        )
        assert reply.status_code == 200
        proxy.restore()
        await until(pilot, lambda: bar.stream == "live", what="reconnected")
        await until(pilot, lambda: bar.state == "paused" and bar.reason == "training")


async def test_listen_in_on_an_unknown_call_says_why(live: Live, tmp_path: Path) -> None:
    boss = CredentialStore(tmp_path / "boss", name="supervisor", use_keyring=False)
    stored(boss, live.url, "1003", live.long_lived("acme", Role.SUPERVISOR))
    app = SupervisorApp(boss, throttle=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.stream_state == "live")
        notice = app.query_one("#notice")
        fake_call = {
            "call_id": "abc/1@test",
            "caller": "1003",
            "callee": "8100",
            "state": "answered",
            "started": "2026-11-23T10:00:01+00:00",
        }
        answers = ("not available on this server yet", "listen: calling your phone", "no call ")
        for _ in range(3):
            # A re-read of the real (empty) call list may land between showing the made-up
            # call and the key press ("no live call to monitor"): show it again and retry.
            app.show(calls=[fake_call])
            await pilot.press("L")
            await until(
                pilot,
                lambda: any(a in str(notice.content) for a in (*answers, "no live call")),
                what="an answer to the listen key",
            )
            if any(a in str(notice.content) for a in answers):
                break
        assert any(a in str(notice.content) for a in answers), str(notice.content)


async def test_a_server_that_is_not_there_is_said_and_retried(
    store: CredentialStore, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    stored(store, f"http://{HOST}:{port}", "1001", "mcc_whatever")
    app = AgentApp(store, base_delay=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        bar = app.query_one(StatusBar)
        notice = app.query_one("#notice")
        await until(pilot, lambda: bar.stream == "reconnecting", what="retrying")
        await until(
            pilot,
            lambda: "retrying in" in str(notice.content) or "cannot reach" in str(notice.content),
        )
        assert app.is_running and store.load() is not None  # the token is kept


async def test_the_wallboard_logs_in_with_a_supervisor_token(live: Live, tmp_path: Path) -> None:
    boss = CredentialStore(tmp_path / "boss", name="supervisor", use_keyring=False)
    app = SupervisorApp(boss)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, LoginScreen), what="login screen")
        screen = app.screen
        assert not screen.query("#tenant")  # the token says which tenant
        screen.query_one("#url", Input).value = live.url
        screen.query_one("#extension", Input).value = "1003"
        secret = screen.query_one("#secret", Input)
        secret.value = live.long_lived("acme", Role.SUPERVISOR)
        secret.focus()
        await pilot.press("enter")
        await until(pilot, lambda: "1002" in app.agents and app.queues, what="wallboard data")
        kept = boss.load()
        assert kept is not None and kept.profile.tenant == "acme"
        assert kept.profile.extension == "1003"


async def test_a_callback_request_shows_in_the_callbacks_list(
    live: Live, store: CredentialStore
) -> None:
    stored(store, live.url, "1002", await login_token(live, "1002"))
    app = AgentApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        bar = app.query_one(StatusBar)
        panel = app.query_one(CallbacksPanel)
        await until(pilot, lambda: bar.stream == "live" and panel.items == [], what="empty list")
        callcenter = live.server.callcenter
        assert callcenter is not None
        assert callcenter.request_callback("acme", "support", "+15550100", name="Ada")
        await until(pilot, lambda: bool(panel.items), timeout=2.0, what="callback listed")
        assert panel.items is not None and panel.items[0]["number"] == "+15550100"
