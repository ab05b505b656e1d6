"""Concurrent web calls through the webcall gateway: ``python -m benchmarks.webcall_load``.

Starts a real ``minicc serve`` (``MINICC_WEBCALL_WORKERS`` gateway workers, ICE on 127.0.0.1)
in a temporary data dir, points click-to-call at a queue with no agent (so every caller hears
the switch's music on hold: audio flows switch -> worker -> browser, and browser -> worker ->
switch), then opens ``--calls`` web calls from ``--clients`` load-generator processes, each
running aiortc peers that play the part of browsers (silence, encoded as the browser would).

Once all calls are up it waits ``--hold`` seconds and reports, for that steady window:

- frames lost towards the browsers (20 ms frames the client peers expected at 50/s and did
  not get; the other direction is not counted here);
- CPU of the gateway workers (user + system, from /proc) per web call, in % of one core.

    python -m benchmarks.webcall_load [--calls 40] [--workers 2] [--clients 2] [--hold 20]
        [--codec pcmu|opus]

The load generators run on the same machine and take CPU of their own; on a small machine
they are part of what limits the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
QUEUE_NUMBER = "8300"


def _free_port() -> int:
    """A free port outside the server's RTP range (40000-44000)."""
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if not 40000 <= port <= 44000:
            return port


def _cli(data_dir: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "minicc", *args, "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
    )


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- clients


async def _one_call(url: str, key: str, codec: str, ready: asyncio.Event) -> dict[str, Any]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import AudioStreamTrack
    from aiortc.rtcrtpsender import RTCRtpSender

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
    wanted = {"pcmu": "audio/PCMU", "opus": "audio/opus"}[codec]
    codecs = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == wanted]
    transceiver.setCodecPreferences(codecs)
    received = {"frames": 0}
    tasks: set[asyncio.Future[None]] = set()

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def drain() -> None:
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                received["frames"] += 1

        tasks.add(asyncio.ensure_future(drain()))

    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=url, headers={"Origin": url}, timeout=30) as http:
        token = (await http.post("/webcall/session", json={"key": key})).json()["token"]
        reply = await http.post(
            "/webcall/calls", json={"token": token, "sdp": pc.localDescription.sdp}
        )
        reply.raise_for_status()
        answer = reply.json()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        for _ in range(200):
            state = (
                await http.post(f"/webcall/calls/{answer['id']}/state", json={"token": token})
            ).json()
            if state["state"] == "answered" and pc.connectionState == "connected":
                break
            await asyncio.sleep(0.1)
        ready.set()
        return {"pc": pc, "received": received, "tasks": tasks}


async def _client_main(url: str, key: str, calls: int, codec: str, hold: float) -> None:
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: [HOST]
    peers = []
    for _ in range(calls):
        peers.append(await _one_call(url, key, codec, asyncio.Event()))
        await asyncio.sleep(0.1)
    print(json.dumps({"up": len(peers)}), flush=True)
    sys.stdin.readline()  # the orchestrator says: all calls of all clients are up
    start = {id(p): p["received"]["frames"] for p in peers}
    t0 = time.monotonic()
    await asyncio.sleep(hold)
    elapsed = time.monotonic() - t0
    got = [p["received"]["frames"] - start[id(p)] for p in peers]
    connected = sum(1 for p in peers if p["pc"].connectionState == "connected")
    print(json.dumps({"elapsed": elapsed, "frames": got, "connected": connected}), flush=True)
    for p in peers:
        await p["pc"].close()


# ----------------------------------------------------------------------------- orchestrator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--hold", type=float, default=20.0)
    parser.add_argument("--codec", choices=("pcmu", "opus"), default="pcmu")
    parser.add_argument("--client", nargs=3, metavar=("URL", "KEY", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, key, n = args.client
        asyncio.run(_client_main(url, key, int(n), args.codec, args.hold))
        return

    with tempfile.TemporaryDirectory(prefix="webcall-bench-") as tmp:
        data = Path(tmp) / "data"
        sip, http_port = _free_port(), _free_port()
        serve = ["--data-dir", str(data), "--bind", HOST, "--sip-port", str(sip),
                 "--http-port", str(http_port), "--rtp-port-min", "40000",
                 "--rtp-port-max", "44000"]  # fmt: skip
        subprocess.run([sys.executable, "-m", "minicc", "serve", "--check", *serve],
                       check=True, capture_output=True)  # fmt: skip
        _cli(data, "queue", "add", "bench", "--strategy", "ring-all", "--tenant", "demo")
        _cli(data, "number", "add", QUEUE_NUMBER, "--to", "queue:bench", "--tenant", "demo")
        _cli(data, "webcall", "set", "--tenant", "demo", "--target", QUEUE_NUMBER,
             "--max-calls", "1000", "--per-ip", "10000", "--per-tenant", "10000")  # fmt: skip
        env = {**os.environ, "MINICC_WEBCALL_WORKERS": str(args.workers),
               "MINICC_WEBCALL_ICE_HOSTS": HOST}  # fmt: skip
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115
        server = subprocess.Popen(
            [sys.executable, "-m", "minicc", "serve", *serve], env=env, stdout=log, stderr=log
        )
        url = f"http://{HOST}:{http_port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(url + "/api/health", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            key = json.loads(
                subprocess.run(
                    [sys.executable, "-m", "minicc", "webcall", "show", "--tenant", "demo",
                     "--json", "--data-dir", str(data)],
                    check=True, capture_output=True, text=True,
                ).stdout
            )["public_key"]  # fmt: skip
            # One session first, so the workers are up before the load starts.
            httpx.post(url + "/webcall/session", json={"key": key}, headers={"Origin": url})
            time.sleep(3)
            shares = [args.calls // args.clients + (i < args.calls % args.clients)
                      for i in range(args.clients)]  # fmt: skip
            clients = []
            for n in (n for n in shares if n):
                argv = [sys.executable, "-m", "benchmarks.webcall_load", "--codec", args.codec,
                        "--hold", str(args.hold), "--client", url, key, str(n)]  # fmt: skip
                clients.append(
                    subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                )
            for c in clients:
                assert c.stdout is not None
                json.loads(c.stdout.readline())
            workers = _children(server.pid)
            cpu0 = {w: _cpu_seconds(w) for w in workers}
            t0 = time.monotonic()
            for c in clients:
                assert c.stdin is not None
                c.stdin.write("go\n")
                c.stdin.flush()
            results = []
            for c in clients:
                assert c.stdout is not None
                results.append(json.loads(c.stdout.readline()))
            elapsed = time.monotonic() - t0
            cpu = sum(_cpu_seconds(w) - cpu0[w] for w in workers)
            for c in clients:
                c.wait(timeout=60)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            log.close()

    frames = [f for r in results for f in r["frames"]]
    hold = max(r["elapsed"] for r in results)
    expected = 50 * hold * len(frames)
    to_browser_loss = max(0.0, 1 - sum(frames) / expected) if expected else 1.0
    report = {
        "calls": len(frames),
        "connected": sum(r["connected"] for r in results),
        "workers": args.workers,
        "codec": args.codec,
        "hold_s": round(hold, 1),
        "to_browser_frames_lost_pct": round(100 * to_browser_loss, 2),
        "worker_cpu_pct_of_core_total": round(100 * cpu / elapsed, 1),
        "worker_cpu_pct_of_core_per_call": round(100 * cpu / elapsed / max(1, len(frames)), 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
