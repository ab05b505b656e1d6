"""Run a real ``minicc serve`` for interop tests.

:class:`MiniccServer` makes a data directory, adds known test extensions through the CLI
(``minicc user add``), starts ``python -m minicc serve`` on free loopback ports in its own
process group, and waits until the switch answers a SIP OPTIONS over UDP. Its output goes to a
log file that the ``minicc_server`` fixture shows when a test fails.

Contract with the CLI (see the team brief):

- ``python -m minicc serve --check --data-dir D ...`` prepares the data directory and the demo
  tenant, then exits;
- ``python -m minicc user add --data-dir D --tenant demo --extension E --password P --name N``
  adds an extension (digest realm ``demo.localhost``);
- ``python -m minicc serve --data-dir D --bind 127.0.0.1 --sip-port P --http-port H
  --rtp-port-min A --rtp-port-max B`` serves the demo tenant (domain ``demo.localhost``, also
  the default for requests to the server's IP);
- ``python -m minicc cdr export --data-dir D --tenant demo --format json`` prints CDRs as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.interop.ports import LOOPBACK, free_port, free_port_range, free_tcp_port
from tests.interop.process import ManagedProcess

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_TENANT = "demo"
DEMO_DOMAIN = "demo.localhost"


class ServerError(RuntimeError):
    """minicc did not start, did not become ready, or a CLI command failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Extension:
    """A SIP extension the harness adds before the server starts."""

    number: str
    """Extension number, also the digest user name."""
    password: str
    """Digest password."""
    name: str
    """Display name."""
    tenant: str = DEMO_TENANT
    """Tenant the extension belongs to."""


# Known test extensions; the demo tenant's own 1001-1003 stay as minicc creates them.
TEST_EXTENSIONS: tuple[Extension, ...] = (
    Extension(number="2001", password="test2001pw", name="Test Agent 2001"),
    Extension(number="2002", password="test2002pw", name="Test Agent 2002"),
    Extension(number="2003", password="test2003pw", name="Test Agent 2003"),
)


def sip_options_ping(host: str, port: int, *, timeout: float = 1.0) -> str | None:
    """Send one SIP OPTIONS over UDP and return the status line of the response.

    Any response at all (even 4xx/5xx) shows the switch is reading and answering SIP.

    Returns:
        The response's first line, or None if nothing came back within ``timeout``.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        local_port = sock.getsockname()[1]
        tag = secrets.token_hex(6)
        # RFC 3261 8.1.1: the mandatory headers; branch with the RFC 3261 magic cookie.
        request = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{local_port};branch=z9hG4bK{secrets.token_hex(8)}"
            ";rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{LOOPBACK}>;tag={tag}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {secrets.token_hex(12)}@{LOOPBACK}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            f"Contact: <sip:probe@{LOOPBACK}:{local_port}>\r\n"
            "Accept: application/sdp\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        sock.settimeout(timeout)
        try:
            sock.sendto(request, (host, port))
            deadline = time.monotonic() + timeout
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data, _ = sock.recvfrom(65535)
                if data.startswith(b"SIP/2.0 "):
                    return data.split(b"\r\n", 1)[0].decode(errors="replace")
        except (TimeoutError, ConnectionRefusedError):
            # ICMP port unreachable surfaces as ConnectionRefusedError on a later recv.
            return None


def wait_for_sip(
    host: str, port: int, *, timeout: float, process: ManagedProcess | None = None
) -> str:
    """Poll with OPTIONS until the SIP server at ``host:port`` answers.

    Args:
        host: server address.
        port: server UDP port.
        timeout: overall bound in seconds.
        process: if given, stop early when it has exited.

    Returns:
        The status line of the first response.

    Raises:
        ServerError: no response within ``timeout``, or ``process`` exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and not process.running():
            raise ServerError(
                f"{process.name} exited with {process.returncode} before answering SIP;"
                f" output:\n{process.read_log(tail=4000)}"
            )
        status = sip_options_ping(host, port, timeout=0.25)
        if status is not None:
            return status
        if time.monotonic() >= deadline:
            tail = process.read_log(tail=4000) if process is not None else ""
            raise ServerError(f"no SIP answer from {host}:{port} within {timeout}s\n{tail}")
        time.sleep(0.05)


class MiniccServer:
    """A ``minicc serve`` subprocess with its own data directory and free ports.

    Args:
        workdir: parent directory (a test's ``tmp_path``); the server uses ``workdir/minicc``.
        extensions: extensions to add through the CLI before the first start.
        python: interpreter to run ``-m minicc`` with.
        extra_args: further ``serve`` arguments.
        env: extra environment variables for the server and CLI calls.
        ready_timeout: seconds to wait for the first SIP answer.
        rtp_port_count: size of the server's RTP port range (``--rtp-port-min/max``).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        extensions: Sequence[Extension] = TEST_EXTENSIONS,
        python: str = sys.executable,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 20.0,
        rtp_port_count: int = 200,
    ) -> None:
        self.root = workdir / "minicc"
        self.data_dir = self.root / "data"
        self.log = self.root / "server.log"
        self.python = python
        self.extensions = tuple(extensions)
        self.extra_args = tuple(extra_args)
        self.ready_timeout = ready_timeout
        self.sip_port = free_port(udp=True, tcp=True)
        self.http_port = free_tcp_port()
        # A relay range of its own: the harness's clients draw their RTP ports from the same
        # span (20000-32000), and reserved blocks never overlap.
        first_rtp = free_port_range(rtp_port_count)
        self.rtp_ports = (first_rtp, first_rtp + rtp_port_count - 1)
        self._env = dict(os.environ)
        # The checkout's package first, even if an older minicc is installed elsewhere;
        # unbuffered so the log is complete when a test fails mid-way.
        self._env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), self._env.get("PYTHONPATH", "")) if p
        )
        self._env["PYTHONUNBUFFERED"] = "1"
        self._env.update(env or {})
        self._process: ManagedProcess | None = None
        self._provisioned = False

    # --- addresses ---------------------------------------------------------------------------

    @property
    def sip_address(self) -> str:
        """``127.0.0.1:<sip port>``."""
        return f"{LOOPBACK}:{self.sip_port}"

    @property
    def http_url(self) -> str:
        """Base URL of the REST API."""
        return f"http://{LOOPBACK}:{self.http_port}"

    def extension(self, number: str) -> Extension:
        """The test extension ``number``.

        Raises:
            KeyError: not one of this server's extensions.
        """
        for ext in self.extensions:
            if ext.number == number:
                return ext
        raise KeyError(f"no test extension {number}")

    @property
    def pid(self) -> int | None:
        """PID of the running server."""
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.running()

    # --- CLI -----------------------------------------------------------------------------------

    def cli(
        self, *args: str, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m minicc <args>`` (add ``--data-dir`` yourself where the command takes it).

        Raises:
            ServerError: ``check`` and the command failed.
        """
        argv = [self.python, "-m", "minicc", *args]
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self._env,
            cwd=self.root,
            timeout=timeout,
            check=False,
        )
        with self.log.open("a") as fh:
            fh.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}")
            fh.write(f"[exit {result.returncode}]\n")
        if check and result.returncode != 0:
            raise ServerError(
                f"{' '.join(argv)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def add_extension(self, ext: Extension) -> None:
        """Add one extension through ``minicc user add``."""
        self.cli(
            "user", "add",
            "--data-dir", str(self.data_dir),
            "--tenant", ext.tenant,
            "--extension", ext.number,
            "--password", ext.password,
            "--name", ext.name,
        )  # fmt: skip

    def cdr_export(self, tenant: str = DEMO_TENANT) -> list[dict[str, Any]]:
        """Call records of ``tenant`` via ``minicc cdr export --format json``.

        Raises:
            ServerError: the command failed or did not print a JSON list.
        """
        result = self.cli(
            "cdr", "export", "--data-dir", str(self.data_dir), "--tenant", tenant,
            "--format", "json",
        )  # fmt: skip
        try:
            records = json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise ServerError(f"cdr export did not print JSON: {result.stdout[:2000]!r}") from exc
        if not isinstance(records, list):
            raise ServerError(f"cdr export printed {type(records).__name__}, not a list")
        return records

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Provision (first time only), start ``minicc serve`` and wait for it to answer SIP.

        Raises:
            ServerError: provisioning failed, or the server exited or stayed silent.
        """
        if self.running():
            raise ServerError("minicc is already running")
        self.root.mkdir(parents=True, exist_ok=True)
        if not self._provisioned:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # `serve --check` prepares the data dir and the demo tenant without serving, so
            # that `user add` finds the tenant.
            self.cli("serve", "--check", *self._serve_args())
            for ext in self.extensions:
                self.add_extension(ext)
            self._provisioned = True
        argv = [self.python, "-m", "minicc", "serve", *self._serve_args()]
        self._process = ManagedProcess(
            argv, log_path=self.log, cwd=self.root, env=self._env, name="minicc"
        )
        self._process.start()
        try:
            status = wait_for_sip(
                LOOPBACK, self.sip_port, timeout=self.ready_timeout, process=self._process
            )
        except ServerError:
            self._process.stop(grace=2.0)
            raise
        log.info("minicc ready on %s (OPTIONS -> %s)", self.sip_address, status)
        return self

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the server by PID, wait ``grace`` seconds, then SIGKILL.

        Returns:
            The exit status, or None if it was never started.
        """
        if self._process is None:
            return None
        return self._process.stop(grace=grace)

    def _serve_args(self) -> list[str]:
        return [
            "--data-dir", str(self.data_dir),
            "--bind", LOOPBACK,
            "--sip-port", str(self.sip_port),
            "--http-port", str(self.http_port),
            "--rtp-port-min", str(self.rtp_ports[0]),
            "--rtp-port-max", str(self.rtp_ports[1]),
            *self.extra_args,
        ]  # fmt: skip

    def restart(self) -> Self:
        """Stop and start again on the same ports and data directory."""
        self.stop()
        return self.start()

    def read_log(self, tail: int | None = None) -> str:
        """The server's captured output (and the CLI commands run for it)."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[-tail:] if tail is not None else text

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
