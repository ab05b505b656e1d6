"""Blind transfer with real clients: a sipp caller reaches a baresip agent through a queue,
the agent transfers the caller with baresip's own ``transfer`` command (REFER), and the
caller ends up talking to a second baresip phone.

Attended transfer is not here: baresip 1.0.0 has no command that sends REFER with Replaces,
so it is tested with the in-process UAs, which send the same SIP a desk phone does, in
``tests/unit/switch/test_transfer.py`` (both the REFER-on-call-1 and REFER-on-call-2
variants).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.interop.audio import analyze_wav
from tests.interop.baresip import Account
from tests.interop.server import MiniccServer
from tests.interop.sipp import SipUser

pytestmark = [pytest.mark.interop, pytest.mark.sipp, pytest.mark.baresip]

CALLER_HZ = 1000.0
STATS_SAVE_S = 5.0


def _cli(server: MiniccServer, *args: str) -> Any:
    return server.cli(*args, "--tenant", "demo", "--data-dir", str(server.data_dir))


def _account(server: MiniccServer, number: str) -> Account:
    ext = server.extension(number)
    return Account(user=ext.number, registrar=server.sip_address, password=ext.password)


@pytest.fixture
def center(minicc_server: MiniccServer) -> MiniccServer:
    """Queue alpha (agent 2002, 30 s wrap-up) on 8300; queue beta (agent 2003) on 8301."""
    _cli(minicc_server, "queue", "add", "alpha", "--strategy", "longest-idle", "--wrap-up", "30")
    _cli(minicc_server, "queue", "add", "beta", "--strategy", "longest-idle", "--wrap-up", "1")
    _cli(minicc_server, "queue", "member", "add", "alpha", "2002")
    _cli(minicc_server, "queue", "member", "add", "beta", "2003")
    _cli(minicc_server, "number", "add", "8300", "--to", "queue:alpha")
    _cli(minicc_server, "number", "add", "8301", "--to", "queue:beta")
    time.sleep(1.5)  # the server rereads the tenant database within a second
    return minicc_server


def _live(server: MiniccServer, queue: str) -> dict[str, Any] | None:
    view = json.loads(_cli(server, "queue", "stats", queue, "--json").stdout)
    live = view["queues"][queue]["live"]
    return live if isinstance(live, dict) else None


@pytest.mark.parametrize("target", ["2003", "8301"], ids=["to-extension", "to-queue-number"])
def test_agent_blind_transfers_the_caller(
    center: MiniccServer, sipp: Any, baresip: Any, tone_wav: Any, target: str
) -> None:
    first = baresip("first", account=_account(center, "2002"), tone_hz=440.0)
    second = baresip("second", account=_account(center, "2003"), tone_hz=660.0)
    first.wait_registered()
    second.wait_registered()
    ext = center.extension("2001")
    caller = sipp(
        "uac_call_wav.xml",
        remote=center.sip_address,
        service="8300",
        users=[SipUser(user=ext.number, password=ext.password)],
        variables={"talkms": 7000},
        substitutions={"AUDIO_WAV": str(tone_wav(CALLER_HZ, encoding="ulaw"))},
        timeout_s=40,
    ).start()

    first.wait_established(timeout=15)
    time.sleep(1.0)  # the agent talks to the caller a moment
    first.command("transfer", f"sip:{target}@{center.sip_address}")
    # minicc accepts (202), reports 100 then 200 by NOTIFY: the agent's phone hangs up.
    first.wait_closed(timeout=10)
    second.wait_established(timeout=15)
    result = caller.wait()
    assert result.ok, result.describe()  # the caller's call went on to its own BYE
    second.wait_closed(timeout=10)

    heard = analyze_wav(second.received_recordings()[-1], skip_s=0.5)
    assert not heard.silent
    assert heard.dominant_hz == pytest.approx(CALLER_HZ, abs=15)
    log = center.read_log()
    assert "2002 transferred it to" in log, log[-3000:]
    assert "agent 2002 wraps up" in log

    # One call, offered and answered once in alpha; not abandoned anywhere.
    deadline = time.monotonic() + STATS_SAVE_S * 3
    alpha = None
    while time.monotonic() < deadline:
        alpha = _live(center, "alpha")
        if alpha is not None and alpha.get("answered") == 1:
            break
        time.sleep(0.5)
    assert alpha is not None
    assert (alpha["offered"], alpha["answered"], alpha["abandoned"]) == (1, 1, 0), alpha
    beta = _live(center, "beta")
    assert beta is not None
    assert (beta["offered"], beta["answered"], beta["abandoned"]) == (0, 0, 0), beta
    (cdr,) = center.cdr_export()
    assert (cdr["from_user"], cdr["to_user"], cdr["disposition"]) == ("2001", "8300", "answered")
    where = "ext:2003" if target == "2003" else "queue:beta"
    assert cdr["transfers"] == f"blind 2002->{where} 200"
