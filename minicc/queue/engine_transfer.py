"""Transfers of queue calls: what the engine decides and does when an agent transfers.

The switch handles the SIP (REFER, NOTIFY, legs and media, :mod:`minicc.switch.transfer`);
the engine decides where a blind transfer may go and what the caller then hears:

- :meth:`TransferEngine.transfer_route` (called by the switch while the REFER is handled):
  a tenant number leads where the number plan says (a queue or an IVR flow: the engine takes
  the caller back; an extension: rung), an extension of the tenant is rung, an outside
  number goes out through the tenant's trunk when its dial rules allow it, anything else is
  refused with 403.
- :meth:`TransferEngine.call_transferred`: the transferring agent's part of the call is over,
  so they go to wrap-up (the queue's wrap-up time) exactly as if the call had ended for them.
  Then, blind to an extension: "transferring", music, the extension rings; nobody answers
  (or it is busy): back into the queue the call was answered from, at the front. Blind to
  a queue number: the caller joins that queue **at the front** of its priority. They had
  already waited their turn and been answered; making them queue behind callers who arrived
  later would punish them for the agent's decision (keeping the original join time would
  put them at the front anyway, since everyone who was ahead of them then is gone). Blind to
  an IVR number: the flow starts from its first node. Attended: the caller talks to the
  consulted party; when that party was an agent answering a queue call (the consultation
  call), that agent's call continues as this one, so they are not wrapped up by the end of
  the consultation call.

Statistics (see :mod:`minicc.queue.stats`): the call counts as offered, answered and handled
once, by the agent who transferred it; a queue it joins again shows it waiting but does not
count it as offered, answered or abandoned a second time.
"""

from __future__ import annotations

import logging

from minicc.events import CallTransferred
from minicc.queue.agents import AgentState
from minicc.queue.engine_callbacks import CallbackEngine
from minicc.queue.engine_calls import CallPhase, LiveCall
from minicc.queue.ivr import Flow
from minicc.queue.setup import TargetKind
from minicc.switch.control import Route, RouteKind, TransferKind, TransferReport

__all__ = ["TransferEngine"]

log = logging.getLogger(__name__)


class TransferEngine(CallbackEngine):
    """Agent transfers of live calls (module docstring)."""

    def transfer_route(self, key: str, number: str) -> Route:
        """Where a blind transfer of ``key`` to ``number`` goes (see the module doc)."""
        call = self.calls.get(key)
        if call is None or call.phase is not CallPhase.CONNECTED:
            return Route(kind=RouteKind.REJECT, status=481)
        target = self.setup.numbers.get(number)
        if target is not None:
            if target.kind is TargetKind.EXTENSION:
                return Route(kind=RouteKind.EXTENSION, extension=target.name)
            if target.kind is TargetKind.QUEUE:
                runtime = self.queues.get(target.name)
                if runtime is None or runtime.retired:
                    return Route(kind=RouteKind.REJECT, status=404)
                return Route(kind=RouteKind.APPLICATION)
            if target.name not in self.flows:
                return Route(kind=RouteKind.REJECT, status=503)
            return Route(kind=RouteKind.APPLICATION)
        check = self._deps.is_extension
        if check is None or check(number):
            return Route(kind=RouteKind.EXTENSION, extension=number)
        log.info("call %s: transfer to %s refused (not a number of the tenant)", key, number)
        return Route(kind=RouteKind.REJECT, status=403)

    def call_transferred(self, key: str, report: TransferReport, now: float) -> None:
        """The switch's report of a transfer of ``key`` (see the module doc)."""
        call = self.calls.get(key)
        if call is None:
            return
        destination = self._destination(report)
        self._publish(
            CallTransferred(
                tenant=self.tenant,
                call_id=key,
                sip_call_id=call.sip_call_id,
                kind=report.kind.value,
                by=report.by,
                target=report.target,
                status=report.status,
                queue=call.queue,
                destination=destination,
            )
        )
        if not report.ok:
            log.info("call %s: transfer to %s failed (%d)", key, report.target, report.status)
            return
        if call.phase is not CallPhase.CONNECTED:
            log.warning("call %s: transfer reported in phase %s", key, call.phase.value)
            return
        transferor = call.agent
        self._transferor_done(call, now)
        call.transferred_by = report.by or transferor
        log.info("call %s: %s transferred it to %s", key, call.transferred_by, destination)
        if report.kind is TransferKind.ATTENDED:
            self._take_over_agent(call, report.replaced)
        elif report.route is not None and report.route.kind is RouteKind.EXTENSION:
            self._ring_extension(call, report.route.extension or report.target, now)
        else:
            self._transfer_to_number(call, report.target, now)
        self._settle(now)

    # -- the parts ----------------------------------------------------------------------------

    def _transferor_done(self, call: LiveCall, now: float) -> None:
        """The transferring agent's call is over for them: wrap-up, as after a hang-up."""
        agent_id = call.agent
        call.agent = None
        if agent_id is None:
            return
        agent = self.board.agents.get(agent_id)
        if agent is None or agent.state is not AgentState.ON_CALL or agent.call_id != call.key:
            return
        runtime = self.queues.get(call.queue or "")
        wrap = runtime.config.wrap_up if runtime is not None else 0.0
        log.info("agent %s wraps up call %s after the transfer (%g s)", agent_id, call.key, wrap)
        self._agents(self.board.call_ended(agent_id, call_id=call.key, now=now, wrap_up=wrap), now)

    def _take_over_agent(self, call: LiveCall, replaced_key: str | None) -> None:
        """Attended: an agent talking on the consultation call now talks on ``call``."""
        replaced = self.calls.get(replaced_key or "")
        if replaced is None or replaced.agent is None:
            return
        agent = self.board.agents.get(replaced.agent)
        if agent is None or agent.state is not AgentState.ON_CALL or agent.call_id != replaced.key:
            return
        # The same conversation goes on under the caller's call: the board follows it, and
        # the consultation call's end (reported next) leaves the agent alone.
        agent.call_id = call.key
        call.agent = replaced.agent
        replaced.agent = None

    def _transfer_to_number(self, call: LiveCall, number: str, now: float) -> None:
        target = self.setup.numbers.get(number)
        if target is not None and target.kind is TargetKind.QUEUE:
            self._join(call, target.name, call.priority, dict(call.skills), now, front=True)
        elif target is not None and target.kind is TargetKind.IVR and target.name in self.flows:
            self._start_ivr(call, self.flows[target.name], now)
        else:  # the number plan changed between the decision and now
            log.warning("call %s: transfer target %s is gone", call.key, number)
            self._extension_failed(call, number, now)

    def _extension_failed(self, call: LiveCall, extension: str, now: float) -> None:
        """An extension rung for the caller did not answer. A transferred call goes back to
        the queue it was answered from, at the front; any other (an IVR transfer) goes to
        voicemail, as before."""
        runtime = self.queues.get(call.queue or "")
        if call.transferred_by is not None and runtime is not None and not runtime.retired:
            log.info("call %s: %s did not answer; back to %s", call.key, extension, runtime.name)
            self._join(call, runtime.name, call.priority, dict(call.skills), now, front=True)
            return
        self._voicemail(call, extension, now)

    def _destination(self, report: TransferReport) -> str:
        if report.kind is TransferKind.ATTENDED:
            return f"ext:{report.party or report.target}"
        target = self.setup.numbers.get(report.target)
        if target is not None:
            return f"{target.kind.value}:{target.name}"
        return f"ext:{report.target}"

    # -- provided by the layers above ---------------------------------------------------------

    def _ring_extension(self, call: LiveCall, number: str, now: float) -> None:
        raise NotImplementedError  # TenantEngine

    def _start_ivr(self, call: LiveCall, flow: Flow, now: float) -> None:
        raise NotImplementedError  # TenantEngine
