"""Hold with real clients: a sipp caller waits in a queue, a baresip agent answers, holds and
resumes (its own ``hold`` / ``resume`` commands: sendonly re-INVITEs), and with a short hold
timeout minicc rings the agent back.

The caller's SDP points at an :class:`RtpSink`, so the test hears what the caller hears: the
agent's 1000 Hz tone while talking, minicc's music on hold (a melody, never 1000 Hz) while
held. The
sipp scenario fails on any request it does not expect, so the caller passing proves minicc
sent the caller's phone no re-INVITE.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from tests.interop.audio import decode_g711, dominant_frequency, rms_dbfs
from tests.interop.baresip import Account
from tests.interop.rtp import PT_PCMU, RtpSink
from tests.interop.server import MiniccServer
from tests.interop.sipp import Sipp, SipUser

pytestmark = [pytest.mark.interop, pytest.mark.sipp, pytest.mark.baresip]

AGENT_HZ = 1000.0
WINDOW = 25  # packets (0.5 s) of what the caller heard last


def _cli(server: MiniccServer, *args: str) -> None:
    server.cli(*args, "--tenant", "demo", "--data-dir", str(server.data_dir))


def _heard(sink: RtpSink) -> tuple[float, float | None]:
    """(level in dBFS, dominant frequency) of the last :data:`WINDOW` packets."""
    packets = [p for p in sink.packets if p.payload_type == PT_PCMU][-WINDOW:]
    if len(packets) < WINDOW:
        return -100.0, None
    samples = np.concatenate([decode_g711(p.payload, "ulaw") for p in packets])
    return rms_dbfs(samples), dominant_frequency(samples, 8000)


def _wait_hearing(sink: RtpSink, hz: float | None, what: str, timeout: float = 10.0) -> None:
    """Wait until the caller hears a clear ``hz`` tone, or (``hz`` None) sound that is not the
    agent's tone: the music, a melody. Bounded; polls the sink."""
    deadline = time.monotonic() + timeout
    level, dominant = -100.0, None
    while time.monotonic() < deadline:
        level, dominant = _heard(sink)
        if level > -40 and dominant is not None:
            if hz is None and abs(dominant - AGENT_HZ) > 30:
                return
            if hz is not None and abs(dominant - hz) < 20:
                return
        time.sleep(0.1)
    raise AssertionError(f"caller never heard {what}: last {level:.1f} dBFS at {dominant} Hz")


@pytest.fixture
def queue_line(minicc_server: MiniccServer, request: pytest.FixtureRequest) -> MiniccServer:
    """Queue ``hq`` with agent 2002 behind number 8300; the hold timeout is the test's
    ``indirect`` parameter (off by default)."""
    hold_timeout = getattr(request, "param", "off")
    _cli(minicc_server, "queue", "add", "hq", "--strategy", "longest-idle", "--wrap-up", "1",
         "--hold-timeout", hold_timeout)  # fmt: skip
    _cli(minicc_server, "queue", "member", "add", "hq", "2002")
    _cli(minicc_server, "number", "add", "8300", "--to", "queue:hq")
    time.sleep(1.5)  # the server rereads the tenant database within a second
    return minicc_server


def _agent(baresip: Any, server: MiniccServer) -> Any:
    ext = server.extension("2002")
    phone = baresip(
        "agent",
        account=Account(user=ext.number, registrar=server.sip_address, password=ext.password),
        tone_hz=AGENT_HZ,
    )
    phone.wait_registered()
    return phone


def _caller(sipp: Any, server: MiniccServer, sink: RtpSink) -> Sipp:
    """A sipp caller to 8300 that listens (into ``sink``) until minicc hangs up on it."""
    ext = server.extension("2001")
    return sipp(
        "uac_listen.xml",
        remote=server.sip_address,
        service="8300",
        users=[SipUser(user=ext.number, password=ext.password)],
        substitutions={"SINK_PORT": str(sink.port)},
        timeout_s=40,
    ).start()


def test_agent_hold_gives_the_caller_music_and_no_reinvite(
    queue_line: MiniccServer, sipp: Any, baresip: Any
) -> None:
    agent = _agent(baresip, queue_line)
    with RtpSink() as sink:
        caller = _caller(sipp, queue_line, sink)
        agent.wait_established(timeout=15)
        _wait_hearing(sink, AGENT_HZ, "the agent")

        agent.command("hold")
        _wait_hearing(sink, None, "music on hold")
        agent.command("resume")
        _wait_hearing(sink, AGENT_HZ, "the agent after resume")

        agent.hangup()
        result = caller.wait()
        assert result.ok, result.describe()  # no re-INVITE (or anything else) reached it
    agent.wait_closed(timeout=10)
    (cdr,) = queue_line.cdr_export()
    assert (cdr["from_user"], cdr["to_user"], cdr["disposition"]) == ("2001", "8300", "answered")
    assert cdr["hangup_side"] == "callee"


@pytest.mark.parametrize("queue_line", ["2"], indirect=True)  # a 2 s hold timeout
def test_hold_timeout_rings_the_agent_back(
    queue_line: MiniccServer, sipp: Any, baresip: Any
) -> None:
    agent = _agent(baresip, queue_line)
    with RtpSink() as sink:
        caller = _caller(sipp, queue_line, sink)
        first = agent.wait_established(timeout=15)
        _wait_hearing(sink, AGENT_HZ, "the agent")

        agent.command("hold")
        _wait_hearing(sink, None, "music on hold")
        # Two seconds on: a new call to the agent's phone (auto-answered); the held leg is
        # hung up and the caller talks to the agent on the new one.
        second = agent.wait_established(timeout=10)
        closed = agent.wait_closed(timeout=10)
        assert second.get("direction") == "incoming", second
        assert closed.get("id") != second.get("id"), (closed, second)  # the held leg ended
        assert first.get("id") == closed.get("id")
        _wait_hearing(sink, AGENT_HZ, "the agent after the ring-back")

        agent.hangup()  # the new leg ends the call like any other
        result = caller.wait()
        assert result.ok, result.describe()
    agent.wait_closed(timeout=10)
    (cdr,) = queue_line.cdr_export()
    assert cdr["disposition"] == "answered"
