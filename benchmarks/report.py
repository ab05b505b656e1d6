"""Turn ``benchmarks/results/*.json`` into ``docs/performance.md`` (medians, min and max).

The figures come from the JSON files the benchmarks wrote; the explanations around them are
kept here, next to the code that computes what they explain.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.loadkit import median

RESULTS = Path(__file__).resolve().parent / "results"
DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"

Result = dict[str, Any]

# Targets from the issue.
TARGET_CPS = 400
TARGET_SETUP_P95_MS = 50
TARGET_SETUP_AT = 200
TARGET_MEDIA_CALLS = 500
TARGET_HELD = 10_000
TARGET_RSS_KB = 20
SIPPY_CPS, SIPPY_CPU_MS = 200, 4.0


def load(name: str, *, quick: bool = False) -> dict[str, Any] | None:
    path = RESULTS / f"{name}{'-quick' if quick else ''}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else None


def _values(runs: Iterable[Result], get: Callable[[Result], Any]) -> list[float]:
    out = []
    for run in runs:
        try:
            value = get(run)
        except (KeyError, TypeError):
            continue
        if isinstance(value, int | float):
            out.append(float(value))
    return out


def stat(runs: list[Result], get: Callable[[Result], Any], fmt: str = "{:.1f}") -> str:
    """``median (min-max)`` over the runs, or the single value."""
    values = _values(runs, get)
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def med(runs: list[Result], get: Callable[[Result], Any]) -> float | None:
    values = _values(runs, get)
    return median(values) if values else None


def rate_passes(runs: list[Result]) -> bool:
    """A rate passes on the medians: failures under 0.1 %, created at 97 % of the rate."""
    failed = med(runs, lambda r: r["failed_pct"])
    achieved = med(runs, lambda r: r["achieved_rate"] / r["rate"])
    return failed is not None and achieved is not None and failed < 0.1 and achieved >= 0.97


def max_sustained(cps: dict[str, Any]) -> float | None:
    best = None
    for rate, runs in sorted(cps["runs"].items(), key=lambda kv: float(kv[0])):
        if not rate_passes(runs):
            break
        best = float(rate)
    return best


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _machine(data: dict[str, Any]) -> str:
    m = data.get("machine", {})
    return (
        f"{m.get('cores', '?')} cores, Python {m.get('python', '?')}, uvloop {m.get('uvloop')}, "
        f"kernel {m.get('kernel')}, {m.get('sipp', 'sipp ?')}, net.core.rmem_max="
        f"{m.get('rmem_max')}, wmem_max={m.get('wmem_max')}, rmem_default="
        f"{m.get('rmem_default')}, open files {m.get('nofile')}"
    )


def _rev(data: dict[str, Any]) -> str:
    rev = data.get("server_rev")
    return f", server of commit {rev[:10]}" if rev else ""


def _busy(runs: list[Result]) -> str:
    return stat(runs, lambda r: r["machine_busy_pct"], "{:.0f}")


def cps_section(cps: dict[str, Any], title: str) -> list[str]:
    rows = []
    for rate, runs in sorted(cps["runs"].items(), key=lambda kv: float(kv[0])):
        rows.append(
            [
                rate,
                str(len(runs)),
                "yes" if rate_passes(runs) else "**no**",
                stat(runs, lambda r: r["failed_pct"], "{:.2f}"),
                stat(runs, lambda r: r["achieved_rate"], "{:.0f}"),
                stat(runs, lambda r: r["setup_ms"]["p50"], "{:.0f}"),
                stat(runs, lambda r: r["setup_ms"]["p95"], "{:.0f}"),
                stat(runs, lambda r: r["setup_ms"]["p99"], "{:.0f}"),
                stat(runs, lambda r: r["server_cpu_ms_per_call"], "{:.2f}"),
                stat(runs, lambda r: r["server_cpu_pct_loaded"], "{:.0f}"),
                stat(runs, lambda r: r["server_peak_rss_mb"], "{:.0f}"),
                _busy(runs),
            ]
        )
    best = max_sustained(cps)
    lines = [f"### {title}", ""]
    lines += [
        f"Highest sustained rate: **{best:g} calls/s**" if best else "No rate passed.",
        "",
        f"`{cps.get('command', '?')}` — {cps.get('date', '?')}{_rev(cps)}; calls created for "
        f"{cps['seconds']:g} s, each held {cps['talk_ms'] / 1000:g} s.",
        "",
    ]
    lines += _table(
        [
            "calls/s", "runs", "passed", "failed %", "created/s", "setup p50 ms",
            "setup p95 ms", "setup p99 ms", "minicc CPU ms/call", "minicc CPU % (loaded)",
            "peak RSS MB", "machine busy %",
        ],
        rows,
    )  # fmt: skip
    return [*lines, ""]


def baseline_section(base: dict[str, Any]) -> list[str]:
    rows = []
    for rate, runs in sorted(base["runs"].items(), key=lambda kv: float(kv[0])):
        rows.append(
            [
                rate,
                str(len(runs)),
                stat(runs, lambda r: r["failed_pct"], "{:.2f}"),
                stat(runs, lambda r: r["achieved_rate"], "{:.0f}"),
                stat(runs, lambda r: r["setup_ms"]["p95"], "{:.0f}"),
                stat(runs, lambda r: r["caller_cpu_ms_per_call"], "{:.3f}"),
                stat(runs, lambda r: r["callee_cpu_ms_per_call"], "{:.3f}"),
                _busy(runs),
            ]
        )
    lines = [
        f"`{base.get('command', '?')}` — {base.get('date', '?')}{_rev(base)}.",
        "",
        *_table(
            [
                "calls/s",
                "runs",
                "failed %",
                "created/s",
                "setup p95 ms",
                "sipp caller CPU ms/call",
                "sipp callee CPU ms/call",
                "machine busy %",
            ],
            rows,
        ),
        "",
    ]
    return lines


def media_section(media: dict[str, Any]) -> list[str]:
    rows = []
    for calls, runs in sorted(media["runs"].items(), key=lambda kv: int(kv[0])):
        rows.append(
            [
                calls,
                str(len(runs)),
                "yes" if all(r.get("passed") for r in runs) else "**no**",
                stat(runs, lambda r: r["failed"], "{:.0f}"),
                stat(runs, lambda r: r["relayed_packets_per_s"], "{:.0f}"),
                stat(runs, lambda r: r["relay_drop_pct"], "{:.3f}"),
                stat(runs, lambda r: r["probe"]["caller->callee"]["loss_pct"], "{:.3f}"),
                stat(runs, lambda r: r["probe"]["callee->caller"]["loss_pct"], "{:.3f}"),
                stat(runs, lambda r: r["probe"]["caller->callee"]["transit_us"]["50"] / 1000,
                     "{:.2f}"),
                stat(runs, lambda r: r["worst_pdv_p99_ms"], "{:.2f}"),
                stat(runs, lambda r: r["probe"]["direct"]["pdv_p99_us"] / 1000, "{:.2f}"),
                stat(runs, lambda r: r["server_cpu_pct"], "{:.0f}"),
                stat(runs, lambda r: r["server_cpu_us_per_packet"], "{:.1f}"),
                stat(runs, lambda r: r["rss_kb_per_call"], "{:.1f}"),
                _busy(runs),
            ]
        )  # fmt: skip
    return [
        f"`{media.get('command', '?')}` — {media.get('date', '?')}{_rev(media)}; held "
        f"{media['hold_s']:g} s while measured, {media['probe_calls']} probe calls.",
        "",
        *_table(
            [
                "calls",
                "runs",
                "passed",
                "failed calls",
                "packets/s into the relay",
                "relay socket drops %",
                "probe loss a→b %",
                "probe loss b→a %",
                "transit p50 ms",
                "relay PDV p99 ms",
                "direct PDV p99 ms",
                "minicc CPU %",
                "CPU µs/packet",
                "RSS KB/call",
                "machine busy %",
            ],
            rows,
        ),
        "",
    ]


def per_call_section(data: dict[str, dict[str, Any] | None]) -> list[str]:
    """(c) in one table: CPU and memory per call, signaling only and with relayed media."""
    rows = []
    cps, held, media = data["cps"], data["held"], data["media"]
    at = (cps or {}).get("runs", {}).get(f"{TARGET_SETUP_AT:g}", [])
    held_runs = next(iter((held or {}).get("runs", {}).values()), [])
    if at or held_runs:
        rows.append(
            [
                "signaling only (relay off)",
                stat(at, lambda r: r["server_cpu_ms_per_call"], "{:.2f}")
                + f" ms per call at {TARGET_SETUP_AT} calls/s",
                stat(held_runs, lambda r: r["rss_kb_per_call"], "{:.1f}")
                + f" KB ({next(iter((held or {}).get('runs', {'?': 0})))} calls held)",
            ]
        )
    for calls, runs in sorted((media or {}).get("runs", {}).items(), key=lambda kv: int(kv[0])):
        rows.append(
            [
                f"G.711 relayed both ways ({calls} calls)",
                stat(runs, lambda r: r["server_cpu_pct_per_call"] * 10, "{:.2f}")
                + " ms CPU per call-second ("
                + stat(runs, lambda r: r["server_cpu_us_per_packet"], "{:.1f}")
                + " µs per packet)",
                stat(runs, lambda r: r["rss_kb_per_call"], "{:.1f}") + " KB",
            ]
        )
    if not rows:
        return []
    return [*_table(["", "CPU", "RSS per call"], rows), ""]


def held_section(held: dict[str, Any]) -> list[str]:
    rows = []
    for calls, runs in sorted(held["runs"].items(), key=lambda kv: int(kv[0])):
        rows.append(
            [
                calls,
                str(len(runs)),
                stat(runs, lambda r: r["failed"], "{:.0f}"),
                stat(runs, lambda r: r["base_rss_mb"], "{:.0f}"),
                stat(runs, lambda r: r["held_rss_mb"], "{:.0f}"),
                stat(runs, lambda r: r["rss_kb_per_call"], "{:.1f}"),
                stat(runs, lambda r: r["transactions_while_held"], "{:.0f}"),
                stat(runs, lambda r: r["server_cpu_ms_per_call"], "{:.2f}"),
            ]
        )
    return [
        f"`{held.get('command', '?')}` — {held.get('date', '?')}{_rev(held)}; set up at "
        f"{held['rate']:g} calls/s, measured once every transaction had ended (64*T1 after "
        "the last setup), median of the samples over the hold.",
        "",
        *_table(
            [
                "calls held",
                "runs",
                "failed",
                "RSS before MB",
                "RSS held MB",
                "RSS KB/call",
                "live transactions",
                "minicc CPU ms/call",
            ],
            rows,
        ),
        "",
    ]


AB_LABELS = {
    "ab-before": "before (commit aae937a)",
    "ab-after": "after (collector, ended calls, randomness, status polling)",
}


def ab_section() -> list[str]:
    """The same rate, server before and after this round's changes (alternating A/B runs)."""
    rows = []
    for label, what in AB_LABELS.items():
        data = load(f"cps-{label}")
        if data is None:
            continue
        for rate, runs in sorted(data["runs"].items(), key=lambda kv: float(kv[0])):
            rows.append(
                [
                    what,
                    rate,
                    str(len(runs)),
                    stat(runs, lambda r: r["failed_pct"], "{:.2f}"),
                    stat(runs, lambda r: r["setup_ms"]["p95"], "{:.0f}"),
                    stat(runs, lambda r: r["setup_ms"]["p99"], "{:.0f}"),
                    stat(runs, lambda r: r["server_cpu_ms_per_call"], "{:.2f}"),
                    stat(runs, lambda r: r["server_cpu_pct_loaded"], "{:.0f}"),
                    stat(runs, lambda r: r["server_peak_rss_mb"], "{:.0f}"),
                    _busy(runs),
                ]
            )
    if not rows:
        return []
    header = [
        "server", "calls/s", "runs", "failed %", "setup p95 ms", "setup p99 ms",
        "minicc CPU ms/call", "minicc CPU % (loaded)", "peak RSS MB", "machine busy %",
    ]  # fmt: skip
    return [*_table(header, rows), ""]


def micro_section(micro: dict[str, Any]) -> list[str]:
    lines = [f"`{micro.get('command', '?')}` — {micro.get('date', '?')}{_rev(micro)}.", ""]
    for name, output in micro.get("outputs", {}).items():
        lines += [f"`{name}`:", "", "```", output.rstrip(), "```", ""]
    return lines


def ewt_section(ewt: dict[str, Any]) -> list[str]:
    return [f"`{ewt.get('command', '?')}` — {ewt.get('date', '?')}.", "", ewt["table"], ""]


def verdicts(data: dict[str, dict[str, Any] | None]) -> list[list[str]]:
    rows = []
    cps, relay, media, held = data["cps"], data["cps-relay"], data["media"], data["held"]
    if cps:
        best = max_sustained(cps)
        rows.append(
            [
                "(a) sustained calls/s, < 0.1 % failed, 60 s of 10 s calls",
                f"≥ {TARGET_CPS}",
                f"{best:g}" if best else "none passed",
                "met" if best and best >= TARGET_CPS else "**not met**",
            ]
        )
        at = cps["runs"].get(f"{TARGET_SETUP_AT:g}")
        if at:
            p95 = med(at, lambda r: r["setup_ms"]["p95"])
            rows.append(
                [
                    f"(a) setup time p95 at {TARGET_SETUP_AT} calls/s",
                    f"< {TARGET_SETUP_P95_MS} ms",
                    f"{p95:.0f} ms" if p95 is not None else "-",
                    "met" if p95 is not None and p95 < TARGET_SETUP_P95_MS else "**not met**",
                ]
            )
        cpu = med(at or [], lambda r: r["server_cpu_ms_per_call"])
        if cpu is not None:
            rows.append(
                [
                    f"CPU per call vs Sippy ({SIPPY_CPU_MS:g} ms, {SIPPY_CPS} calls/s): ≥ 2x",
                    f"≤ {SIPPY_CPU_MS / 2:g} ms",
                    f"{cpu:.2f} ms ({SIPPY_CPU_MS / cpu:.1f}x)",
                    "met" if cpu <= SIPPY_CPU_MS / 2 else "**not met**",
                ]
            )
    if media:
        passing = [
            int(calls)
            for calls, runs in media["runs"].items()
            if sum(1 for r in runs if r.get("passed")) * 2 > len(runs)
        ]
        best = max(passing) if passing else None
        rows.append(
            [
                "(b) relayed G.711 calls, 60 s, < 0.5 % lost, PDV p99 < 5 ms",
                f"≥ {TARGET_MEDIA_CALLS}",
                f"{best}" if best else "none passed",
                "met" if best and best >= TARGET_MEDIA_CALLS else "**not met**",
            ]
        )
    if held:
        for calls, runs in held["runs"].items():
            kb = med(runs, lambda r: r["rss_kb_per_call"])
            ok = kb is not None and kb <= TARGET_RSS_KB and int(calls) >= TARGET_HELD
            rows.append(
                [
                    "(c) signaling-only calls held, RSS per call",
                    f"≥ {TARGET_HELD:,} at ≤ {TARGET_RSS_KB} KB",
                    f"{int(calls):,} at {kb:.1f} KB" if kb is not None else "-",
                    "met" if ok else "**not met**",
                ]
            )
    if relay and cps:
        for rate in sorted(relay["runs"], key=float):
            on = med(relay["runs"][rate], lambda r: r["server_cpu_ms_per_call"])
            off = med(cps["runs"].get(rate, []), lambda r: r["server_cpu_ms_per_call"])
            if on is not None and off is not None:
                rows.append(
                    [
                        f"relay on vs off at {rate} calls/s (CPU per call)",
                        "-",
                        f"{on:.2f} ms vs {off:.2f} ms",
                        "pass" if rate_passes(relay["runs"][rate]) else "**fails**",
                    ]
                )
    return rows


def write_doc(path: Path = DOC) -> None:
    data = {name: load(name) for name in ("cps", "cps-relay", "baseline", "media", "held", "micro")}
    first = next((d for d in data.values() if d), None)
    if first is None:
        raise SystemExit("no results yet: run python -m benchmarks.bench_switch all")
    from benchmarks import narrative

    lines = [*narrative.INTRO, ""]
    lines += [f"Measured on: {_machine(first)}.", ""]
    lines += ["## Targets", ""]
    lines += _table(["what", "target", "measured (median)", ""], verdicts(data))
    lines += ["", *narrative.TARGETS_NOTE, ""]
    if data["cps"]:
        lines += ["## (a) Calls per second, signaling only", "", *narrative.CPS, ""]
        lines += cps_section(data["cps"], "Media relay off (signaling only)")
    if data["cps-relay"]:
        lines += [*narrative.CPS_RELAY, ""]
        lines += cps_section(data["cps-relay"], "Media relay on (ports bound, no RTP sent)")
    if data["baseline"]:
        lines += ["## The load generator alone (sipp to sipp)", "", *narrative.BASELINE, ""]
        lines += baseline_section(data["baseline"])
    if data["media"]:
        lines += ["## (b) Relayed media", "", *narrative.MEDIA, ""]
        lines += media_section(data["media"])
    if data["held"]:
        lines += ["## (c) Memory and CPU per call", "", *per_call_section(data)]
        lines += [*narrative.HELD, ""]
        lines += held_section(data["held"])
    if data["micro"]:
        lines += ["## Micro-benchmarks (no network)", "", *narrative.MICRO, ""]
        lines += micro_section(data["micro"])
    ewt = load("ewt")
    if ewt:
        lines += ["## Estimated wait: announced vs actual", "", *narrative.EWT, ""]
        lines += ewt_section(ewt)
    lines += narrative.WHERE_TIME_GOES
    ab = ab_section()
    if ab:
        lines += ["", *narrative.AB, "", *ab]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    sys.stderr.write(f"wrote {path}\n")


def print_summary(*, quick: bool) -> None:
    for name in ("cps", "cps-relay", "baseline", "media", "held"):
        data = load(name, quick=quick)
        if data is None:
            continue
        sys.stdout.write(f"== {name}\n")
        for setting, runs in data.get("runs", {}).items():
            for run in runs:
                brief = {
                    k: v
                    for k, v in run.items()
                    if k in (
                        "passed", "failed_pct", "achieved_rate", "server_cpu_ms_per_call",
                        "setup_ms", "worst_loss_pct", "worst_pdv_p99_ms", "server_cpu_pct",
                        "rss_kb_per_call", "error",
                    )
                }  # fmt: skip
                sys.stdout.write(f"  {setting}: {json.dumps(brief)}\n")
