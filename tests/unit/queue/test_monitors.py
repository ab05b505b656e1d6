"""The engine's side of supervisor monitors: feature codes, who may monitor, the registry."""

from __future__ import annotations

from typing import Any

import pytest

from minicc.events import ConferenceChanged, Event, MonitorEnded, MonitorModeChanged, MonitorStarted
from minicc.queue.engine import CallCenter
from minicc.queue.monitors import MonitorDesk, MonitorError, parse_feature_code
from minicc.switch.control import (
    IncomingCall,
    MonitorEnd,
    MonitorMode,
    RingResult,
    RouteKind,
)


class Control:
    """The switch's monitor methods, recorded; ``calls`` says who is on which call."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], str] = {("acme", "1002"): "call-7"}
        self.done: list[tuple[str, tuple[Any, ...]]] = []

    def find_call(self, tenant: str, extension: str) -> str | None:
        return self.calls.get((tenant, extension))

    def attach_monitor(self, monitor: str, key: str, mode: MonitorMode) -> None:
        self.done.append(("attach_monitor", (monitor, key, mode)))

    def monitor(self, key: str, supervisor: str, mode: MonitorMode, *, timeout: float) -> str:
        self.done.append(("monitor", (key, supervisor, mode, timeout)))
        return "mon-1"

    def set_monitor_mode(self, monitor: str, mode: MonitorMode) -> None:
        self.done.append(("set_monitor_mode", (monitor, mode)))

    def stop_monitor(self, monitor: str) -> None:
        self.done.append(("stop_monitor", (monitor,)))

    def conference(self, key: str, extension: str, *, timeout: float) -> int:
        self.done.append(("conference", (key, extension)))
        return 5


SUPERVISORS = {("acme", "1009")}
EXTENSIONS = {("acme", e) for e in ("1001", "1002", "1003", "1009")} | {("beta", "1002")}


def _desk(control: Control, events: list[Event]) -> MonitorDesk:
    return MonitorDesk(
        control,  # type: ignore[arg-type]
        is_supervisor=lambda t, e: (t, e) in SUPERVISORS,
        is_extension=lambda t, e: (t, e) in EXTENSIONS,
        publish=events.append,
        wall=lambda: 1000.0,
    )


def _incoming(number: str, caller: str = "1009", tenant: str = "acme") -> IncomingCall:
    return IncomingCall(
        key=f"k-{number}-{caller}",
        tenant=tenant,
        number=number,
        caller=caller,
        caller_name=None,
        call_id="cid",
    )


@pytest.mark.parametrize(
    ("number", "mode", "extension"),
    [
        ("*811002", MonitorMode.LISTEN, "1002"),
        ("*821002", MonitorMode.WHISPER, "1002"),
        ("*8312", MonitorMode.BARGE, "12"),
    ],
)
def test_feature_codes(number: str, mode: MonitorMode, extension: str) -> None:
    code = parse_feature_code(number)
    assert code is not None and code.mode is mode and code.extension == extension


@pytest.mark.parametrize("number", ["*84100", "*81", "*81abc", "8000", "1002", "*81 1002", "*8"])
def test_not_feature_codes(number: str) -> None:
    assert parse_feature_code(number) is None


def test_routing_refusals_and_attach() -> None:
    control, events = Control(), []
    desk = _desk(control, events)
    assert desk.route(_incoming("8000")) is None  # not ours
    # Not a supervisor: 403. No such extension: 404. Own extension: 403. No call: 480.
    assert desk.route(_incoming("*821002", caller="1001")).status == 403  # type: ignore[union-attr]
    assert desk.route(_incoming("*821077")).status == 404  # type: ignore[union-attr]
    assert desk.route(_incoming("*821009")).status == 403  # type: ignore[union-attr]
    assert desk.route(_incoming("*821003")).status == 480  # type: ignore[union-attr]
    # Another tenant's agent of the same number is not visible (same tenant only).
    assert desk.route(_incoming("*821002", tenant="beta")).status == 403  # type: ignore[union-attr]
    assert not control.done

    call = _incoming("*821002")
    route = desk.route(call)
    assert route is not None and route.kind is RouteKind.APPLICATION
    assert desk.owns(call.key)
    assert desk.call_answered(call.key)
    assert control.done == [("attach_monitor", (call.key, "call-7", MonitorMode.WHISPER))]
    assert not desk.call_answered("other")

    [info] = desk.monitors("acme")
    assert (info.supervisor, info.agent, info.started) == ("1009", "1002", False)
    desk.monitor_started(call.key, "call-7", MonitorMode.WHISPER)
    desk.monitor_mode_changed(call.key, MonitorMode.BARGE)
    assert desk.monitors("acme")[0].mode is MonitorMode.BARGE and desk.monitors("acme")[0].started
    assert desk.monitors("beta") == []
    desk.monitor_ended(call.key, MonitorEnd.SUPERVISOR_HUNG_UP)
    assert desk.monitors("acme") == []
    assert [type(e) for e in events] == [MonitorStarted, MonitorModeChanged, MonitorEnded]
    started = events[0]
    assert isinstance(started, MonitorStarted)
    assert (started.supervisor, started.agent, started.mode) == ("1009", "1002", "whisper")
    ended = events[2]
    assert isinstance(ended, MonitorEnded) and ended.reason == "supervisor-hung-up"


def test_feature_call_ending_before_the_answer_is_forgotten() -> None:
    control, events = Control(), []
    desk = _desk(control, events)
    call = _incoming("*811002")
    desk.route(call)
    assert desk.call_ended(call.key)
    assert not desk.call_answered(call.key)
    assert not control.done and desk.monitors("acme") == []


def test_api_start_stop_and_mode() -> None:
    control, events = Control(), []
    desk = _desk(control, events)
    with pytest.raises(MonitorError, match="not a supervisor"):
        desk.start("acme", "1002", "1001", MonitorMode.LISTEN)
    with pytest.raises(MonitorError, match="on no call") as err:
        desk.start("acme", "1003", "1009", MonitorMode.LISTEN)
    assert err.value.status == 480
    monitor = desk.start("acme", "1002", "1009", MonitorMode.LISTEN)
    assert monitor == "mon-1"
    assert control.done[0][0] == "monitor" and control.done[0][1][:3] == (
        "call-7",
        "1009",
        MonitorMode.LISTEN,
    )
    desk.set_mode(monitor, MonitorMode.WHISPER)
    desk.stop(monitor)
    assert [d[0] for d in control.done] == ["monitor", "set_monitor_mode", "stop_monitor"]
    desk.monitor_ended(monitor, MonitorEnd.NOT_ANSWERED)
    assert isinstance(events[-1], MonitorEnded) and events[-1].reason == "not-answered"


def test_conference_events() -> None:
    control, events = Control(), []
    desk = _desk(control, events)
    with pytest.raises(MonitorError, match="no extension"):
        desk.conference("acme", "call-7", "4444")
    attempt = desk.conference("acme", "call-7", "1003")
    desk.conference_result("call-7", attempt, RingResult.ANSWERED)
    desk.conference_ended("call-7", attempt)
    again = desk.conference("acme", "call-7", "1003")
    desk.conference_result("call-7", again, RingResult.NO_ANSWER)
    desk.conference_ended("call-7", again)  # never joined: nothing more
    states = [e.state for e in events if isinstance(e, ConferenceChanged)]
    assert states == ["joined", "left", "no-answer"]


def test_call_center_routes_feature_codes_before_the_number_plan() -> None:
    control, events = Control(), []
    center = CallCenter(
        control,  # type: ignore[arg-type]
        is_extension=lambda t, e: (t, e) in EXTENSIONS,
        is_supervisor=lambda t, e: (t, e) in SUPERVISORS,
    )
    # No call-center setup loaded for acme: feature codes still work.
    route = center.route(_incoming("*831002"))
    assert route.kind is RouteKind.APPLICATION
    center.call_answered("k-*831002-1009")
    assert control.done == [("attach_monitor", ("k-*831002-1009", "call-7", MonitorMode.BARGE))]
    assert center.route(_incoming("*831002", caller="1001")).status == 403
    # Without is_supervisor nobody may monitor.
    plain = CallCenter(control)  # type: ignore[arg-type]
    assert plain.route(_incoming("*831002")).status == 403
    assert not events
