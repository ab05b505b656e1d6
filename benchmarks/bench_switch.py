"""Load benchmarks of the switch with sipp; they write ``docs/performance.md``.

    python -m benchmarks.bench_switch all            # everything, ~1 hour, then the doc
    python -m benchmarks.bench_switch all --quick    # smoke check, ~2 minutes, no doc
    python -m benchmarks.bench_switch cps|baseline|media|held [options]
    python -m benchmarks.bench_switch report         # rewrite the doc from the results

Benchmarks (each one starts its own minicc and sipp on 127.0.0.1, bounded in calls and time):

- ``cps``: signaling only (``--media-relay off``: SDP passes through, no RTP), a sipp caller
  makes 10 s calls at a fixed rate for 60 s through minicc's B2BUA to a registered sipp
  callee; every INVITE is digest-challenged, so each call is INVITE/401/ACK/INVITE/100/180/
  200/ACK, then BYE/200, on both legs. A rate passes when under 0.1 % of calls fail and sipp
  created them at (at least 97 % of) the rate. ``--relay on`` repeats it with the relay.
- ``baseline``: the same caller and callee, sipp to sipp, no minicc: the load generator's own
  limit and cost.
- ``media``: N calls with G.711 A-law RTP both ways (the caller streams 20 ms packets, the
  callee echoes them) held for 60 s through the relay, plus the RTP probe
  (:mod:`benchmarks.rtp_probe`) measuring loss and delay packet by packet.
- ``held``: N signaling-only calls held at once; the server's memory per call.

Results go to ``benchmarks/results/<benchmark>.json`` (``--quick``: ``*-quick.json``); the
doc is written from them (:mod:`benchmarks.report`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import loadkit
from benchmarks.loadkit import Rig, Sampler, log
from minicc.switch.media.g711 import linear_to_alaw
from minicc.switch.media.wav import WAVE_FORMAT_ALAW, WavFormat, wav_header
from tests.interop.sipp import Sipp

RESULTS = Path(__file__).resolve().parent / "results"
FAIL_LIMIT_PCT = 0.1  # (a): fewer than 0.1 % failed calls
RATE_TOLERANCE = 0.97  # sipp must create the calls at the rate asked, within 3 %
MEDIA_LOSS_LIMIT_PCT = 0.5
MEDIA_PDV_LIMIT_MS = 5.0

Result = dict[str, Any]


# --- one run of each benchmark ---------------------------------------------------------------


def signaling_run(
    workdir: Path, *, rate: float, seconds: float, talk_ms: int, relay: bool
) -> Result:
    """``rate`` calls per second for ``seconds``, each held ``talk_ms``, through minicc."""
    calls = max(1, round(rate * seconds))
    limit = math.ceil(rate * (talk_ms / 1000 + 10))  # room for slow setups, still bounded
    timeout = seconds + talk_ms / 1000 + 60
    # Four ports per live call (two RTP/RTCP pairs), with room for slow hang-ups.
    ports = math.ceil(rate * talk_ms / 1000 * 4 * 1.1) + 400 if relay else 200
    rig = Rig(workdir, media_relay=relay, rtp_ports=ports)
    rig.start()
    try:
        port = rig.register_callee()
        callee = loadkit.load_callee(workdir, port=port, calls=calls, timeout_s=timeout + 30)
        callee.start().wait_ready()
        caller = loadkit.load_caller(
            workdir, remote=rig.server.sip_address, scenario="uac_load.xml",
            user=rig.user("2001"), calls=calls, rate=rate, limit=limit, talk_ms=talk_ms,
            timeout_s=timeout,
        )  # fmt: skip
        return _measure_signaling(rig, caller, callee, calls, rate, seconds, talk_ms)
    finally:
        rig.stop()


def baseline_run(workdir: Path, *, rate: float, seconds: float, talk_ms: int) -> Result:
    """The same caller straight to the callee, no minicc in between."""
    calls = max(1, round(rate * seconds))
    limit = math.ceil(rate * (talk_ms / 1000 + 10))
    timeout = seconds + talk_ms / 1000 + 60
    callee = loadkit.load_callee(workdir, port=None, calls=calls, timeout_s=timeout + 30)
    callee.start().wait_ready()
    try:
        from tests.interop.sipp import SipUser

        caller = loadkit.load_caller(
            workdir, remote=callee.address, scenario="uac_load.xml",
            user=SipUser(user="2001", password="unused"), calls=calls, rate=rate, limit=limit,
            talk_ms=talk_ms, timeout_s=timeout,
        )  # fmt: skip
        return _measure_signaling(None, caller, callee, calls, rate, seconds, talk_ms)
    finally:
        callee.stop()


def _measure_signaling(
    rig: Rig | None, caller: Sipp, callee: Sipp, calls: int, rate: float, seconds: float,
    talk_ms: int,
) -> Result:  # fmt: skip
    sampler = Sampler(rig.pid, rig.server.http_url) if rig is not None else None
    start = sampler.sample() if sampler is not None else None
    busy0 = loadkit.machine_jiffies()
    caller.start()
    callee_pid = callee._process.pid if callee._process is not None else None
    deadline = time.monotonic() + caller.timeout_s + 15
    caller_cpu = callee_cpu = 0.0
    while caller.running() and time.monotonic() < deadline:
        time.sleep(1.0)
        if sampler is not None:
            sampler.sample()
        caller_cpu = _cpu_or(caller, caller_cpu)
        callee_cpu = _cpu_or(callee, callee_cpu, callee_pid)
    result = caller.wait()
    busy1 = loadkit.machine_jiffies()
    end = sampler.sample() if sampler is not None else None
    callee_result = callee.wait(timeout=40)
    rows = loadkit.stats_rows(caller)
    created_in = loadkit.seconds_to_create(rows, calls)
    setup = loadkit.rtt_values(caller, rtd=1)
    successful = result.successful if result.stats else 0
    failed = result.failed if result.stats else calls
    created = result.counter("TotalCallCreated") if result.stats else 0
    failed_pct = (failed + max(0, calls - created)) / calls * 100
    achieved = calls / created_in if created_in else 0.0
    out: Result = {
        "rate": rate,
        "seconds": seconds,
        "talk_ms": talk_ms,
        "calls": calls,
        "created": created,
        "successful": successful,
        "failed": failed,
        "failed_pct": failed_pct,
        "retransmissions": result.counter("Retransmissions(C)") if result.stats else None,
        "created_in_s": created_in,
        "achieved_rate": achieved,
        "setup_ms": {f"p{q:g}": loadkit.percentile(setup, q) for q in (50, 95, 99, 100)},
        "caller_cpu_ms_per_call": caller_cpu / max(1, created) * 1000,
        "callee_cpu_ms_per_call": callee_cpu / max(1, created) * 1000,
        "callee_ok": callee_result.ok,
        "sipp_exit": result.returncode,
        "machine_busy_pct": _busy_pct(busy0, busy1),
        "passed": failed_pct < FAIL_LIMIT_PCT and achieved >= RATE_TOLERANCE * rate,
    }
    if start is not None and end is not None and sampler is not None:
        out.update(
            server_cpu_ms_per_call=(end["cpu"] - start["cpu"]) / max(1, successful) * 1000,
            server_cpu_pct=(end["cpu"] - start["cpu"]) / (end["t"] - start["t"]) * 100,
            server_base_rss_mb=start["rss"] / 1024,
            server_peak_rss_mb=sampler.peak_rss_kb / 1024,
            peak_active_calls=sampler.peak_active,
        )
        if created_in:
            # CPU while calls were being created (the loaded part of the run).
            window = [s for s in sampler.samples if s["t"] - start["t"] <= created_in]
            if len(window) >= 2:
                span = window[-1]["t"] - window[0]["t"]
                out["server_cpu_pct_loaded"] = (window[-1]["cpu"] - window[0]["cpu"]) / span * 100
    if not out["passed"]:
        out["why"] = result.describe()[-1500:]
    return out


def _cpu_or(run: Sipp, last: float, pid: int | None = None) -> float:
    pid = pid or (run._process.pid if run._process is not None else None)
    if pid is None:
        return last
    try:
        return loadkit.cpu_seconds(pid)
    except OSError:
        return last


def _busy_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total * 100 if total else 0.0


def _tone_wav(path: Path, seconds: float = 4.0) -> Path:
    """An 8 kHz A-law WAV of a 440 Hz tone, for sipp's rtp_stream."""
    samples = bytes(
        linear_to_alaw(int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
        for i in range(int(8000 * seconds))
    )
    fmt = WavFormat(format_tag=WAVE_FORMAT_ALAW, channels=1, sample_rate=8000, bits_per_sample=8)
    path.write_bytes(wav_header(fmt, len(samples)) + samples)
    return path


def media_run(workdir: Path, *, calls: int, hold_s: float, probe_calls: int) -> Result:
    """``calls`` relayed calls with RTP both ways, held while the probe measures."""
    rate = 50.0
    ramp = calls / rate
    talk_ms = round((ramp + 15 + hold_s + probe_calls * 0.2) * 1000)
    timeout = ramp + talk_ms / 1000 + 90
    rig = Rig(workdir, media_relay=True, rtp_ports=(calls + probe_calls + 20) * 4 + 200)
    rig.start()
    try:
        port = rig.register_callee()
        callee = loadkit.load_callee(
            workdir, port=port, calls=calls, timeout_s=timeout + 30, rtp_echo=True
        )
        callee.start().wait_ready()
        wav = _tone_wav(workdir / "tone-alaw.wav")
        caller = loadkit.load_caller(
            workdir, remote=rig.server.sip_address, scenario="uac_media.xml",
            user=rig.user("2001"), calls=calls, rate=rate, limit=calls, talk_ms=talk_ms,
            timeout_s=timeout, substitutions={"AUDIO_WAV": str(wav)},
        )  # fmt: skip
        sampler = Sampler(rig.pid, rig.server.http_url)
        before = sampler.sample()
        caller.start()
        deadline = time.monotonic() + ramp + 30
        while sampler.sample().get("active", 0) < calls:
            if time.monotonic() > deadline or not caller.running():
                raise RuntimeError(f"only {sampler.peak_active} of {calls} calls came up")
            time.sleep(0.5)
        time.sleep(2.0)  # let the last streams start
        drops0, snmp0, busy0 = (
            loadkit.udp_socket_drops(), loadkit.udp_counters(), loadkit.machine_jiffies()
        )  # fmt: skip
        held = sampler.sample()
        probe = _run_probe(rig, probe_calls, hold_s)
        after = sampler.sample()
        drops1, snmp1, busy1 = (
            loadkit.udp_socket_drops(), loadkit.udp_counters(), loadkit.machine_jiffies()
        )  # fmt: skip
        result = caller.wait()
        callee.wait(timeout=60)
    finally:
        rig.stop()
    assert rig.rtp_range is not None
    lo, hi = rig.rtp_range
    relay_drops = sum(v - drops0.get(p, 0) for p, v in drops1.items() if lo <= p <= hi)
    echo_drops = drops1.get(callee.media_port, 0) - drops0.get(callee.media_port, 0)
    span = after["t"] - held["t"]
    # Every call: the caller's 50 packets/s in on side a, the echo's 50/s in on side b.
    relayed_in = calls * 2 * 50 * span
    cpu = after["cpu"] - held["cpu"]
    out: Result = {
        "calls": calls,
        "probe_calls": probe_calls,
        "hold_s": span,
        "successful": result.successful if result.stats else 0,
        "failed": result.failed if result.stats else calls,
        "probe": probe,
        "relay_socket_drops": relay_drops,
        "relay_drop_pct": relay_drops / relayed_in * 100 if relayed_in else 0.0,
        "echo_socket_drops": echo_drops,
        "relayed_packets_per_s": relayed_in / span if span else 0.0,
        "udp_rcvbuf_errors_machine": snmp1.get("RcvbufErrors", 0) - snmp0.get("RcvbufErrors", 0),
        "server_cpu_pct": cpu / span * 100 if span else 0.0,
        "server_cpu_us_per_packet": cpu / relayed_in * 1e6 if relayed_in else 0.0,
        "server_cpu_pct_per_call": cpu / span * 100 / calls if span else 0.0,
        "server_base_rss_mb": before["rss"] / 1024,
        "server_rss_mb": after["rss"] / 1024,
        "rss_kb_per_call": (after["rss"] - before["rss"]) / (calls + probe_calls),
        "machine_busy_pct": _busy_pct(busy0, busy1),
    }
    worst_loss = max(
        (d.get("loss_pct", 100.0) for k, d in probe.items() if k != "direct"), default=100.0
    ) if "error" not in probe else 100.0  # fmt: skip
    worst_pdv = max(
        (d.get("pdv_p99_us", 1e9) for k, d in probe.items() if k != "direct"), default=1e9
    ) if "error" not in probe else 1e9  # fmt: skip
    out["worst_loss_pct"] = max(worst_loss, out["relay_drop_pct"])
    out["worst_pdv_p99_ms"] = worst_pdv / 1000
    out["passed"] = (
        out["failed"] == 0
        and out["worst_loss_pct"] < MEDIA_LOSS_LIMIT_PCT
        and out["worst_pdv_p99_ms"] < MEDIA_PDV_LIMIT_MS
    )
    return out


def _run_probe(rig: Rig, calls: int, seconds: float) -> dict[str, Any]:
    argv = [
        sys.executable, "-m", "benchmarks.rtp_probe", "--sip", rig.server.sip_address,
        "--caller", f"2001:{rig.server.extension('2001').password}",
        "--callee", f"2003:{rig.server.extension('2003').password}",
        "--calls", str(calls), "--seconds", str(seconds),
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            argv, cwd=loadkit.REPO, capture_output=True, text=True, timeout=seconds + 150
        )
    except subprocess.TimeoutExpired:
        return {"error": "probe timed out"}
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"probe exit {proc.returncode}: {proc.stderr[-1000:]}"}
    return data if isinstance(data, dict) else {"error": "probe printed no object"}


def held_run(
    workdir: Path, *, calls: int, rate: float, hold_s: float, settle_s: float = 36.0
) -> Result:
    """``calls`` signaling-only calls up at once; memory per call once transactions expired.

    ``settle_s`` after the last call is up: past Timers L, M and J (64*T1 = 32 s) only the
    calls and their dialogs remain.
    """
    ramp = calls / rate
    talk_ms = round((ramp + settle_s + 4 + hold_s) * 1000)
    timeout = ramp + talk_ms / 1000 + 90
    rig = Rig(workdir, media_relay=False)
    rig.start()
    try:
        port = rig.register_callee()
        callee = loadkit.load_callee(workdir, port=port, calls=calls, timeout_s=timeout + 30)
        callee.start().wait_ready()
        caller = loadkit.load_caller(
            workdir, remote=rig.server.sip_address, scenario="uac_load.xml",
            user=rig.user("2001"), calls=calls, rate=rate, limit=calls, talk_ms=talk_ms,
            timeout_s=timeout,
        )  # fmt: skip
        sampler = Sampler(rig.pid, rig.server.http_url)
        time.sleep(1.0)
        before = sampler.sample()
        caller.start()
        up_by = time.monotonic() + ramp + 30
        while sampler.sample().get("active", 0) < calls:
            if time.monotonic() > up_by or not caller.running():
                raise RuntimeError(f"only {sampler.peak_active} of {calls} calls came up")
            time.sleep(1.0)
        all_up = time.monotonic()
        time.sleep(max(0.0, settle_s - (time.monotonic() - all_up)))
        held = []
        while len(held) < max(3, int(hold_s / 2)):
            sample = sampler.sample()
            if sample.get("active", 0) >= calls:
                held.append(sample)
            time.sleep(1.0)
        result = caller.wait()
        callee.wait(timeout=60)
        end = sampler.sample()
    finally:
        rig.stop()
    rss_held = loadkit.median(s["rss"] for s in held)
    transactions = loadkit.median(s.get("transactions", 0) for s in held)
    return {
        "calls": calls,
        "rate": rate,
        "successful": result.successful if result.stats else 0,
        "failed": result.failed if result.stats else calls,
        "base_rss_mb": before["rss"] / 1024,
        "held_rss_mb": rss_held / 1024,
        "rss_kb_per_call": (rss_held - before["rss"]) / calls,
        "transactions_while_held": transactions,
        "server_cpu_ms_per_call": (end["cpu"] - before["cpu"]) / max(1, calls) * 1000,
        "passed": (result.failed if result.stats else 1) == 0,
    }


# --- drivers: several runs, results to JSON -------------------------------------------------


def _repeat(label: str, runs: int, fn: Callable[[Path], Result], keep: bool) -> list[Result]:
    out = []
    for i in range(1, runs + 1):
        workdir = Path(tempfile.mkdtemp(prefix=f"minicc-bench-{label}-"))
        log(f"{label}: run {i}/{runs} in {workdir}")
        try:
            result = fn(workdir)
        except (RuntimeError, OSError) as exc:
            result = {"error": str(exc), "passed": False}
        finally:
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
        result["run"] = i
        log(f"{label}: {_brief(result)}")
        out.append(result)
    return out


def _brief(result: Result) -> str:
    keys = (
        "passed", "failed_pct", "achieved_rate", "server_cpu_ms_per_call", "setup_ms",
        "worst_loss_pct", "worst_pdv_p99_ms", "server_cpu_pct", "rss_kb_per_call", "error",
    )  # fmt: skip
    return ", ".join(f"{k}={_fmt(result[k])}" for k in keys if k in result)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def cps_sweep(args: argparse.Namespace, *, relay: bool) -> dict[str, Any]:
    """Rates in ascending order until one fails (first run); then the boundary again."""
    label = "cps-relay" if relay else "cps"

    def at(rate: float, runs: int) -> list[Result]:
        return _repeat(
            f"{label}-{rate:g}", runs,
            lambda wd: signaling_run(
                wd, rate=rate, seconds=args.seconds, talk_ms=args.talk_ms, relay=relay
            ),
            args.keep,
        )  # fmt: skip

    by_rate: dict[float, list[Result]] = {}
    for rate in args.rates:
        by_rate[rate] = at(rate, 1)
        if not by_rate[rate][0]["passed"]:
            break
    passing = [r for r, res in by_rate.items() if res[0]["passed"]]
    again = {min(args.rates)}
    if passing:
        again.add(max(passing))
    failing = [r for r, res in by_rate.items() if not res[0]["passed"]]
    if failing:
        again.add(min(failing))
    for rate in sorted(again):
        if args.runs > 1:
            by_rate[rate] += at(rate, args.runs - 1)
    return {
        "relay": relay,
        "seconds": args.seconds,
        "talk_ms": args.talk_ms,
        "runs": {f"{rate:g}": results for rate, results in sorted(by_rate.items())},
    }


def baseline_sweep(args: argparse.Namespace) -> dict[str, Any]:
    runs = {}
    for rate in args.rates:
        runs[f"{rate:g}"] = _repeat(
            f"baseline-{rate:g}", args.runs,
            lambda wd, rate=rate: baseline_run(
                wd, rate=rate, seconds=args.seconds, talk_ms=args.talk_ms
            ),
            args.keep,
        )  # fmt: skip
    return {"seconds": args.seconds, "talk_ms": args.talk_ms, "runs": runs}


def media_sweep(args: argparse.Namespace) -> dict[str, Any]:
    runs = {}
    for calls in args.calls:
        runs[str(calls)] = _repeat(
            f"media-{calls}", args.runs,
            lambda wd, calls=calls: media_run(
                wd, calls=calls, hold_s=args.hold, probe_calls=args.probe_calls
            ),
            args.keep,
        )  # fmt: skip
    return {"hold_s": args.hold, "probe_calls": args.probe_calls, "runs": runs}


def held_sweep(args: argparse.Namespace) -> dict[str, Any]:
    runs = {}
    for calls in args.calls:
        runs[str(calls)] = _repeat(
            f"held-{calls}", args.runs,
            lambda wd, calls=calls: held_run(
                wd, calls=calls, rate=args.rate, hold_s=args.hold, settle_s=args.settle
            ),
            args.keep,
        )  # fmt: skip
    return {"rate": args.rate, "hold_s": args.hold, "runs": runs}


def micro_run(args: argparse.Namespace) -> dict[str, Any]:
    """The in-process micro-benchmarks, their output kept as printed."""
    outputs = {}
    for module, extra in (
        ("benchmarks.bench_parser", args.parser_args),
        ("benchmarks.bench_transactions", args.transactions_args),
        ("benchmarks.bench_callflow", args.callflow_args),
    ):
        argv = [sys.executable, "-m", module, *extra]
        log(f"micro: {' '.join(argv[1:])}")
        # With --server-rev the snapshot's package is measured: it is the working directory
        # (first on sys.path), the benchmarks come from this checkout.
        cwd = Rig.server_path or str(loadkit.REPO)
        env = {**os.environ, "PYTHONPATH": str(loadkit.REPO)}
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"{module} failed: {proc.stderr[-2000:]}")
        outputs[f"python -m {module} {' '.join(extra)}".strip()] = proc.stdout
    return {"outputs": outputs}


def save(
    name: str, data: dict[str, Any], command: str, quick: bool, label: str | None = None
) -> Path:
    RESULTS.mkdir(exist_ok=True)
    suffix = (f"-{label}" if label else "") + ("-quick" if quick else "")
    path = RESULTS / f"{name}{suffix}.json"
    data = {
        "benchmark": name,
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": loadkit.machine(),
        **data,
    }
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    log(f"results in {path}")
    return path


# --- command line ------------------------------------------------------------------------------


def _snapshot(rev: str) -> tuple[str, str]:
    """Extract ``minicc/`` of git revision ``rev`` to a temporary directory.

    Returns:
        The full commit id and the directory (to put first on the server's PYTHONPATH).
    """
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=loadkit.REPO, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    target = Path(tempfile.mkdtemp(prefix=f"minicc-{commit[:10]}-"))
    archive = subprocess.run(
        ["git", "archive", commit, "minicc"], cwd=loadkit.REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    log(f"server from commit {commit} ({target})")
    return commit, str(target)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


QUICK = {
    "cps": {"rates": [100.0, 200.0], "seconds": 10.0, "talk_ms": 3000, "runs": 1},
    "cps-relay": {"rates": [100.0], "seconds": 10.0, "talk_ms": 3000, "runs": 1},
    "baseline": {"rates": [200.0], "seconds": 10.0, "talk_ms": 3000, "runs": 1},
    "media": {"calls": [50], "hold": 10.0, "probe_calls": 4, "runs": 1},
    "held": {"calls": [1000], "rate": 200.0, "hold": 4.0, "settle": 5.0, "runs": 1},
    "micro": {
        "parser_args": ["-n", "2000"],
        "transactions_args": ["--calls", "2000", "--rounds", "1"],
        "callflow_args": ["--calls", "500", "--rounds", "1"],
    },
}
FULL = {
    "cps": {
        "rates": [200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0, 600.0],
        "seconds": 60.0,
        "talk_ms": 10000,
        "runs": 3,
    },
    "cps-relay": {
        "rates": [200.0, 250.0, 300.0, 350.0],
        "seconds": 60.0,
        "talk_ms": 10000,
        "runs": 3,
    },
    "baseline": {"rates": [400.0, 800.0], "seconds": 60.0, "talk_ms": 10000, "runs": 3},
    "media": {"calls": [500, 700], "hold": 60.0, "probe_calls": 10, "runs": 3},
    "held": {"calls": [10000], "rate": 250.0, "hold": 20.0, "settle": 36.0, "runs": 3},
    "micro": {
        "parser_args": [],
        "transactions_args": [],
        "callflow_args": ["--calls", "3000"],
    },
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_switch", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "benchmark",
        choices=["all", "cps", "cps-relay", "baseline", "media", "held", "micro", "report"],
    )
    parser.add_argument("--quick", action="store_true", help="smoke check: small and short")
    parser.add_argument("--runs", type=int, help="runs per setting (medians are reported)")
    parser.add_argument("--rates", type=_floats, help="calls per second, e.g. 200,300,400")
    parser.add_argument("--seconds", type=float, help="how long calls are created (cps)")
    parser.add_argument("--talk-ms", type=int, help="call length (cps, baseline)")
    parser.add_argument("--calls", type=_ints, help="concurrent calls (media, held)")
    parser.add_argument("--hold", type=float, help="seconds held while measured")
    parser.add_argument("--probe-calls", type=int, help="RTP probe calls (media)")
    parser.add_argument("--rate", type=float, help="setup rate for held calls")
    parser.add_argument("--settle", type=float, help="seconds after setup before measuring")
    parser.add_argument("--keep", action="store_true", help="keep each run's directory")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the doc")
    parser.add_argument(
        "--server-path",
        help="run the server from this copy of the package (A/B of a patch; implies --label)",
    )
    parser.add_argument("--label", help="save results as <benchmark>-<label>.json")
    parser.add_argument(
        "--server-rev",
        help="measure the server of this git revision (a snapshot of its minicc package), "
        "so that work in progress in the checkout does not leak into the figures",
    )
    args = parser.parse_args(argv)
    command = "python -m benchmarks.bench_switch " + " ".join(argv or sys.argv[1:])
    from benchmarks import report

    if args.benchmark == "report":
        report.write_doc()
        return 0
    if args.server_path:
        Rig.server_path = str(Path(args.server_path).resolve())
        args.label = args.label or "patched"
    server_rev = None
    if args.server_rev:
        server_rev, Rig.server_path = _snapshot(args.server_rev)
    names = ["micro", "cps", "cps-relay", "baseline", "media", "held"]
    todo = names if args.benchmark == "all" else [args.benchmark]
    for name in todo:
        settings = dict((QUICK if args.quick else FULL)[name])
        for key in settings:
            given = getattr(args, key.replace("-", "_"), None)
            if given is not None and args.benchmark != "all":
                settings[key] = given
        ns = argparse.Namespace(keep=args.keep, **settings)
        log(f"{name}: {settings}")
        if name in ("cps", "cps-relay"):
            data = cps_sweep(ns, relay=name == "cps-relay")
        elif name == "baseline":
            data = baseline_sweep(ns)
        elif name == "media":
            data = media_sweep(ns)
        elif name == "micro":
            data = micro_run(ns)
        else:
            data = held_sweep(ns)
        extra = {"server_rev": server_rev} if server_rev else {}
        save(name, {"settings": settings, **extra, **data}, command, args.quick, args.label)
    if args.label:
        return 0
    if args.quick:
        report.print_summary(quick=True)
    elif not args.no_doc:
        report.write_doc()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
