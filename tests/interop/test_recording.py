"""Recording and voicemail with real clients against a real ``minicc serve``.

- Voicemail: a sipp caller dials a number whose IVR flow is a voicemail node, hears "leave a
  message" and the beep, sends a 1000 Hz tone and hangs up. The message is kept (a hang-up
  ends it), its WAV holds that tone, and ``minicc voicemail list --json`` shows it.
- Pause: a baresip caller (440 Hz) reaches a baresip agent (1000 Hz) through a queue that
  records always; the agent keys ``*2`` and, two seconds later, ``*3`` on the phone. In the
  two-channel recording both channels are silent in that span and carry their tone around
  it, and the recording's metadata lists the pause.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from minicc.switch.media.wav import parse_wav
from tests.interop.audio import decode_g711, dominant_frequency, read_wav, rms_dbfs
from tests.interop.baresip import Account
from tests.interop.server import MiniccServer
from tests.interop.sipp import SipUser

pytestmark = [pytest.mark.interop]

RELOAD_S = 1.5
"""The server rereads a tenant database within a second of a CLI change."""
RATE = 8000
SILENT_DBFS = -50.0

VOICEMAIL_FLOW = """\
[flow]
name = "vm"
start = "box"

[nodes.box]
type = "voicemail"
box = "sales"
"""


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


def _account(server: MiniccServer, number: str) -> Account:
    ext = server.extension(number)
    return Account(user=ext.number, registrar=server.sip_address, password=ext.password)


@pytest.mark.sipp
def test_a_caller_leaves_a_voicemail_after_the_beep(
    minicc_server: MiniccServer, sipp: Any, tone_wav: Any, tmp_path: Path
) -> None:
    server = minicc_server
    flow = tmp_path / "vm.toml"
    flow.write_text(VOICEMAIL_FLOW)
    _cli(server, "ivr", "load", str(flow))
    _cli(server, "number", "add", "8600", "--to", "ivr:vm")
    time.sleep(RELOAD_S)

    # "Leave a message" and the beep take about 2.7 s; the caller's tone plays from the answer,
    # so about 3 s of it fall after the beep. Then the caller hangs up: the message is kept.
    ext = server.extension("2001")
    caller = sipp(
        "uac_call_wav.xml",
        remote=server.sip_address,
        service="8600",
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
    assert (message["box"], message["caller"], message["heard"]) == ("sales", "2001", False)
    assert 1.5 <= message["duration"] <= 4.5, message
    # Linked to the call record by the caller leg's Call-ID.
    cdrs = _poll("the call record", server.cdr_export)
    assert message["call_id"] in {c["call_id"] for c in cdrs}

    wav = read_wav(Path(message["file"]))
    assert (wav.channels, wav.rate, wav.format_tag) in ((1, 8000, 7), (1, 8000, 6))
    steady = wav.samples[int(0.3 * RATE) : -int(0.2 * RATE)]
    assert rms_dbfs(steady) > -20.0  # the tone, loud, not silence or the prompt
    assert dominant_frequency(steady, RATE) == pytest.approx(1000, abs=15)


def _two_channels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    fmt, data = parse_wav(path.read_bytes())
    assert (fmt.channels, fmt.sample_rate, fmt.bits_per_sample) == (2, RATE, 8)
    law = "ulaw" if fmt.format_tag == 7 else "alaw"
    samples = decode_g711(data[: len(data) // 2 * 2], law)
    return samples[0::2], samples[1::2]


def _silent_windows(samples: np.ndarray, window: int = RATE // 10) -> list[bool]:
    return [
        rms_dbfs(samples[i : i + window]) < SILENT_DBFS
        for i in range(0, len(samples) - window + 1, window)
    ]


@pytest.mark.baresip
def test_the_agent_pauses_the_recording_from_the_phone(
    minicc_server: MiniccServer, baresip: Any
) -> None:
    server = minicc_server
    _cli(server, "queue", "add", "rec", "--strategy", "ring-all", "--recording", "always",
         "--wrap-up", "0")  # fmt: skip
    _cli(server, "queue", "member", "add", "rec", "2002")
    _cli(server, "number", "add", "8700", "--to", "queue:rec")
    agent = baresip("agent", account=_account(server, "2002"), tone_hz=1000.0)
    customer = baresip("customer", account=_account(server, "2001"), tone_hz=440.0)
    agent.wait_registered()
    customer.wait_registered()
    time.sleep(RELOAD_S)

    customer.dial(f"sip:8700@{server.sip_address}")
    agent.wait_established(timeout=15)
    customer.wait_established(timeout=15)
    time.sleep(2.0)
    agent.send_dtmf("*2")  # the customer is about to read out a card number
    time.sleep(2.0)
    agent.send_dtmf("*3")
    time.sleep(2.0)
    customer.hangup()
    agent.wait_closed(timeout=10)
    customer.wait_closed(timeout=10)

    def recorded() -> dict[str, Any] | None:
        calls = [c for c in server.cdr_export() if c["to_user"] == "8700"]
        return calls[0] if calls and calls[0]["recording_path"] else None

    cdr = _poll("the recorded call's record", recorded)
    path = server.data_dir / cdr["recording_path"]
    meta_path = path.with_suffix(".json")
    meta = _poll(
        "the recording's metadata", lambda: meta_path.exists() and json.loads(meta_path.read_text())
    )
    (pause,) = meta["pauses"]
    assert 1500 <= pause["end_ms"] - pause["start_ms"] <= 2600, meta

    caller, callee = _two_channels(path)
    start = pause["start_ms"] * RATE // 1000
    end = pause["end_ms"] * RATE // 1000
    margin = RATE // 10
    for channel, tone_hz in ((caller, 440.0), (callee, 1000.0)):
        inside = channel[start + margin : end - margin]
        assert all(_silent_windows(inside)), "audio inside the paused span"
        before = channel[start - RATE : start - margin]
        after = channel[end + margin : end + RATE]
        for part in (before, after):
            assert rms_dbfs(part) > -30.0
            assert dominant_frequency(part, RATE) == pytest.approx(tone_hz, abs=15)
    # Both codes were taken (none refused), from the agent's leg.
    log = server.read_log()
    assert "recording paused" in log and "recording resumed" in log
    assert "feature code" not in log  # no "feature code *x refused"
