"""sipp drives real SIP traffic through a running minicc: registrar, B2BUA and RTP relay."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.rtp import RtpSink
from tests.interop.server import MiniccServer
from tests.interop.sipp import Sipp, SipUser

pytestmark = [pytest.mark.interop, pytest.mark.sipp]


def _user(server: MiniccServer, number: str, password: str | None = None) -> SipUser:
    ext = server.extension(number)
    return SipUser(user=ext.number, password=password or ext.password)


def _status(server: MiniccServer, query: str = "") -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.http_url}/api/status{query}", timeout=5) as resp:
        return json.loads(resp.read())


def _register(sipp: Any, server: MiniccServer, number: str, **kwargs: Any) -> Sipp:
    register = sipp(
        "register.xml", remote=server.sip_address, users=[_user(server, number)], **kwargs
    )
    result = register.run()
    assert result.ok, result.describe()
    return register


def _answering_phone(
    sipp: Any, server: MiniccServer, number: str, scenario: str, **kwargs: Any
) -> Sipp:
    """A sipp UAS registered as ``number``: REGISTER from a port, then serve on that port."""
    register = _register(sipp, server, number)
    return sipp(scenario, local_port=register.local_port, **kwargs).start().wait_ready()


def _cdrs_eventually(server: MiniccServer, count: int, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        cdrs = server.cdr_export()
        if len(cdrs) >= count or time.monotonic() > deadline:
            return cdrs
        time.sleep(0.2)


def test_register_right_and_wrong_password(minicc_server: MiniccServer, sipp: Any) -> None:
    _register(sipp, minicc_server, "2001")
    assert _status(minicc_server)["registrations"] == 1

    wrong = sipp(
        "register.xml",
        remote=minicc_server.sip_address,
        users=[_user(minicc_server, "2002", password="not-the-password")],
        timeout_s=10,
    )
    result = wrong.run()
    assert not result.ok
    assert result.counter("SuccessfulCall(C)") == 0
    status = _status(minicc_server)
    assert status["registrations"] == 1
    assert status["sip"]["auth_failures"] >= 1


def test_200_calls_with_rtp_through_the_relay(minicc_server: MiniccServer, sipp: Any) -> None:
    answering = _answering_phone(
        sipp, minicc_server, "2002", "uas_answer.xml", rtp_echo=True, calls=200, timeout_s=90
    )
    caller = sipp(
        "uac_call.xml",
        remote=minicc_server.sip_address,
        service="2002",
        users=[_user(minicc_server, "2001")],
        calls=200,
        rate=20,
        limit=40,
        variables={"talkms": 1000},
        timeout_s=90,
        trace_messages=False,
    )
    result = caller.run()
    assert result.ok, result.describe()
    assert result.successful == 200 and result.failed == 0
    assert answering.wait().ok
    cdrs = _cdrs_eventually(minicc_server, 200)
    assert len(cdrs) == 200
    assert {c["disposition"] for c in cdrs} == {"answered"}
    assert _status(minicc_server)["active_calls"] == 0


def test_media_is_relayed_to_the_callee(minicc_server: MiniccServer, sipp: Any) -> None:
    with RtpSink() as sink:
        answering = _answering_phone(
            sipp, minicc_server, "2002", "uas_answer.xml", variables={"rtpport": sink.port}
        )
        caller = sipp(
            "uac_call.xml",
            remote=minicc_server.sip_address,
            service="2002",
            users=[_user(minicc_server, "2001")],
            variables={"talkms": 3000},
        )
        assert caller.run().ok
        assert answering.wait().ok
        counts = sink.counts()
    # sipp plays g711a.pcap (PCMA, payload type 8) for the 3 s of the call: ~150 packets.
    assert counts.get(8, 0) >= 100, counts


def test_cancel_before_answer(minicc_server: MiniccServer, sipp: Any) -> None:
    ringing = _answering_phone(sipp, minicc_server, "2002", "uas_ring_noanswer.xml")
    caller = sipp(
        "uac_cancel.xml",
        remote=minicc_server.sip_address,
        service="2002",
        users=[_user(minicc_server, "2001")],
        variables={"ringms": 500},
    )
    result = caller.run()
    assert result.ok, result.describe()
    assert ringing.wait().ok
    (cdr,) = _cdrs_eventually(minicc_server, 1)
    assert cdr["disposition"] == "cancelled"
    assert cdr["hangup_side"] == "caller"
    assert cdr["billable_seconds"] == 0


def test_bye_from_the_callee(minicc_server: MiniccServer, sipp: Any) -> None:
    answering = _answering_phone(
        sipp, minicc_server, "2002", "uas_answer_bye.xml", rtp_echo=True, variables={"talkms": 1500}
    )
    caller = sipp(
        "uac_wait_bye.xml",
        remote=minicc_server.sip_address,
        service="2002",
        users=[_user(minicc_server, "2001")],
    )
    result = caller.run()
    assert result.ok, result.describe()
    assert answering.wait().ok
    (cdr,) = _cdrs_eventually(minicc_server, 1)
    assert (cdr["disposition"], cdr["hangup_side"]) == ("answered", "callee")
    assert cdr["billable_seconds"] >= 1


def test_busy_callee_gets_486_to_the_caller(minicc_server: MiniccServer, sipp: Any) -> None:
    busy = _answering_phone(sipp, minicc_server, "2002", "uas_busy.xml")
    caller = sipp(
        "uac_busy.xml",
        remote=minicc_server.sip_address,
        service="2002",
        users=[_user(minicc_server, "2001")],
    )
    result = caller.run()
    assert result.ok, result.describe()
    assert busy.wait().ok
    (cdr,) = _cdrs_eventually(minicc_server, 1)
    assert (cdr["disposition"], cdr["sip_cause"]) == ("busy", 486)


def test_registration_survives_a_restart(minicc_server: MiniccServer, sipp: Any) -> None:
    register = _register(sipp, minicc_server, "2002")
    minicc_server.restart()
    assert _status(minicc_server)["registrations"] == 1
    answering = (
        sipp("uas_answer.xml", local_port=register.local_port, rtp_echo=True).start().wait_ready()
    )
    caller = sipp(
        "uac_call.xml",
        remote=minicc_server.sip_address,
        service="2002",
        users=[_user(minicc_server, "2001")],
        variables={"talkms": 500},
    )
    result = caller.run()
    assert result.ok, result.describe()
    assert answering.wait().ok


def _flood(port: int, stop: threading.Event, per_second: int, sent: list[int]) -> None:
    """Malformed and unauthenticated requests from one address, at a bounded rate."""
    garbage = [
        b"INVITE sip:2002@127.0.0.1 SIP/2.0\r\nVia: broken\r\n\r\n",
        b"\x00\xff\xfe garbage that is not SIP at all\r\n\r\n",
        b"REGISTER sip:127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\n",
    ]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    n = 0
    deadline = time.monotonic() + 30  # bounded even if the test forgets to stop it
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            tick = time.monotonic()
            for _ in range(per_second // 50):
                probe = (
                    f"OPTIONS sip:2002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;"
                    f"branch=z9hG4bKflood{n}\r\nFrom: <sip:x@y>;tag=f{n}\r\nTo: <sip:z@y>\r\n"
                    f"Call-ID: flood{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                ).encode()
                packet = garbage[n % 3] if n % 4 else probe
                sock.sendto(packet, ("127.0.0.1", port))
                n += 1
            time.sleep(max(0.0, 0.02 - (time.monotonic() - tick)))
    finally:
        sock.close()
        sent.append(n)


def _call_into_sink(
    server: MiniccServer, sipp: Any, talkms: int, during: threading.Event | None = None
) -> int:
    """One 2001 -> 2002 call; returns how many PCMA packets reached the callee."""
    with RtpSink() as sink:
        answering = _answering_phone(
            sipp, server, "2002", "uas_answer.xml", variables={"rtpport": sink.port}
        )
        caller = sipp(
            "uac_call.xml",
            remote=server.sip_address,
            service="2002",
            users=[_user(server, "2001")],
            variables={"talkms": talkms},
        )
        result = caller.run()
        assert result.ok, result.describe()
        assert answering.wait().ok
        return sink.counts().get(8, 0)


def test_malformed_flood_does_not_disturb_a_call(minicc_server: MiniccServer, sipp: Any) -> None:
    quiet = _call_into_sink(minicc_server, sipp, 4000)
    stop = threading.Event()
    sent: list[int] = []
    flooder = threading.Thread(target=_flood, args=(minicc_server.sip_port, stop, 2000, sent))
    flooder.start()
    try:
        flooded = _call_into_sink(minicc_server, sipp, 4000)
    finally:
        stop.set()
        flooder.join()
    assert sent and sent[0] >= 4000
    # The same call, with 2,000 bad messages a second arriving at the SIP port, delivers
    # (nearly) the same audio: at most 3 % of the packets may be lost or late.
    assert quiet >= 100
    assert flooded >= 0.97 * quiet, (quiet, flooded)
    status = _status(minicc_server)
    assert status["sip"]["malformed"] >= 2000
    assert status["active_calls"] == 0


def test_password_guesser_is_blocked_while_calls_go_on(
    minicc_server: MiniccServer, sipp: Any
) -> None:
    """Another address (127.0.0.2) floods REGISTERs with a wrong password at 500/s while a
    phone on 127.0.0.1 keeps calling: the guesser is blocked, every call goes through."""
    answering = _answering_phone(
        sipp, minicc_server, "2002", "uas_answer.xml", calls=12, timeout_s=60
    )
    attacker = sipp(
        "register.xml",
        remote=minicc_server.sip_address,
        users=[_user(minicc_server, "2003", password="guess-guess")],
        calls=3000,
        rate=500,
        timeout_s=12,
        trace_messages=False,
        local_ip="127.0.0.2",
        name="attacker",
    ).start()
    caller = sipp(
        "uac_call.xml",
        remote=minicc_server.sip_address,
        service="2002",
        users=[_user(minicc_server, "2001")],
        calls=12,
        rate=4,
        variables={"talkms": 300},
        timeout_s=60,
        trace_messages=False,
    )
    result = caller.run()
    assert result.ok and result.successful == 12, result.describe()
    assert answering.wait().ok
    guard = _status(minicc_server)["guard"]
    blocked = {b["address"]: b for b in guard["blocked"]}
    assert blocked["127.0.0.2"]["offence"] == "auth-failures"
    assert "127.0.0.1" not in blocked
    assert guard["dropped"] > 100  # the flood goes on, unanswered
    outcome = attacker.stop()
    assert outcome is None or outcome.successful == 0


@pytest.fixture
def recording_server(tmp_path: Path) -> Iterator[MiniccServer]:
    server = MiniccServer(tmp_path)
    server.start()
    server.cli("tenant", "set", "demo", "--recording", "on", "--data-dir", str(server.data_dir))
    time.sleep(1.5)  # the server rereads the control database within a second
    try:
        yield server
    finally:
        server.stop()


def test_recording_has_one_party_per_channel(
    recording_server: MiniccServer, sipp: Any, tone_wav: Any
) -> None:
    from tests.interop.audio import read_wav

    server = recording_server
    with RtpSink() as sink:
        answering = _answering_phone(
            sipp, server, "2002", "uas_answer.xml", variables={"rtpport": sink.port}
        )
        caller = sipp(
            "uac_call_wav.xml",
            remote=server.sip_address,
            service="2002",
            users=[_user(server, "2001")],
            variables={"talkms": 3000},
            substitutions={"AUDIO_WAV": str(tone_wav(1000, encoding="ulaw"))},
        )
        assert caller.run().ok
        assert answering.wait().ok
    (cdr,) = _cdrs_eventually(server, 1)
    assert cdr["recording_path"], cdr
    path = server.data_dir / cdr["recording_path"]
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    wav = read_wav(path)
    assert wav.channels == 2 and wav.rate == 8000 and wav.format_tag in (6, 7)


def test_sigterm_hangs_up_active_calls(minicc_server: MiniccServer, sipp: Any) -> None:
    answering = _answering_phone(sipp, minicc_server, "2002", "uas_answer.xml", rtp_echo=True)
    caller = sipp(
        "uac_wait_bye.xml",
        remote=minicc_server.sip_address,
        service="2002",
        users=[_user(minicc_server, "2001")],
    ).start()
    deadline = time.monotonic() + 10
    while [c["state"] for c in _status(minicc_server)["calls"]] != ["answered"]:
        assert time.monotonic() < deadline, "the call never came up"
        time.sleep(0.1)
    # What the benchmarks poll: the counters without the list of calls.
    light = _status(minicc_server, "?calls=false")
    assert (light["active_calls"], light["calls"]) == (1, [])
    assert minicc_server.stop() == 0  # SIGTERM: exit status 0 after a clean shutdown
    # Both phones got a BYE from minicc and answered it: their scenarios end successfully.
    assert caller.wait().ok
    assert answering.wait().ok
    (cdr,) = minicc_server.cdr_export()
    assert (cdr["disposition"], cdr["hangup_side"]) == ("answered", "system")
