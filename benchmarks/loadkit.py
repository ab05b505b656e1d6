"""What the switch benchmarks measure, and the rig they measure it on.

The rig is a real ``minicc serve`` (:class:`tests.interop.server.MiniccServer`) with a sipp
callee registered to it (``register.xml``, then a server scenario on the same port), driven
by a sipp caller; all on 127.0.0.1, every process started here stopped here by PID.

Measurements come from the kernel, not from the programs measured:

- CPU: ``utime + stime`` of ``/proc/<pid>/stat`` (all threads), before and after.
- Memory: ``VmRSS`` of ``/proc/<pid>/status``.
- UDP drops: the ``drops`` column of ``/proc/net/udp``, per socket, so that drops on
  minicc's relay ports are told apart from drops elsewhere; and ``/proc/net/snmp``.
- Machine load: ``/proc/stat``, to say how busy the two cores were with other work.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.interop.server import MiniccServer
from tests.interop.sipp import Sipp, SipUser

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
REGISTER = REPO / "tests" / "interop" / "scenarios" / "register.xml"
# For relays needing more ports than the harness hands out: below its 20000-32000 and far
# from the ephemeral range (32768-60999) where the SIP and HTTP ports are picked.
RELAY_PORTS = (2000, 19998)
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# --- /proc ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_kb(pid: int) -> int:
    """Resident set size in KiB."""
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE_KB


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def udp_socket_drops() -> dict[int, int]:
    """Kernel drop counters of the UDP sockets bound on 127.0.0.1 or any address, by port."""
    drops: dict[int, int] = {}
    with open("/proc/net/udp") as fh:
        next(fh)
        for line in fh:
            parts = line.split()
            host, port = parts[1].split(":")
            if host in ("0100007F", "00000000"):
                drops[int(port, 16)] = drops.get(int(port, 16), 0) + int(parts[-1])
    return drops


def udp_counters() -> dict[str, int]:
    """The ``Udp:`` line of ``/proc/net/snmp`` (InDatagrams, RcvbufErrors, ...)."""
    with open("/proc/net/snmp") as fh:
        rows = [line.split() for line in fh if line.startswith("Udp:")]
    return dict(zip(rows[0][1:], (int(v) for v in rows[1][1:]), strict=True))


def sysctl(name: str) -> str:
    try:
        return Path("/proc/sys", *name.split(".")).read_text().strip()
    except OSError:
        return "?"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of already sorted values; 0 when empty."""
    if not values:
        return 0.0
    rank = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return float(values[rank])


def median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        import uvloop  # type: ignore[import-not-found]

        uv = f"yes ({uvloop.__version__})"
    except ImportError:
        uv = "no"
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "uvloop": uv,
        "kernel": platform.release(),
        "sipp": _sipp_version(),
        "rmem_max": sysctl("net.core.rmem_max"),
        "wmem_max": sysctl("net.core.wmem_max"),
        "rmem_default": sysctl("net.core.rmem_default"),
        "nofile": _nofile(),
    }


def _sipp_version() -> str:
    import subprocess

    try:
        out = subprocess.run(["sipp", "-v"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    for line in out.splitlines():
        if "SIPp v" in line:
            return line.strip().split(" ", 1)[1].rstrip(".")
    return "?"


def _nofile() -> str:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"{soft}/{hard}"


# --- sipp output -------------------------------------------------------------------------------


def rtt_values(run: Sipp, rtd: int = 1) -> list[float]:
    """Response times (ms) of response-time counter ``rtd`` from sipp's ``-trace_rtt`` file."""
    values: list[float] = []
    for path in run.dir.glob("*_rtt.csv"):
        with path.open() as fh:
            next(fh, None)
            for line in fh:
                parts = line.strip().split(";")
                if len(parts) >= 3 and parts[2] == str(rtd):
                    values.append(float(parts[1]))
    return sorted(values)


def stats_rows(run: Sipp) -> list[dict[str, str]]:
    """Every row of the ``-stf`` statistics file (one per ``-fd`` period), oldest first."""
    import csv

    if not run.stats_path.exists():
        return []
    with run.stats_path.open(errors="replace") as fh:
        rows = [r for r in csv.reader(fh, delimiter=";") if any(c.strip() for c in r)]
    if len(rows) < 2:
        return []
    header = rows[0]
    return [dict(zip(header, row, strict=False)) for row in rows[1:]]


def seconds_to_create(rows: list[dict[str, str]], calls: int) -> float | None:
    """When (s since start, by the ``-fd 1`` rows) sipp had created ``calls`` calls."""
    for row in rows:
        try:
            created = int(float(row.get("TotalCallCreated", "0")))
        except ValueError:
            continue
        if created >= calls:
            elapsed = row.get("ElapsedTime(C)", "0:0:0")
            h, m, s = elapsed.split(":")[:3]
            return int(h) * 3600 + int(m) * 60 + float(s)
    return None


# --- the rig -----------------------------------------------------------------------------------


@dataclass
class Sampler:
    """Samples a process (and the switch's status API) while load runs."""

    pid: int
    http_url: str | None = None
    peak_rss_kb: int = 0
    peak_active: int = 0
    samples: list[dict[str, float]] = field(default_factory=list)

    def sample(self) -> dict[str, float]:
        now = time.monotonic()
        entry: dict[str, float] = {"t": now, "cpu": cpu_seconds(self.pid), "rss": rss_kb(self.pid)}
        if self.http_url:
            status = api_status(self.http_url)
            entry["active"] = float(status.get("active_calls", 0))
            entry["transactions"] = float(status.get("transactions", 0))
            self.peak_active = max(self.peak_active, int(entry["active"]))
        self.peak_rss_kb = max(self.peak_rss_kb, int(entry["rss"]))
        self.samples.append(entry)
        return entry


def api_status(http_url: str) -> dict[str, Any]:
    try:
        # Without the list of calls: encoding thousands of them every second would be load
        # the benchmark adds to the server it measures.
        with urllib.request.urlopen(f"{http_url}/api/status?calls=false", timeout=5) as resp:
            data = json.loads(resp.read())
    except OSError:
        return {}
    return data if isinstance(data, dict) else {}


class Rig:
    """minicc plus a registered sipp callee (extension 2002), in ``workdir``.

    Args:
        workdir: a fresh directory for this run's files.
        media_relay: run the RTP relay (off: SDP passes through, signaling only).
        rtp_ports: size of the relay's port range (4 per relayed call).
    """

    # Where the server's ``minicc`` package comes from (None: this checkout). Set from
    # ``bench_switch --server-path`` to measure a patched copy against the same harness.
    server_path: str | None = None

    def __init__(self, workdir: Path, *, media_relay: bool, rtp_ports: int = 200) -> None:
        self.workdir = workdir
        args = ["--log-level", "warning"]
        if not media_relay:
            args += ["--media-relay", "off"]
        self.rtp_range: tuple[int, int] | None = None
        if media_relay and rtp_ports > 1000:
            # Thousands of ports: a range of our own below the harness's (whose 20000-32000
            # fills up over a long session). The relay skips ports other programs hold.
            self.rtp_range = (RELAY_PORTS[0], min(RELAY_PORTS[0] + rtp_ports, RELAY_PORTS[1]))
            args += ["--rtp-port-min", str(self.rtp_range[0])]
            args += ["--rtp-port-max", str(self.rtp_range[1])]
            rtp_ports = 2
        env = {"PYTHONPATH": Rig.server_path} if Rig.server_path else None
        self.server = MiniccServer(workdir, extra_args=args, rtp_port_count=rtp_ports, env=env)
        if self.rtp_range is None:
            self.rtp_range = self.server.rtp_ports
        self.callee_port: int | None = None

    def start(self) -> Rig:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def pid(self) -> int:
        pid = self.server.pid
        assert pid is not None
        return pid

    def user(self, number: str) -> SipUser:
        return SipUser(user=number, password=self.server.extension(number).password)

    def register_callee(self, number: str = "2002") -> int:
        """REGISTER ``number`` from a fresh port; returns the port the callee must serve on."""
        run = Sipp(
            REGISTER, workdir=self.workdir, remote=self.server.sip_address,
            users=[self.user(number)], timeout_s=20, trace_messages=False,
        )  # fmt: skip
        result = run.run()
        if not result.ok:
            raise RuntimeError(f"callee {number} did not register:\n{result.describe()}")
        self.callee_port = run.local_port
        return run.local_port


def load_caller(
    workdir: Path,
    *,
    remote: str,
    scenario: str,
    user: SipUser,
    calls: int,
    rate: float,
    limit: int,
    talk_ms: int,
    timeout_s: float,
    service: str = "2002",
    substitutions: dict[str, str] | None = None,
) -> Sipp:
    """The sipp caller of a load test (not started): ``calls`` at ``rate`` per second."""
    return Sipp(
        SCENARIOS / scenario,
        workdir=workdir,
        remote=remote,
        service=service,
        users=[user],
        calls=calls,
        rate=rate,
        limit=limit,
        variables={"talkms": talk_ms},
        timeout_s=timeout_s,
        trace_messages=False,
        substitutions=substitutions,
        # -rp 1000: the rate is per second; -fd 1: a statistics row each second;
        # -trace_rtt: every response time, for the setup-time percentiles.
        extra_args=["-rp", "1000", "-fd", "1", "-trace_rtt", "-rtt_freq", "100"],
        name=f"caller-{rate:g}cps",
    )


def load_callee(
    workdir: Path, *, port: int | None, calls: int, timeout_s: float, rtp_echo: bool = False
) -> Sipp:
    """The sipp callee (``uas_load.xml``), answering at once; echoing RTP if asked."""
    return Sipp(
        SCENARIOS / "uas_load.xml",
        workdir=workdir,
        local_port=port,
        calls=calls,
        timeout_s=timeout_s,
        trace_messages=False,
        rtp_echo=rtp_echo,
        # A big echo socket buffer: the echo must not be where packets are lost.
        extra_args=["-fd", "1", *(["-rtp_buffsize", str(4 << 20)] if rtp_echo else [])],
        name="callee",
    )


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    """Progress on stderr (the benchmark's own console output)."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()
