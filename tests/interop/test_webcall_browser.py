"""Click-to-call with a real browser: headless Chromium on the demo page calls through the
webcall gateway into the IVR, keys "1" on the widget's keypad, waits in the queue and is
answered by a baresip agent. Audio must flow both ways, and the agent's side must be able to
see the page the visitor called from.

Chromium gets a fake microphone playing a 440 Hz tone; the agent plays 1000 Hz. ICE stays on
loopback: Chromium is told to offer 127.0.0.1 candidates (``--allow-loopback-in-peer-
connection``) and the gateway workers use 127.0.0.1 only (``MINICC_WEBCALL_ICE_HOSTS``).
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.audio import analyze_wav
from tests.interop.baresip import Account
from tests.interop.server import MiniccServer

pytestmark = [pytest.mark.interop, pytest.mark.baresip, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
]

FLOW = """
[flow]
name = "web"
start = "menu"
language = "en"

[nodes.menu]
type = "menu"
prompts = ["press_1_for_sales", "press_2_for_support"]
options = { "1" = "to_sales" }
timeout = 8
retries = 1
default = "to_sales"

[nodes.to_sales]
type = "queue"
queue = "alpha"
"""


def _cli(server: MiniccServer, *args: str) -> str:
    result = server.cli(*args, "--tenant", "demo", "--data-dir", str(server.data_dir))
    return str(getattr(result, "stdout", ""))


@pytest.fixture
def web_center(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MiniccServer]:
    """minicc with queue alpha (agent 2002) behind IVR 8200, click-to-call to 8200."""
    if shutil.which("baresip") is None or not Path(CHROMIUM).exists():
        pytest.skip("needs baresip and Debian chromium")
    pytest.importorskip("playwright")
    pytest.importorskip("aiortc")
    from tests.interop.conftest import attach_log

    server = MiniccServer(tmp_path, env={"MINICC_WEBCALL_ICE_HOSTS": "127.0.0.1"})
    attach_log(request, "minicc server log", server.log)
    server.start()
    try:
        flow = server.root / "web.toml"
        flow.write_text(FLOW)
        _cli(server, "queue", "add", "alpha", "--strategy", "longest-idle", "--wrap-up", "1")
        _cli(server, "queue", "member", "add", "alpha", "2002")
        _cli(server, "ivr", "load", str(flow))
        _cli(server, "number", "add", "8200", "--to", "ivr:web")
        _cli(server, "webcall", "set", "--target", "8200", "--max-calls", "2")
        time.sleep(1.5)  # the server rereads the tenant database within a second
        yield server
    finally:
        server.stop()


def _http(server: MiniccServer, path: str, token: str) -> Any:
    req = urllib.request.Request(
        server.http_url + path, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _supervisor_token(server: MiniccServer) -> str:
    out = _cli(server, "token", "create", "--role", "supervisor", "--label", "test", "--json")
    return str(json.loads(out)["token"])


def _browser(tone: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            "",
            executable_path=CHROMIUM,
            headless=True,
            args=[*FLAGS, f"--use-file-for-fake-audio-capture={tone}"],
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def _wait_state(page: Any, states: tuple[str, ...], timeout_ms: int = 15000) -> str:
    page.wait_for_function(
        f"{json.dumps(list(states))}.includes(window.MiniccWebcall.state().state)",
        timeout=timeout_ms,
    )
    return str(page.evaluate("window.MiniccWebcall.state().state"))


def test_browser_calls_through_the_ivr_to_an_agent_with_audio_both_ways(
    web_center: MiniccServer, baresip: Any, tone_wav: Any
) -> None:
    server = web_center
    ext = server.extension("2002")
    agent = baresip(
        "agent",
        account=Account(user=ext.number, registrar=server.sip_address, password=ext.password),
        tone_hz=1000.0,
    )
    agent.wait_registered()
    supervisor = _supervisor_token(server)
    for page in _browser(tone_wav(440.0)):
        page.goto(f"{server.http_url}/webcall/demo/demo?queue=alpha")
        page.click("#mcc-open")
        page.click("#mcc-call")
        state = _wait_state(page, ("answered", "ended"))
        assert state == "answered", page.evaluate("window.MiniccWebcall.state()")
        page.click("#mcc-key-1")  # into queue alpha
        agent.wait_established(timeout=15)  # the harness's baresip answers by itself

        # The agent's side: the call is a web call, and it knows the page.
        (call,) = _http(server, "/api/calls", supervisor)
        context = _http(server, f"/api/webcall/calls/{call['call_id']}/context", supervisor)
        assert context["url"].startswith(f"{server.http_url}/webcall/demo/demo")
        assert context["title"] == "minicc click-to-call demo (demo)"
        assert context["customer_id"] == "demo-customer"

        time.sleep(3.0)  # three seconds of talk
        stats = page.evaluate("window.MiniccWebcall.stats()")
        assert stats["packetsReceived"] > 100, stats
        assert stats["bytesReceived"] > 0 and stats["audioLevel"] > 0.01, stats
        page.click("#mcc-hangup")
        agent.wait_closed(timeout=10)

    heard_by_agent = analyze_wav(agent.received_recordings()[-1], skip_s=0.5)
    assert not heard_by_agent.silent
    assert heard_by_agent.dominant_hz == pytest.approx(440.0, abs=20)
    records = json.loads(_cli(server, "webcall", "calls"))
    assert records[0]["reason"] in ("web-hangup", "remote-bye")
    assert records[0]["page"]["customer_id"] == "demo-customer"


def test_the_callback_form_creates_a_callback_that_an_agent_gets(
    web_center: MiniccServer, baresip: Any, tone_wav: Any
) -> None:
    server = web_center

    def phone(name: str, number: str) -> Any:
        ext = server.extension(number)
        account = Account(user=ext.number, registrar=server.sip_address, password=ext.password)
        return baresip(name, account=account)

    visitor = phone("visitor", "2003")  # the number the visitor leaves: a phone on the switch
    visitor.wait_registered()
    supervisor = _supervisor_token(server)
    for page in _browser(tone_wav(440.0)):
        page.goto(f"{server.http_url}/webcall/demo/demo?queue=alpha")
        page.click("#mcc-open")
        page.click("#mcc-cb-open")
        page.fill("#mcc-cb input[name=name]", "Ada Lovelace")
        page.fill("#mcc-cb input[name=number]", "2003")
        page.fill("#mcc-cb input[name=when]", "after 14:00")
        page.click("#mcc-cb-send")
        page.wait_for_function("window.MiniccWebcall.state().callback !== null", timeout=10000)
        assert page.evaluate("window.MiniccWebcall.state().error") is None
    (waiting,) = _http(server, "/api/callbacks", supervisor)
    assert (waiting["queue"], waiting["number"]) == ("alpha", "2003")
    assert waiting["name"] == "Ada Lovelace (preferred: after 14:00)"
    # An agent comes online and gets it: the agent's phone, then the visitor's, are called.
    agent = phone("agent", "2002")
    agent.wait_registered()
    visitor.wait_established(timeout=30)  # called back, with the agent already on the line
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        jobs = _http(server, "/api/callbacks", supervisor)
        if not jobs or jobs[0]["status"] == "connected":
            break
        time.sleep(0.2)
    # Connected with the agent (or already over, if the phones hung up by themselves).
    assert not jobs or (jobs[0]["status"], jobs[0]["agent"]) == ("connected", "2002"), jobs
