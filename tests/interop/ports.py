"""Free loopback ports for the servers and clients a test starts.

A port is "free" when this process can bind it on 127.0.0.1 right now. Between the probe and the
real bind another process may take it; the harness keeps that window short, and never hands out
the same port twice in one test session (the kernel happily returns a just-closed ephemeral port
to the next ``bind(0)``).
"""

from __future__ import annotations

import random
import socket
import threading

LOOPBACK = "127.0.0.1"

# Ranges (first ports) are drawn below Linux's default ephemeral range (32768-60999), so that
# outgoing connections of unrelated programs do not land inside a block we picked.
_RANGE_LOW = 20000
_RANGE_HIGH = 32000

_handed_out: set[int] = set()
_lock = threading.Lock()


def _can_bind(port: int, kind: socket.SocketKind, host: str = LOOPBACK) -> bool:
    """Return True if ``port`` can be bound on ``host`` for the socket kind ``kind``."""
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            # Servers set SO_REUSEADDR too; without it a port in TIME_WAIT looks taken.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _is_free(port: int, *, udp: bool, tcp: bool) -> bool:
    if port in _handed_out:
        return False
    if udp and not _can_bind(port, socket.SOCK_DGRAM):
        return False
    return not (tcp and not _can_bind(port, socket.SOCK_STREAM))


def free_port(*, udp: bool = True, tcp: bool = True, attempts: int = 200) -> int:
    """Return a port on 127.0.0.1 that is free for every requested transport.

    SIP listens on UDP and TCP on the same number, so the default checks both.

    Args:
        udp: the port must be bindable for UDP.
        tcp: the port must be bindable for TCP.
        attempts: how many kernel-chosen candidates to try before giving up.

    Returns:
        The port number; it is never returned again by this module in this process.

    Raises:
        RuntimeError: no free port was found.
    """
    if not (udp or tcp):
        raise ValueError("ask for udp, tcp or both")
    first_kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with _lock:
        for _ in range(attempts):
            with socket.socket(socket.AF_INET, first_kind) as probe:
                probe.bind((LOOPBACK, 0))
                port = int(probe.getsockname()[1])
            if _is_free(port, udp=udp, tcp=tcp):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free port on {LOOPBACK} (udp={udp}, tcp={tcp})")


def free_udp_port() -> int:
    """Return a port on 127.0.0.1 that is free for UDP."""
    return free_port(udp=True, tcp=False)


def free_tcp_port() -> int:
    """Return a port on 127.0.0.1 that is free for TCP."""
    return free_port(udp=False, tcp=True)


def free_port_range(count: int, *, udp: bool = True, tcp: bool = False, attempts: int = 200) -> int:
    """Return the first of ``count`` consecutive free ports (RTP port ranges, sipp's -mp).

    Args:
        count: how many consecutive ports must be free.
        udp: each port must be bindable for UDP.
        tcp: each port must be bindable for TCP.
        attempts: how many random bases to try.

    Returns:
        The first port; the whole block is reserved for this process.

    Raises:
        RuntimeError: no such block was found.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    rng = random.Random()
    with _lock:
        for _ in range(attempts):
            # Even bases: RTP takes the even port and RTCP the odd one above it.
            base = rng.randrange(_RANGE_LOW, _RANGE_HIGH - count) & ~1
            block = range(base, base + count)
            if all(_is_free(port, udp=udp, tcp=tcp) for port in block):
                _handed_out.update(block)
                return base
    raise RuntimeError(f"no {count} consecutive free ports on {LOOPBACK}")


def release_all() -> None:
    """Forget every port handed out, once the processes that used them have stopped.

    Called after each test (tests/interop/conftest.py): without it one pytest process would
    run out of the range after some fifty servers.
    """
    with _lock:
        _handed_out.clear()


def udp_port_bound(port: int, host: str = LOOPBACK) -> bool:
    """Return True if some process has a UDP socket bound to ``host:port`` (Linux).

    Reads ``/proc/net/udp`` instead of trying to bind the port: a probe bind could collide
    with the very program whose start-up is being waited for.
    """
    want_host = socket.inet_aton(host)[::-1].hex().upper()  # /proc shows little-endian hex
    want = f"{want_host}:{port:04X}"
    any_addr = f"00000000:{port:04X}"
    try:
        with open("/proc/net/udp") as table:
            next(table)  # header
            for line in table:
                local = line.split()[1]
                if local in (want, any_addr):
                    return True
    except OSError:
        return False
    return False
