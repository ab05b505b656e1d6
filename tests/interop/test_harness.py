"""Self-tests of the real-client harness against the real tools, without minicc.

sipp talks to sipp and baresip to baresip directly, so these prove the scenarios, the runners,
the statistics parsing and the audio checks before any test relies on them against minicc.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.interop.audio import analyze_wav, summarize
from tests.interop.baresip import Account, Baresip
from tests.interop.rtp import PT_PCMA, PT_PCMU, RtpSink
from tests.interop.sipp import Sipp, SipUser

SippFactory = Callable[..., Sipp]
BaresipFactory = Callable[..., Baresip]

ALICE = SipUser(user="2001", password="alice-secret")
BOB = SipUser(user="2002", password="bob-secret")


@pytest.mark.sipp
def test_uac_call_with_rtp_against_builtin_uas(sipp: SippFactory) -> None:
    uas = sipp("uas", rtp_echo=True).start().wait_ready()
    uac = sipp(
        "uac_call.xml",
        remote=uas.address,
        service="2002",
        users=[ALICE],
        variables={"talkms": 1000},
    ).run()
    assert uac.ok, uac.describe()
    assert uac.stats["SuccessfulCall(C)"] == "1"
    assert uac.successful == 1
    assert uac.failed == 0
    assert uac.counter("TotalCallCreated") == 1
    server = uas.wait()
    assert server.ok, server.describe()


@pytest.mark.sipp
def test_uac_call_answers_digest_challenge(sipp: SippFactory) -> None:
    # The double challenges with 401, checks the ACK reused the INVITE branch, then verifies
    # the digest of the second INVITE against its own copy of the users file.
    uas = sipp("uas_auth_answer.xml", users=[ALICE, BOB], index_users=True).start().wait_ready()
    uac = sipp(
        "uac_call.xml", remote=uas.address, service="2002", users=[ALICE], variables={"talkms": 300}
    ).run()
    assert uac.ok, uac.describe()
    assert uas.wait().ok
    assert "Authorization: Digest" in uac.messages
    assert "CSeq: 2 INVITE" in uac.messages


@pytest.mark.sipp
def test_wrong_password_is_reported_as_failed_call(sipp: SippFactory) -> None:
    uas = sipp("uas_auth_answer.xml", users=[ALICE], index_users=True).start().wait_ready()
    wrong = SipUser(user=ALICE.user, password="not-the-password")
    uac = sipp("uac_call.xml", remote=uas.address, service="2002", users=[wrong], timeout_s=5).run()
    assert not uac.ok
    assert uac.returncode != 0
    assert uac.failed == 1
    assert "403" in uac.errors + uac.messages
    uas.stop()


@pytest.mark.sipp
def test_register_with_digest(sipp: SippFactory) -> None:
    registrar = (
        sipp("registrar_auth.xml", users=[ALICE, BOB], index_users=True).start().wait_ready()
    )
    reg = sipp("register.xml", remote=registrar.address, users=[BOB]).run()
    assert reg.ok, reg.describe()
    assert "Expires: 3600" in reg.messages
    assert registrar.wait().ok


@pytest.mark.sipp
def test_register_then_answer_on_the_same_port(sipp: SippFactory) -> None:
    # A "registered phone": register.xml and then uas_answer.xml on one SIP port, so the
    # binding a registrar stores points at the answering sipp.
    registrar = sipp("registrar_auth.xml", users=[BOB], index_users=True).start().wait_ready()
    register = sipp("register.xml", remote=registrar.address, users=[BOB])
    reg = register.run()
    assert reg.ok, reg.describe()
    assert registrar.wait().ok
    phone = (
        sipp("uas_answer.xml", local_port=register.local_port, rtp_echo=True).start().wait_ready()
    )
    caller = sipp(
        "uac_call.xml",
        remote=phone.address,
        service=BOB.user,
        users=[ALICE],
        variables={"talkms": 300},
    ).run()
    assert caller.ok, caller.describe()
    assert phone.wait().ok
    assert f"Contact: <sip:{BOB.user}@127.0.0.1:{register.local_port};" in reg.messages


@pytest.mark.sipp
@pytest.mark.parametrize(
    ("uas_scenario", "uas_vars", "uac_scenario", "uac_vars", "expect"),
    [
        ("uas_busy.xml", {}, "uac_busy.xml", {}, "486 Busy Here"),
        ("uas_ring_noanswer.xml", {}, "uac_cancel.xml", {"ringms": 200}, "487 Request Terminated"),
        ("uas_answer_bye.xml", {"talkms": 500}, "uac_wait_bye.xml", {}, "BYE sip:"),
    ],
    ids=["busy", "cancel-after-180", "callee-hangs-up"],
)
def test_call_outcome_pairs(
    sipp: SippFactory,
    uas_scenario: str,
    uas_vars: dict[str, int],
    uac_scenario: str,
    uac_vars: dict[str, int],
    expect: str,
) -> None:
    uas = sipp(uas_scenario, rtp_echo=True, variables=uas_vars).start().wait_ready()
    uac = sipp(
        uac_scenario, remote=uas.address, service="2002", users=[ALICE], variables=uac_vars
    ).run()
    assert uac.ok, uac.describe()
    server = uas.wait()
    assert server.ok, server.describe()
    assert expect in uac.messages


@pytest.mark.sipp
def test_pcap_audio_reaches_the_answering_side(sipp: SippFactory) -> None:
    with RtpSink() as sink:
        uas = sipp("uas_answer.xml", variables={"rtpport": sink.port}).start().wait_ready()
        uac = sipp(
            "uac_call.xml",
            remote=uas.address,
            service="2002",
            users=[ALICE],
            variables={"talkms": 1500},
        ).run()
        assert uac.ok, uac.describe()
        assert uas.wait().ok
    # g711a.pcap is PCMA at 50 packets/s; 1.5 s of talk is about 75 packets.
    assert sink.counts()[PT_PCMA] >= 50, sink.counts()
    assert not summarize(sink.audio(), 8000).silent


@pytest.mark.sipp
@pytest.mark.sox
def test_wav_tone_streamed_by_sipp_is_heard(
    sipp: SippFactory, tone_wav: Callable[..., Path]
) -> None:
    tone = tone_wav(1000, seconds=10, encoding="ulaw")
    with RtpSink() as sink:
        uas = sipp("uas_answer.xml", variables={"rtpport": sink.port}).start().wait_ready()
        uac = sipp(
            "uac_call_wav.xml",
            remote=uas.address,
            service="2002",
            users=[ALICE],
            variables={"talkms": 1500},
            substitutions={"AUDIO_WAV": str(tone)},
        ).run()
        assert uac.ok, uac.describe()
        assert uas.wait().ok
    assert sink.counts()[PT_PCMU] >= 50, sink.counts()
    heard = summarize(sink.audio(), 8000, skip_s=0.2)
    assert heard.dominant_hz == pytest.approx(1000, abs=15), heard
    assert heard.rms_dbfs > -20, heard


@pytest.mark.sipp
def test_runner_kills_sipp_at_the_wall_clock_limit(sipp: SippFactory) -> None:
    # A server with nobody calling would wait until its -timeout; the runner must not.
    uas = sipp("uas", timeout_s=60).start()
    started = time.monotonic()
    result = uas.wait(timeout=1.0)
    assert time.monotonic() - started < 10
    assert result.timed_out
    assert not result.ok
    assert not uas.running()


@pytest.mark.baresip
def test_two_baresips_hear_each_others_tone(baresip: BaresipFactory) -> None:
    alice = baresip("alice", account=Account(user="alice"), tone_hz=440)
    bob = baresip("bob", account=Account(user="bob"), tone_hz=1000)
    alice.dial(bob.direct_uri)
    alice.wait_established()
    incoming = bob.wait_established()
    assert incoming["direction"] == "incoming"
    alice.wait_event("CALL_RTPESTAB")
    bob.wait_event("CALL_RTPESTAB")
    # Two seconds of audio: plenty for an FFT, short enough for the suite.
    time.sleep(2.0)
    alice.hangup()
    alice.wait_closed()
    bob.wait_closed()

    for phone, sent_hz, heard_hz in ((alice, 440, 1000), (bob, 1000, 440)):
        (received,) = phone.received_recordings()
        heard = analyze_wav(received, skip_s=0.3)
        assert heard.duration_s > 1.0, (phone.name, heard)
        assert heard.dominant_hz == pytest.approx(heard_hz, abs=10), (phone.name, heard)
        assert heard.rms_dbfs > -20, (phone.name, heard)
        (sent,) = phone.sent_recordings()
        own = analyze_wav(sent, skip_s=0.3)
        assert own.dominant_hz == pytest.approx(sent_hz, abs=10), (phone.name, own)


@pytest.mark.baresip
@pytest.mark.sipp
def test_baresip_registers_with_digest(sipp: SippFactory, baresip: BaresipFactory) -> None:
    registrar = sipp("registrar_auth.xml", users=[ALICE], index_users=True).start().wait_ready()
    phone = baresip(
        "agent",
        account=Account(user=ALICE.user, registrar=registrar.address, password=ALICE.password),
    )
    phone.wait_registered(timeout=5)
    assert phone.registration_state() == "OK"
    assert registrar.wait().ok
