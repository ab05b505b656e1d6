"""The engine's recording, voicemail and wrap-up features (issue 3 §6, §7).

**Recording policy.** When an agent answers a queue call (or a callback connects), a queue
whose :class:`~minicc.queue.models.RecordingPolicy` is ``always`` has the switch record it
(:meth:`CallControl.record_call`); ``on-demand`` waits for the agent: the API's
:meth:`FeatureEngine.record_call` or the desk-phone code ``*1``; ``never`` refuses. Pause and
resume (``*2`` / ``*3``, or :meth:`FeatureEngine.pause_recording` /
:meth:`FeatureEngine.resume_recording`) work on any recording of the call, also one the
tenant-wide switch started. Feature codes come only from the agent's phone
(``agent_dtmf``); see :mod:`minicc.queue.recording`.

**Voicemail** (a queue's overflow, an IVR voicemail node, an extension that did not answer):
"leave a message" and the beep play, then the switch records the caller
(:meth:`CallControl.record`) until ``#``, silence, two minutes or the hang-up; the message is
published as :class:`~minicc.events.VoicemailLeft` (the store's subscriber writes the row),
then "goodbye" and the call ends. A caller who hangs up while speaking still leaves the
message; one who says nothing leaves none.

**Dispositions.** :meth:`FeatureEngine.set_disposition` takes one of the tenant's codes and a
note from the agent while on the call or in its wrap-up, and publishes
:class:`~minicc.events.DispositionSet` (stored beside the call record; a later one replaces
it). A tenant may have it end the wrap-up at once
(:attr:`~minicc.queue.setup.CallCenterSetup.end_wrap_up_on_disposition`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from minicc.events import DispositionSet, VoicemailLeft
from minicc.queue.agents import AgentState
from minicc.queue.engine_calls import CallPhase, LiveCall, PlayKind
from minicc.queue.engine_core import EngineCore, EngineDeps
from minicc.queue.models import RecordingPolicy
from minicc.queue.recording import (
    VOICEMAIL_MAX_SECONDS,
    VOICEMAIL_SILENCE,
    Feature,
    FeatureCodes,
    FeatureError,
    check_disposition,
    check_note,
    recording_change,
)
from minicc.queue.setup import CallCenterSetup
from minicc.switch.control import PlaybackOutcome, RecordResult

__all__ = ["FeatureEngine", "FeatureError"]

log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class _Voicemail:
    """A message being taken: its prompt, then its recording."""

    box: str
    caller: str
    caller_name: str | None
    sip_call_id: str
    prompt: int | None = None
    """The "leave a message, beep" playback, until it ends."""
    record: int | None = None
    """The switch's record id, once recording."""


@dataclass(slots=True, kw_only=True)
class _Served:
    """A call an agent answered: what the wrap-up and recording requests need after it."""

    queue: str
    agent: str
    sip_call_id: str | None
    """The caller leg's Call-ID (what the call record carries); None for a callback."""
    switch_key: str
    """The switch's key for the call (the originated call's for a callback)."""


class FeatureEngine(EngineCore):
    """Recording, voicemail and dispositions on top of the engine core (module doc)."""

    def __init__(self, setup: CallCenterSetup, deps: EngineDeps, now: float) -> None:
        super().__init__(setup, deps, now)
        self._voicemails: dict[str, _Voicemail] = {}
        """Call key -> the message being taken."""
        self._served_calls: dict[str, _Served] = {}
        """Engine call key -> the call an agent is on or wrapping up."""
        self._codes: dict[str, FeatureCodes] = {}
        """Engine call key -> its agent's feature-code reader."""

    # -- recording ----------------------------------------------------------------------------

    def _recording_on_answer(self, call_key: str, switch_key: str, queue: str, agent: str) -> None:
        """An agent answered a call of ``queue``: remember it, record it if the policy says
        ``always``. ``call_key`` is the engine's id (what the agent's state names),
        ``switch_key`` the switch's."""
        live = self.calls.get(call_key)
        self._served_calls[call_key] = _Served(
            queue=queue,
            agent=agent,
            sip_call_id=live.sip_call_id if live is not None else None,
            switch_key=switch_key,
        )
        self._forget_finished()
        runtime = self.queues.get(queue)
        always = runtime is not None and runtime.config.recording is RecordingPolicy.ALWAYS
        if always and not self._control.record_call(switch_key, True):
            log.warning("call %s: queue %s records always; recording failed", call_key, queue)

    def _forget_finished(self) -> None:
        """Drop served calls no agent is on or wrapping up any more."""
        served, codes = self._served_calls, self._codes
        busy = {
            agent.call_id
            for agent in self.board.agents.values()
            if agent.state in (AgentState.ON_CALL, AgentState.WRAP_UP) and agent.call_id
        }
        for key in [k for k in served if k not in busy]:
            del served[key]
            codes.pop(key, None)

    def _served_call(self, key: str) -> tuple[str, _Served]:
        """(engine key, served) for a key the API or the switch gave: the engine's call key
        or the switch's (an originated callback's).

        Raises:
            FeatureError: no such call with an agent on it.
        """
        served = self._served_calls
        if key in served:
            return key, served[key]
        for engine_key, entry in served.items():
            if entry.switch_key == key:
                return engine_key, entry
        raise FeatureError(f"no call {key!r} with an agent on it in tenant {self.tenant}")

    def _on_call(self, key: str) -> tuple[str, _Served]:
        engine_key, entry = self._served_call(key)
        agent = self.board.agents.get(entry.agent)
        if agent is None or agent.state is not AgentState.ON_CALL or agent.call_id != engine_key:
            raise FeatureError(f"call {key!r} is over: recording can change only during the call")
        return engine_key, entry

    def record_call(self, key: str, on: bool, now: float) -> None:
        """Start (``on``) or stop recording a call an agent is on, as its queue's policy
        allows (on demand: either; always: no stop; never: no start).

        Raises:
            FeatureError: no such call, the policy forbids it, or the switch could not.
        """
        engine_key, entry = self._on_call(key)
        runtime = self.queues.get(entry.queue)
        policy = runtime.config.recording if runtime is not None else RecordingPolicy.NEVER
        recording_change(policy, entry.queue, on=on)
        if not self._control.record_call(entry.switch_key, on):
            what = "start" if on else "stop"
            raise FeatureError(
                f"call {key!r}: the recording could not {what} (a call has one recording; "
                "once stopped it stays stopped; see the server log)"
            )
        log.info("call %s: recording %s", engine_key, "started" if on else "stopped")

    def pause_recording(self, key: str, now: float) -> None:
        """Write silence instead of the call until :meth:`resume_recording`.

        Raises:
            FeatureError: no such call, it is not recording, or it is paused already.
        """
        engine_key, entry = self._on_call(key)
        if not self._control.pause_recording(entry.switch_key):
            raise FeatureError(f"call {key!r} is not recording, or its recording is paused")
        log.info("call %s: recording paused", engine_key)

    def resume_recording(self, key: str, now: float) -> None:
        """Record the call again after :meth:`pause_recording`.

        Raises:
            FeatureError: no such call, or its recording is not paused.
        """
        engine_key, entry = self._on_call(key)
        if not self._control.resume_recording(entry.switch_key):
            raise FeatureError(f"call {key!r}: its recording is not paused")
        log.info("call %s: recording resumed", engine_key)

    def agent_dtmf(self, key: str, digit: str, now: float) -> None:
        """A digit from the agent's phone (``key`` is the switch's): feature codes."""
        try:
            engine_key, _ = self._served_call(key)
        except FeatureError:
            return
        feature = self._codes.setdefault(engine_key, FeatureCodes()).feed(digit, now)
        if feature is None:
            return
        try:
            if feature is Feature.RECORD:
                self.record_call(engine_key, True, now)
            elif feature is Feature.PAUSE:
                self.pause_recording(engine_key, now)
            else:
                self.resume_recording(engine_key, now)
        except FeatureError as exc:
            log.info("call %s: feature code *%s refused: %s", engine_key, feature.value, exc)

    # -- voicemail ----------------------------------------------------------------------------

    def _voicemail(self, call: LiveCall, box: str, now: float) -> None:
        """Take a message for ``box``: the prompts, then the recording (module doc)."""
        self._close(call, ["leave_message", "beep"], now)
        if call.playback is None or call.play_kind is not PlayKind.FINAL:
            log.error("call %s: voicemail for %r: the prompts cannot be played", call.key, box)
            return
        self._voicemails[call.key] = _Voicemail(
            box=box,
            caller=call.caller,
            caller_name=call.caller_name,
            sip_call_id=call.sip_call_id,
            prompt=call.playback,
        )
        log.info("call %s: voicemail for %r", call.key, box)

    def _voicemail_prompt_done(
        self, key: str, playback: int, outcome: PlaybackOutcome, now: float
    ) -> bool:
        """The beep ended: start recording. True when this playback was a voicemail's."""
        vms = self._voicemails
        vm = vms.get(key)
        if vm is None or vm.prompt != playback:
            return False
        vm.prompt = None
        call = self.calls.get(key)
        if call is None or outcome is not PlaybackOutcome.FINISHED:
            vms.pop(key, None)
            return False  # the usual end: hang up
        call.playback = None
        call.play_kind = None
        vm.record = self._control.record(
            key,
            vm.box,
            max_seconds=VOICEMAIL_MAX_SECONDS,
            stop_digits="#",
            silence_timeout=VOICEMAIL_SILENCE,
        )
        call.close_by = now + VOICEMAIL_MAX_SECONDS + self._opts.close_grace
        return True

    def record_done(self, key: str, record: int, result: RecordResult, now: float) -> None:
        """A message ended (also after the caller hung up): publish it, say goodbye."""
        vms = self._voicemails
        vm = vms.get(key)
        if vm is None or vm.record != record:
            return
        del vms[key]
        if result.path is not None:
            self._publish(
                VoicemailLeft(
                    tenant=self.tenant,
                    call_id=vm.sip_call_id,
                    call_key=key,
                    box=vm.box,
                    caller=vm.caller,
                    caller_name=vm.caller_name,
                    path=result.path,
                    duration=result.duration,
                    left_at=self._wall(now),
                )
            )
            log.info("call %s: message for %r kept (%s)", key, vm.box, result.outcome.value)
        else:
            log.info("call %s: no message for %r (%s)", key, vm.box, result.outcome.value)
        call = self.calls.get(key)
        if call is None or call.phase is not CallPhase.CLOSING:
            return
        goodbye = self._prompts.files(call.language, ["goodbye"])
        if self._play(call, goodbye, PlayKind.FINAL):
            call.close_by = now + self._opts.close_grace
        else:
            self._hangup(call)

    # -- dispositions -------------------------------------------------------------------------

    def set_disposition(
        self, extension: str, key: str, code: str, note: str | None, now: float
    ) -> None:
        """Record the agent's wrap-up code (and note) for a call, while the agent is on it
        or wrapping it up; a later one replaces it.

        Args:
            extension: the agent.
            key: the call (its engine key, as the agent's state names it, or the switch's).
            code: one of the tenant's disposition codes.
            note: free text, up to 500 characters; None or blank for none.
            now: engine time.

        Raises:
            FeatureError: unknown code (the message lists the valid ones), a note too long,
                or the agent is neither on that call nor wrapping it up.
        """
        code = check_disposition(code, self.setup.dispositions)
        note = check_note(note)
        agent = self.board.agents.get(extension)
        try:
            engine_key, entry = self._served_call(key)
        except FeatureError:
            engine_key, entry = key, None
        if (
            agent is None
            or entry is None
            or agent.call_id != engine_key
            or agent.state not in (AgentState.ON_CALL, AgentState.WRAP_UP)
        ):
            raise FeatureError(
                f"agent {extension} is neither on call {key!r} nor wrapping it up: a "
                "disposition is set during the call or its wrap-up"
            )
        self._publish(
            DispositionSet(
                tenant=self.tenant,
                call_id=entry.sip_call_id,
                call_key=engine_key,
                agent=extension,
                queue=entry.queue,
                code=code,
                note=note,
                set_at=self._wall(now),
            )
        )
        log.info("call %s: agent %s set disposition %s", engine_key, extension, code)
        if self.setup.end_wrap_up_on_disposition and agent.state is AgentState.WRAP_UP:
            # The tenant wants the agent ready once the call is tagged.
            self._agents(self.board.ready(extension, now=now), now)
            self._settle(now)

    def _settle(self, now: float) -> None:
        raise NotImplementedError  # TenantEngine
