"""Supervisor whisper, barge and listen with three real softphones (baresip).

A caller (2001, 500 Hz tone) reaches agent 2002 (1100 Hz) through a queue; supervisor 2003
(1900 Hz, PCMA only while the call is PCMU, so the mixer transcodes) dials ``*822002``
and then switches mode with its keys: 3 (barge), then 1 (listen). Each phone's dump of
what it received is cut into the three stretches and the share of energy at each tone
tells who heard whom. The issue's check: in whisper the agent hears the supervisor and
the caller does not.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.interop.audio import read_wav
from tests.interop.baresip import Account
from tests.interop.server import MiniccServer

pytestmark = [pytest.mark.interop, pytest.mark.baresip]

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 500.0, 1100.0, 1900.0
SEGMENT_S = 3.0
MARGIN_S = 0.8  # skipped after each mode change: set-up, jitter buffers, clock offsets
HEARD = 0.05  # at least this share of the energy: the tone is heard
NOT_HEARD = 0.002  # below this share: not heard (the tone would be ~25 dB under the rest)


def _account(server: MiniccServer, number: str, **kw: object) -> Account:
    ext = server.extension(number)
    return Account(user=ext.number, registrar=server.sip_address, password=ext.password, **kw)  # type: ignore[arg-type]


def _cli(server: MiniccServer, *args: str) -> None:
    server.cli(*args, "--tenant", "demo", "--data-dir", str(server.data_dir))


def share(samples: np.ndarray, rate: int, hz: float, width: float = 40.0) -> float:
    """The share of the signal's energy within ``width`` Hz of ``hz`` (0 for silence)."""
    windowed = (samples - np.mean(samples)) * np.hanning(len(samples))
    power = np.abs(np.fft.rfft(windowed)) ** 2
    freqs = np.fft.rfftfreq(len(samples), d=1.0 / rate)
    total = float(np.sum(power[freqs >= 100.0]))
    if total < 1e-9:
        return 0.0
    return float(np.sum(power[np.abs(freqs - hz) <= width])) / total


def _stretch(path: Path, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
    wav = read_wav(path)
    a, b = int(start_s * wav.rate), int(end_s * wav.rate)
    part = wav.samples[a:b]
    assert len(part) > wav.rate, f"{path.name}: only {len(part) / wav.rate:.2f} s in stretch"
    return part, wav.rate


def _shares(path: Path, start_s: float, end_s: float) -> dict[float, float]:
    samples, rate = _stretch(path, start_s, end_s)
    return {hz: share(samples, rate, hz) for hz in (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ)}


def test_whisper_barge_listen_heard_by_the_right_parties(
    minicc_server: MiniccServer,
    baresip,  # type: ignore[no-untyped-def]
) -> None:
    server = minicc_server
    _cli(server, "queue", "add", "sup", "--strategy", "ring-all")
    _cli(server, "queue", "member", "add", "sup", "2002")
    _cli(server, "number", "add", "8300", "--to", "queue:sup")
    _cli(server, "user", "set", "--extension", "2003", "--supervisor")
    time.sleep(1.5)  # the server rereads the tenant database every second

    caller = baresip("caller", account=_account(server, "2001"), tone_hz=CALLER_HZ)
    agent = baresip("agent", account=_account(server, "2002"), tone_hz=AGENT_HZ)
    supervisor = baresip(
        "supervisor", account=_account(server, "2003", codecs=("PCMA",)), tone_hz=SUPERVISOR_HZ
    )
    for phone in (caller, agent, supervisor):
        phone.wait_registered()

    caller.dial(f"sip:8300@{server.sip_address}")
    agent.wait_established(timeout=15)
    t_agent = time.monotonic()
    caller.wait_established(timeout=15)
    t_caller = time.monotonic()
    time.sleep(1.0)

    supervisor.dial(f"sip:*822002@{server.sip_address}")
    supervisor.wait_established(timeout=15)
    t_whisper = t_supervisor = time.monotonic()
    time.sleep(SEGMENT_S)
    supervisor.send_dtmf("3")
    t_barge = time.monotonic()
    time.sleep(SEGMENT_S)
    supervisor.send_dtmf("1")
    t_listen = time.monotonic()
    time.sleep(SEGMENT_S)
    t_end = time.monotonic()

    # The supervisor hangs up: the call goes on; then the caller ends it.
    supervisor.hangup()
    supervisor.wait_closed(timeout=10)
    time.sleep(0.5)
    assert not any(e.get("type") == "CALL_CLOSED" for e in agent.ctrl.events)
    caller.hangup()
    agent.wait_closed(timeout=10)
    caller.wait_closed(timeout=10)

    def stretches(path: Path, t0: float) -> dict[str, dict[float, float]]:
        return {
            mode: _shares(path, start - t0 + MARGIN_S, end - t0 - 0.3)
            for mode, start, end in (
                ("whisper", t_whisper, t_barge),
                ("barge", t_barge, t_listen),
                ("listen", t_listen, t_end),
            )
        }

    heard_by_caller = stretches(caller.received_recordings()[-1], t_caller)
    heard_by_agent = stretches(agent.received_recordings()[-1], t_agent)
    heard_by_supervisor = stretches(supervisor.received_recordings()[-1], t_supervisor)
    report = f"caller {heard_by_caller}\nagent {heard_by_agent}\nsupervisor {heard_by_supervisor}"

    # Whisper: the agent hears the supervisor, the caller does not; the supervisor both.
    assert heard_by_agent["whisper"][SUPERVISOR_HZ] > HEARD, report
    assert heard_by_agent["whisper"][CALLER_HZ] > HEARD, report
    assert heard_by_caller["whisper"][SUPERVISOR_HZ] < NOT_HEARD, report
    assert heard_by_caller["whisper"][AGENT_HZ] > HEARD, report
    assert heard_by_supervisor["whisper"][CALLER_HZ] > HEARD, report
    assert heard_by_supervisor["whisper"][AGENT_HZ] > HEARD, report
    # Barge: the caller hears the supervisor too.
    assert heard_by_caller["barge"][SUPERVISOR_HZ] > HEARD, report
    assert heard_by_agent["barge"][SUPERVISOR_HZ] > HEARD, report
    # Listen: nobody hears the supervisor; the supervisor still hears both.
    assert heard_by_caller["listen"][SUPERVISOR_HZ] < NOT_HEARD, report
    assert heard_by_agent["listen"][SUPERVISOR_HZ] < NOT_HEARD, report
    assert heard_by_supervisor["listen"][CALLER_HZ] > HEARD, report
    assert heard_by_supervisor["listen"][AGENT_HZ] > HEARD, report


def test_non_supervisor_is_refused_and_idle_agent_is_unavailable(
    minicc_server: MiniccServer,
    baresip,  # type: ignore[no-untyped-def]
) -> None:
    server = minicc_server
    _cli(server, "user", "set", "--extension", "2003", "--supervisor")
    time.sleep(1.5)
    intruder = baresip("intruder", account=_account(server, "2001"))
    supervisor = baresip("supervisor", account=_account(server, "2003"))
    intruder.wait_registered()
    supervisor.wait_registered()

    intruder.dial(f"sip:*812002@{server.sip_address}")
    closed = intruder.wait_closed(timeout=10)
    assert "403" in str(closed.get("param", "")), closed
    supervisor.dial(f"sip:*812002@{server.sip_address}")  # 2002 is on no call
    closed = supervisor.wait_closed(timeout=10)
    assert "480" in str(closed.get("param", "")), closed
