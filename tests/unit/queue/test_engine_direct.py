"""Direct calls to an extension with voicemail (minicc.queue.engine_direct), fake switch."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from minicc.events import VoicemailLeft
from minicc.queue.engine_calls import CallPhase
from minicc.queue.mailbox import DEFAULT_RING_SECONDS, MailboxRule, VoicemailPlan
from minicc.switch.control import (
    PlaybackOutcome,
    RingResult,
    RouteKind,
    TransferKind,
    TransferReport,
)
from tests.unit.queue.engine_fakes import Rig, make_setup

EXTENSIONS = frozenset({"1001", "1002", "1003"})


def plan(default: MailboxRule | None = None, **extensions: MailboxRule) -> VoicemailPlan:
    return VoicemailPlan(
        default=default or MailboxRule(enabled=False),
        extensions=MappingProxyType({k.removeprefix("e"): v for k, v in extensions.items()}),
        known=EXTENSIONS,
    )


def rig_with(voicemail: VoicemailPlan, numbers: dict[str, str] | None = None) -> Rig:
    setup = dataclasses.replace(make_setup(numbers=numbers), voicemail=voicemail)
    # Like the server's: the tenant's extensions, and outside numbers its trunk may dial.
    return Rig(setup, is_extension=lambda n: n in EXTENSIONS or n.startswith("+"))


ON_1002 = plan(e1002=MailboxRule(enabled=True, ring_seconds=15))


# -- the routing decision -----------------------------------------------------------------------


def test_extension_without_voicemail_stays_a_plain_call() -> None:
    rig = rig_with(ON_1002)
    route = rig.route("1003", caller="1001")
    assert route.kind is RouteKind.EXTENSION and route.extension == "1003"
    assert not rig.engine.calls


def test_extension_with_voicemail_becomes_an_application_call() -> None:
    rig = rig_with(ON_1002)
    assert rig.route("1002", caller="1001").kind is RouteKind.APPLICATION
    assert rig.last_key in rig.engine.calls


def test_did_mapped_to_the_extension_gets_it_too() -> None:
    rig = rig_with(ON_1002, numbers={"4930100": "ext:1002"})
    assert rig.route("4930100", caller="+4917012345").kind is RouteKind.APPLICATION
    call = rig.engine.calls[rig.last_key]
    assert call.target.name == "1002" and call.caller == "+4917012345"


def test_unknown_numbers_are_still_refused() -> None:
    rig = rig_with(plan(MailboxRule(enabled=True)))
    assert rig.route("9999").kind is RouteKind.REJECT


def test_outside_numbers_stay_plain_calls_under_a_tenant_wide_default() -> None:
    rig = rig_with(plan(MailboxRule(enabled=True)))
    route = rig.route("+4930555", caller="1001")
    assert route.kind is RouteKind.EXTENSION and route.extension == "+4930555"
    assert rig.route("1003", caller="1001").kind is RouteKind.APPLICATION


def test_calling_your_own_extension_is_a_plain_call() -> None:
    rig = rig_with(ON_1002)
    assert rig.route("1002", caller="1002").kind is RouteKind.EXTENSION


def test_tenant_default_and_override() -> None:
    p = plan(MailboxRule(enabled=True, ring_seconds=30), e1003=MailboxRule(enabled=False))
    assert p.ring_time("1001") == 30
    assert p.ring_time("1003") is None
    p = plan(MailboxRule(enabled=False, ring_seconds=25), e1001=MailboxRule(enabled=True))
    assert p.ring_time("1001") == 25  # the default's ring time, the extension's switch
    assert plan(e1001=MailboxRule(enabled=True)).ring_time("1001") == DEFAULT_RING_SECONDS


@pytest.mark.parametrize("seconds", [0.0, 4.9, 121.0])
def test_ring_time_out_of_range_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="5 to 120 seconds"):
        MailboxRule(enabled=True, ring_seconds=seconds)


# -- the engine path ----------------------------------------------------------------------------


def test_answered_is_bridged_and_no_message() -> None:
    rig = rig_with(ON_1002)
    key = rig.call("1002", caller="1001")
    [ring] = rig.switch.of("ring", key)
    assert ring.args == ("1002", 15)
    assert rig.switch.now_playing(key) == ["ringback"]
    assert rig.switch.playing[key][2] is True  # looped
    rig.answer(key, "1002")
    assert rig.engine.calls[key].phase is CallPhase.CONNECTED
    rig.advance(300)
    assert not rig.switch.hung_up(key) and not rig.switch.of("record", key)
    rig.hang_up(key)
    assert not rig.engine.calls


@pytest.mark.parametrize(
    "result",
    [RingResult.NO_ANSWER, RingResult.BUSY, RingResult.REJECTED, RingResult.UNAVAILABLE],
)
def test_unanswered_goes_to_the_extensions_mailbox(result: RingResult) -> None:
    rig = rig_with(ON_1002)
    key = rig.call("1002", caller="1001")
    rig.ring(key, "1002", result)
    assert rig.switch.now_playing(key) == ["leave_message", "beep"]
    rig.finish(key)
    [record] = rig.switch.of("record", key)
    assert record.args[0] == "1002"
    rig.record_done(key, path="recordings/acme/voicemail/1002/m.wav")
    [left] = rig.of(VoicemailLeft)
    assert (left.box, left.caller) == ("1002", "1001")
    assert rig.switch.now_playing(key) == ["goodbye"]
    rig.finish(key)
    assert rig.switch.hung_up(key)


def test_switch_never_reports_the_ring_the_engine_gives_up() -> None:
    rig = rig_with(ON_1002)
    key = rig.call("1002", caller="1001")
    rig.advance(15 + 5.1)  # the ring time plus the engine's grace
    assert rig.switch.of("cancel_ring", key)
    assert rig.switch.now_playing(key) == ["leave_message", "beep"]


def test_caller_hangs_up_while_ringing() -> None:
    rig = rig_with(ON_1002)
    key = rig.call("1002", caller="1001")
    rig.hang_up(key)
    assert not rig.engine.calls and not rig.of(VoicemailLeft)


def test_rule_switched_off_mid_call_still_rings_with_the_default() -> None:
    rig = rig_with(ON_1002)
    rig.route("1002", caller="1001")
    key = rig.last_key
    rig.engine.update(dataclasses.replace(rig.engine.setup, voicemail=VoicemailPlan()), rig.now)
    rig.engine.call_answered(key, rig.now)
    assert rig.switch.of("ring", key)[0].args == ("1002", DEFAULT_RING_SECONDS)


def test_ringback_that_cannot_play_falls_back_to_music() -> None:
    rig = rig_with(ON_1002)
    key = rig.call("1002", caller="1001")
    rig.finish(key, PlaybackOutcome.ABORTED)  # e.g. a broken upload
    assert rig.switch.now_playing(key) == ["moh"]


def test_the_answering_extension_can_blind_transfer_it() -> None:
    rig = rig_with(ON_1002)
    key = rig.call("1002", caller="1001")
    rig.answer(key, "1002")
    route = rig.engine.transfer_route(key, "1003")
    assert route.kind is RouteKind.EXTENSION and route.extension == "1003"
    report = TransferReport(
        key=key, kind=TransferKind.BLIND, by="1002", target="1003", status=200, route=route
    )
    rig.engine.call_transferred(key, report, rig.now)
    rig.check()
    assert rig.switch.rung(key) == ["1002", "1003"]
    rig.answer(key, "1003")
    assert rig.engine.calls[key].phase is CallPhase.CONNECTED
