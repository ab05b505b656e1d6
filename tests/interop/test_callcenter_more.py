"""More of the call center with real clients: a callback that keeps its place across a restart
and is dialled back agent-first, auto-pause after missed offers, overflow on max wait, skills
routing, and statistics that equal the test's own count. sipp plays callers and agent phones;
the assertions are on what the phones saw and on what the CLI reads back from the databases."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.interop.server import MiniccServer
from tests.interop.sipp import Sipp, SipUser

pytestmark = [pytest.mark.interop, pytest.mark.sipp]

DTMF = "/usr/share/sip-tester/dtmf_2833_{}.pcap"
# The server rereads a tenant database within a second of a CLI change.
RELOAD_S = 1.5
# The engine saves its live statistics every 5 s (minicc.server.STATS_INTERVAL).
STATS_SAVE_S = 5.0

# A sipp -trace_msg entry: a dashed line with the time, the direction, then the message.
_ENTRY = re.compile(
    r"-{10,} (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)\s*\n[^\n]*\n+(?:\s*\n)*([^\n]*)"
)


def _cli(server: MiniccServer, *args: str) -> str:
    result = server.cli(*args, "--tenant", "demo", "--data-dir", str(server.data_dir))
    return result.stdout


def _json(server: MiniccServer, *args: str) -> Any:
    return json.loads(_cli(server, *args, "--json"))


def _user(server: MiniccServer, number: str) -> SipUser:
    ext = server.extension(number)
    return SipUser(user=ext.number, password=ext.password)


def _register(sipp: Any, server: MiniccServer, number: str) -> int:
    """Register ``number`` from a fresh sipp port and return that port."""
    register = sipp("register.xml", remote=server.sip_address, users=[_user(server, number)])
    assert register.run().ok
    return int(register.local_port)


def _phone(sipp: Any, port: int, scenario: str = "uas_answer.xml", **kw: Any) -> Sipp:
    """A phone on a registered port running ``scenario`` (answering, echoing RTP, by default)."""
    kw.setdefault("rtp_echo", scenario.startswith("uas_answer"))
    kw.setdefault("timeout_s", 60)
    return sipp(scenario, local_port=port, **kw).start().wait_ready()


def _log(phone: Sipp) -> str:
    return phone.messages_path.read_text(errors="replace") if phone.messages_path.exists() else ""


def _messages(phone: Sipp, start: str) -> list[tuple[datetime, str]]:
    """(time, rest of the log) for each message in the phone's trace whose first line starts
    with ``start`` (sent or received), in order."""
    log = _log(phone)
    return [
        (datetime.fromisoformat(match.group(1).replace(" ", "T")), log[match.end() :])
        for match in _ENTRY.finditer(log)
        if match.group(2).startswith(start)
    ]


def _invites(phone: Sipp) -> list[tuple[datetime, str]]:
    """(time, caller number in From) for each INVITE in the phone's trace, in order."""
    seen: list[tuple[datetime, str]] = []
    for stamp, rest in _messages(phone, "INVITE "):
        sender = re.search(r"\nFrom:[^<\n]*<sip:([^@>]+)@", rest)
        seen.append((stamp, sender.group(1) if sender else ""))
    return seen


def _waited(caller: Sipp) -> float:
    """Seconds from the caller's ACK of minicc's answer (joining the queue) to its BYE."""
    (bye, _), *_ = _messages(caller, "BYE ")
    acked = [stamp for stamp, _ in _messages(caller, "ACK ") if stamp <= bye]
    return (bye - acked[-1]).total_seconds()


def _callers(phone: Sipp) -> list[str]:
    return [caller for _, caller in _invites(phone)]


def _poll(what: str, probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Call ``probe`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    pytest.fail(f"{what}: not within {timeout:g}s (last: {last!r})")


def _caller(
    sipp: Any, server: MiniccServer, number: str, service: str, talkms: int, **kw: Any
) -> Sipp:
    """A sipp caller from ``number`` to ``service`` that hangs up after ``talkms``."""
    return sipp(
        "uac_call.xml",
        remote=server.sip_address,
        service=service,
        users=[_user(server, number)],
        variables={"talkms": talkms},
        timeout_s=60,
        **kw,
    )


# --- 1. callback kept in place across a restart, dialled back agent-first ----------------------


def test_callback_keeps_its_place_across_a_restart_and_is_dialled_back(
    minicc_server: MiniccServer, sipp: Any
) -> None:
    server = minicc_server
    # The only agent is paused; after 2 s of waiting a caller is offered a callback (max-wait
    # overflow "callback-offer": the place is kept, the offer is made once).
    _cli(server, "queue", "add", "cbq", "--strategy", "longest-idle", "--max-wait", "2",
         "--overflow", "callback-offer", "--announce-interval", "3", "--callback-threshold", "1",
         "--ring-timeout", "10", "--wrap-up", "1")  # fmt: skip
    _cli(server, "queue", "member", "add", "cbq", "2002")
    _cli(server, "agent", "set-state", "2002", "paused", "--reason", "lunch")
    _cli(server, "number", "add", "8300", "--to", "queue:cbq")
    time.sleep(RELOAD_S)
    early_port = _register(sipp, server, "2003")
    late_port = _register(sipp, server, "2001")
    agent_port = _register(sipp, server, "2002")

    def waiting_caller(number: str, waitms: int) -> Sipp:
        """Waits, hears the offer, presses 1 after ``waitms`` and is sent goodbye."""
        return sipp(
            "uac_ivr_wait_bye.xml",
            remote=server.sip_address,
            service="8300",
            users=[_user(server, number)],
            variables={"waitms": waitms},
            substitutions={"DTMF_PCAP": DTMF.format("1")},
            timeout_s=40,
        )

    # 2003 joins first but accepts the offer last; 2001 joins a second later and accepts
    # first (so its callback row is older). The place is the join time, not the request.
    early = waiting_caller("2003", 6500).start()
    time.sleep(1.0)
    late = waiting_caller("2001", 4000).start()
    for run in (early, late):
        result = run.wait()
        assert result.ok, result.describe()
    requested = _json(server, "queue", "callbacks", "cbq")
    assert [(c["number"], c["status"]) for c in requested] == [
        ("2003", "pending"),
        ("2001", "pending"),
    ]
    by_number = {c["number"]: c for c in requested}
    assert by_number["2001"]["id"] < by_number["2003"]["id"]

    server.restart()
    listed = _json(server, "queue", "callbacks", "cbq", "--status", "pending")
    assert [(c["id"], c["number"], c["joined_at"]) for c in listed] == [
        (c["id"], c["number"], c["joined_at"]) for c in requested
    ]

    # The agent's phone answers each dial-back, talks 2 s and hangs up; the customers' phones
    # answer theirs.
    agent = _phone(sipp, agent_port, "uas_answer_bye.xml", calls=2, variables={"talkms": 2000})
    first = _phone(sipp, early_port)
    second = _phone(sipp, late_port)
    _cli(server, "agent", "set-state", "2002", "available")
    for phone in (agent, first, second):
        assert phone.wait().ok, phone.wait().describe()

    # Agent first, in the order of the places kept: the agent is shown the customer's number,
    # and each customer is dialled only after the agent answered.
    agent_invites = _invites(agent)
    assert [number for _, number in agent_invites] == ["2003", "2001"]
    ((first_dialled, _),) = _invites(first)
    ((second_dialled, _),) = _invites(second)
    assert agent_invites[0][0] < first_dialled < agent_invites[1][0] < second_dialled

    def finished() -> list[dict[str, Any]] | None:
        rows = _json(server, "queue", "callbacks", "cbq")
        return rows if all(c["status"] != "pending" for c in rows) else None

    rows = _poll("both callbacks recorded", finished)
    assert [(c["number"], c["status"], c["result"], c["attempts"]) for c in rows] == [
        ("2003", "done", "connected", 1),
        ("2001", "done", "connected", 1),
    ]

    def callback_cdrs() -> list[dict[str, Any]] | None:
        cdrs = [c for c in server.cdr_export() if str(c["call_id"]).startswith("callback-")]
        return cdrs if len(cdrs) >= 2 else None

    cdrs = _poll("callback CDRs", callback_cdrs)
    assert sorted((c["from_user"], c["to_user"], c["disposition"]) for c in cdrs) == [
        ("2002", "2001", "answered"),
        ("2002", "2003", "answered"),
    ]


def test_callback_is_offered_when_the_estimate_exceeds_the_threshold(
    minicc_server: MiniccServer, sipp: Any
) -> None:
    server = minicc_server
    _cli(server, "queue", "add", "ewq", "--strategy", "longest-idle", "--wrap-up", "0.5",
         "--announce-interval", "2", "--callback-threshold", "1")  # fmt: skip
    _cli(server, "queue", "member", "add", "ewq", "2002")
    _cli(server, "number", "add", "8305", "--to", "queue:ewq")
    time.sleep(RELOAD_S)
    agent = _phone(sipp, _register(sipp, server, "2002"), calls=4, timeout_s=90)
    # Three answered calls give the queue the handle times an honest estimate needs.
    for _ in range(3):
        result = _caller(sipp, server, "2003", "8305", talkms=1000).run()
        assert result.ok, result.describe()
        time.sleep(1.0)
    # The agent is busy with a long call and another caller waits: the next caller's estimate
    # is at least one more handle time, above the 1 s threshold.
    busy = _caller(sipp, server, "2003", "8305", talkms=20000).start()
    time.sleep(1.5)
    ahead = _caller(sipp, server, "2003", "8305", talkms=12000).start()
    time.sleep(1.0)
    offered = sipp(
        "uac_ivr_wait_bye.xml",
        remote=server.sip_address,
        service="8305",
        users=[_user(server, "2001")],
        variables={"waitms": 5000},
        substitutions={"DTMF_PCAP": DTMF.format("1")},
        timeout_s=30,
    )
    result = offered.run()
    assert result.ok, result.describe()  # the 1 was taken: minicc said goodbye and hung up
    pending = _json(server, "queue", "callbacks", "ewq", "--status", "pending")
    assert [c["number"] for c in pending] == ["2001"]
    for run in (ahead, busy):
        assert run.wait().ok
    agent.stop()


def test_caller_refused_by_a_full_queue_takes_a_callback_served_after_those_ahead(
    minicc_server: MiniccServer, sipp: Any
) -> None:
    server = minicc_server
    _cli(server, "queue", "add", "fq", "--strategy", "longest-idle", "--max-length", "1",
         "--overflow", "callback-offer", "--ring-timeout", "10", "--wrap-up", "1")  # fmt: skip
    _cli(server, "queue", "member", "add", "fq", "2002")
    _cli(server, "agent", "set-state", "2002", "paused")
    _cli(server, "number", "add", "8307", "--to", "queue:fq")
    time.sleep(RELOAD_S)
    refused_port = _register(sipp, server, "2001")
    agent_port = _register(sipp, server, "2002")

    # 2003 waits in the queue (its one place is taken) until the agent hangs up on it.
    first = sipp(
        "uac_wait_bye.xml",
        remote=server.sip_address,
        service="8307",
        users=[_user(server, "2003")],
        timeout_s=45,
    ).start()
    time.sleep(1.5)
    # 2001 finds the queue full: "all agents are busy, press 1 to be called back"; it does.
    refused = sipp(
        "uac_ivr_wait_bye.xml",
        remote=server.sip_address,
        service="8307",
        users=[_user(server, "2001")],
        variables={"waitms": 3500},
        substitutions={"DTMF_PCAP": DTMF.format("1")},
        timeout_s=30,
    )
    result = refused.run()
    assert result.ok, result.describe()
    assert [(c["number"], c["status"]) for c in _json(server, "queue", "callbacks", "fq")] == [
        ("2001", "pending")
    ]

    agent = _phone(sipp, agent_port, "uas_answer_bye.xml", calls=2, variables={"talkms": 1000})
    customer = _phone(sipp, refused_port)
    _cli(server, "agent", "set-state", "2002", "available")
    for run in (first, agent, customer):
        assert run.wait().ok, run.wait().describe()
    # The caller who was in the queue first is served first, then the callback, agent first.
    assert _callers(agent) == ["2003", "2001"]
    assert _invites(agent)[1][0] < _invites(customer)[0][0]
    done = _poll(
        "callback done",
        lambda: [c for c in _json(server, "queue", "callbacks", "fq") if c["status"] == "done"],
    )
    assert [(c["number"], c["result"]) for c in done] == [("2001", "connected")]


# --- 2. auto-pause after misses; a missed agent is not re-rung for the same call ----------------


def test_agent_who_rejects_three_times_is_paused_and_not_rerung(
    minicc_server: MiniccServer, sipp: Any
) -> None:
    server = minicc_server
    # max_misses is left at its default, 3.
    _cli(server, "queue", "add", "mq", "--strategy", "longest-idle", "--wrap-up", "0.5",
         "--ring-timeout", "10")  # fmt: skip
    # 2002 rings first for every call (no penalty), 2003 only when 2002 cannot take it.
    _cli(server, "queue", "member", "add", "mq", "2002")
    _cli(server, "queue", "member", "add", "mq", "2003", "--penalty", "5")
    _cli(server, "number", "add", "8301", "--to", "queue:mq")
    time.sleep(RELOAD_S)
    rejecting = _phone(sipp, _register(sipp, server, "2002"), "uas_busy.xml", calls=4)
    answering = _phone(sipp, _register(sipp, server, "2003"), calls=4)

    for _ in range(3):
        result = _caller(sipp, server, "2001", "8301", talkms=1000).run()
        assert result.ok, result.describe()
        time.sleep(1.0)  # wrap-up ends before the next caller
    # Rung once per call (never again for a call it refused), and each call went to 2003.
    assert _callers(rejecting) == ["2001"] * 3
    assert _callers(answering) == ["2001"] * 3

    agents = {a["extension"]: a for a in _json(server, "agent", "list")}
    assert (agents["2002"]["state"], agents["2002"]["reason"]) == ("paused", "missed calls")
    assert agents["2003"]["state"] == "available"

    # The pause is kept across a restart: 2002 is not offered the next call at all.
    server.restart()
    result = _caller(sipp, server, "2001", "8301", talkms=3000).run()
    assert result.ok, result.describe()
    assert answering.wait().ok
    assert len(_callers(answering)) == 4
    rejecting.stop()
    assert len(_callers(rejecting)) == 3


def test_phone_that_never_answers_or_hangs_up_at_once_leaves_no_agent_stuck(
    minicc_server: MiniccServer, sipp: Any
) -> None:
    server = minicc_server
    _cli(server, "queue", "add", "nq", "--strategy", "longest-idle", "--ring-timeout", "2",
         "--wrap-up", "0.5")  # fmt: skip
    _cli(server, "queue", "member", "add", "nq", "2002")
    _cli(server, "queue", "member", "add", "nq", "2003", "--penalty", "5")
    _cli(server, "number", "add", "8306", "--to", "queue:nq")
    time.sleep(RELOAD_S)
    port = _register(sipp, server, "2002")
    backup = _phone(sipp, _register(sipp, server, "2003"))

    # 1. 2002's phone rings out (the ring timeout cancels it); 2003 takes the call.
    silent = _phone(sipp, port, "uas_ring_noanswer.xml")
    result = _caller(sipp, server, "2001", "8306", talkms=5000).run()
    assert result.ok, result.describe()
    assert silent.wait(timeout=10).ok and backup.wait().ok
    assert _callers(silent) == ["2001"] and _callers(backup) == ["2001"]

    # 2. 2002 answers and hangs up at once: the caller gets the BYE, 2002 wraps up ...
    instant = _phone(sipp, port, "uas_answer_bye.xml", variables={"talkms": 0})
    caller = sipp(
        "uac_wait_bye.xml",
        remote=server.sip_address,
        service="8306",
        users=[_user(server, "2001")],
        timeout_s=30,
    )
    result = caller.run()
    assert result.ok, result.describe()
    assert instant.wait(timeout=10).ok
    time.sleep(1.0)

    # 3. ... and is offered the next call again: neither phone left 2002 reserved or on a call.
    normal = _phone(sipp, port)
    result = _caller(sipp, server, "2001", "8306", talkms=1500).run()
    assert result.ok, result.describe()
    assert normal.wait(timeout=10).ok
    assert _callers(normal) == ["2001"]
    agents = {a["extension"]: a for a in _json(server, "agent", "list")}
    assert agents["2002"]["state"] == "available"


# --- 3. overflow on max wait ----------------------------------------------------------------


def test_caller_overflows_to_another_queue_after_max_wait(
    minicc_server: MiniccServer, sipp: Any
) -> None:
    server = minicc_server
    _cli(server, "queue", "add", "other", "--strategy", "longest-idle")
    _cli(server, "queue", "add", "first", "--strategy", "longest-idle", "--max-wait", "3",
         "--overflow", "queue:other")  # fmt: skip
    _cli(server, "queue", "member", "add", "other", "2003")
    _cli(server, "number", "add", "8302", "--to", "queue:first")
    time.sleep(RELOAD_S)
    agent = _phone(sipp, _register(sipp, server, "2003"))

    caller = _caller(sipp, server, "2001", "8302", talkms=7000)
    result = caller.run()
    assert result.ok, result.describe()
    assert agent.wait().ok
    started = _invites(caller)[0][0]  # the caller's first INVITE, as its own log has it
    ((rung_at, caller_number),) = _invites(agent)
    assert caller_number == "2001"
    # Nobody in "first": the agent of "other" is rung once the 3 s are up, not before.
    assert (rung_at - started).total_seconds() >= 2.8
    (cdr,) = server.cdr_export()
    assert (cdr["to_user"], cdr["disposition"]) == ("8302", "answered")


# --- 4. skills routing -------------------------------------------------------------------------

SKILLS_FLOW = """
[flow]
name = "german"
start = "need_german"
language = "en"

[nodes.need_german]
type = "set"
skills = { lang_de = 5 }
next = "to_queue"

[nodes.to_queue]
type = "queue"
queue = "sk"
"""


def test_the_skilled_agent_gets_the_call(minicc_server: MiniccServer, sipp: Any) -> None:
    server = minicc_server
    _cli(server, "queue", "add", "sk", "--strategy", "skills")
    # 2002 speaks only a little German and has been idle longer: by idle time alone it would
    # get the call.
    _cli(server, "queue", "member", "add", "sk", "2002", "--skill", "lang_de=2")
    _cli(server, "queue", "member", "add", "sk", "2003", "--skill", "lang_de=8")
    _cli(server, "agent", "set-state", "2003", "paused")
    time.sleep(RELOAD_S)
    _cli(server, "agent", "set-state", "2003", "available")
    flow = server.root / "german.toml"
    flow.write_text(SKILLS_FLOW)
    _cli(server, "ivr", "load", str(flow))
    _cli(server, "number", "add", "8303", "--to", "ivr:german")
    time.sleep(RELOAD_S)
    french = _phone(sipp, _register(sipp, server, "2002"))
    german = _phone(sipp, _register(sipp, server, "2003"))

    result = _caller(sipp, server, "2001", "8303", talkms=2000).run()
    assert result.ok, result.describe()
    assert german.wait().ok
    assert _callers(german) == ["2001"]
    french.stop()
    assert _callers(french) == []


# --- 5. statistics equal the test's own count ----------------------------------------------


def test_queue_statistics_equal_the_calls_made(minicc_server: MiniccServer, sipp: Any) -> None:
    server = minicc_server
    _cli(server, "queue", "add", "st", "--strategy", "longest-idle", "--wrap-up", "0.5")
    _cli(server, "queue", "member", "add", "st", "2002")
    _cli(server, "number", "add", "8304", "--to", "queue:st")
    time.sleep(RELOAD_S)
    agent = _phone(sipp, _register(sipp, server, "2002"), calls=3)
    log: list[tuple[str, float]] = []  # (outcome, seconds waited) per call, as the test saw

    for _ in range(3):  # answered at once: the agent is free; the caller hangs up after 1 s
        result = _caller(sipp, server, "2001", "8304", talkms=1000).run()
        assert result.ok, result.describe()
        log.append(("answered", 0.0))
        time.sleep(1.0)
    assert agent.wait().ok
    # No agent free: callers hear music and hang up -- abandoned after about 1.5 s.
    _cli(server, "agent", "set-state", "2002", "paused", "--reason", "break")
    time.sleep(RELOAD_S)
    for _ in range(2):
        caller = _caller(sipp, server, "2003", "8304", talkms=1500)
        result = caller.run()
        assert result.ok, result.describe()
        log.append(("abandoned", _waited(caller)))

    answered = [w for outcome, w in log if outcome == "answered"]
    abandoned = [w for outcome, w in log if outcome == "abandoned"]
    expected = {
        "offered": len(log),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "waiting": 0,
        "handled": len(answered),  # every wrap-up (0.5 s) is over
        "callbacks_requested": 0,
    }
    seen: list[Any] = []

    def live() -> dict[str, Any] | None:
        row = _json(server, "queue", "stats", "st")["queues"]["st"]["live"]
        seen[:] = [row]
        if row and {k: row.get(k) for k in expected} == expected:
            return dict(row)
        return None

    deadline = time.monotonic() + STATS_SAVE_S * 3
    row = None
    while row is None and time.monotonic() < deadline:
        row = live()
        time.sleep(0.5)
    assert row is not None, f"expected {expected}, last snapshot {seen}"
    # Everyone waited far less than the 20 s threshold: all answered and abandoned within it.
    assert row["answered_within"] == len(answered)
    assert row["abandoned_within"] == len(abandoned)
    assert row["service_level"] == pytest.approx(100.0)
    assert row["asa"] is not None and row["asa"] < 1.0
    assert row["avg_abandon_wait"] == pytest.approx(sum(abandoned) / len(abandoned), abs=0.5)
    assert row["abandon_wait_max"] == pytest.approx(max(abandoned), abs=0.5)
