"""``/api/events``: one WebSocket per client with the tenant's events, resumable.

Protocol (JSON text frames, server to client):

1. ``{"type": "hello", "epoch": E, "last": N, "replayed": K, "gap": false}`` first;
2. then every event of the tenant as ``{"seq": n, "type": "call.queued", "at": t, "data": {...}}``,
   replayed ones first, in order, without holes.

A client that reconnects passes ``?since=<last seq it saw>&epoch=<E it was told>``. If the
events it missed are still in the window (see :mod:`minicc.api.eventlog`) it gets exactly
those; otherwise, or when the server restarted since (another epoch), ``gap`` is true and
it should re-read queues and agents over REST. The token goes in the ``Authorization``
header, or, for browsers that cannot set headers on a WebSocket, in ``?token=``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from minicc.api.context import ApiContext, bearer_token, principal_for
from minicc.api.errors import ApiError
from minicc.bus import EventBus

router = APIRouter(tags=["events"])
log = logging.getLogger(__name__)

EPOCH = secrets.token_hex(4)
"""Changes with every start of the server: sequence numbers start again at 1."""


async def feed(ctx: ApiContext, bus: EventBus) -> None:
    """Copy every bus event into the log and wake the tenant's streams (a server task)."""
    subscription = bus.subscribe("api-events")
    try:
        async for event in subscription:
            ctx.events.append(event, at=ctx.clock())
            ctx.notify(event.tenant)
    finally:
        subscription.close()


@router.websocket("/api/events")
async def events(websocket: WebSocket) -> None:
    ctx: ApiContext = websocket.app.state.ctx
    token = bearer_token(websocket.headers.get("authorization")) or websocket.query_params.get(
        "token"
    )
    try:
        who = principal_for(ctx, token)
        since = _since(websocket.query_params.get("since"))
    except ApiError as exc:
        # Accepted and then closed with 4401/4422, application close codes (RFC 6455
        # §7.4.2) mirroring the HTTP status: a refused handshake would only say "403".
        await websocket.accept()
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return
    await websocket.accept()
    epoch = websocket.query_params.get("epoch")
    stale = since is not None and epoch not in (None, EPOCH)
    replay = ctx.events.since(who.tenant, None if stale else since)
    hello: dict[str, Any] = {
        "type": "hello",
        "epoch": EPOCH,
        "last": replay.last,
        "replayed": len(replay.events),
        "gap": replay.gap or stale,
    }
    try:
        await websocket.send_json(hello)
        seen = replay.last
        for message in replay.events:
            await websocket.send_json(message)
        while True:
            wakeup = ctx.wakeup(who.tenant)
            fresh = ctx.events.since(who.tenant, seen)
            if fresh.gap:
                # This client fell a whole window behind while sending: tell it, resync.
                await websocket.send_json({"type": "gap", "last": fresh.last})
            for message in fresh.events:
                await websocket.send_json(message)
            seen = fresh.last
            if not fresh.events:
                await _wait(websocket, wakeup)
    except (WebSocketDisconnect, RuntimeError):
        return


async def _wait(websocket: WebSocket, wakeup: asyncio.Event) -> None:
    """Wait for the next event; notice a client that went away (its receive ends)."""
    receive = asyncio.ensure_future(websocket.receive_text())
    woken = asyncio.ensure_future(wakeup.wait())
    done, pending = await asyncio.wait({receive, woken}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if receive in done:
        receive.result()  # raises WebSocketDisconnect when the client left; pings are ignored


def _since(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError(
            422, "validation", "since: must be a sequence number (0 or more)", field="since"
        )
    return value
