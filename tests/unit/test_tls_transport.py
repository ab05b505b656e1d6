"""SIP over TLS (RFC 3261 §26.2.1): the switch serves TLS when a certificate is configured."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from minicc.bus import EventBus
from minicc.switch.sip.parser import StreamFramer, parse_message
from minicc.switch.sip.peer import Transport
from minicc.switch.switch import Switch, SwitchSettings
from minicc.tenants.directory import TenantDirectory


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_options_over_tls(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    settings = SwitchSettings(
        bind="127.0.0.1", advertised_host="127.0.0.1", sip_port=0, tls_port=0,
        tls_cert=cert, tls_key=key, media_relay=False,
    )  # fmt: skip
    switch = Switch(settings, TenantDirectory({"127.0.0.1"}), EventBus())
    await switch.start()
    try:
        port = switch.ports[Transport.TLS]
        client_ctx = ssl.create_default_context(cafile=str(cert))
        client_ctx.check_hostname = False
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        local_port = writer.get_extra_info("sockname")[1]
        writer.write(
            (
                f"OPTIONS sip:127.0.0.1:{port};transport=tls SIP/2.0\r\n"
                f"Via: SIP/2.0/TLS 127.0.0.1:{local_port};branch=z9hG4bKtls1;rport\r\n"
                "From: <sip:probe@127.0.0.1>;tag=t1\r\nTo: <sip:127.0.0.1>\r\n"
                "Call-ID: tls-options-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        framer = StreamFramer()
        message = None
        while message is None:
            framer.feed(await asyncio.wait_for(reader.read(4096), 5))
            message = framer.next_message()
        response = parse_message(message)
        assert response.status == 200  # type: ignore[union-attr]
        assert "INVITE" in (response.headers.get("Allow") or "")
        writer.close()
    finally:
        await switch.stop(grace=0)
