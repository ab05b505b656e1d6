"""Starts, feeds and restarts the gateway worker processes (:mod:`minicc.webcall.worker`).

Runs on the server's loop. Each worker is ``python -m minicc.webcall.worker`` with JSON lines
on its stdin/stdout; a new call goes to the worker with the fewest calls. When a worker
exits unexpectedly its calls end with reason ``worker-crashed`` (a record is written and the
switch side is hung up), and a new worker takes its place after a short, growing delay.

The supervisor keeps every live call's tenant, page context and SIP Call-ID in memory, so
the API can answer the widget's status polls and an agent's context lookup without asking a
worker. Settings come from the environment (the serve config is shared by every feature, so
this feature reads its few knobs there): ``MINICC_WEBCALL_WORKERS`` (default 1),
``MINICC_WEBCALL_ICE_HOSTS`` (comma-separated host addresses for ICE candidates; default:
every interface) and ``MINICC_WEBCALL_ICE_SERVERS`` (STUN/TURN URLs; default none, so no
public server is ever contacted unless configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from minicc.webcall.records import PageContext, WebCallRecord

__all__ = ["GatewayConfig", "LiveWebCall", "Supervisor", "WorkerError"]

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10.0
START_TIMEOUT = 20.0
RESTART_DELAYS = (0.2, 1.0, 5.0)
"""Waits before restarting a worker that exited: growing while it keeps dying."""
STABLE_AFTER = 60.0
"""A worker that ran this long before exiting is restarted after the shortest wait."""
ENDED_KEPT = 1000
"""Ended calls remembered for status polls and context lookups."""


class WorkerError(Exception):
    """A worker refused a request (``message`` is safe to show) or is not available."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    workers: int = 1
    ice_hosts: tuple[str, ...] = ()
    ice_servers: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewayConfig:
        raw = env.get("MINICC_WEBCALL_WORKERS", "1").strip() or "1"
        try:
            workers = int(raw)
        except ValueError:
            raise ValueError(
                f"MINICC_WEBCALL_WORKERS={raw!r} is not a number: use 1 to 64"
            ) from None
        if not 1 <= workers <= 64:
            raise ValueError(f"MINICC_WEBCALL_WORKERS={workers} is out of range: use 1 to 64")

        def split(name: str) -> tuple[str, ...]:
            return tuple(p.strip() for p in env.get(name, "").split(",") if p.strip())

        return cls(
            workers=workers,
            ice_hosts=split("MINICC_WEBCALL_ICE_HOSTS"),
            ice_servers=split("MINICC_WEBCALL_ICE_SERVERS"),
        )


@dataclass(slots=True, kw_only=True)
class LiveWebCall:
    id: str
    tenant: str
    sip_call_id: str
    number: str
    origin: str
    page: PageContext
    worker: int
    state: str = "connecting"
    reason: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ready: asyncio.Event = asyncio.Event()
        self.calls: set[str] = set()
        self.restarts = 0


class Supervisor:
    """See module doc. ``on_record`` receives every ended call (the server writes it)."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        on_record: Callable[[str, WebCallRecord], None],
        on_orphan: Callable[[str], None],
    ) -> None:
        """Args:
        config: worker count and ICE settings.
        on_record: called with (tenant, record) when a call ends.
        on_orphan: called with a SIP Call-ID whose worker died: hang up the switch side.
        """
        self.config = config
        self._on_record = on_record
        self._on_orphan = on_orphan
        self._workers = [_Worker(i) for i in range(config.workers)]
        self._req = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self.calls: OrderedDict[str, LiveWebCall] = OrderedDict()
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            self._tasks.append(loop.create_task(self._run(worker)))

    async def stop(self) -> None:
        self._closing = True
        for worker in self._workers:
            proc = worker.process
            if proc is not None and proc.returncode is None and proc.stdin is not None:
                proc.stdin.close()  # end of input: the worker hangs up its calls and exits
        for worker in self._workers:
            proc = worker.process
            if proc is not None and proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 5.0)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            for worker in self._workers:
                await worker.ready.wait()

    def worker_pids(self) -> list[int | None]:
        return [w.process.pid if w.process else None for w in self._workers]

    async def _run(self, worker: _Worker) -> None:
        while not self._closing:
            argv = [sys.executable, "-m", "minicc.webcall.worker"]
            for host in self.config.ice_hosts:
                argv += ["--ice-host", host]
            for url in self.config.ice_servers:
                argv += ["--stun", url]
            worker.process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 20,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            log.info("webcall worker %d started (pid %d)", worker.index, worker.process.pid)
            started = time.monotonic()
            try:
                await self._read(worker)
            finally:
                code = await worker.process.wait()
                worker.ready.clear()
                self._fail_pending(worker)
                self._orphan_calls(worker, code)
            if self._closing:
                return
            if time.monotonic() - started > STABLE_AFTER:
                worker.restarts = 0  # it ran well for a while: restart at once again
            delay = RESTART_DELAYS[min(worker.restarts, len(RESTART_DELAYS) - 1)]
            worker.restarts += 1
            log.error(
                "webcall worker %d exited (%s); restarting in %.1fs", worker.index, code, delay
            )
            await asyncio.sleep(delay)

    async def _read(self, worker: _Worker) -> None:
        assert worker.process is not None and worker.process.stdout is not None
        while True:
            line = await worker.process.stdout.readline()
            if not line:
                return
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("webcall worker %d wrote non-JSON: %r", worker.index, line[:200])
                continue
            req = message.get("req")
            if req is not None:
                future = worker.pending.pop(req, None)
                if future is not None and not future.done():
                    future.set_result(message)
                continue
            event = message.get("event")
            if event == "ready":
                worker.ready.set()
            elif event == "state":
                call = self.calls.get(str(message.get("id")))
                if call is not None and call.ended is None:
                    call.state = str(message.get("state"))
            elif event == "ended":
                self._ended(str(message.get("id")), str(message.get("reason")), worker)

    def _fail_pending(self, worker: _Worker) -> None:
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(WorkerError("the gateway worker stopped"))
        worker.pending.clear()

    def _orphan_calls(self, worker: _Worker, code: int | None) -> None:
        reason = "gateway-stopped" if self._closing else "worker-crashed"
        for cid in list(worker.calls):
            call = self.calls.get(cid)
            if call is not None and call.ended is None and not self._closing:
                self._on_orphan(call.sip_call_id)
            self._ended(cid, reason, worker)

    def _ended(self, cid: str, reason: str, worker: _Worker) -> None:
        worker.calls.discard(cid)
        call = self.calls.get(cid)
        if call is None or call.ended is not None:
            return
        call.ended = time.time()
        call.state = "ended"
        call.reason = reason
        record = WebCallRecord(
            id=call.id,
            sip_call_id=call.sip_call_id,
            number=call.number,
            origin=call.origin,
            page=call.page,
            started=call.started,
            ended=call.ended,
            reason=reason,
        )
        try:
            self._on_record(call.tenant, record)
        except Exception:
            log.exception("web call %s: record not written", cid)
        self._trim()

    def _trim(self) -> None:
        ended = [k for k, c in self.calls.items() if c.ended is not None]
        for key in ended[: max(0, len(ended) - ENDED_KEPT)]:
            del self.calls[key]

    # ------------------------------------------------------------------ requests

    async def _request(self, worker: _Worker, message: dict[str, Any]) -> dict[str, Any]:
        proc = worker.process
        if proc is None or proc.stdin is None or not worker.ready.is_set():
            raise WorkerError("the gateway is starting: try again in a moment")
        req = next(self._req)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        worker.pending[req] = future
        proc.stdin.write((json.dumps({**message, "req": req}) + "\n").encode())
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                await proc.stdin.drain()
                return await future
        except TimeoutError:
            raise WorkerError("the gateway did not answer in time") from None
        except (ConnectionError, BrokenPipeError):
            raise WorkerError("the gateway worker stopped") from None
        finally:
            worker.pending.pop(req, None)

    def live_count(self, tenant: str) -> int:
        return sum(1 for c in self.calls.values() if c.tenant == tenant and c.ended is None)

    def find_sip(self, sip_call_id: str) -> LiveWebCall | None:
        for call in reversed(self.calls.values()):
            if call.sip_call_id == sip_call_id:
                return call
        return None

    async def offer(self, call: LiveWebCall, sdp: str, target: dict[str, Any]) -> str:
        """Hand the browser's offer to the least busy worker; returns the SDP answer.

        Raises:
            WorkerError: the offer was refused (message names why) or no worker is up.
        """
        # Counted at once, before any wait, so the tenant's cap holds for concurrent offers.
        self.calls[call.id] = call
        ready = [w for w in self._workers if w.ready.is_set()]
        if not ready:
            with contextlib.suppress(TimeoutError):
                await self.wait_ready(START_TIMEOUT)
            ready = [w for w in self._workers if w.ready.is_set()]
        if not ready:
            del self.calls[call.id]
            raise WorkerError("the gateway is not running: try again later")
        worker = min(ready, key=lambda w: len(w.calls))
        call.worker = worker.index
        worker.calls.add(call.id)
        try:
            reply = await self._request(
                worker, {"op": "offer", "id": call.id, "sdp": sdp, "target": target}
            )
        except WorkerError:
            worker.calls.discard(call.id)
            del self.calls[call.id]
            raise
        if not reply.get("ok"):
            worker.calls.discard(call.id)
            del self.calls[call.id]
            raise WorkerError(str(reply.get("error", "offer refused")))
        return str(reply["sdp"])

    async def command(self, call: LiveWebCall, op: str, **params: Any) -> None:
        """dtmf, mute or hangup for a live call.

        Raises:
            WorkerError: refused (e.g. not a DTMF digit) or the call is gone.
        """
        if call.ended is not None:
            raise WorkerError("the call has ended")
        worker = self._workers[call.worker]
        reply = await self._request(worker, {"op": op, "id": call.id, **params})
        if not reply.get("ok"):
            raise WorkerError(str(reply.get("error", f"{op} refused")))

    async def stats(self) -> list[dict[str, Any]]:
        out = []
        for worker in self._workers:
            try:
                out.append(await self._request(worker, {"op": "stats"}))
            except WorkerError as exc:
                out.append({"ok": False, "error": str(exc)})
        return out
