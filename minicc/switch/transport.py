"""SIP transports over asyncio: UDP, TCP and TLS. The only socket code of the switch.

Each transport turns bytes into ``(data, Peer)`` for the switch and sends what the switch
gives back. Framing on streams is the sans-IO :class:`StreamFramer`; a peer whose stream
does not frame is disconnected (RFC 3261 §18.3 leaves no way to resynchronise).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from minicc.switch.sip.errors import SipParseError
from minicc.switch.sip.parser import StreamFramer
from minicc.switch.sip.peer import Peer, Transport

log = logging.getLogger(__name__)

# What the switch gives the transports: one call per received message.
Receiver = Callable[[bytes, Peer], None]

# Big receive buffers so a burst (a load test, a flood) is queued by the kernel instead of
# dropped before we get to read it.
_UDP_RCVBUF = 4 * 1024 * 1024
_IDLE_TCP_TIMEOUT = 3600.0
_MAX_UNSENT = 1024 * 1024


class UdpTransport(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                import socket

                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_RCVBUF)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _UDP_RCVBUF)
            except OSError:  # pragma: no cover - depends on the kernel's limits
                log.debug("could not raise UDP socket buffers")
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # CRLF keep-alives (RFC 5626 §4.4.1 uses them on streams; phones send them on UDP too).
        if len(data) <= 4 and not data.strip():
            return
        try:
            self._receiver(data, Peer(Transport.UDP, addr[0], addr[1]))
        except Exception:  # a bug for one message must never stop the listener
            log.exception("error handling datagram from %s:%s", addr[0], addr[1])

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable for a vanished phone: retransmission timers handle it.
        log.debug("UDP error: %s", exc)

    def send(self, data: bytes, peer: Peer) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, (peer.host, peer.port))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _StreamConnection(asyncio.Protocol):
    def __init__(self, owner: StreamTransport) -> None:
        self._owner = owner
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer(self._owner.kind, host, port)
        self._owner.connections[(host, port)] = self
        self._touch()

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(_IDLE_TCP_TIMEOUT, self.close)

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None
        self._touch()
        try:
            self._framer.feed(data)
            while (message := self._framer.next_message()) is not None:
                self._owner.receiver(message, self.peer)
            if self._framer.pong_needed():
                self.write(b"\r\n")
        except SipParseError as exc:
            log.info("closing %s: unframeable stream (%s)", self.peer, exc.reason)
            self.close()
        except Exception:
            log.exception("error handling stream data from %s", self.peer)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self.peer is not None:
            key = (self.peer.host, self.peer.port)
            if self._owner.connections.get(key) is self:
                del self._owner.connections[key]

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > _MAX_UNSENT:
            # A peer that stops reading must not make us buffer without bound.
            log.info("closing %s: %d bytes unsent", self.peer, transport.get_write_buffer_size())
            transport.abort()
            return
        transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class StreamTransport:
    """TCP or TLS: a listening server plus the connections phones opened to it.

    Requests to a phone go down the connection its REGISTER came on (RFC 5626 flow reuse);
    when there is none, a new outbound connection is opened.
    """

    def __init__(
        self, kind: Transport, receiver: Receiver, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.kind = kind
        self.receiver = receiver
        self.connections: dict[tuple[str, int], _StreamConnection] = {}
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self.local: tuple[str, int] = ("", 0)

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _StreamConnection(self), host, port, ssl=self._ssl, reuse_address=True
        )
        self.local = self._server.sockets[0].getsockname()[:2]

    def send(self, data: bytes, peer: Peer) -> None:
        key = (peer.host, peer.port)
        conn = self.connections.get(key)
        if conn is not None:
            conn.write(data)
            return
        queued = self._pending.get(key)
        if queued is not None:
            queued.append(data)
            return
        self._pending[key] = [data]
        asyncio.get_running_loop().create_task(self._connect(key))

    async def _connect(self, key: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                lambda: _StreamConnection(self), key[0], key[1], ssl=self._ssl
            )
        except OSError as exc:
            # Lost requests are retried or timed out by the transaction layer (Timer B/F).
            log.info("cannot connect to %s:%s over %s: %s", key[0], key[1], self.kind.value, exc)
            self._pending.pop(key, None)
            return
        for data in self._pending.pop(key, []):
            conn.write(data)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections.values()):
            conn.close()
