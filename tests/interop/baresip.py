"""Drive baresip (Debian packages ``baresip``, ``baresip-core``) as a scripted softphone.

:class:`Baresip` writes a headless config into its own directory: a WAV file as microphone
(``aufile``), no speaker (``aubridge,nowhere``), the received and sent audio dumped to WAV
(``sndfile``), control over TCP (``ctrl_tcp``), and its own SIP, control and RTP ports, so
several instances can run side by side. :class:`BaresipCtrl` speaks the ``ctrl_tcp`` protocol:
netstring-framed JSON, ``{"command", "params", "token"}`` in, responses (matched by token) and
events out.

Known behaviour of baresip 1.0.0 that the harness works around:

- ``stdio.so`` fails without a terminal, so only ``menu`` + ``ctrl_tcp`` are loaded.
- ``net_interface`` must be an address (``127.0.0.1``), not ``lo``.
- When the ``aufile`` source ends, the call ends: tones are made long (60 s).
- Quitting waits for un-REGISTER; :meth:`Baresip.stop` falls back to SIGINT twice, then SIGKILL.
- ``sndfile`` finalises each WAV when the call's audio stream is torn down; the reader in
  :mod:`tests.interop.audio` copes with an unfinalised header anyway.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.interop.ports import LOOPBACK, free_port_range, free_tcp_port
from tests.interop.process import ManagedProcess

log = logging.getLogger(__name__)

MODULE_PATH = Path("/usr/lib/baresip/modules")
Event = dict[str, Any]
EventMatch = Callable[[Event], bool] | str
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BaresipError(RuntimeError):
    """baresip did not start, answered a command with an error, or an event never came."""


# --- ctrl_tcp client -------------------------------------------------------------------------


def netstring(payload: bytes) -> bytes:
    """Frame ``payload`` as a netstring: ``<length>:<payload>,``."""
    return str(len(payload)).encode() + b":" + payload + b","


def split_netstrings(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Split complete netstrings off the front of ``buffer``.

    Returns:
        The complete payloads, and the unconsumed rest of the buffer.

    Raises:
        ValueError: the buffer is not netstring-framed.
    """
    payloads: list[bytes] = []
    while True:
        colon = buffer.find(b":")
        if colon < 0:
            if len(buffer) > 20 or (buffer and not buffer.isdigit()):
                raise ValueError(f"bad netstring length prefix {buffer[:20]!r}")
            return payloads, buffer
        prefix = buffer[:colon]
        if not prefix.isdigit():
            raise ValueError(f"bad netstring length prefix {prefix[:20]!r}")
        length = int(prefix)
        end = colon + 1 + length
        if len(buffer) < end + 1:
            return payloads, buffer
        if buffer[end : end + 1] != b",":
            raise ValueError("netstring not terminated by ','")
        payloads.append(buffer[colon + 1 : end])
        buffer = buffer[end + 1 :]


def _event_matcher(match: EventMatch) -> Callable[[Event], bool]:
    if isinstance(match, str):
        return lambda ev: ev.get("type") == match
    return match


class BaresipCtrl:
    """A client for baresip's ``ctrl_tcp`` module.

    A reader thread sorts what arrives into command responses (by token) and events. Events are
    kept in arrival order; :meth:`wait_event` returns the first one not yet returned that
    matches, so an event that arrived before the wait started is still found.

    Args:
        port: the ``ctrl_tcp_listen`` port on 127.0.0.1.
        connect_timeout: seconds to keep retrying the connection.
    """

    def __init__(self, port: int, *, connect_timeout: float = 10.0) -> None:
        self.port = port
        self._sock = _connect_retrying(port, connect_timeout)
        self._tokens = itertools.count(1)
        self._cond = threading.Condition()
        self._responses: dict[str, Event] = {}
        self._events: list[Event] = []
        self._consumed: set[int] = set()
        self._closed = False
        self._error: Exception | None = None
        self._thread = threading.Thread(
            target=self._read_loop, name=f"baresip-ctrl-{port}", daemon=True
        )
        self._thread.start()

    def _read_loop(self) -> None:
        buffer = b""
        try:
            while True:
                data = self._sock.recv(65536)
                if not data:
                    break
                payloads, buffer = split_netstrings(buffer + data)
                for payload in payloads:
                    self._dispatch(json.loads(payload))
        except (OSError, ValueError) as exc:
            if not self._closed:
                self._error = exc
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _dispatch(self, message: Event) -> None:
        with self._cond:
            if message.get("response"):
                self._responses[str(message.get("token", ""))] = message
            elif message.get("event"):
                log.debug("baresip:%s event %s", self.port, message)
                self._events.append(message)
            self._cond.notify_all()

    def command(self, command: str, params: str = "", *, timeout: float = 10.0) -> Event:
        """Send a command and return its response (``{"response": true, "ok": ..., "data"}``).

        Raises:
            BaresipError: no response within ``timeout``, or the connection closed.
        """
        token = str(next(self._tokens))
        request = {"command": command, "params": params, "token": token}
        self._sock.sendall(netstring(json.dumps(request).encode()))
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                remaining = deadline - time.monotonic()
                if self._closed:
                    raise BaresipError(f"ctrl connection closed waiting for {command!r}")
                if remaining <= 0:
                    raise BaresipError(f"no response to {command!r} within {timeout}s")
                self._cond.wait(remaining)
            return self._responses.pop(token)

    @property
    def events(self) -> list[Event]:
        """Every event received so far, in order."""
        with self._cond:
            return list(self._events)

    def wait_event(self, match: EventMatch, timeout: float) -> Event:
        """Return the first not-yet-returned event that matches.

        Args:
            match: an event type (``"CALL_ESTABLISHED"``) or a predicate on the event dict.
            timeout: seconds to wait.

        Raises:
            BaresipError: no such event within ``timeout`` (the message lists what came).
        """
        predicate = _event_matcher(match)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for index, event in enumerate(self._events):
                    if index not in self._consumed and predicate(event):
                        self._consumed.add(index)
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    seen = [e.get("type") for e in self._events]
                    why = "connection closed" if self._closed else f"{timeout}s passed"
                    raise BaresipError(f"no matching event ({why}); events so far: {seen}")
                self._cond.wait(remaining)

    def close(self) -> None:
        """Close the connection and stop the reader thread."""
        with self._cond:
            self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=2.0)


def _connect_retrying(port: int, timeout: float) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection((LOOPBACK, port), timeout=2.0)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise BaresipError(f"ctrl_tcp on port {port} not reachable: {exc}") from exc
            time.sleep(0.05)
            continue
        # The reader thread blocks; the connect timeout must not carry over to recv().
        sock.settimeout(None)
        return sock


# --- the softphone ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """One baresip account line (``accounts`` file).

    With a ``registrar`` the AOR's host:port is that registrar and baresip REGISTERs every
    ``regint`` seconds with digest credentials; without one it does not register and is
    reachable directly at its own ``sip_listen`` address.
    """

    user: str
    """User part of the AOR (the extension)."""
    registrar: str | None = None
    """``host:port`` of the registrar, or None for a direct-dial account."""
    password: str | None = None
    """Digest password (``auth_pass``)."""
    regint: int = 600
    """Registration interval in seconds (ignored without a registrar)."""
    answermode: str = "auto"
    """``auto`` answers incoming calls at once; ``manual`` leaves them ringing."""
    codecs: Sequence[str] = ("PCMU", "PCMA")
    """Offered audio codecs, in order."""
    extra: str = ""
    """Further ``;name=value`` account parameters, appended verbatim."""

    def line(self, own_address: str) -> str:
        """The account line; ``own_address`` is used as the AOR host without a registrar."""
        host = self.registrar or own_address
        params = []
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        params.append(f"regint={self.regint if self.registrar else 0}")
        params.append(f"answermode={self.answermode}")
        params.append("audio_codecs=" + ",".join(self.codecs))
        line = f"<sip:{self.user}@{host}>;" + ";".join(params)
        return line + self.extra


class Baresip:
    """One baresip process with its own config directory and ports.

    Args:
        workdir: parent directory; the instance uses ``workdir/<name>``.
        name: instance name (directory and log label).
        account: the account to load.
        audio_source: 16-bit mono WAV played as the microphone (make it longer than the call).
        rtp_port_count: size of this instance's RTP port range.
        lifetime_s: baresip quits by itself after this long (``-t``), whatever happens to the
            test process.
        extra_config: further config lines, appended verbatim.
    """

    def __init__(
        self,
        *,
        workdir: Path,
        name: str,
        account: Account,
        audio_source: Path,
        rtp_port_count: int = 10,
        lifetime_s: int = 300,
        extra_config: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.dir = workdir / name
        self.config_dir = self.dir / "config"
        self.recordings_dir = self.dir / "recordings"
        self.log_path = self.dir / "baresip.log"
        self.account = account
        self.audio_source = audio_source
        # SIP listens on UDP and TCP on the same port, and baresip opens SIP over TLS on the
        # next one: both must be free, or it fails to start ("Address already in use").
        self.sip_port = free_port_range(2, udp=True, tcp=True)
        self.ctrl_port = free_tcp_port()
        self.rtp_ports = (first := free_port_range(rtp_port_count), first + rtp_port_count - 1)
        self.lifetime_s = lifetime_s
        self.extra_config = tuple(extra_config)
        self._process: ManagedProcess | None = None
        self._ctrl: BaresipCtrl | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:<sip port>``."""
        return f"{LOOPBACK}:{self.sip_port}"

    @property
    def direct_uri(self) -> str:
        """A SIP URI that reaches this instance without a registrar."""
        return f"sip:{self.account.user}@{self.address}"

    @property
    def ctrl(self) -> BaresipCtrl:
        """The control connection (after :meth:`start`)."""
        if self._ctrl is None:
            raise BaresipError(f"{self.name} is not started")
        return self._ctrl

    def config_text(self) -> str:
        """The ``config`` file contents."""
        lines = [
            ("poll_method", "epoll"),
            ("sip_listen", self.address),
            ("net_interface", LOOPBACK),
            ("call_local_timeout", "120"),
            ("call_max_calls", "4"),
            ("audio_source", f"aufile,{self.audio_source}"),
            ("audio_player", "aubridge,nowhere"),
            ("audio_alert", "aubridge,nowhere"),
            ("ausrc_format", "s16"),
            ("auplay_format", "s16"),
            ("auenc_format", "s16"),
            ("audec_format", "s16"),
            ("audio_buffer", "20-160"),
            ("rtp_ports", f"{self.rtp_ports[0]}-{self.rtp_ports[1]}"),
            ("jitter_buffer_delay", "5-10"),
            ("rtp_stats", "yes"),
            ("module_path", str(MODULE_PATH)),
            ("module", "g711.so"),
            ("module", "aufile.so"),
            ("module", "aubridge.so"),
            ("module", "sndfile.so"),
            ("module_tmp", "uuid.so"),
            ("module_tmp", "account.so"),
            ("module_app", "menu.so"),
            ("module_app", "ctrl_tcp.so"),
            ("ctrl_tcp_listen", f"{LOOPBACK}:{self.ctrl_port}"),
            ("snd_path", str(self.recordings_dir)),
        ]
        text = "\n".join(f"{key:<24}{value}" for key, value in lines)
        return text + "\n" + "".join(f"{line}\n" for line in self.extra_config)

    def write_config(self) -> None:
        """Write ``config``, ``accounts`` and an empty ``contacts`` into the config dir."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "config").write_text(self.config_text())
        (self.config_dir / "accounts").write_text(self.account.line(self.address) + "\n")
        (self.config_dir / "contacts").write_text("")

    def start(self, *, ready_timeout: float = 10.0) -> Self:
        """Write the config, start baresip and connect to its control port.

        Raises:
            BaresipError: it exited or its control port did not open in time.
        """
        if not self.audio_source.exists():
            raise BaresipError(f"audio source {self.audio_source} does not exist")
        self.write_config()
        argv = ["baresip", "-f", str(self.config_dir), "-t", str(self.lifetime_s)]
        self._process = ManagedProcess(argv, log_path=self.log_path, cwd=self.dir, name=self.name)
        self._process.start()
        try:
            self._ctrl = BaresipCtrl(self.ctrl_port, connect_timeout=ready_timeout)
        except BaresipError as exc:
            output = self._process.read_log(tail=3000)
            self._process.stop(grace=1.0)
            raise BaresipError(f"{self.name} did not become ready: {exc}\n{output}") from exc
        return self

    def running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.running()

    # --- commands --------------------------------------------------------------------------

    def command(self, command: str, params: str = "", *, timeout: float = 10.0) -> Event:
        """Send a control command and return the response.

        Raises:
            BaresipError: no response, or the response says ``ok: false``.
        """
        response = self.ctrl.command(command, params, timeout=timeout)
        if not response.get("ok", False):
            raise BaresipError(f"{self.name}: {command} {params!r} failed: {response}")
        return response

    def dial(self, uri: str) -> Event:
        """Start a call to ``uri``."""
        return self.command("dial", uri)

    def hangup(self) -> Event:
        """Hang up the current call."""
        return self.command("hangup")

    def accept(self) -> Event:
        """Answer the ringing incoming call (for ``answermode=manual``)."""
        return self.command("accept")

    def send_dtmf(self, digits: str) -> None:
        """Send DTMF digits in the current call, one ``sndcode`` command each."""
        for digit in digits:
            self.command("sndcode", digit)

    def reginfo(self) -> str:
        """The ``reginfo`` text (registration status of the account)."""
        return str(self.command("reginfo").get("data", ""))

    def wait_event(self, match: EventMatch, timeout: float = 10.0) -> Event:
        """See :meth:`BaresipCtrl.wait_event`."""
        return self.ctrl.wait_event(match, timeout)

    def registration_state(self) -> str:
        """The account's registration state from ``reginfo``: ``"OK"``, ``"ERR"`` or ``""``.

        ``""`` means no outcome yet (or no registrar). ``reginfo`` is read rather than the
        ``REGISTER_OK`` event because the first registration often completes before the
        control connection is up, and that event is then never seen.
        """
        text = _ANSI.sub("", self.reginfo())
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == ">" and words[2] in ("OK", "ERR"):
                return words[2]
        return ""

    def wait_registered(self, timeout: float = 10.0) -> None:
        """Wait until the account is registered.

        Raises:
            BaresipError: registration failed, or had no outcome within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.registration_state()
            if state == "OK":
                return
            if state == "ERR":
                break
            time.sleep(0.05)
        raise BaresipError(
            f"{self.name}: registration state {state or 'pending'!r} after {timeout}s; "
            f"log tail:\n{self.read_log(tail=2000)}"
        )

    def wait_established(self, timeout: float = 10.0) -> Event:
        """Wait for ``CALL_ESTABLISHED``."""
        return self.wait_event("CALL_ESTABLISHED", timeout)

    def wait_closed(self, timeout: float = 10.0) -> Event:
        """Wait for ``CALL_CLOSED``."""
        return self.wait_event("CALL_CLOSED", timeout)

    # --- recordings ------------------------------------------------------------------------

    def received_recordings(self) -> list[Path]:
        """WAV dumps of decoded (received) audio, oldest first (one per call)."""
        return sorted(self.recordings_dir.glob("*-dec.wav"))

    def sent_recordings(self) -> list[Path]:
        """WAV dumps of encoded (sent) audio, oldest first (one per call)."""
        return sorted(self.recordings_dir.glob("*-enc.wav"))

    # --- shutdown --------------------------------------------------------------------------

    def stop(self, *, grace: float = 2.0) -> int | None:
        """Quit baresip: ``quit`` command, then SIGINT (twice), then SIGKILL, all by PID.

        Returns:
            The exit status, or None if it was never started.
        """
        if self._process is None:
            return None
        if self._process.running() and self._ctrl is not None:
            with contextlib.suppress(BaresipError, OSError):
                self._ctrl.command("quit", timeout=1.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=grace)
        for _ in range(2):
            # A second SIGINT makes baresip skip waiting for un-REGISTER.
            if not self._process.running():
                break
            self._process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=1.0)
        code = self._process.stop(grace=1.0)
        if self._ctrl is not None:
            self._ctrl.close()
            self._ctrl = None
        return code

    def read_log(self, tail: int | None = None) -> str:
        """baresip's captured output."""
        return self._process.read_log(tail) if self._process is not None else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
