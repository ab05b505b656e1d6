"""The flood and fraud guard's rules, on an injected clock."""

from __future__ import annotations

from minicc.switch.sip.guard import FloodGuard, GuardSettings, Offence, is_scanner

ATTACKER, PHONE = "192.0.2.66", "192.0.2.10"


def test_password_guessing_blocks_with_growing_back_off() -> None:
    guard = FloodGuard(GuardSettings(auth_failures=3, window=10.0, first_block=60.0))
    for _ in range(3):
        guard.auth_failed(ATTACKER, now=0.0)
    assert guard.admit(ATTACKER, 0.0)  # three failures are tolerated
    guard.auth_failed(ATTACKER, now=1.0)
    assert not guard.admit(ATTACKER, 1.0)
    assert guard.admit(PHONE, 1.0)  # only the offender
    (block,) = guard.blocks(1.0)
    assert (block.address, block.offence, block.until) == (ATTACKER, Offence.AUTH_FAILURES, 61.0)
    assert guard.admit(ATTACKER, 61.0)  # the block ran out
    for _ in range(4):
        guard.auth_failed(ATTACKER, now=62.0)
    assert guard.blocks(62.0)[0].until == 62.0 + 120.0  # second offence: twice as long
    assert guard.dropped == 1


def test_failures_spread_over_time_are_not_an_attack() -> None:
    guard = FloodGuard(GuardSettings(auth_failures=3, window=10.0))
    for second in range(0, 100, 5):  # one typo every five seconds
        guard.auth_failed(PHONE, now=float(second))
    assert guard.blocks(100.0) == []


def test_floods_are_blocked_and_allowed_networks_never() -> None:
    guard = FloodGuard(GuardSettings(max_rate=10.0, window=1.0, allow=("198.51.100.0/24",)))
    assert all(guard.admit(ATTACKER, 0.5) for _ in range(10))
    assert not guard.admit(ATTACKER, 0.5)
    assert guard.blocks(0.5)[0].offence is Offence.FLOOD
    trunk = "198.51.100.7"
    assert all(guard.admit(trunk, 0.5) for _ in range(100))
    for _ in range(100):
        guard.auth_failed(trunk, now=0.5)
    assert guard.admit(trunk, 0.6)


def test_scanners_get_no_answer() -> None:
    assert is_scanner("friendly-scanner") and is_scanner("sipvicious 0.3.4")
    assert not is_scanner("baresip v1.0.0 (x86_64/linux)") and not is_scanner(None)
    guard = FloodGuard()
    assert not guard.admit(ATTACKER, 0.0, user_agent="friendly-scanner")
    assert not guard.admit(ATTACKER, 1.0, user_agent="Linphone/5.2")  # now blocked outright
    assert guard.blocks(1.0)[0].offence is Offence.SCANNER
