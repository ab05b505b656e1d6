"""Voicemail on a direct call, with a real sipp caller against a real ``minicc serve``.

Extension 2002 has voicemail on (``minicc user set --voicemail on``) and no phone registered;
a sipp caller dials 2002 straight (no IVR, no queue). Without voicemail that is a 480; with it
minicc answers, the ring attempt finds no phone, the caller hears "leave a message" and the
beep, sends a 1000 Hz tone and hangs up, and ``minicc voicemail list --json`` shows the
message in box 2002 with the tone in its WAV.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.interop.audio import dominant_frequency, read_wav, rms_dbfs
from tests.interop.server import MiniccServer
from tests.interop.sipp import SipUser

pytestmark = [pytest.mark.interop]

RELOAD_S = 1.5
"""The server rereads a tenant database within a second of a CLI change."""
RATE = 8000


def _cli(server: MiniccServer, *args: str) -> str:
    return server.cli(*args, "--tenant", "demo", "--data-dir", str(server.data_dir)).stdout


def _poll(what: str, probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    pytest.fail(f"{what}: not within {timeout:g}s (last: {last!r})")


@pytest.mark.sipp
def test_an_unreachable_extension_takes_a_message(
    minicc_server: MiniccServer, sipp: Any, tone_wav: Any
) -> None:
    server = minicc_server
    out = _cli(server, "user", "set", "--extension", "2002", "--voicemail", "on")
    assert "voicemail on" in out, out
    time.sleep(RELOAD_S)

    # No phone of 2002 is registered: straight to "leave a message" and the beep (about
    # 2.7 s); the caller's tone plays from the answer, so about 3 s of it follow the beep.
    ext = server.extension("2001")
    caller = sipp(
        "uac_call_wav.xml",
        remote=server.sip_address,
        service="2002",
        users=[SipUser(user=ext.number, password=ext.password)],
        variables={"talkms": 6000},
        substitutions={"AUDIO_WAV": str(tone_wav(1000, seconds=20, encoding="ulaw"))},
        timeout_s=30,
    )
    result = caller.run()
    assert result.ok, result.describe()

    def listed() -> list[dict[str, Any]]:
        return json.loads(_cli(server, "voicemail", "list", "--json"))

    (message,) = _poll("the voicemail row", listed)
    assert (message["box"], message["caller"]) == ("2002", "2001")
    assert 1.5 <= message["duration"] <= 4.5, message
    wav = read_wav(Path(message["file"]))
    steady = wav.samples[int(0.3 * RATE) : -int(0.2 * RATE)]
    assert rms_dbfs(steady) > -20.0
    assert dominant_frequency(steady, RATE) == pytest.approx(1000, abs=15)
