"""SIGTERM and SIGINT on a running ``serve()``: calls get BYE, the CDR is written, stores close."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from minicc.config import ServeConfig
from minicc.server import Server, serve
from minicc.store.control import ControlStore
from minicc.store.database import StoreError
from minicc.switch.sip.peer import Transport
from minicc.tenants.models import Disposition, HangupSide
from tests.unit.switch.harness import RTP_MAX, RTP_MIN
from tests.unit.switch.ua import HOST, Account, RtpPeer, SipUA, make_sdp

PASSWORDS = {"1001": "alice-secret", "1002": "bob-secret"}


def make_data_dir(path: Path) -> None:
    with ControlStore(path) as control:
        tenant = control.add_tenant("acme", "acme.test")
        with control.open_tenant(tenant) as store:
            for ext, password in PASSWORDS.items():
                store.add_extension(ext, password, tenant.domain, f"Agent {ext}")
        control.set_default_tenant("acme")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_ends_calls_with_bye_and_closes_stores(
    tmp_path: Path, signum: signal.Signals
) -> None:
    make_data_dir(tmp_path)
    config = ServeConfig(
        data_dir=tmp_path,
        bind=HOST,
        sip_port=0,
        http_port=0,
        rtp_port_min=RTP_MIN,
        rtp_port_max=RTP_MAX,
    )
    ready: asyncio.Future[Server] = asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(serve(config, on_ready=ready.set_result))
    phones: list[SipUA] = []
    rtp = await RtpPeer.open()
    try:
        server = await asyncio.wait_for(ready, 10.0)
        addr = (HOST, server.switch.ports[Transport.UDP])
        for ext in PASSWORDS:
            ua = SipUA(Account(ext, PASSWORDS[ext], "acme.test"), addr)
            phones.append(await ua.start())
            assert (await ua.register()).status == 200
        alice, bob = phones
        out = await alice.call("sip:1002@acme.test", make_sdp(rtp.port))
        inc = await bob.incoming()
        await inc.answer(make_sdp(rtp.port))
        assert (await out.final()).status == 200
        assert out.dialog is not None and inc.dialog is not None

        os.kill(os.getpid(), signum)
        alice.reply(await out.dialog.request("BYE"), 200)
        bob.reply(await inc.dialog.request("BYE"), 200)
        await asyncio.wait_for(serving, 10.0)
    finally:
        if not serving.done():
            serving.cancel()
        for ua in phones:
            ua.close()
        rtp.close()

    # The stores were closed (their writer threads stopped) ...
    with pytest.raises(StoreError):
        server.stores.control.list_tenants()
    # ... after the call's record was written.
    with ControlStore(tmp_path) as control:
        tenant = control.get_tenant("acme")
        assert tenant is not None
        with control.open_tenant(tenant) as store:
            records = store.export_cdrs()
    assert len(records) == 1
    record = records[0]
    assert record.call_id == out.call_id
    assert record.disposition is Disposition.ANSWERED
    assert record.hangup_side is HangupSide.SYSTEM
