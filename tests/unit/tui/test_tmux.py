"""The real ``minicc agent`` in a real terminal (tmux): it starts with stored credentials,
shows the agent's state, takes one-key state changes, and quits on ``q``.

tmux runs on its own socket (``-L``) so the test never touches anyone's tmux sessions, and
the socket's server is ended at the end (it is ours alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from pathlib import Path

import httpx

from minicc.tui.credentials import CredentialStore
from tests.conftest import require_tool
from tests.unit.tui.conftest import Live, stored


async def tmux(socket: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "tmux",
        "-L",
        socket,
        "-f",
        "/dev/null",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 10.0)
    if proc.returncode != 0:
        raise RuntimeError(f"tmux {args[0]}: {err.decode().strip()}")
    return out.decode()


async def screen_shows(socket: str, *texts: str, timeout: float = 10.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    screen = ""
    while loop.time() < deadline:
        screen = await tmux(socket, "capture-pane", "-p", "-t", "agent")
        if all(t in screen for t in texts):
            return screen
        await asyncio.sleep(0.1)  # the terminal has no event to await: poll the pane
    raise AssertionError(f"screen never showed {texts}:\n{screen}")


async def test_minicc_agent_runs_in_a_real_terminal(
    live: Live, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    require_tool("tmux")  # skipped locally, failed under CI (scripts/test.sh installs it)
    config = tmp_path / "config"
    token = await live.login(client, "1001")
    stored(CredentialStore(config, name="agent", use_keyring=False), live.url, "1001", token)
    socket = f"minicc-test-{secrets.token_hex(4)}"
    command = f"{sys.executable} -m minicc agent"
    env = {
        "MINICC_CONFIG_DIR": str(config),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    await tmux(
        socket,
        "new-session",
        "-d",
        "-s",
        "agent",
        "-x",
        "80",
        "-y",
        "24",
        *[arg for k, v in env.items() for arg in ("-e", f"{k}={v}")],
        "-c",
        os.getcwd(),
        command,
    )
    try:
        # A cold start imports Textual: allow for a loaded machine.
        screen = await screen_shows(
            socket, "1001 Agent 1001", "events: live", "Pause", timeout=30.0
        )
        assert "Traceback" not in screen
        await tmux(socket, "send-keys", "-t", "agent", "p")
        await screen_shows(socket, "pause reason", "lunch")
        await tmux(socket, "send-keys", "-t", "agent", "Down", "Enter")
        await screen_shows(socket, "PAUSED", "lunch")
        reply = await client.get("/api/agent", headers={"Authorization": f"Bearer {token}"})
        assert reply.json()["state"] == "paused" and reply.json()["reason"] == "lunch"
        await tmux(socket, "send-keys", "-t", "agent", "q")
        for _ in range(100):
            sessions = await tmux(socket, "list-sessions", "-F", "#S")
            if "agent" not in sessions.split():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("minicc agent did not quit on q")
    except RuntimeError as exc:
        if "no server running" not in str(exc):  # the last session ended: the server too
            raise
    finally:
        with contextlib.suppress(RuntimeError):  # already gone with its last session
            await tmux(socket, "kill-server")
