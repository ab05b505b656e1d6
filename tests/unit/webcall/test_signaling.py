"""The signaling routes against a real server and real gateway workers: origin checks,
tokens, rate limits, bad offers, and a worker that dies mid-call."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import httpx
import pytest

from minicc.store.control import ControlStore
from minicc.webcall.records import list_records
from minicc.webcall.settings import load_settings
from tests.unit.webcall.conftest import ORIGIN, FakeBrowser, Web, session, wait_state

pytest.importorskip("aiortc")


async def test_a_session_needs_an_allowed_origin_and_a_known_key(
    web: Web, client: httpx.AsyncClient
) -> None:
    key = {"key": web.settings.public_key}
    reply = await client.post(
        "/webcall/session", json=key, headers={"Origin": "https://evil.example"}
    )
    assert reply.status_code == 403
    assert "origin https://evil.example is not allowed" in reply.json()["error"]["message"]
    async with httpx.AsyncClient(base_url=web.url) as bare:  # no Origin: not from a page
        reply = await bare.post("/webcall/session", json=key)
    assert reply.status_code == 403 and "Origin" in reply.json()["error"]["message"]
    reply = await client.post("/webcall/session", json={"key": "wk_nope"})
    assert reply.status_code == 404 and reply.json()["error"]["field"] == "key"
    reply = await client.post("/webcall/session", json=key)
    assert reply.status_code == 200
    assert reply.json()["targets"] == ["8100"]
    assert reply.headers["access-control-allow-origin"] == ORIGIN


async def test_a_token_works_only_from_its_origin(web: Web, client: httpx.AsyncClient) -> None:
    token = await session(client, web)
    body = {"token": token, "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"}
    reply = await client.post(
        "/webcall/calls", json=body, headers={"Origin": "https://evil.example"}
    )
    assert reply.status_code == 403
    reply = await client.post("/webcall/calls", json={**body, "token": token[:-2] + "xx"})
    assert reply.status_code == 401 and reply.json()["error"]["field"] == "token"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 422, "sdp"),
        ({"sdp": "hello"}, 400, "sdp"),
        ({"sdp": "v=0\r\ns=-\r\n"}, 400, "sdp"),
        ({"sdp": "v=0\r\nm=audio 9 RTP/AVP 0\r\n", "number": "1001"}, 403, "number"),
    ],
)
async def test_bad_call_requests_get_a_clear_4xx(
    web: Web, client: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
) -> None:
    token = await session(client, web)
    reply = await client.post("/webcall/calls", json={"token": token, **body})
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["field"] == field


@pytest.mark.parametrize("webcall_options", [{"per_ip_per_minute": 3}])
async def test_the_rate_limit_refuses_the_n_plus_first_session(
    web: Web, client: httpx.AsyncClient
) -> None:
    for _ in range(3):
        await session(client, web)
    reply = await client.post("/webcall/session", json={"key": web.settings.public_key})
    assert reply.status_code == 429
    assert int(reply.headers["retry-after"]) > 0


async def test_garbage_sdp_is_refused_and_the_worker_lives_on(
    web: Web, client: httpx.AsyncClient, browser: FakeBrowser
) -> None:
    token = await session(client, web)
    garbage = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=zzz\r\n"
    reply = await client.post("/webcall/calls", json={"token": token, "sdp": garbage})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["field"] == "sdp"
    supervisor = web.gateway.supervisor
    pid = supervisor.worker_pids()[0]
    # The same worker takes the next, good offer, and the switch answers the call.
    page = {"url": "https://shop.example/cart", "title": "Cart", "customer_id": "C-7"}
    body = {"token": token, "sdp": await browser.offer(), "page": page}
    reply = await client.post("/webcall/calls", json=body)
    assert reply.status_code == 200, reply.text
    assert supervisor.worker_pids()[0] == pid
    await browser.answer(reply.json()["sdp"])
    call_id = reply.json()["id"]
    await wait_state(client, call_id, token, "answered")
    # To the switch it is a call from the webcall extension, named after the page.
    sip_call_id = supervisor.calls[call_id].sip_call_id
    (switch_call,) = [c for c in web.server.switch.b2bua.calls() if c.call_id == sip_call_id]
    live = web.server.callcenter.live_call("acme", switch_call.key)
    assert live is not None and live.caller == web.settings.extension
    assert live.caller_name == "Web: Cart"
    # Another tenant's widget token does not reach this call.
    with ControlStore(web.data_dir) as control:
        tenant = control.get_tenant("other")
        assert tenant is not None
        with control.open_tenant(tenant) as store:
            other_key = load_settings(store.db).public_key  # type: ignore[union-attr]
    other_token = await session(client, web, other_key)
    for op, extra in (("state", {}), ("hangup", {}), ("dtmf", {"digit": "1"})):
        reply = await client.post(
            f"/webcall/calls/{call_id}/{op}", json={"token": other_token, **extra}
        )
        assert reply.status_code == 404, (op, reply.text)
    # A supervisor (or the agent it rings) reads the page context by the SIP Call-ID.
    admin = web.long_lived("acme")
    reply = await client.get(
        f"/api/webcall/calls/{sip_call_id}/context", headers={"Authorization": f"Bearer {admin}"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["url"] == page["url"] and reply.json()["customer_id"] == "C-7"
    reply = await client.post(f"/webcall/calls/{call_id}/dtmf", json={"token": token, "digit": "x"})
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "digit"
    reply = await client.post(f"/webcall/calls/{call_id}/hangup", json={"token": token})
    assert reply.status_code == 204
    state = await wait_state(client, call_id, token, "ended")
    assert state["reason"] == "web-hangup"


@pytest.mark.parametrize("webcall_options", [{"max_calls": 1}])
async def test_a_crashed_worker_ends_its_calls_with_a_record_and_is_restarted(
    web: Web, client: httpx.AsyncClient, browser: FakeBrowser
) -> None:
    token = await session(client, web)
    reply = await client.post("/webcall/calls", json={"token": token, "sdp": await browser.offer()})
    assert reply.status_code == 200, reply.text
    await browser.answer(reply.json()["sdp"])
    call_id = reply.json()["id"]
    await wait_state(client, call_id, token, "answered")
    supervisor = web.gateway.supervisor
    web_call = supervisor.calls[call_id]
    b2bua = web.server.switch.b2bua
    assert any(c.call_id == web_call.sip_call_id for c in b2bua.calls())
    # The cap: one web call at a time for this tenant.
    reply = await client.post(
        "/webcall/calls", json={"token": token, "sdp": await FakeBrowser().offer()}
    )
    assert reply.status_code == 409

    (pid,) = supervisor.worker_pids()
    os.kill(pid, signal.SIGKILL)  # the worker this test's server started
    state = await wait_state(client, call_id, token, "ended")
    assert state["reason"] == "worker-crashed"
    assert not any(c.call_id == web_call.sip_call_id for c in b2bua.calls())
    await supervisor.wait_ready(timeout=20)
    assert supervisor.worker_pids()[0] not in (None, pid)
    store = web.server.stores.tenant("acme")
    async with asyncio.timeout(5):
        while not (records := await asyncio.to_thread(list_records, store.db)):
            await asyncio.sleep(0.05)
    assert records[0].reason == "worker-crashed" and records[0].id == call_id


async def test_the_callback_form_creates_a_callback(web: Web, client: httpx.AsyncClient) -> None:
    token = await session(client, web)
    body = {"token": token, "queue": "support", "number": "+4930123456", "name": "Ada",
            "preferred_time": "after 14:00"}  # fmt: skip
    reply = await client.post("/webcall/callbacks", json=body)
    assert reply.status_code == 200, reply.text
    (job,) = web.server.callcenter.callbacks("acme")
    assert job.number == "+4930123456" and "Ada" in (job.name or "")
    reply = await client.post("/webcall/callbacks", json={**body, "queue": "nope"})
    assert reply.status_code == 404 and reply.json()["error"]["field"] == "queue"
    reply = await client.post("/webcall/callbacks", json={**body, "number": "call me"})
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "number"


async def test_widget_and_demo_page_are_served(web: Web, client: httpx.AsyncClient) -> None:
    reply = await client.get("/webcall/widget.js")
    assert reply.status_code == 200 and "MiniccWebcall" in reply.text
    assert reply.headers["content-type"].startswith("application/javascript")
    reply = await client.get("/webcall/demo/acme?queue=support")
    assert reply.status_code == 200 and web.settings.public_key in reply.text
    assert web.settings.secret not in reply.text
    reply = await client.get("/webcall/demo/nobody")
    assert reply.status_code == 404


async def test_a_browser_that_goes_away_ends_the_call_with_a_record(
    web: Web, client: httpx.AsyncClient, browser: FakeBrowser
) -> None:
    token = await session(client, web)
    reply = await client.post("/webcall/calls", json={"token": token, "sdp": await browser.offer()})
    assert reply.status_code == 200, reply.text
    await browser.answer(reply.json()["sdp"])
    call_id = reply.json()["id"]
    await wait_state(client, call_id, token, "answered")
    sip_call_id = web.gateway.supervisor.calls[call_id].sip_call_id
    await asyncio.wait_for(browser.connected.wait(), 15.0)  # ICE and DTLS done: talking
    await browser.close()  # the tab is closed: DTLS close, no hang-up request
    state = await wait_state(client, call_id, token, "ended", timeout=20.0)
    assert state["reason"].startswith("browser-")
    # The switch side got a BYE: no call is left behind.
    assert not any(c.call_id == sip_call_id for c in web.server.switch.b2bua.calls())
