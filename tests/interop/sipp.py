"""Run sipp (Debian package ``sip-tester``) from tests and read back what happened.

:class:`Sipp` builds a bounded command line (own SIP, control and media ports; ``-timeout``
always set; statistics and error traces to files), runs it in the foreground or background with
a wall-clock limit, kills it by PID past that, and returns a :class:`SippResult` with the exit
code, the final statistics row and the error trace.

Scenarios live in ``tests/interop/scenarios``; each file's header comment says what it does and
which ``-set`` variables it needs. Files containing ``@NAME@`` placeholders are templates, rendered
into the run's directory with ``substitutions`` (sipp cannot expand variables in some places, such
as ``rtp_stream`` paths).
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.interop.ports import LOOPBACK, free_port_range, free_udp_port, udp_port_bound
from tests.interop.process import ManagedProcess

log = logging.getLogger(__name__)

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
SIPP_PCAP_DIR = Path("/usr/share/sip-tester")
BUILTIN_SCENARIOS = frozenset({"uac", "uas", "regexp", "3pcc-C-A", "3pcc-C-B", "3pcc-A", "3pcc-B"})

# sipp's own exit codes (sipp(1), "EXIT STATUS").
EXIT_ALL_OK = 0
EXIT_SOME_FAILED = 1
EXIT_INTERNAL_COMMAND = 97
EXIT_NO_CALLS = 99

# Seconds the Python side waits past sipp's own -timeout before killing it.
_KILL_MARGIN_S = 10.0
_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
_GLOBALS = re.compile(r'<Global\s+variables="([^"]*)"')

# Defaults for the -set variables the scenarios in tests/interop/scenarios declare; "rtpport"
# defaults to the run's own media port (where -rtp_echo answers).
DEFAULT_VARIABLES: Mapping[str, str] = {
    "ringms": "0",
    "talkms": "2000",
    "expires": "3600",
}
_run_counter = itertools.count(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class SipUser:
    """A digest-auth identity for scenarios that read the users CSV."""

    user: str
    """User name, also the From/To user part ([field0])."""
    password: str
    """Digest password ([field1])."""

    def csv_line(self) -> str:
        # The whole [authentication] token must be in the file: sipp does not expand [fieldN]
        # inside it.
        return (
            f"{self.user};{self.password};"
            f"[authentication username={self.user} password={self.password}]"
        )


def write_users_csv(path: Path, users: Sequence[SipUser], order: str = "SEQUENTIAL") -> Path:
    """Write a sipp injection file: ``user;password;[authentication ...]`` per line.

    Args:
        path: file to write.
        users: one line each; call N uses line N modulo the count in SEQUENTIAL order.
        order: SEQUENTIAL, RANDOM or USER.

    Returns:
        ``path``.
    """
    if not users:
        raise ValueError("a users CSV needs at least one user")
    for u in users:
        if ";" in u.user or ";" in u.password or "]" in u.password:
            raise ValueError(f"{u.user!r}: ';' and ']' cannot appear in a sipp CSV field")
    path.write_text("\n".join([order, *(u.csv_line() for u in users)]) + "\n")
    return path


def parse_stats_csv(text: str) -> dict[str, str]:
    """Return the last row of a sipp ``-stf`` statistics file as ``{column: value}``.

    sipp writes a ``;``-separated header, then one row per dump; the last row holds the totals at
    exit. Cumulative counters end in ``(C)``, periodic ones in ``(P)``.

    Raises:
        ValueError: the text holds no data row.
    """
    rows = [r for r in csv.reader(text.splitlines(), delimiter=";") if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ValueError("sipp statistics file has no data row")
    header, last = rows[0], rows[-1]
    return {name: value for name, value in zip(header, last, strict=False) if name}


@dataclass(frozen=True, slots=True, kw_only=True)
class SippResult:
    """What one sipp run left behind."""

    argv: tuple[str, ...]
    """The command line that ran."""
    returncode: int
    """sipp's exit status (0: every call succeeded); negative if killed by a signal."""
    timed_out: bool
    """True if the harness had to kill sipp at its wall-clock limit."""
    stats: dict[str, str] = field(default_factory=dict)
    """Last (total) row of the statistics file; empty if sipp wrote none."""
    errors: str = ""
    """Contents of the -trace_err file (unexpected messages, failed checks)."""
    output: str = ""
    """sipp's stdout and stderr (its final screens)."""
    messages: str = ""
    """Contents of the -trace_msg file, when message tracing was on."""

    def counter(self, name: str) -> int:
        """Return a numeric statistics column, e.g. ``counter("FailedCall(C)")``.

        Raises:
            KeyError: the column is missing (no statistics, or a typo).
        """
        value = self.stats[name]
        return int(float(value))

    @property
    def successful(self) -> int:
        """Cumulative successful calls."""
        return self.counter("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        """Cumulative failed calls."""
        return self.counter("FailedCall(C)")

    @property
    def ok(self) -> bool:
        """True if sipp exited 0 in time with no failed call."""
        return (
            not self.timed_out
            and self.returncode == EXIT_ALL_OK
            and bool(self.stats)
            and self.failed == 0
        )

    def describe(self) -> str:
        """A multi-line summary for assertion messages."""
        keys = (
            "TotalCallCreated",
            "SuccessfulCall(C)",
            "FailedCall(C)",
            "Retransmissions(C)",
            "FailedMaxUDPRetrans(C)",
            "FailedUnexpectedMessage(C)",
            "FailedCallRejected(C)",
            "FailedTimeoutOnRecv(C)",
            "FailedTimeoutOnSend(C)",
        )
        counts = ", ".join(f"{k}={self.stats[k]}" for k in keys if k in self.stats)
        parts = [
            f"sipp exit={self.returncode} timed_out={self.timed_out}",
            f"argv: {' '.join(self.argv)}",
            f"stats: {counts or '(none)'}",
        ]
        if self.errors.strip():
            parts.append("errors:\n" + self.errors.strip()[-4000:])
        if self.messages.strip():
            parts.append("last messages:\n" + self.messages.strip()[-4000:])
        if self.output.strip():
            parts.append("output tail:\n" + self.output.strip()[-2000:])
        return "\n".join(parts)


def resolve_scenario(scenario: str | Path) -> Path:
    """Find a scenario file: a path, or a name in ``tests/interop/scenarios``."""
    path = Path(scenario)
    if path.is_absolute() or path.exists():
        return path
    candidate = SCENARIOS_DIR / path
    if candidate.suffix != ".xml":
        candidate = candidate.with_suffix(".xml")
    if not candidate.exists():
        raise FileNotFoundError(f"no sipp scenario {scenario!r} in {SCENARIOS_DIR}")
    return candidate


def render_scenario(source: Path, dest_dir: Path, substitutions: Mapping[str, str]) -> Path:
    """Copy a scenario into ``dest_dir``, replacing each ``@NAME@`` with ``substitutions[NAME]``.

    Raises:
        KeyError: the template has a placeholder with no substitution.
    """
    text = source.read_text(encoding="iso-8859-1")
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(substitutions))
    if missing:
        raise KeyError(f"{source.name} needs substitutions for {', '.join(missing)}")
    rendered = _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], text)
    dest = dest_dir / source.name
    dest.write_text(rendered, encoding="iso-8859-1")
    return dest


class Sipp:
    """One sipp process: a scenario file (or built-in) against one remote, with its own ports.

    Args:
        scenario: a built-in name (``"uas"``, ``"uac"``), a file name in
            ``tests/interop/scenarios`` (``"uac_call.xml"``) or a path.
        workdir: directory for this run's files; a fresh subdirectory is made inside it.
        remote: ``"host:port"`` to send to (UAC scenarios); None for a pure server.
        service: user part of the Request-URI (``-s``).
        local_port: SIP port (``-p``); a free UDP port if None.
        media_port: RTP port (``-mp``); a free block (port to port+3) if None.
        calls: stop after this many calls (``-m``).
        rate: calls per second (``-r``).
        limit: maximum simultaneous calls (``-l``).
        timeout_s: sipp's global ``-timeout`` (always set, with ``-timeout_error``); the
            harness kills it 10 s after that.
        users: digest identities written to ``users.csv`` and passed with ``-inf``.
        index_users: also pass ``-infindex users.csv 0`` (scenarios using ``<lookup>``).
        variables: ``-set NAME VALUE`` pairs.
        rtp_echo: echo received RTP (``-rtp_echo``) on ``media_port``.
        substitutions: values for ``@NAME@`` placeholders in a template scenario.
        transport: ``-t`` mode (``u1``: UDP, one socket; ``t1``: TCP).
        trace_messages: write every SIP message to a file (``-trace_msg``).
        extra_args: appended to the command line as given.
        name: label for file names and logs.
        local_ip: the address sipp sends from (``-i``); another loopback address such as
            127.0.0.2 makes it a different source for the switch.
    """

    def __init__(
        self,
        scenario: str | Path,
        *,
        workdir: Path,
        remote: str | None = None,
        service: str | None = None,
        local_port: int | None = None,
        media_port: int | None = None,
        calls: int = 1,
        rate: float | None = None,
        limit: int | None = None,
        timeout_s: float = 30.0,
        users: Sequence[SipUser] = (),
        index_users: bool = False,
        variables: Mapping[str, str | int | float] | None = None,
        rtp_echo: bool = False,
        substitutions: Mapping[str, str] | None = None,
        transport: str = "u1",
        trace_messages: bool = True,
        extra_args: Sequence[str] = (),
        name: str | None = None,
        local_ip: str = LOOPBACK,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("sipp runs are always bounded: timeout_s must be positive")
        self.scenario = str(scenario)
        self.builtin = self.scenario in BUILTIN_SCENARIOS
        base = name or Path(self.scenario).stem
        self.name = f"{base}-{next(_run_counter)}"
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=False)
        self.remote = remote
        self.service = service
        self.local_port = local_port if local_port is not None else free_udp_port()
        self.control_port = free_udp_port()
        # sipp binds -mp for audio and -mp+2 for video; keep the RTCP neighbours free too.
        self.media_port = media_port if media_port is not None else free_port_range(4)
        self.calls = calls
        self.rate = rate
        self.limit = limit
        self.timeout_s = timeout_s
        self.users = tuple(users)
        self.index_users = index_users
        self.variables = dict(variables or {})
        self.rtp_echo = rtp_echo
        self.substitutions = dict(substitutions or {})
        self.transport = transport
        self.trace_messages = trace_messages
        self.extra_args = tuple(extra_args)
        self.local_ip = local_ip
        self.stats_path = self.dir / "stats.csv"
        self.errors_path = self.dir / "errors.log"
        self.messages_path = self.dir / "messages.log"
        self.output_path = self.dir / "output.log"
        self._scenario_path = None if self.builtin else self._prepare_scenario()
        if self._scenario_path is not None:
            self._fill_default_variables(self._scenario_path)
        if self.users:
            write_users_csv(self.dir / "users.csv", self.users)
        elif self.index_users:
            raise ValueError("index_users needs users")
        self._process: ManagedProcess | None = None
        self._result: SippResult | None = None

    def _prepare_scenario(self) -> Path:
        source = resolve_scenario(self.scenario)
        if self.substitutions or _PLACEHOLDER.search(source.read_text(encoding="iso-8859-1")):
            return render_scenario(source, self.dir, self.substitutions)
        return source

    def _fill_default_variables(self, scenario: Path) -> None:
        declared = [
            name.strip()
            for match in _GLOBALS.finditer(scenario.read_text(encoding="iso-8859-1"))
            for name in match.group(1).split(",")
            if name.strip()
        ]
        for name in declared:
            if name in self.variables:
                continue
            if name == "rtpport":
                self.variables[name] = self.media_port
            elif name in DEFAULT_VARIABLES:
                self.variables[name] = DEFAULT_VARIABLES[name]
            else:
                raise ValueError(f"{scenario.name} needs a value for -set {name}")

    @property
    def address(self) -> str:
        """This sipp's SIP address, ``127.0.0.1:port``."""
        return f"{LOOPBACK}:{self.local_port}"

    @property
    def argv(self) -> list[str]:
        """The full sipp command line."""
        argv = ["sipp"]
        if self.remote:
            argv.append(self.remote)
        if self.builtin:
            argv += ["-sn", self.scenario]
        else:
            assert self._scenario_path is not None
            argv += ["-sf", str(self._scenario_path)]
        if self.service is not None:
            argv += ["-s", self.service]
        if self.users:
            # -inf must come before -infindex: the index refers to a file already loaded.
            argv += ["-inf", "users.csv"]
            if self.index_users:
                argv += ["-infindex", "users.csv", "0"]
        for key, value in self.variables.items():
            argv += ["-set", key, str(value)]
        argv += ["-t", self.transport]
        argv += ["-i", self.local_ip, "-p", str(self.local_port), "-cp", str(self.control_port)]
        argv += ["-mi", LOOPBACK, "-mp", str(self.media_port)]
        if self.rtp_echo:
            argv.append("-rtp_echo")
        argv += ["-m", str(self.calls)]
        if self.rate is not None:
            argv += ["-r", f"{self.rate:g}"]
        if self.limit is not None:
            argv += ["-l", str(self.limit)]
        argv += ["-timeout", f"{math.ceil(self.timeout_s)}s", "-timeout_error"]
        argv += ["-nostdin", "-trace_stat", "-stf", str(self.stats_path)]
        argv += ["-trace_err", "-error_file", str(self.errors_path)]
        if self.trace_messages:
            argv += ["-trace_msg", "-message_file", str(self.messages_path)]
        argv += list(self.extra_args)
        return argv

    def start(self) -> Self:
        """Start sipp in the background; collect the outcome later with :meth:`wait`."""
        if self._process is not None:
            raise RuntimeError(f"{self.name} was already started")
        self._process = ManagedProcess(
            self.argv, log_path=self.output_path, cwd=self.dir, name=self.name
        )
        self._process.start()
        return self

    def running(self) -> bool:
        """Return True while the sipp process is alive."""
        return self._process is not None and self._process.running()

    def wait_ready(self, timeout: float = 5.0) -> Self:
        """Wait until this (background) sipp has bound its SIP port.

        Call it after :meth:`start` on a server scenario, before a client sends to it.

        Raises:
            RuntimeError: sipp exited first, or did not bind within ``timeout``.
        """
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        deadline = time.monotonic() + timeout
        while not udp_port_bound(self.local_port):
            if not self._process.running():
                raise RuntimeError(
                    f"{self.name} exited before binding port {self.local_port}:\n"
                    + self.wait(timeout=1.0).describe()
                )
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{self.name} did not bind port {self.local_port} in {timeout}s")
            time.sleep(0.01)
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for sipp to finish and return its result.

        Args:
            timeout: wall-clock seconds to wait; default sipp's ``-timeout`` plus 10 s. Past it
                sipp is killed by PID and the result says ``timed_out``.
        """
        if self._result is not None:
            return self._result
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        limit = timeout if timeout is not None else self.timeout_s + _KILL_MARGIN_S
        timed_out = False
        try:
            code = self._process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            log.warning("%s still running after %.1fs; stopping it", self.name, limit)
            stopped = self._process.stop(grace=2.0)
            code = stopped if stopped is not None else -1
        self._result = self._collect(code, timed_out)
        log.info("%s finished: exit=%s stats=%s", self.name, code, self._result.describe())
        return self._result

    def run(self, timeout: float | None = None) -> SippResult:
        """Run sipp in the foreground: :meth:`start` then :meth:`wait`."""
        return self.start().wait(timeout)

    def stop(self) -> SippResult | None:
        """Stop a background sipp early (SIGTERM by PID, then SIGKILL) and return its result."""
        if self._process is None:
            return None
        if self._result is None:
            code = self._process.stop(grace=3.0)
            self._result = self._collect(code if code is not None else -1, timed_out=False)
        return self._result

    def _collect(self, code: int, timed_out: bool) -> SippResult:
        stats: dict[str, str] = {}
        if self.stats_path.exists():
            try:
                stats = parse_stats_csv(self.stats_path.read_text(errors="replace"))
            except ValueError:
                stats = {}
        return SippResult(
            argv=tuple(self.argv),
            returncode=code,
            timed_out=timed_out,
            stats=stats,
            errors=_read(self.errors_path),
            output=_read(self.output_path),
            messages=_read(self.messages_path),
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
