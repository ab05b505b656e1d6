"""Supervisor monitors from the engine's side: feature codes, who may monitor, the registry.

A supervisor starts monitoring from any SIP phone by dialling a feature code followed by
the agent's extension (same tenant only):

======== ========================================================================
``*81``  listen: the supervisor hears both parties, nobody hears the supervisor
``*82``  whisper: the agent hears the supervisor, the caller does not
``*83``  barge: everybody hears everybody
======== ========================================================================

During the monitor the supervisor's keys switch the mode live (1 listen, 2 whisper,
3 barge; the switch does that, :mod:`minicc.switch.monitor`).

The number is decided here, in the engine's ``route`` (the engine decides what numbers
mean); the media work is the switch's. Routing a feature code, before anything is
answered:

- the caller is not flagged supervisor (``minicc user set --supervisor``): **403**;
- the extension does not exist in the tenant: **404**; it is the supervisor's own: **403**;
- the extension is on no answered call (:meth:`CallControl.find_call`): **480**
  (Temporarily Unavailable), so the phone shows the failure at once and no prompt is
  needed;
- otherwise the call is answered (APPLICATION) and, once it is, attached to the agent's
  call with :meth:`CallControl.attach_monitor`. The call it found may end in the
  meantime: the switch then refuses the attach and hangs the supervisor up.

:meth:`MonitorDesk.start` is the same for the API (issue 4's wallboard): the switch rings
the supervisor's phone and attaches it on answer.

The desk keeps every monitor (started or still ringing) for the wallboard
(:meth:`MonitorDesk.monitors`) and publishes :class:`~minicc.events.MonitorStarted`,
:class:`~minicc.events.MonitorModeChanged` and :class:`~minicc.events.MonitorEnded`.
Conferences started through :meth:`MonitorDesk.conference` publish
:class:`~minicc.events.ConferenceChanged`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from minicc.events import (
    ConferenceChanged,
    Event,
    MonitorEnded,
    MonitorModeChanged,
    MonitorStarted,
)
from minicc.switch.control import (
    CallControl,
    IncomingCall,
    MonitorEnd,
    MonitorMode,
    RingResult,
    Route,
    RouteKind,
)

__all__ = [
    "FEATURE_CODES",
    "FeatureCode",
    "MonitorDesk",
    "MonitorError",
    "MonitorInfo",
    "parse_feature_code",
]

log = logging.getLogger(__name__)

FEATURE_CODES: dict[str, MonitorMode] = {
    "*81": MonitorMode.LISTEN,
    "*82": MonitorMode.WHISPER,
    "*83": MonitorMode.BARGE,
}
"""Feature code -> the mode it starts in."""

_DIGITS = frozenset("0123456789")


class MonitorError(ValueError):
    """A monitor or conference that cannot be started; the message says why, ``status``
    is the SIP status a feature-code call is refused with."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureCode:
    """A dialled monitor feature code."""

    mode: MonitorMode
    extension: str
    """The agent's extension."""


def parse_feature_code(number: str) -> FeatureCode | None:
    """``*82 1002`` style numbers (without the space); None for anything else."""
    mode = FEATURE_CODES.get(number[:3])
    extension = number[3:]
    if mode is None or not extension or not set(extension) <= _DIGITS:
        return None
    return FeatureCode(mode=mode, extension=extension)


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorInfo:
    """One monitor, as the wallboard shows it."""

    monitor: str
    """Its id (the supervisor's call)."""
    tenant: str
    supervisor: str
    agent: str
    call: str
    """The monitored call's key."""
    mode: MonitorMode
    started: bool
    """False while the supervisor's phone rings or the call is being answered."""
    since: float
    """Wall-clock seconds when it was asked for."""


class MonitorDesk:
    """The engine's monitors and conferences (module doc).

    Args:
        control: the switch.
        is_supervisor: ``is_supervisor(tenant, extension)``; None: nobody may monitor.
        is_extension: ``is_extension(tenant, number)``; None: any number is.
        publish: where events go.
        ring_timeout: seconds a supervisor's or third party's phone rings.
        wall: wall clock.
    """

    def __init__(
        self,
        control: CallControl,
        *,
        is_supervisor: Callable[[str, str], bool] | None,
        is_extension: Callable[[str, str], bool] | None,
        publish: Callable[[Event], None],
        ring_timeout: float = 30.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._control = control
        self._is_supervisor = is_supervisor
        self._is_extension = is_extension
        self._publish = publish
        self._ring_timeout = ring_timeout
        self._wall = wall
        self._monitors: dict[str, MonitorInfo] = {}
        self._pending: dict[str, MonitorInfo] = {}
        """Feature-code calls routed, not answered yet, by call key."""
        self._conferences: dict[tuple[str, int], tuple[str, str]] = {}
        """(call key, attempt) -> (tenant, extension)."""

    # -- queries ------------------------------------------------------------------------------

    def monitors(self, tenant: str) -> list[MonitorInfo]:
        """A tenant's monitors, oldest first."""
        found = [m for m in self._monitors.values() if m.tenant == tenant]
        return sorted(found, key=lambda m: m.since)

    def may_monitor(self, tenant: str, extension: str) -> bool:
        check = self._is_supervisor
        return check is not None and check(tenant, extension)

    # -- feature codes ------------------------------------------------------------------------

    def route(self, call: IncomingCall) -> Route | None:
        """A feature code's route (module doc); None when ``call.number`` is none."""
        code = parse_feature_code(call.number)
        if code is None:
            return None
        try:
            target = self._target(call.tenant, call.caller, code.extension)
        except MonitorError as exc:
            log.info("call %s: %s refused (%d): %s", call.key, call.number, exc.status, exc)
            return Route(kind=RouteKind.REJECT, status=exc.status)
        self._pending[call.key] = MonitorInfo(
            monitor=call.key,
            tenant=call.tenant,
            supervisor=call.caller,
            agent=code.extension,
            call=target,
            mode=code.mode,
            started=False,
            since=self._wall(),
        )
        log.info(
            "call %s: supervisor %s monitors %s (%s)",
            call.key,
            call.caller,
            code.extension,
            code.mode.value,
        )
        return Route(kind=RouteKind.APPLICATION)

    def call_answered(self, key: str) -> bool:
        """A feature-code call was answered: attach it. False for other calls."""
        info = self._pending.pop(key, None)
        if info is None:
            return False
        self._monitors[key] = info
        self._control.attach_monitor(key, info.call, info.mode)
        return True

    def call_ended(self, key: str) -> bool:
        """A call ended; True when it was a feature-code call (the engine has no more to
        do with it: ``monitor_ended`` settles the registry)."""
        return self._pending.pop(key, None) is not None or key in self._monitors

    def owns(self, key: str) -> bool:
        return key in self._pending or key in self._monitors

    # -- the API ------------------------------------------------------------------------------

    def start(self, tenant: str, agent: str, supervisor: str, mode: MonitorMode) -> str:
        """Ring ``supervisor``'s phone and have them monitor ``agent``'s call.

        Returns:
            The monitor id.

        Raises:
            MonitorError: not a supervisor, no such extension, or the agent is on no call.
        """
        target = self._target(tenant, supervisor, agent)
        monitor = self._control.monitor(target, supervisor, mode, timeout=self._ring_timeout)
        self._monitors[monitor] = MonitorInfo(
            monitor=monitor,
            tenant=tenant,
            supervisor=supervisor,
            agent=agent,
            call=target,
            mode=mode,
            started=False,
            since=self._wall(),
        )
        return monitor

    def set_mode(self, monitor: str, mode: MonitorMode) -> None:
        """Change a monitor's mode (reported back through ``monitor_mode_changed``)."""
        self._control.set_monitor_mode(monitor, mode)

    def stop(self, monitor: str) -> None:
        """End a monitor: the supervisor is hung up, the call goes on."""
        self._control.stop_monitor(monitor)

    def conference(self, tenant: str, key: str, extension: str) -> int:
        """Ring ``extension`` into call ``key`` (of ``tenant``) as a third party.

        Raises:
            MonitorError: ``extension`` is no extension of the tenant.
        """
        if self._is_extension is not None and not self._is_extension(tenant, extension):
            raise MonitorError(f"{extension} is no extension of tenant {tenant}", status=404)
        attempt = self._control.conference(key, extension, timeout=self._ring_timeout)
        self._conferences[(key, attempt)] = (tenant, extension)
        return attempt

    # -- the switch's reports -----------------------------------------------------------------

    def monitor_started(self, monitor: str, key: str, mode: MonitorMode) -> None:
        info = self._monitors.get(monitor)
        if info is None:
            return
        info = self._monitors[monitor] = replace(info, started=True, mode=mode, call=key)
        self._publish(
            MonitorStarted(
                tenant=info.tenant,
                monitor=monitor,
                call_id=key,
                supervisor=info.supervisor,
                agent=info.agent,
                mode=mode.value,
            )
        )

    def monitor_mode_changed(self, monitor: str, mode: MonitorMode) -> None:
        info = self._monitors.get(monitor)
        if info is None:
            return
        self._monitors[monitor] = replace(info, mode=mode)
        self._publish(MonitorModeChanged(tenant=info.tenant, monitor=monitor, mode=mode.value))

    def monitor_ended(self, monitor: str, reason: MonitorEnd) -> None:
        info = self._monitors.pop(monitor, None)
        if info is None:
            return
        self._publish(MonitorEnded(tenant=info.tenant, monitor=monitor, reason=reason.value))

    def conference_result(self, key: str, attempt: int, result: RingResult) -> None:
        entry = self._conferences.get((key, attempt))
        if entry is None:
            return
        if result is not RingResult.ANSWERED:
            del self._conferences[(key, attempt)]
        state = "joined" if result is RingResult.ANSWERED else result.value
        tenant, extension = entry
        self._publish(
            ConferenceChanged(tenant=tenant, call_id=key, extension=extension, state=state)
        )

    def conference_ended(self, key: str, attempt: int) -> None:
        entry = self._conferences.pop((key, attempt), None)
        if entry is not None:
            tenant, extension = entry
            self._publish(
                ConferenceChanged(tenant=tenant, call_id=key, extension=extension, state="left")
            )

    # -- helpers ------------------------------------------------------------------------------

    def _target(self, tenant: str, supervisor: str, agent: str) -> str:
        """The key of ``agent``'s call that ``supervisor`` may monitor.

        Raises:
            MonitorError: why not (the message names the rule).
        """
        if not self.may_monitor(tenant, supervisor):
            raise MonitorError(f"{supervisor} is not a supervisor of tenant {tenant}")
        if self._is_extension is not None and not self._is_extension(tenant, agent):
            raise MonitorError(f"{agent} is no extension of tenant {tenant}", status=404)
        if agent == supervisor:
            raise MonitorError(f"{supervisor} cannot monitor their own extension")
        key = self._control.find_call(tenant, agent)
        if key is None:
            raise MonitorError(f"{agent} is on no call", status=480)
        return key
