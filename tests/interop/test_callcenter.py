"""The call center with real clients: sipp callers key RFC 4733 digits into an IVR and wait in
queues; sipp phones registered as agents answer. The queue engine decides; these tests check
what the phones saw."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.interop.server import MiniccServer
from tests.interop.sipp import Sipp, SipUser

pytestmark = [pytest.mark.interop, pytest.mark.sipp]

DTMF = "/usr/share/sip-tester/dtmf_2833_{}.pcap"

FLOW = """
[flow]
name = "front"
start = "menu"
language = "en"

[nodes.menu]
type = "menu"
prompts = ["press_1_for_sales", "press_2_for_support"]
options = { "1" = "to_sales", "2" = "to_support" }
timeout = 5
retries = 1
invalid_prompt = "invalid_option"
timeout_prompt = "no_input"
default = "to_support"

[nodes.to_sales]
type = "queue"
queue = "alpha"

[nodes.to_support]
type = "queue"
queue = "beta"
"""


def _cli(server: MiniccServer, *args: str) -> None:
    server.cli(*args, "--tenant", "demo", "--data-dir", str(server.data_dir))


def _user(server: MiniccServer, number: str) -> SipUser:
    ext = server.extension(number)
    return SipUser(user=ext.number, password=ext.password)


def _agent(sipp: Any, server: MiniccServer, number: str, calls: int = 1, **kw: Any) -> Sipp:
    """A sipp phone registered as ``number`` that answers ``calls`` calls, echoing RTP."""
    register = sipp("register.xml", remote=server.sip_address, users=[_user(server, number)])
    assert register.run().ok
    return (
        sipp("uas_answer.xml", local_port=register.local_port, rtp_echo=True, calls=calls,
             timeout_s=60, **kw)
        .start()
        .wait_ready()
    )  # fmt: skip


def _callers_seen(agent: Sipp) -> list[str]:
    """The caller numbers in the From of each INVITE the agent phone received, in order."""
    log = next(agent.dir.glob("messages.log")).read_text(errors="replace")
    invites = re.findall(r"INVITE sip:[^\n]*\n(?:[^\n]+\n)*?From:[^<\n]*<sip:([^@>]+)@", log)
    return invites


@pytest.fixture
def center(minicc_server: MiniccServer) -> MiniccServer:
    """Queues alpha (agent 2002) and beta (agent 2003) behind IVR number 8200."""
    flow = minicc_server.root / "front.toml"
    flow.write_text(FLOW)
    _cli(minicc_server, "queue", "add", "alpha", "--strategy", "longest-idle", "--wrap-up", "1")
    _cli(minicc_server, "queue", "add", "beta", "--strategy", "longest-idle", "--wrap-up", "1")
    _cli(minicc_server, "queue", "member", "add", "alpha", "2002")
    _cli(minicc_server, "queue", "member", "add", "beta", "2003")
    minicc_server.cli(
        "ivr", "load", str(flow), "--tenant", "demo", "--data-dir", str(minicc_server.data_dir)
    )
    _cli(minicc_server, "number", "add", "8200", "--to", "ivr:front")
    time.sleep(1.5)  # the server rereads the tenant database within a second
    return minicc_server


@pytest.mark.parametrize(
    ("digit", "agent_number", "other"), [("1", "2002", "2003"), ("2", "2003", "2002")]
)
def test_ivr_digit_routes_the_caller_to_the_right_queue(
    center: MiniccServer, sipp: Any, digit: str, agent_number: str, other: str
) -> None:
    agent = _agent(sipp, center, agent_number)
    bystander = _agent(sipp, center, other)
    caller = sipp(
        "uac_ivr.xml",
        remote=center.sip_address,
        service="8200",
        users=[_user(center, "2001")],
        variables={"waitms": 1500, "talkms": 2000},
        substitutions={"DTMF_PCAP": DTMF.format(digit)},
    )
    result = caller.run()
    assert result.ok, result.describe()
    assert agent.wait().ok  # the queue's agent got the call, answered, and got the BYE
    assert _callers_seen(agent) == ["2001"]
    bystander.stop()
    assert _callers_seen(bystander) == []
    (cdr,) = center.cdr_export()
    assert (cdr["from_user"], cdr["to_user"], cdr["disposition"]) == ("2001", "8200", "answered")


def test_longest_idle_agent_gets_the_next_call(center: MiniccServer, sipp: Any) -> None:
    _cli(center, "queue", "member", "add", "alpha", "2003")
    time.sleep(1.5)
    first = _agent(sipp, center, "2002", calls=2)
    second = _agent(sipp, center, "2003", calls=2)
    for _ in range(4):
        caller = sipp(
            "uac_ivr.xml",
            remote=center.sip_address,
            service="8200",
            users=[_user(center, "2001")],
            variables={"waitms": 500, "talkms": 500},
            substitutions={"DTMF_PCAP": DTMF.format("1")},
        )
        assert caller.run().ok
        time.sleep(1.5)  # wrap-up (1 s) ends before the next caller
    # Each call went to the agent idle the longest, so the two alternated: two calls each.
    assert first.wait().ok and second.wait().ok
    assert len(_callers_seen(first)) == 2 and len(_callers_seen(second)) == 2


def test_vip_caller_overtakes_a_waiting_caller(
    center: MiniccServer, sipp: Any, tmp_path: Path
) -> None:
    _cli(center, "vip", "add", "2003")
    time.sleep(1.5)
    agent = _agent(sipp, center, "2002", calls=3)

    def caller(number: str, talkms: int) -> Sipp:
        return sipp(
            "uac_ivr.xml",
            remote=center.sip_address,
            service="8200",
            users=[_user(center, number)],
            variables={"waitms": 500, "talkms": talkms},
            substitutions={"DTMF_PCAP": DTMF.format("1")},
            timeout_s=60,
        )

    busy = caller("2001", 6000).start()  # takes the only agent for ~7 s
    time.sleep(3.0)
    normal = caller("2002", 9000).start()  # waits first ...
    time.sleep(1.5)
    vip = caller("2003", 9000).start()  # ... but the VIP is served before them
    assert busy.wait().ok
    vip.wait()
    normal.wait()
    agent.stop()
    assert _callers_seen(agent)[:2] == ["2001", "2003"]
