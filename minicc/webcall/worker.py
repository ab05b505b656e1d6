"""A webcall gateway worker process: aiortc peers bridged to SIP calls on loopback.

``minicc serve`` starts these (:mod:`minicc.webcall.supervisor`) because aiortc is GIL-bound:
WebRTC load in a worker never stalls the switch's loop. The worker talks to its supervisor
with one JSON object per line: requests on stdin, replies and events on stdout.

Requests (each carries ``req``, echoed in the reply)::

    {"op": "offer", "id": ..., "sdp": ..., "target": {...SipTarget}}  -> {"ok", "sdp"}
    {"op": "dtmf", "id": ..., "digit": "1"}
    {"op": "mute", "id": ..., "on": true}
    {"op": "hangup", "id": ...}
    {"op": "stats"}                                                 -> {"calls": {...}}

Events (no ``req``): ``{"event": "state", "id": ..., "state": "answered"}`` and
``{"event": "ended", "id": ..., "reason": ...}``.

A bad offer (garbage SDP, no audio) gets ``{"ok": false, "error": ...}`` and the worker goes
on. End of stdin (the supervisor went away) closes every call and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("minicc.webcall.worker")

MAX_LINE = 256 * 1024
CONNECT_TIMEOUT = 20.0
"""A browser that got its answer but never completes ICE/DTLS in this time is gone."""


@dataclass(slots=True)
class WebCall:
    id: str
    pc: Any
    sender: Any
    track: Any
    leg: Any = None
    state: str = "connecting"
    started: float = field(default_factory=time.time)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    ended: bool = False
    connected: asyncio.Event = field(default_factory=asyncio.Event)


class Worker:
    def __init__(self, ice_servers: list[str], out: Any) -> None:
        self.calls: dict[str, WebCall] = {}
        self._ice_servers = ice_servers
        self._out = out

    def emit(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()

    # ------------------------------------------------------------------ requests

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "offer":
            return await self.offer(request)
        if op == "stats":
            return {"ok": True, "calls": {cid: self._stats(c) for cid, c in self.calls.items()}}
        call = self.calls.get(str(request.get("id")))
        if call is None:
            return {"ok": False, "error": "no such call"}
        if op == "dtmf":
            from minicc.switch.media.dtmf import DtmfError

            try:
                await call.sender.send_digit(str(request.get("digit", "")))
            except DtmfError as exc:
                return {"ok": False, "error": str(exc)}
            return {"ok": True}
        if op == "mute":
            call.sender.muted = bool(request.get("on"))
            return {"ok": True}
        if op == "hangup":
            await self.end(call, "web-hangup")
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _stats(self, call: WebCall) -> dict[str, Any]:
        return {
            "state": call.state,
            "to_switch_packets": call.sender.packets_out,
            "to_switch_peak": call.sender.peak_out,
            "from_switch_packets": call.track.packets_in,
            "from_switch_peak": call.track.peak,
        }

    async def offer(self, request: dict[str, Any]) -> dict[str, Any]:
        from aiortc import (
            RTCConfiguration,
            RTCIceServer,
            RTCPeerConnection,
            RTCSessionDescription,
        )

        from minicc.webcall.bridge import RtpSender, SwitchAudioTrack
        from minicc.webcall.sipua import SipTarget

        cid = str(request["id"])
        if cid in self.calls:
            return {"ok": False, "error": "call id in use"}
        try:
            target = SipTarget(**request["target"])
        except (TypeError, KeyError) as exc:
            return {"ok": False, "error": f"bad target: {exc}"}
        config = RTCConfiguration(iceServers=[RTCIceServer(urls=u) for u in self._ice_servers])
        pc = RTCPeerConnection(configuration=config)
        track = SwitchAudioTrack()
        sender = RtpSender(track)
        call = WebCall(id=cid, pc=pc, sender=sender, track=track)
        # Handlers first: aiortc announces the browser's track during setRemoteDescription.

        @pc.on("track")
        def on_track(remote: Any) -> None:
            if remote.kind == "audio":
                call.tasks.append(asyncio.create_task(sender.pump(remote)))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected":
                call.connected.set()
            if pc.connectionState in ("failed", "closed"):
                await self.end(call, f"browser-{pc.connectionState}")

        try:
            await pc.setRemoteDescription(
                RTCSessionDescription(sdp=str(request.get("sdp", "")), type="offer")
            )
            if not any(t.kind == "audio" for t in pc.getTransceivers()):
                raise ValueError("the offer has no audio")
            pc.addTrack(track)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises ValueError and friends on bad SDP
            call.ended = True  # never announced: nothing to report when it closes
            await pc.close()
            return {"ok": False, "error": f"offer refused: {exc}"[:300]}
        self.calls[cid] = call
        call.tasks.append(asyncio.create_task(self._place(call, target)))
        return {"ok": True, "sdp": pc.localDescription.sdp, "type": "answer"}

    async def _place(self, call: WebCall, target: Any) -> None:
        from minicc.webcall.bridge import make_offer, parse_answer
        from minicc.webcall.sipua import SipCallError, SipLeg

        try:
            call.sender.host = target.local_host
            await call.sender.open()
            leg = SipLeg(target)
            call.leg = leg
            await leg.open()
            self._set_state(call, "calling")
            answer = await leg.invite(
                make_offer(call.sender.port, secrets.randbelow(1 << 30), target.local_host),
                on_ringing=lambda: self._set_state(call, "ringing"),
            )
            call.sender.remote = parse_answer(answer)
            self._set_state(call, "answered")
            call.tasks.append(asyncio.create_task(self._watch_connect(call)))
            reason = await leg.ended
        except SipCallError as exc:
            reason = exc.reason
        except ValueError as exc:
            reason = f"switch-sdp: {exc}"
        except Exception:
            log.exception("web call %s failed", call.id)
            reason = "gateway-error"
        await self.end(call, reason)

    async def _watch_connect(self, call: WebCall) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await call.connected.wait()
        except TimeoutError:
            await self.end(call, "browser-never-connected")

    def _set_state(self, call: WebCall, state: str) -> None:
        if call.ended:
            return
        call.state = state
        self.emit({"event": "state", "id": call.id, "state": state})

    async def end(self, call: WebCall, reason: str) -> None:
        if call.ended:
            return
        call.ended = True
        call.state = "ended"
        self.calls.pop(call.id, None)
        stats = self._stats(call)
        if call.leg is not None:
            with contextlib.suppress(Exception):
                await call.leg.bye()
            call.leg.close()
        call.sender.close()
        call.track.stop()
        current = asyncio.current_task()
        for task in call.tasks:
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await call.pc.close()
        self.emit(
            {
                "event": "ended",
                "id": call.id,
                "reason": reason,
                "started": call.started,
                "ended": time.time(),
                "stats": stats,
            }
        )

    async def close(self) -> None:
        for call in list(self.calls.values()):
            await self.end(call, "gateway-stopped")


async def _serve(args: argparse.Namespace) -> None:
    if args.ice_host:
        import aioice.ice

        hosts = list(args.ice_host)
        aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: hosts
    worker = Worker(list(args.stun or []), sys.stdout)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pending: set[asyncio.Task[None]] = set()

    async def run(request: dict[str, Any]) -> None:
        try:
            reply = await worker.handle(request)
        except Exception as exc:
            log.exception("request %s failed", request.get("op"))
            reply = {"ok": False, "error": f"gateway error: {type(exc).__name__}"}
        reply["req"] = request.get("req")
        worker.emit(reply)

    worker.emit({"event": "ready", "pid": os.getpid()})
    while True:
        try:
            line = await reader.readline()
        except ValueError:
            continue  # an over-long line: skipped, not fatal
        if not line:
            break
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            worker.emit({"ok": False, "error": "not a JSON object", "req": None})
            continue
        task = asyncio.create_task(run(request))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await worker.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m minicc.webcall.worker")
    parser.add_argument("--ice-host", action="append", help="host address for ICE candidates")
    parser.add_argument("--stun", action="append", help="STUN/TURN URL (none by default)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="webcall-worker %(levelname)s %(message)s"
    )
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
