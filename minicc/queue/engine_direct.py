"""Direct calls to an extension with voicemail: ring it, then take a message (issue 3 §7).

Without voicemail a call to an extension is a plain B2BUA call and the engine never sees it
again (:meth:`DirectEngine._direct_route` returns EXTENSION, exactly as before). With
voicemail on for the extension (:class:`~minicc.queue.mailbox.VoicemailPlan`), the engine
takes it as an APPLICATION call and reuses what IVR transfers to an extension already do:

1. the switch answers the caller; the caller hears the ringing tone (``common/ringback``,
   looped; music on hold when a tenant removed it);
2. :meth:`CallControl.ring` rings the extension's phones for the extension's ring time. The
   phones see the original caller in From (``ring`` forks with the call's caller, as the
   B2BUA does), so caller ID is unchanged;
3. an answer is bridged by the switch (from there a plain two-party call: hold, transfer
   and hang-up work as for any application call); no answer, busy, decline and no phone
   registered all end in ``RINGING_EXTENSION`` -> ``_extension_failed`` -> "leave a
   message", the beep, the caller's message in the extension's box
   (:mod:`~minicc.queue.engine_features`).

Why an application call rather than teaching the B2BUA a fallback: the engine already owns
prompts, recording and the message's event and storage, and its ring path already maps
every unanswered outcome (including the switch never reporting back, via the ring grace)
to one place. The B2BUA stays untouched, so calls without voicemail keep their exact
behaviour. The price: the caller is answered (200 OK) before the phone rings, so a carrier
bills the call from the first ring and the caller hears minicc's ringing tone rather than
the network's; minicc has no early media (183) yet, which would avoid both.
"""

from __future__ import annotations

import logging

from minicc.queue.engine_calls import CallInput, LiveCall, PlayKind
from minicc.queue.engine_transfer import TransferEngine
from minicc.queue.mailbox import DEFAULT_RING_SECONDS
from minicc.queue.setup import Target, TargetKind
from minicc.switch.control import IncomingCall, Route, RouteKind

__all__ = ["RINGBACK", "DirectEngine"]

log = logging.getLogger(__name__)

RINGBACK = "ringback"
"""The prompt played while the extension rings (language-neutral, ``common/``)."""


class DirectEngine(TransferEngine):
    """Direct calls to extensions that have voicemail (module docstring)."""

    def _direct_route(self, incoming: IncomingCall, extension: str) -> Route:
        """A call for ``extension``: plain B2BUA, or the engine's when it has voicemail."""
        if self.setup.voicemail.ring_time(extension) is None or incoming.caller == extension:
            return Route(kind=RouteKind.EXTENSION, extension=extension)
        self.calls[incoming.key] = LiveCall(
            key=incoming.key,
            tenant=self.tenant,
            number=incoming.number,
            caller=incoming.caller,
            caller_name=incoming.caller_name,
            sip_call_id=incoming.call_id,
            target=Target(kind=TargetKind.EXTENSION, name=extension),
        )
        log.info("call %s: to %s, voicemail if unanswered", incoming.key, extension)
        return Route(kind=RouteKind.APPLICATION)

    def _ring_direct(self, call: LiveCall, now: float) -> None:
        """The caller is answered: ring the extension, the ringing tone meanwhile."""
        extension = call.target.name
        # The rule may have been switched off since the call came in: it still rings.
        timeout = self.setup.voicemail.ring_time(extension) or DEFAULT_RING_SECONDS
        call.move(CallInput.RING_EXTENSION)
        ringback = self._prompts.files(call.language, [RINGBACK])
        if not self._play(call, ringback, PlayKind.MOH, loop=True):
            self._moh(call)
        attempt = self._control.ring(call.key, extension, timeout=timeout)
        call.attempts[attempt] = extension
        call.window_until = now + timeout + self._opts.ring_grace
