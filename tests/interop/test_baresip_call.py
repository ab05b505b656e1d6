"""Two real softphones (baresip) register to minicc and call each other through it.

Each phone plays its own tone; the other side's recording of what it received must carry
that tone, which proves the B2BUA set the call up and the RTP relay carried audio both ways.
"""

from __future__ import annotations

import time

import pytest

from tests.interop.audio import analyze_wav
from tests.interop.baresip import Account

pytestmark = [pytest.mark.interop, pytest.mark.baresip]


def _account(server, number: str) -> Account:  # type: ignore[no-untyped-def]
    ext = server.extension(number)
    return Account(user=ext.number, registrar=server.sip_address, password=ext.password)


def test_two_baresip_phones_talk_through_minicc(minicc_server, baresip) -> None:  # type: ignore[no-untyped-def]
    alice = baresip("alice", account=_account(minicc_server, "2001"), tone_hz=440.0)
    bob = baresip("bob", account=_account(minicc_server, "2002"), tone_hz=1000.0)
    alice.wait_registered()
    bob.wait_registered()

    alice.dial(f"sip:2002@{minicc_server.sip_address}")
    alice.wait_established(timeout=15)
    bob.wait_established(timeout=15)
    time.sleep(3.0)  # let three seconds of audio flow both ways
    alice.hangup()
    bob.wait_closed(timeout=10)
    alice.wait_closed(timeout=10)

    # The first half second holds call setup and jitter-buffer fill: skip it.
    heard_by_bob = analyze_wav(bob.received_recordings()[-1], skip_s=0.5)
    heard_by_alice = analyze_wav(alice.received_recordings()[-1], skip_s=0.5)
    assert not heard_by_bob.silent and not heard_by_alice.silent
    assert heard_by_bob.dominant_hz == pytest.approx(440.0, abs=15)
    assert heard_by_alice.dominant_hz == pytest.approx(1000.0, abs=15)

    cdrs = minicc_server.cdr_export()
    assert len(cdrs) == 1
    cdr = cdrs[0]
    assert (cdr["from_user"], cdr["to_user"], cdr["disposition"]) == ("2001", "2002", "answered")
    assert cdr["hangup_side"] == "caller"
    assert cdr["billable_seconds"] >= 3
