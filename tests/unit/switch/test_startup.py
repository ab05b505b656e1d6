"""Starting the switch on port 0 (as tests and ``--sip-port 0`` do)."""

from __future__ import annotations

import pytest

from minicc.switch.sip.peer import Transport
from minicc.switch.transport import StreamTransport
from tests.unit.switch.harness import MakeSwitch
from tests.unit.switch.ua import HOST


async def test_port_zero_moves_on_when_tcp_is_taken_on_the_udp_port(
    make_switch: MakeSwitch, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_listen = StreamTransport.listen
    tried: list[int] = []

    async def listen(self: StreamTransport, host: str, port: int) -> None:
        tried.append(port)
        if len(tried) == 1:  # as if another program held that TCP port
            raise OSError(98, "Address already in use")
        await real_listen(self, host, port)

    monkeypatch.setattr(StreamTransport, "listen", listen)
    sw = await make_switch()
    ports = sw.switch.ports
    assert len(tried) == 2 and ports[Transport.UDP] == ports[Transport.TCP] == tried[1]
    for transport in ("UDP", "TCP"):
        ua = await sw.phone("acme", "1001", register=False, transport=transport)
        options = ua.build("OPTIONS", f"sip:{HOST}", to=f"<sip:{HOST}>")
        assert (await ua.transact(options)).status == 200
